/**
 * Determinism on the embedded log: an app whose outputs and state depend on ctx.random() and
 * ctx.timestamp produces byte-identical output topics and identical state from the same input
 * records in two fresh data dirs (with different batching), and a restart of a data dir
 * restores exactly the state it had.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { defineApp, record, table, type App, type EmbeddedLog, type OutRecord, type Service } from '../../src/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { decodeChangeKey } from '../../src/codec/index.js';
import {
  catalogOf,
  decodeAll,
  readTopic,
  recordBytes,
  scanTableHttp,
  startTestService,
  tempDir,
  waitProcessed,
} from './helpers.js';

interface Tick {
  id: string;
  n: number;
}
interface Rolled {
  id: string;
  roll: number;
  second: number;
  ts: number;
  count: number;
  pick: string;
}
interface Echo {
  from: string;
  bucket: number;
  ts: number;
}
interface Account {
  count: number;
  sum: number;
  lastTs: number;
  picks: string[];
}
interface Stat {
  hits: number;
  last: number;
}

const PARTITIONS = 6;
const PICKS = ['red', 'green', 'blue', 'amber', 'violet'];

const app: App = defineApp({
  name: 'det',
  partitions: PARTITIONS,
  events: {
    Tick: record<Tick>({
      type: 'record',
      name: 'Tick',
      namespace: 'det',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'n', type: 'int' },
      ],
    }),
    Rolled: record<Rolled>({
      type: 'record',
      name: 'Rolled',
      namespace: 'det',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'roll', type: 'double' },
        { name: 'second', type: 'double' },
        { name: 'ts', type: 'long' },
        { name: 'count', type: 'int' },
        { name: 'pick', type: 'string' },
      ],
    }),
    Echo: record<Echo>({
      type: 'record',
      name: 'Echo',
      namespace: 'det',
      fields: [
        { name: 'from', type: 'string' },
        { name: 'bucket', type: 'int' },
        { name: 'ts', type: 'long' },
      ],
    }),
  },
  tables: {
    accounts: table({
      key: 'string',
      value: record<Account>({
        type: 'record',
        name: 'Account',
        namespace: 'det',
        fields: [
          { name: 'count', type: 'int' },
          { name: 'sum', type: 'double' },
          { name: 'lastTs', type: 'long' },
          { name: 'picks', type: { type: 'array', items: 'string' } },
        ],
      }),
    }),
    stats: table({
      key: 'int',
      value: record<Stat>({
        type: 'record',
        name: 'Stat',
        namespace: 'det',
        fields: [
          { name: 'hits', type: 'int' },
          { name: 'last', type: 'double' },
        ],
      }),
      scope: 'local',
    }),
  },
  inputs: [{ topic: 'ticks', events: ['Tick'] }],
  outputs: { Rolled: 'rolled', Echo: 'echoes' },
  procedures: {
    Tick: {
      partitionKey: (tick) => tick.id,
      emits: ['Rolled', 'Echo'],
      handle(ctx, tick) {
        const roll = ctx.random();
        const second = ctx.random();
        const before = ctx.tables.accounts.get(tick.id) ?? { count: 0, sum: 0, lastTs: 0, picks: [] };
        const pick = PICKS[Math.floor(second * PICKS.length)]!;
        const after = {
          count: before.count + 1,
          sum: before.sum + roll * tick.n,
          lastTs: ctx.timestamp,
          picks: [...before.picks, pick].slice(-4),
        };
        ctx.tables.accounts.put(tick.id, after);
        const bucket = Math.floor(roll * 10);
        const stat = ctx.tables.stats.get(bucket) ?? { hits: 0, last: 0 };
        ctx.tables.stats.put(bucket, { hits: stat.hits + 1, last: second });
        ctx.emit('Rolled', { id: tick.id, roll, second, ts: ctx.timestamp, count: after.count, pick });
        // Randomly, an event routed by another key (to another partition).
        if (ctx.random() < 0.3) ctx.emit('Echo', { from: tick.id, bucket, ts: ctx.timestamp + 1 }, { key: `bucket-${bucket}` });
      },
    },
  },
});

const catalog = catalogOf(app);
const BASE_TS = 1_710_000_000_000;

/** Input records with fixed timestamps, ids spread over all partitions. */
function ticks(from: number, count: number): OutRecord[] {
  const out: OutRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const id = `dev-${(i * 7919) % 211}`;
    out.push({
      topic: 'ticks',
      partition: partitionForKey(id, PARTITIONS),
      timestamp: BASE_TS + i * 13 + (i % 5) * 1000,
      key: Buffer.from(id),
      value: catalog.encode('det.Tick', { id, n: 1 + (i % 9) }),
    });
  }
  return out;
}

async function appendInChunks(log: EmbeddedLog, records: readonly OutRecord[], chunk: number): Promise<void> {
  for (let i = 0; i < records.length; i += chunk) await log.append(records.slice(i, i + chunk));
}

/** Everything observable: output topics byte for byte, full table scans, changelog's last value per key. */
async function snapshot(service: Service, log: EmbeddedLog, base: string) {
  await waitProcessed(service, log, base);
  const lastChange = new Map<string, string | null>();
  for (const records of readTopic(log, 'det-changelog', PARTITIONS)) {
    for (const r of records) {
      const { table: name, key } = decodeChangeKey(r.key!);
      lastChange.set(`${r.partition}/${name}/${key}`, r.value === null ? null : r.value.toString('hex'));
    }
  }
  return {
    rolled: readTopic(log, 'rolled', PARTITIONS).map(recordBytes),
    // Echoes reach a partition from every source partition, and partitions commit concurrently,
    // so only the order within each (source partition → target partition) stream is defined.
    echoes: readTopic(log, 'echoes', PARTITIONS).map((records) => {
      const bySource = new Map<number, unknown[]>();
      for (const r of records) {
        const from = (catalog.decode(r.value!).value as Echo).from;
        const source = partitionForKey(from, PARTITIONS);
        const { offset: _offset, ...bytes } = recordBytes([r])[0]!;
        bySource.set(source, [...(bySource.get(source) ?? []), bytes]);
      }
      return new Map([...bySource].sort((x, y) => x[0] - y[0]));
    }),
    dlq: readTopic(log, 'det-dlq', PARTITIONS).map(recordBytes),
    accounts: await scanTableHttp(base, 'accounts', 1000),
    stats: await scanTableHttp(base, 'stats', 1000),
    changelog: new Map([...lastChange].sort()),
  };
}

test('determinism: same input records → byte-identical outputs and identical state; restart restores state', { timeout: 60_000 }, async (t: TestContext) => {
  const first = ticks(0, 4000);
  const later = ticks(4000, 1500);

  // A: one big append, default batching. B: small appends while it runs, tiny batches.
  const dirA = tempDir(t);
  const a = await startTestService(t, app, dirA);
  await a.log.append(first);
  const b = await startTestService(t, app, tempDir(t), { maxBatchRecords: 7, commitIntervalMs: 1 });
  await appendInChunks(b.log, first, 97);

  const snapA = await snapshot(a.service, a.log, a.base);
  const snapB = await snapshot(b.service, b.log, b.base);

  // The outputs really depend on randomness and timestamps, and nothing failed.
  const rolled = readTopic(a.log, 'rolled', PARTITIONS).flatMap((records) => decodeAll(catalog, records));
  assert.equal(rolled.length, first.length);
  assert.ok(new Set(rolled.map((r) => r['pick'])).size === PICKS.length);
  assert.ok(new Set(rolled.map((r) => r['roll'])).size > first.length * 0.99, 'rolls differ from event to event');
  const tsByRecord = new Set(first.map((r) => r.timestamp));
  for (const r of rolled) assert.ok(tsByRecord.has(r['ts'] as number), 'ts is the record timestamp');
  const echoCount = readTopic(a.log, 'echoes', PARTITIONS).flat().length;
  assert.ok(echoCount > first.length * 0.2 && echoCount < first.length * 0.4, `echoes: ${echoCount}`);
  assert.ok(snapA.echoes.some((bySource) => bySource.size > 1), 'echoes cross partitions');
  assert.equal(snapA.dlq.flat().length, 0);
  assert.equal(snapA.accounts.length, 211);

  assert.deepEqual(snapB.rolled, snapA.rolled, 'rolled topics identical byte for byte');
  assert.deepEqual(snapB.echoes, snapA.echoes, 'echoes identical byte for byte per source partition');
  assert.deepEqual(snapB.accounts, snapA.accounts, 'accounts identical');
  assert.deepEqual(snapB.stats, snapA.stats, 'stats identical');
  assert.deepEqual(snapB.changelog, snapA.changelog, 'changelogs end in the same values');

  // Restart A on its data dir: the restored state equals what it had.
  await a.service.stop();
  const a2 = await startTestService(t, app, dirA);
  const restored = await snapshot(a2.service, a2.log, a2.base);
  assert.deepEqual(restored.accounts, snapA.accounts, 'accounts restored');
  assert.deepEqual(restored.stats, snapA.stats, 'stats restored');
  assert.deepEqual(restored.rolled, snapA.rolled, 'nothing reprocessed on restart');

  // And it goes on exactly like B, which never restarted.
  await a2.log.append(later);
  await appendInChunks(b.log, later, 250);
  const afterA = await snapshot(a2.service, a2.log, a2.base);
  const afterB = await snapshot(b.service, b.log, b.base);
  assert.equal(afterA.rolled.flat().length, first.length + later.length);
  assert.deepEqual(afterA.rolled, afterB.rolled);
  assert.deepEqual(afterA.echoes, afterB.echoes);
  assert.deepEqual(afterA.accounts, afterB.accounts);
  assert.deepEqual(afterA.stats, afterB.stats);
  assert.deepEqual(afterA.changelog, afterB.changelog);
});
