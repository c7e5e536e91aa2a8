/**
 * Table writes must hold Unicode text: a lone surrogate in a key or value would be written to the
 * changelog as U+FFFD (UTF-8 cannot encode it), so a restored or standby copy would differ from
 * the active one. Handler puts and deletes are refused with a typed error naming the field.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import avsc from 'avsc';
import { HandlerContractError, SchemaValidationError } from '../../src/errors.js';
import { checkKey, describeInvalid, HandlerTable, PartitionState, type TableSchema } from '../../src/state/index.js';

const ROW = avsc.Type.forSchema({
  type: 'record',
  name: 'Row',
  namespace: 'strings',
  fields: [
    { name: 'text', type: 'string' },
    { name: 'n', type: 'int' },
    { name: 'inner', type: { type: 'record', name: 'Inner', fields: [{ name: 'label', type: 'string' }] } },
    { name: 'words', type: { type: 'array', items: 'string' } },
    { name: 'tags', type: { type: 'map', values: 'string' } },
    { name: 'counts', type: { type: 'map', values: 'int' } },
    { name: 'maybe', type: ['null', 'string'] },
    { name: 'either', type: ['null', 'long', 'string', { type: 'array', items: 'string' }] },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] } },
    { name: 'blob', type: 'bytes' },
  ],
});

const row = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  text: 'ok \u{1F600}',
  n: 1,
  inner: { label: 'x' },
  words: ['a'],
  tags: { k: 'v' },
  counts: { k: 1 },
  maybe: null,
  either: null,
  kind: 'A',
  blob: Buffer.from([0xff]),
  ...over,
});

describe('describeInvalid: lone surrogates in table values', () => {
  it('passes well-formed text, surrogate pairs included', () => {
    assert.equal(describeInvalid(ROW, row()), undefined);
    assert.equal(describeInvalid(ROW, row({ tags: { '\u{1F600}': '\u{1F600}' }, either: ['\u{1F600}'] })), undefined);
  });

  it('names the field of a lone surrogate anywhere in the value', () => {
    const cases: Array<[over: Record<string, unknown>, field: string]> = [
      [{ text: 'SUR\ud800' }, 'text'],
      [{ inner: { label: '\udc00' } }, 'inner.label'],
      [{ words: ['a', 'SUR\ud800'] }, 'words[1]'],
      [{ tags: { k: 'SUR\ud800' } }, 'tags.k'],
      [{ maybe: 'SUR\ud800' }, 'maybe'],
      [{ either: 'SUR\ud800' }, 'either'],
      [{ either: ['ok', 'SUR\ud800'] }, 'either[1]'],
    ];
    for (const [over, field] of cases) {
      const invalid = describeInvalid(ROW, row(over));
      assert.equal(invalid?.field, field, JSON.stringify(over));
      assert.match(invalid!.message, new RegExp(`^field "${field.replace(/[[\].]/g, '\\$&')}": string ".*" holds a lone surrogate, which is not Unicode text`));
    }
  });

  it('names a map key with a lone surrogate, escaped', () => {
    for (const over of [{ tags: { 'SUR\ud800': 'v' } }, { counts: { 'SUR\ud800': 1 } }]) {
      const invalid = describeInvalid(ROW, row(over));
      const map = Object.keys(over)[0]!;
      assert.equal(invalid?.field, `${map}["SUR\\ud800"]`);
      assert.match(invalid!.message, /: map key "SUR\\ud800" holds a lone surrogate/);
      assert.ok(!/\p{Surrogate}/u.test(invalid!.message), 'the message itself is well-formed text');
    }
  });

  it('still reports a wrong type first', () => {
    assert.equal(describeInvalid(ROW, row({ n: 'x', text: 'SUR\ud800' }))?.field, 'n');
  });
});

describe('table writes refuse lone surrogates', () => {
  const TABLES: TableSchema[] = [
    { name: 'rows', keyType: 'string', valueType: ROW, scope: 'partitioned' },
    { name: 'counts', keyType: 'int', valueType: avsc.Type.forSchema({ type: 'record', name: 'C', fields: [{ name: 'n', type: 'int' }] }), scope: 'partitioned' },
  ];

  it('checkKey refuses a string key holding a lone surrogate', () => {
    assert.equal(checkKey('string', 'k\u{1F600}'), undefined);
    assert.match(checkKey('string', 'SUR\ud800') ?? '', /lone surrogate/);
    assert.match(checkKey('string', '\udfff') ?? '', /lone surrogate/);
  });

  it('a put or delete with such a key, or a put with such a value, throws a typed error and changes nothing', () => {
    const state = new PartitionState(0, 1, TABLES);
    const rows = new HandlerTable(state, 'rows');
    rows.put('good', row());
    assert.throws(
      () => rows.put('SUR\ud800', row()),
      (err: unknown) => err instanceof HandlerContractError && /table "rows": key "SUR\\ud800" holds a lone surrogate/.test(err.message) && err.context.table === 'rows',
    );
    assert.throws(() => rows.delete('SUR\ud800'), HandlerContractError);
    assert.throws(
      () => rows.put('good', row({ inner: { label: 'SUR\ud800' } })),
      (err: unknown) =>
        err instanceof SchemaValidationError && err.context.field === 'inner.label' && /table "rows", key "good": field "inner\.label": string "SUR\\ud800" holds a lone surrogate/.test(err.message),
    );
    assert.deepEqual(rows.get('good'), row());
    assert.deepEqual(
      rows.scan().map(([k]) => k),
      ['good'],
    );
  });
});
