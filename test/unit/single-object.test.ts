import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import avsc from 'avsc';
import type { Schema } from 'avsc';
import {
  AppDefinitionError,
  DecodeError,
  SchemaValidationError,
  UnknownEventTypeError,
  UnknownSchemaError,
} from '../../src/errors.js';
import { crc64Avro } from '../../src/codec/crc64-avro.js';
import {
  SchemaCatalog,
  canonicalForm,
  fingerprint,
  isSingleObject,
  parseEventType,
} from '../../src/codec/single-object.js';

// Asserted rather than annotated: avsc's typings lack field `aliases`, which this schema uses.
const VOTE = {
  type: 'record',
  name: 'Vote',
  namespace: 'demo.voting',
  doc: 'A vote for a contestant',
  fields: [
    { name: 'phoneNumber', type: 'long', doc: 'caller' },
    { name: 'state', type: 'string', aliases: ['st'] },
    { name: 'contestantNumber', type: 'int', order: 'descending' },
    { name: 'note', type: ['null', 'string'], default: null },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['SMS', 'WEB'], default: 'SMS' } },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
} as Schema;

/** The Parsing Canonical Form of VOTE, written out by hand from the spec's transformation rules. */
const VOTE_PCF =
  '{"name":"demo.voting.Vote","type":"record","fields":[' +
  '{"name":"phoneNumber","type":"long"},' +
  '{"name":"state","type":"string"},' +
  '{"name":"contestantNumber","type":"int"},' +
  '{"name":"note","type":["null","string"]},' +
  '{"name":"kind","type":{"name":"demo.voting.Kind","type":"enum","symbols":["SMS","WEB"]}},' +
  '{"name":"tags","type":{"type":"array","items":"string"}}]}';

const vote = { phoneNumber: 5551234567, state: 'MA', contestantNumber: 3, note: null, kind: 'WEB', tags: ['a'] };

const V1: Schema = {
  type: 'record',
  name: 'shop.Order',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'qty', type: 'int' },
  ],
};
const V2: Schema = {
  type: 'record',
  name: 'shop.Order',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'qty', type: 'int' },
    { name: 'coupon', type: 'string', default: 'none' },
  ],
};

const signedToLE = (signed: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(signed);
  return b;
};

describe('fingerprint', () => {
  it('is computed over the Parsing Canonical Form', () => {
    const type = parseEventType(VOTE);
    assert.equal(canonicalForm(type), VOTE_PCF);
    const expected = Buffer.alloc(8);
    expected.writeBigUInt64LE(crc64Avro(Buffer.from(VOTE_PCF)));
    assert.deepEqual(fingerprint(type), expected);
  });

  it("matches Avro's schema-tests.txt fingerprints for record schemas", () => {
    // Inputs and fingerprints from apache/avro share/test/data/schema-tests.txt (019, 020, 021, 026).
    // 026 has "default":"true" for a boolean, which avsc rightly rejects; the default is not part of
    // the canonical form, so `true` gives the same fingerprint.
    const cases: Array<[Schema, bigint]> = [
      [{ fields: [], type: 'record', name: 'foo' }, -4824392279771201922n],
      [{ fields: [], type: 'record', name: 'foo', namespace: 'x.y' }, 5916914534497305771n],
      [{ fields: [], type: 'record', name: 'a.b.foo', namespace: 'x.y' }, -4616218487480524110n],
      [
        {
          fields: [
            { type: 'boolean', aliases: [], name: 'f1', default: true },
            { order: 'descending', name: 'f2', doc: 'Hello', type: 'int' },
          ],
          type: 'record',
          name: 'foo',
        } as Schema,
        -4860222112080293046n,
      ],
      [
        {
          name: 'PigValue',
          type: 'record',
          fields: [{ name: 'value', type: ['null', 'int', 'long', 'PigValue'] }],
        },
        -1759257747318642341n,
      ],
    ];
    for (const [schema, expected] of cases) {
      assert.deepEqual(fingerprint(parseEventType(schema)), signedToLE(expected), JSON.stringify(schema));
    }
  });

  it('returns a copy callers cannot use to corrupt the cache', () => {
    const type = parseEventType(V1);
    const fp = fingerprint(type);
    fp.fill(0);
    assert.notDeepEqual(fingerprint(type), fp);
  });
});

describe('parseEventType', () => {
  it('requires a named record', () => {
    assert.throws(() => parseEventType('int'), AppDefinitionError);
    assert.throws(() => parseEventType({ type: 'enum', name: 'E', symbols: ['A'] }), AppDefinitionError);
    assert.throws(() => parseEventType({ type: 'record', name: 'R', fields: [{ name: 'x', type: 'nope' }] }), {
      name: 'AppDefinitionError',
      message: /invalid Avro schema/,
    });
    assert.equal(parseEventType(VOTE).name, 'demo.voting.Vote');
  });

  it('keeps avsc defaults: longs are numbers, unsafe longs are refused', () => {
    const type = parseEventType(V1);
    assert.equal(type.typeName, 'record');
    const longType = parseEventType({ type: 'record', name: 'L', fields: [{ name: 'n', type: 'long' }] });
    assert.throws(() => longType.toBuffer({ n: 2 ** 53 + 2 }));
  });
});

describe('SchemaCatalog', () => {
  it('round-trips values, with header C3 01 + little-endian fingerprint', () => {
    const type = parseEventType(VOTE);
    const catalog = new SchemaCatalog([type]);
    const bytes = catalog.encode('demo.voting.Vote', vote);
    assert.deepEqual([...bytes.subarray(0, 2)], [0xc3, 0x01]);
    const fp = Buffer.alloc(8);
    fp.writeBigUInt64LE(crc64Avro(Buffer.from(VOTE_PCF)));
    assert.deepEqual(bytes.subarray(2, 10), fp);
    assert.deepEqual(bytes.subarray(10), type.toBuffer(vote));
    assert.ok(isSingleObject(bytes));

    const decoded = catalog.decode(bytes);
    assert.equal(decoded.name, 'demo.voting.Vote');
    assert.equal(decoded.type, type);
    assert.deepEqual({ ...(decoded.value as object) }, vote);
  });

  it('exposes the fingerprint as 16 hex digits of the unsigned value', () => {
    const catalog = new SchemaCatalog([parseEventType({ fields: [], type: 'record', name: 'foo' })]);
    assert.equal(catalog.fingerprintHex('foo'), BigInt.asUintN(64, -4824392279771201922n).toString(16).padStart(16, '0'));
    assert.throws(() => catalog.fingerprintHex('bar'), UnknownEventTypeError);
  });

  it('decodes Uint8Array views and large values', () => {
    const catalog = new SchemaCatalog([parseEventType(V1)]);
    const big = { id: 'x'.repeat(300_000), qty: 1 };
    const bytes = catalog.encode('shop.Order', big);
    const backing = new Uint8Array(bytes.length + 5);
    backing.set(bytes, 5);
    const view = new Uint8Array(backing.buffer, 5, bytes.length);
    assert.deepEqual({ ...(catalog.decode(view).value as object) }, big);
    // After growing the scratch buffer, small values still encode correctly.
    const small = catalog.encode('shop.Order', { id: 'a', qty: 2 });
    assert.deepEqual({ ...(catalog.decode(small).value as object) }, { id: 'a', qty: 2 });
  });

  it('rejects a bad marker', () => {
    const catalog = new SchemaCatalog([parseEventType(V1)]);
    const bytes = catalog.encode('shop.Order', { id: 'a', qty: 1 });
    bytes[1] = 0x02;
    assert.throws(() => catalog.decode(bytes), { name: 'DecodeError', message: /c3 01, got c3 02/ });
    assert.throws(() => catalog.decode(Buffer.from('{"id":"a"}')), DecodeError);
    assert.equal(isSingleObject(bytes), false);
  });

  it('rejects a short header', () => {
    const catalog = new SchemaCatalog([parseEventType(V1)]);
    assert.throws(() => catalog.decode(Buffer.from([0xc3, 0x01, 1, 2])), { name: 'DecodeError', message: /header/ });
    assert.throws(() => catalog.decode(new Uint8Array(0)), DecodeError);
    assert.throws(() => catalog.decode(new Uint8Array([0xc3])), DecodeError);
    assert.equal(isSingleObject(new Uint8Array([0xc3, 0x01])), false);
  });

  it('rejects a truncated body', () => {
    const catalog = new SchemaCatalog([parseEventType(V1)]);
    const bytes = catalog.encode('shop.Order', { id: 'abcdef', qty: 1000 });
    for (let end = 10; end < bytes.length; end++) {
      assert.throws(
        () => catalog.decode(bytes.subarray(0, end)),
        (err: unknown) => err instanceof DecodeError && err.context.eventType === 'shop.Order',
        `cut at ${end}`,
      );
    }
  });

  it('rejects trailing bytes', () => {
    const catalog = new SchemaCatalog([parseEventType(V1)]);
    const bytes = catalog.encode('shop.Order', { id: 'a', qty: 1 });
    assert.throws(() => catalog.decode(Buffer.concat([bytes, Buffer.from([0, 0])])), {
      name: 'DecodeError',
      message: /2 trailing bytes/,
    });
  });

  it('rejects a corrupt body', () => {
    const catalog = new SchemaCatalog([parseEventType(VOTE)]);
    const bytes = catalog.encode('demo.voting.Vote', vote);
    // The `note` union index follows long, string and int; 0x7e is index 63, which does not exist.
    const noteAt = 10 + 5 + 3 + 1; // zigzag varint of 5551234567 is 5 bytes, "MA" is 3, 3 is 1
    assert.equal(bytes[noteAt], 0x00); // branch 0 (null)
    bytes[noteAt] = 0x7e;
    assert.throws(() => catalog.decode(bytes), DecodeError);
  });

  it('names the fingerprint of unknown schemas', () => {
    const writer = new SchemaCatalog([parseEventType(V2)]);
    const reader = new SchemaCatalog([parseEventType(V1)]);
    const bytes = writer.encode('shop.Order', { id: 'a', qty: 1, coupon: 'X' });
    const hex = writer.fingerprintHex('shop.Order');
    assert.throws(
      () => reader.decode(bytes),
      (err: unknown) => err instanceof UnknownSchemaError && err.message.includes(hex),
    );
  });

  it('reads a newer writer (extra field with default) with an older reader', () => {
    const producer = new SchemaCatalog([parseEventType(V2)]);
    const consumer = new SchemaCatalog([parseEventType(V1)]);
    const hex = consumer.addWriterSchema(V2);
    assert.equal(hex, producer.fingerprintHex('shop.Order'));
    const decoded = consumer.decode(producer.encode('shop.Order', { id: 'a', qty: 2, coupon: 'SAVE' }));
    assert.equal(decoded.type, consumer.typeByName('shop.Order'));
    assert.deepEqual({ ...(decoded.value as object) }, { id: 'a', qty: 2 });
    // Its own schema still decodes.
    assert.deepEqual({ ...(consumer.decode(consumer.encode('shop.Order', { id: 'b', qty: 3 })).value as object) }, {
      id: 'b',
      qty: 3,
    });
  });

  it('reads an older writer with a newer reader, filling defaults', () => {
    const producer = new SchemaCatalog([parseEventType(V1)]);
    const consumer = new SchemaCatalog([parseEventType(V2)]);
    consumer.addWriterSchema(avsc.Type.forSchema(V1));
    const decoded = consumer.decode(producer.encode('shop.Order', { id: 'a', qty: 2 }));
    assert.deepEqual({ ...(decoded.value as object) }, { id: 'a', qty: 2, coupon: 'none' });
  });

  it('refuses writer schemas it cannot use', () => {
    const catalog = new SchemaCatalog([parseEventType(V2)]);
    assert.throws(() => catalog.addWriterSchema({ type: 'record', name: 'Other', fields: [] }), UnknownEventTypeError);
    // A writer without `coupon` cannot be read if the reader's `coupon` has no default.
    const strict = new SchemaCatalog([
      parseEventType({
        type: 'record',
        name: 'shop.Order',
        fields: [
          { name: 'id', type: 'string' },
          { name: 'coupon', type: 'string' },
        ],
      }),
    ]);
    assert.throws(() => strict.addWriterSchema(V1), (err: unknown) => {
      return err instanceof SchemaValidationError && err.context.eventType === 'shop.Order';
    });
    // Registering the reader's own schema or the same writer twice is harmless.
    assert.equal(catalog.addWriterSchema(V2), catalog.fingerprintHex('shop.Order'));
    catalog.addWriterSchema(V1);
    catalog.addWriterSchema(V1);
  });

  it('refuses conflicting definitions of an event type', () => {
    const catalog = new SchemaCatalog([parseEventType(V1)]);
    catalog.add(parseEventType(V1)); // same schema: no-op
    assert.throws(() => catalog.add(parseEventType(V2)), AppDefinitionError);
  });

  it('reports invalid values and unknown event types on encode', () => {
    const catalog = new SchemaCatalog([parseEventType(VOTE)]);
    assert.throws(() => catalog.encode('demo.voting.Nope', vote), UnknownEventTypeError);
    assert.throws(
      () => catalog.encode('demo.voting.Vote', { ...vote, contestantNumber: 'abc' }),
      (err: unknown) =>
        err instanceof SchemaValidationError &&
        err.context.field === 'contestantNumber' &&
        err.context.eventType === 'demo.voting.Vote' &&
        /expected int, got string "abc"/.test(err.message),
    );
    assert.throws(
      () => catalog.encode('demo.voting.Vote', { ...vote, tags: ['a', 7] }),
      (err: unknown) => err instanceof SchemaValidationError && err.context.field === 'tags[1]',
    );
  });

  it('typeByName finds registered types only', () => {
    const type = parseEventType(V1);
    const catalog = new SchemaCatalog([type]);
    assert.equal(catalog.typeByName('shop.Order'), type);
    assert.equal(catalog.typeByName('Order'), undefined);
  });
});
