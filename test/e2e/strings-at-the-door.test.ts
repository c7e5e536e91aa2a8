/**
 * Strings are checked once, at the door: an event holding a lone surrogate (`"SUR\ud800"`) is
 * answered 422 naming the field by HTTP and refused with its line number by `farad produce`, and
 * nothing is appended. Before, it was acknowledged and then dead-lettered: its partition was
 * hashed from the JS string while the handler saw the Avro round trip (U+FFFD). Whatever is
 * acknowledged is processed, surrogate pairs included. A handler writing a lone surrogate into a
 * table is refused (its event dead-lettered with the reason), as the changelog could not hold it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import bank from '../../examples/bank/index.js';
import { defineApp, DLQ_HEADERS, record, table } from '../../src/index.js';
import { catalogOf, decodeAll, http, postJson, readTopic, runCli, startTestService, tempDir, waitProcessed, withLog } from './helpers.js';

interface Note {
  id: string;
  text: string;
  tags: Record<string, string>;
  parts: Array<{ label: string }>;
  maybe: string | null;
  mode: string;
}

const PARTITIONS = 4;

const app = defineApp({
  name: 'sur',
  partitions: PARTITIONS,
  events: {
    Note: record<Note>({
      type: 'record',
      name: 'Note',
      namespace: 'sur',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'text', type: 'string' },
        { name: 'tags', type: { type: 'map', values: 'string' }, default: {} },
        { name: 'parts', type: { type: 'array', items: { type: 'record', name: 'Part', fields: [{ name: 'label', type: 'string' }] } }, default: [] },
        { name: 'maybe', type: ['null', 'string'], default: null },
        { name: 'mode', type: 'string', default: 'ok' },
      ],
    }),
  },
  tables: {
    notes: table({ key: 'string', value: record<{ text: string }>({ type: 'record', name: 'Saved', namespace: 'sur', fields: [{ name: 'text', type: 'string' }] }) }),
  },
  inputs: [{ topic: 'notes-in', events: ['Note'] }],
  outputs: {},
  procedures: {
    Note: {
      partitionKey: (note) => note.id,
      handle(ctx, note) {
        if (note.mode === 'bad-key') ctx.tables.notes.put(`${note.id}\ud800`, { text: note.text });
        else if (note.mode === 'bad-value') ctx.tables.notes.put(note.id, { text: `${note.text}\udc00` });
        else ctx.tables.notes.put(note.id, { text: note.text });
      },
    },
  },
});

test('HTTP: a lone surrogate anywhere in an event is 422 naming the field, and nothing is appended', { timeout: 60_000 }, async (t: TestContext) => {
  const { base, log, service } = await startTestService(t, app, tempDir(t));
  const url = `${base}/events/sur.Note`;
  const appended = (topic: string): number => {
    let n = 0;
    for (let p = 0; p < PARTITIONS; p++) n += log.endOffset(topic, p);
    return n;
  };

  const cases: Array<[body: Record<string, unknown>, field: string]> = [
    [{ id: 'SUR\ud800', text: 'hello' }, 'id'], // the partition key
    [{ id: 'a', text: 'SUR\ud800' }, 'text'],
    [{ id: 'a', text: 'x', tags: { colour: 'SUR\ud800' } }, 'tags.colour'],
    [{ id: 'a', text: 'x', tags: { 'SUR\ud800': 'red' } }, 'tags["SUR\\ud800"]'],
    [{ id: 'a', text: 'x', parts: [{ label: 'ok' }, { label: 'SUR\ud800' }] }, 'parts[1].label'],
    [{ id: 'a', text: 'x', maybe: 'SUR\ud800' }, 'maybe'],
    [{ id: 'a', text: 'x', maybe: { string: '\udc00' } }, 'maybe'],
  ];
  for (const [body, field] of cases) {
    // JSON.stringify writes a lone surrogate as the escape \ud800: the body is valid JSON text.
    const answer = await postJson(url, body);
    assert.equal(answer.status, 422, `${field}: ${answer.text}`);
    assert.equal(answer.body['error'], 'schema_validation');
    assert.equal(answer.body['field'], field, answer.text);
    assert.match(String(answer.body['message']), /holds a lone surrogate \(U\+D[89A-F][0-9A-F]{2} at index \d+\), which is not Unicode text/);
  }
  // In an array: the index and the field; none of the array is appended.
  const batch = await postJson(url, [{ id: 'b', text: 'fine' }, { id: 'c', text: 'SUR\ud800' }]);
  assert.equal(batch.status, 422, batch.text);
  assert.equal(batch.body['index'], 1);
  assert.equal(batch.body['field'], 'text');
  assert.match(String(batch.body['message']), /^event \[1\]: field "text": string "SUR\\ud800" holds a lone surrogate/);
  assert.equal(appended('notes-in'), 0, 'nothing was appended');

  // Surrogate pairs are text: acknowledged and processed, the key and row exactly as sent.
  const good = [
    { id: 'k\u{1F600}', text: 'smile \u{1F600}', tags: { '\u{1F600}': '\u{1F600}' } },
    { id: '\u{10FFFF}', text: 'last code point' },
    { id: 'plain', text: 'ascii' },
  ];
  const accepted = await postJson(url, good);
  assert.equal(accepted.status, 202, accepted.text);
  await waitProcessed(service, log, base);
  for (const note of good) {
    const row = await http<{ value: unknown }>(`${base}/tables/notes/${encodeURIComponent(note.id)}`);
    assert.equal(row.status, 200, `${note.id}: ${row.text}`);
    assert.deepEqual(row.body.value, { text: note.text });
  }
  assert.equal(appended('notes-in'), good.length);
  assert.equal(appended('sur-dlq'), 0, 'nothing acknowledged was dead-lettered');
});

test('a handler writing a lone surrogate into a table is refused; its event is dead-lettered with the reason', { timeout: 60_000 }, async (t: TestContext) => {
  const { base, log, service } = await startTestService(t, app, tempDir(t));
  const sent = [
    { id: 'a', text: 'first', mode: 'ok' },
    { id: 'b', text: 'key', mode: 'bad-key' },
    { id: 'c', text: 'value', mode: 'bad-value' },
    { id: 'd', text: 'last', mode: 'ok' },
  ];
  const accepted = await postJson(`${base}/events/sur.Note`, sent);
  assert.equal(accepted.status, 202, accepted.text);
  await waitProcessed(service, log, base);

  const letters = readTopic(log, 'sur-dlq', PARTITIONS).flat();
  assert.equal(letters.length, 2, JSON.stringify(letters.map((l) => l.headers)));
  const byId = new Map(letters.map((letter) => [String(decodeAll(catalogOf(app), [letter])[0]?.['id']), letter.headers]));
  assert.equal(byId.get('b')?.[DLQ_HEADERS.reason], 'handler_error');
  assert.match(byId.get('b')?.[DLQ_HEADERS.error] ?? '', /table "notes": key "b\\ud800" holds a lone surrogate/);
  assert.equal(byId.get('c')?.[DLQ_HEADERS.reason], 'handler_error');
  assert.match(byId.get('c')?.[DLQ_HEADERS.error] ?? '', /table "notes", key "c": field "text": string "value\\udc00" holds a lone surrogate/);

  // The good events were processed; the refused writes left nothing.
  for (const id of ['a', 'd']) assert.equal((await http(`${base}/tables/notes/${id}`)).status, 200, id);
  for (const id of ['b', 'c']) assert.equal((await http(`${base}/tables/notes/${id}`)).status, 404, id);
  const rows = await http<{ items: Array<{ key: string }> }>(`${base}/tables/notes?limit=100`);
  assert.deepEqual(rows.body.items.map((r) => r.key).sort(), ['a', 'd']);
});

test('farad produce refuses a lone surrogate with the line number and field; nothing is appended', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const file = join(dir, 'deposits.jsonl');
  // The file holds the JSON escape \ud800, as a JSON encoder writes a lone surrogate.
  writeFileSync(file, ['{"account": "acct-1", "amount": 5}', '', '{"account": "SUR\\ud800", "amount": 7}', '{"account": "acct-2", "amount": 1}'].join('\n') + '\n');
  const result = await runCli(t, ['produce', '--app', 'examples/bank', '--type', 'Deposit', file], { FARAD_DATA_DIR: dataDir, FARAD_LOG_LEVEL: 'warn' });
  assert.equal(result.code, 2, result.stderr);
  const lines = result.stderr.split('\n').filter((line) => line.startsWith('farad: '));
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^farad: line 3: field "account": string "SUR\\ud800" holds a lone surrogate \(U\+D800 at index 3\)/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'a message, not a stack trace');
  await withLog(dataDir, bank, (log) => {
    assert.equal(readTopic(log, 'transactions', 4).flat().length, 0, 'nothing was appended');
  });
});
