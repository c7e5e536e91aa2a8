/**
 * Dead letters on the embedded log: a handler that writes state, emits and then fails leaves no
 * trace in state, outputs or changelog; its event lands on `<app>-dlq` with headers saying why
 * and where it came from. Undecodable bytes on the input topic are dead-lettered too, and the
 * pipeline carries on. `farad_dead_letters_total{reason}` counts them all.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import avsc from 'avsc';
import { defineApp, DLQ_HEADERS, record, table, type LogRecord } from '../../src/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { INPUT_OFFSETS_TABLE } from '../../src/procedures/index.js';
import { decodeChangeKey } from '../../src/codec/index.js';
import {
  catalogOf,
  decodeAll,
  http,
  metricValue,
  readTopic,
  scanTableHttp,
  startTestService,
  tempDir,
  waitProcessed,
  withLog,
} from './helpers.js';

interface Op {
  id: string;
  amount: number;
  /** ok | throw | bad-emit | wrong-partition | throw-string */
  mode: string;
}
interface Applied {
  id: string;
  total: number;
  ops: number;
}
interface Balance {
  total: number;
  ops: number;
}

const schemas = {
  Op: record<Op>({
    type: 'record',
    name: 'Op',
    namespace: 'dl',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'amount', type: 'int' },
      { name: 'mode', type: 'string' },
    ],
  }),
  Applied: record<Applied>({
    type: 'record',
    name: 'Applied',
    namespace: 'dl',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'total', type: 'long' },
      { name: 'ops', type: 'int' },
    ],
  }),
  Balance: record<Balance>({
    type: 'record',
    name: 'Balance',
    namespace: 'dl',
    fields: [
      { name: 'total', type: 'long' },
      { name: 'ops', type: 'int' },
    ],
  }),
};

const PARTITIONS = 4;

/** A key of a partition other than `id`'s. */
function foreignKey(id: string): string {
  const own = partitionForKey(id, PARTITIONS);
  for (let i = 0; ; i++) if (partitionForKey(`other-${i}`, PARTITIONS) !== own) return `other-${i}`;
}

const app = defineApp({
  name: 'dl',
  partitions: PARTITIONS,
  events: { Op: schemas.Op, Applied: schemas.Applied },
  tables: { balances: table({ key: 'string', value: schemas.Balance }) },
  inputs: [{ topic: 'ops', events: ['Op'] }],
  outputs: { Applied: 'applied' },
  procedures: {
    Op: {
      partitionKey: (op) => op.id,
      emits: ['Applied'],
      handle(ctx, op) {
        const before = ctx.tables.balances.get(op.id) ?? { total: 0, ops: 0 };
        const after = { total: before.total + op.amount, ops: before.ops + 1 };
        ctx.tables.balances.put(op.id, after);
        ctx.emit('Applied', { id: op.id, ...after });
        switch (op.mode) {
          case 'throw':
            throw new Error(`refused op ${op.id} amount ${op.amount}`);
          case 'throw-string':
            throw `plain string ${op.amount}`;
          case 'bad-emit':
            ctx.emit('Applied', { id: op.id, total: 'lots' as unknown as number, ops: 1 });
            return;
          case 'wrong-partition':
            ctx.tables.balances.put(foreignKey(op.id), after);
            return;
          default:
            return;
        }
      },
    },
  },
});

const FAIL_MODES = ['throw', 'bad-emit', 'wrong-partition', 'throw-string'];
/** Amounts of failing ops are ≥ this, so any trace of one in totals is visible. */
const TAINT = 1_000_000;

function makeOps(count: number, start: number): Op[] {
  const ops: Op[] = [];
  for (let i = start; i < start + count; i++) {
    if (i % 7 === 3) ops.push({ id: `acct-${i % 40}`, amount: TAINT + i, mode: FAIL_MODES[i % FAIL_MODES.length]! });
    else if (i % 50 === 11) ops.push({ id: `ghost-${i}`, amount: TAINT + i, mode: FAIL_MODES[(i >> 1) % FAIL_MODES.length]! }); // never succeeds
    else ops.push({ id: `acct-${i % 40}`, amount: 1 + (i % 97), mode: 'ok' });
  }
  return ops;
}

test('dead letters: failed handlers leave no trace; undecodable input is dead-lettered; the pipeline goes on', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t);
  const { service, base, log } = await startTestService(t, app, dataDir);
  const event = service.ingest.inputEvent('dl.Op');
  const catalog = catalogOf(app);

  // 1. Ops, some of which fail after writing state and emitting.
  const first = makeOps(600, 0);
  await service.ingest.send(event, first.map((op, i) => service.ingest.record(event, op, 1_700_000_000_000 + i)));

  // 2. Undecodable records appended straight to the input topic.
  const validOp = catalog.encode('dl.Op', { id: 'x', amount: 1, mode: 'ok' });
  const unknownFingerprint = Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 0xab), Buffer.from([0x02, 0x78])]);
  const raw: Array<{ value: Buffer | null; reason: 'decode_error' | 'unknown_schema'; error: RegExp }> = [
    { value: Buffer.from('{"id":"acct-1","amount":5}'), reason: 'decode_error', error: /marker c3 01/ },
    { value: Buffer.from([0xc3, 0x01, 0x00]), reason: 'decode_error', error: /truncated single-object header/ },
    { value: validOp.subarray(0, validOp.length - 2), reason: 'decode_error', error: /truncated|corrupt/ },
    { value: Buffer.concat([validOp, Buffer.from([0x00])]), reason: 'decode_error', error: /trailing bytes/ },
    { value: null, reason: 'decode_error', error: /no value/ },
    { value: unknownFingerprint, reason: 'unknown_schema', error: /unknown schema fingerprint/ },
  ];
  const rawPartition = 1;
  const rawStart = log.endOffset('ops', rawPartition);
  await log.append(raw.map((r, i) => ({ topic: 'ops', partition: rawPartition, timestamp: 1_700_000_100_000 + i, key: Buffer.from(`raw-${i}`), value: r.value })));

  // 3. More ops after the bad records, through HTTP this time.
  const second = makeOps(300, 600);
  const posted = await http(`${base}/events/dl.Op`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(second) });
  assert.equal(posted.status, 202, posted.text);
  await waitProcessed(service, log, base);

  const ops = [...first, ...second];
  const failing = ops.filter((op) => op.mode !== 'ok');
  assert.ok(failing.length > 80 && failing.some((op) => op.id.startsWith('ghost-')));
  for (const mode of FAIL_MODES) assert.ok(failing.some((op) => op.mode === mode), mode);

  // The expected world: only the ok ops, in order per id.
  const expectedState = new Map<string, Balance>();
  const expectedApplied = new Map<string, Applied[]>();
  for (const op of ops) {
    if (op.mode !== 'ok') continue;
    const before = expectedState.get(op.id) ?? { total: 0, ops: 0 };
    const after = { total: before.total + op.amount, ops: before.ops + 1 };
    expectedState.set(op.id, after);
    const list = expectedApplied.get(op.id) ?? [];
    list.push({ id: op.id, ...after });
    expectedApplied.set(op.id, list);
  }

  // State: exactly the ok ops' effects.
  const checkState = async (url: string): Promise<void> => {
    const rows = await scanTableHttp(url, 'balances', 1000);
    assert.deepEqual(
      Object.fromEntries(rows.map((r) => [r.key, r.value])),
      Object.fromEntries([...expectedState].sort(([a], [b]) => (a < b ? -1 : 1))),
    );
    for (const ghost of failing.filter((op) => op.id.startsWith('ghost-'))) {
      assert.equal((await http(`${url}/tables/balances/${ghost.id}`)).status, 404, ghost.id);
    }
  };
  await checkState(base);

  // Outputs: one Applied per ok op, in order per id; none from a failed op.
  const applied = readTopic(log, 'applied', PARTITIONS).flatMap((records) => decodeAll(catalog, records));
  assert.equal(applied.length, ops.length - failing.length);
  const appliedById = new Map<string, Applied[]>();
  for (const { type, ...value } of applied) {
    assert.equal(type, 'dl.Applied');
    const a = value as unknown as Applied;
    assert.ok(a.total < TAINT, `an output carries a failed op's amount: ${JSON.stringify(a)}`);
    const list = appliedById.get(a.id) ?? [];
    list.push({ id: a.id, total: a.total, ops: a.ops });
    appliedById.set(a.id, list);
  }
  assert.deepEqual(appliedById, expectedApplied);

  // Changelog: no failed op's key or value; its last value per key is the state.
  const balanceType = avsc.Type.forSchema(schemas.Balance.schema);
  const lastByKey = new Map<string, Balance>();
  for (const records of readTopic(log, 'dl-changelog', PARTITIONS)) {
    for (const r of records) {
      const { table: name, key } = decodeChangeKey(r.key!);
      if (name === INPUT_OFFSETS_TABLE) continue; // farad's own: the input offsets each batch consumed
      assert.equal(name, 'balances');
      assert.ok(!String(key).startsWith('ghost-') && !String(key).startsWith('other-'), `changelog holds key ${key}`);
      assert.notEqual(r.value, null, 'nothing was deleted');
      const value = balanceType.fromBuffer(r.value!.subarray(10)) as Balance;
      assert.ok(value.total < TAINT, `changelog holds a failed op's effect: ${key} ${JSON.stringify(value)}`);
      lastByKey.set(String(key), { total: value.total, ops: value.ops });
    }
  }
  assert.deepEqual(new Map([...lastByKey].sort()), new Map([...expectedState].sort()));

  // Dead letters: each failed op, then each raw record, with reason, source and error.
  const inputs = readTopic(log, 'ops', PARTITIONS);
  const dlq = readTopic(log, 'dl-dlq', PARTITIONS);
  const byOrigin = new Map<string, LogRecord>();
  for (const records of dlq) {
    for (const r of records) {
      const origin = `${r.headers[DLQ_HEADERS.sourceTopic]}/${r.headers[DLQ_HEADERS.sourcePartition]}/${r.headers[DLQ_HEADERS.sourceOffset]}`;
      assert.ok(!byOrigin.has(origin), `dead-lettered twice: ${origin}`);
      byOrigin.set(origin, r);
      assert.equal(r.partition, Number(r.headers[DLQ_HEADERS.sourcePartition]), 'a dead letter stays in its partition');
    }
  }
  assert.equal(byOrigin.size, failing.length + raw.length);

  let handlerErrors = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    for (const input of inputs[p]!) {
      const letter = byOrigin.get(`ops/${p}/${input.offset}`);
      if (p === rawPartition && input.offset >= rawStart && input.offset < rawStart + raw.length) {
        const want = raw[input.offset - rawStart]!;
        assert.ok(letter, `raw record ${input.offset} not dead-lettered`);
        assert.equal(letter.headers[DLQ_HEADERS.reason], want.reason);
        assert.match(letter.headers[DLQ_HEADERS.error] ?? '', want.error);
        assert.equal(letter.headers[DLQ_HEADERS.eventType], undefined);
        assert.deepEqual(letter.value, want.value, 'the dead letter keeps the bytes as they were');
        assert.deepEqual(letter.key, input.key);
        assert.equal(letter.timestamp, input.timestamp);
        continue;
      }
      const op = catalog.decode(input.value!).value as Op;
      if (op.mode === 'ok') {
        assert.equal(letter, undefined, `ok op dead-lettered: ${JSON.stringify(op)}`);
        continue;
      }
      handlerErrors++;
      assert.ok(letter, `failed op not dead-lettered: ${JSON.stringify(op)}`);
      assert.equal(letter.headers[DLQ_HEADERS.reason], 'handler_error');
      assert.equal(letter.headers[DLQ_HEADERS.eventType], 'dl.Op');
      assert.equal(letter.headers[DLQ_HEADERS.sourceTopic], 'ops');
      assert.equal(letter.headers[DLQ_HEADERS.sourcePartition], String(p));
      assert.equal(letter.headers[DLQ_HEADERS.sourceOffset], String(input.offset));
      assert.deepEqual(letter.value, input.value);
      assert.deepEqual(letter.key, input.key);
      const message = letter.headers[DLQ_HEADERS.error] ?? '';
      const expectedMessage = {
        throw: new RegExp(`^refused op ${op.id} amount ${op.amount}$`),
        'throw-string': new RegExp(`^plain string ${op.amount}$`),
        'bad-emit': /emit\("Applied"\).*total/,
        'wrong-partition': /belongs to partition \d, not \d/,
      }[op.mode]!;
      assert.match(message, expectedMessage, op.mode);
    }
  }
  assert.equal(handlerErrors, failing.length);

  // Metrics count them by reason.
  const metrics = (await http<string>(`${base}/metrics`)).body;
  assert.equal(metricValue(metrics, 'farad_dead_letters_total', { reason: 'handler_error' }), failing.length);
  assert.equal(metricValue(metrics, 'farad_dead_letters_total', { reason: 'decode_error' }), 5);
  assert.equal(metricValue(metrics, 'farad_dead_letters_total', { reason: 'unknown_schema' }), 1);
  assert.equal(metricValue(metrics, 'farad_dead_letters_total', { reason: 'no_procedure' }), 0);
  assert.equal(metricValue(metrics, 'farad_events_processed_total', { event_type: 'dl.Op', outcome: 'failed' }), failing.length);
  assert.equal(metricValue(metrics, 'farad_events_processed_total', { event_type: 'dl.Op', outcome: 'ok' }), ops.length - failing.length);

  // A restart rebuilds the same state from the changelog: still no trace of the failures.
  await service.stop();
  const again = await startTestService(t, app, dataDir);
  await waitProcessed(again.service, again.log, again.base);
  await checkState(again.base);
  await again.service.stop();
  await withLog(dataDir, app, (reopened) => {
    let letters = 0;
    for (let p = 0; p < PARTITIONS; p++) letters += reopened.endOffset('dl-dlq', p);
    assert.equal(letters, failing.length + raw.length, 'nothing dead-lettered twice across restarts');
  });
});
