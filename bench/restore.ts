/**
 * restore-snapshot and restore-changelog: records per second restoring one partition of Voter
 * state (1M phones by default) — from a Redis snapshot through the function the executor uses
 * (Snapshots.loadInto: RedisSnapshotStore.load + snapshot decode), and from the changelog alone
 * (the partition owner's restore loop: lease.readChangelog → RowCodec.apply) on the embedded log.
 */
import { performance } from 'node:perf_hooks';
import avsc from 'avsc';
import { Redis } from 'ioredis';
import voter from '../examples/voter/index.js';
import { createLogger, defineApp, EmbeddedLog, type App } from '../src/index.js';
import { compileApp, type CompiledApp } from '../src/procedures/index.js';
import { RedisSnapshotStore } from '../src/replication/index.js';
import { Snapshots } from '../src/replication/index.js';
import { PartitionState } from '../src/state/index.js';
import { encodeChangeKey, encodeSnapshot, RowCodec } from '../src/codec/index.js';
import type { OutRecord } from '../src/streams/index.js';
import { distinctPhones } from './memory.js';
import { progress, progressEvery, quantile, ratio, removeDir, round, tempDir, type BenchContext, type Result, type ScenarioReport } from './lib.js';
import { profiled } from './profile.js';

const RUNS = 3;

function restoreApp(ctx: BenchContext): { app: App; compiled: CompiledApp } {
  const app = defineApp({ ...voter.spec, name: `voter_bench_restore_${ctx.runId}`, partitions: 1 });
  return { app, compiled: compileApp(app) };
}

/** A partition's state with n phones (1 or 2 accepted votes) and the six contestant totals. */
function filledState(compiled: CompiledApp, phones: Float64Array): PartitionState {
  const state = new PartitionState(0, 1, compiled.tables.values());
  for (let i = 0; i < phones.length; i++) state.applyRestored('votesByPhone', phones[i]!, { accepted: 1 + (i & 1) });
  for (let c = 1; c <= 6; c++) state.applyRestored('votesByContestant', c, { votes: 1000 * c });
  return state;
}

function rowsOf(state: PartitionState): number {
  let rows = 0;
  for (const table of state.tableNames()) rows += state.store(table).size;
  return rows;
}

export async function restoreSnapshot(ctx: BenchContext): Promise<ScenarioReport> {
  const n = ctx.size('restore-snapshot', 1_000_000, 50_000);
  const { compiled } = restoreApp(ctx);
  const logger = createLogger('warn');
  progress(`restore-snapshot: encoding a snapshot of ${n.toLocaleString('en-US')} phones`);
  let state: PartitionState | undefined = filledState(compiled, distinctPhones(n));
  const rows = rowsOf(state);
  const encodeStarted = performance.now();
  const codec = new RowCodec(compiled.tables.values(), compiled.droppedTables);
  const bytes = encodeSnapshot(state, { app: compiled.name, changelogOffset: rows, takenAt: Date.now() }, codec);
  const encodeSeconds = (performance.now() - encodeStarted) / 1000;
  state = undefined;
  const store = new RedisSnapshotStore({ url: ctx.redisUrl, tls: false, keep: 2, app: compiled.name, logger });
  const redis = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    const saveStarted = performance.now();
    const id = await store.save(0, bytes, { partition: 0, changelogOffset: rows, takenAt: Date.now(), rows });
    const saveSeconds = (performance.now() - saveStarted) / 1000;
    global.gc?.();

    // farad: Snapshots.loadInto, as a cold start or `farad snapshot restore` runs it.
    const faradSeconds: number[] = [];
    const fetchSeconds: number[] = [];
    let profileFile: string | undefined;
    let heapFile: string | undefined;
    for (let run = 0; run < RUNS; run++) {
      const fresh = new PartitionState(0, 1, compiled.tables.values());
      const work = async () => {
        const t0 = performance.now();
        const offset = await new Snapshots(compiled.name, store, codec, 0, logger).loadInto(0, fresh);
        const seconds = (performance.now() - t0) / 1000;
        if (offset !== rows || rowsOf(fresh) !== rows) throw new Error(`snapshot restore gave offset ${offset} and ${rowsOf(fresh)} rows, expected ${rows}`);
        return seconds;
      };
      if (ctx.profileDir && run === RUNS - 1) {
        const p = await profiled(ctx.profileDir, 'restore-snapshot', work);
        faradSeconds.push(p.result);
        profileFile = p.file;
        heapFile = p.heapFile;
      } else {
        faradSeconds.push(await work());
      }
      const f0 = performance.now();
      await store.load(0);
      fetchSeconds.push((performance.now() - f0) / 1000);
      global.gc?.();
      progress(`restore-snapshot: run ${run + 1}/${RUNS}: ${Math.round(rows / faradSeconds[run]!).toLocaleString('en-US')} records/s`);
    }

    // Baseline: GET the same bytes, walk the rows, JSON key + avsc value into a plain Map.
    const valueType = avsc.Type.forSchema(compiled.tables.get('votesByPhone')!.valueType.schema() as avsc.Schema);
    const counterType = avsc.Type.forSchema(compiled.tables.get('votesByContestant')!.valueType.schema() as avsc.Schema);
    const baselineSeconds: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      const data = await redis.getBuffer(`farad:{${compiled.name}:0}:data:${id}`);
      if (!data) throw new Error('snapshot bytes vanished from Redis');
      const maps = new Map<string, Map<string | number, unknown>>([['votesByPhone', new Map()], ['votesByContestant', new Map()]]);
      let pos = 9 + data.readUInt32LE(5);
      const count = data.readUInt32LE(pos);
      pos += 4;
      for (let i = 0; i < count; i++) {
        const klen = data.readUInt32LE(pos);
        const [table, key] = JSON.parse(data.toString('utf8', pos + 4, pos + 4 + klen)) as [string, string | number];
        pos += 4 + klen;
        const vlen = data.readUInt32LE(pos);
        const type = table === 'votesByPhone' ? valueType : counterType;
        // Rows are single-object framed: the body follows the 10-byte header.
        maps.get(table)!.set(key, type.fromBuffer(data.subarray(pos + 4 + 10, pos + 4 + vlen)));
        pos += 4 + vlen;
      }
      baselineSeconds.push((performance.now() - t0) / 1000);
      if (maps.get('votesByPhone')!.size !== n) throw new Error('baseline lost rows');
    }

    // What a format without JSON keys would allow: the same rows as u8 table | f64 key | u32
    // length | Avro value, decoded by a plain loop into Maps (plus the measured Redis fetch).
    const tables = ['votesByPhone', 'votesByContestant'];
    const binaryRows: Buffer[] = [];
    for (const [tableIndex, table] of tables.entries()) {
      const type = tableIndex === 0 ? valueType : counterType;
      const source = tableIndex === 0 ? filledState(compiled, distinctPhones(n)).store(table) : filledState(compiled, new Float64Array(0)).store(table);
      for (const [key, value] of source.entries()) {
        const v = type.toBuffer(value);
        const head = Buffer.allocUnsafe(13);
        head.writeUInt8(tableIndex, 0);
        head.writeDoubleLE(Number(key), 1);
        head.writeUInt32LE(v.length, 9);
        binaryRows.push(head, v);
      }
    }
    const binary = Buffer.concat(binaryRows);
    binaryRows.length = 0;
    global.gc?.();
    const binarySeconds: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      const maps = [new Map<number, unknown>(), new Map<number, unknown>()];
      const types = [valueType, counterType];
      for (let pos = 0; pos < binary.length; ) {
        const t = binary[pos]!;
        const key = binary.readDoubleLE(pos + 1);
        const vlen = binary.readUInt32LE(pos + 9);
        maps[t]!.set(key, Object.freeze(types[t]!.fromBuffer(binary.subarray(pos + 13, pos + 13 + vlen))));
        pos += 13 + vlen;
      }
      binarySeconds.push((performance.now() - t0) / 1000 + quantile(fetchSeconds, 0.5));
      if (maps[0]!.size !== n) throw new Error('binary ceiling lost rows');
    }
    const binaryRate = rows / quantile(binarySeconds, 0.5);

    const seconds = quantile(faradSeconds, 0.5);
    const base = quantile(baselineSeconds, 0.5);
    const rate = rows / seconds;
    const baseRate = rows / base;
    const row: Result = {
      scenario: 'restore-snapshot',
      eventsPerSec: round(rate),
      p50Ms: null,
      p99Ms: null,
      baseline: 'redis-get-plain-map',
      baselineEventsPerSec: round(baseRate),
      ratio: ratio(rate, baseRate),
    };
    return {
      rows: [row],
      details: [
        `${rows.toLocaleString('en-US')} rows (${n.toLocaleString('en-US')} phones + 6 contestant totals) in one partition; snapshot ${(bytes.length / 1e6).toFixed(1)} MB. Encoding it took ${encodeSeconds.toFixed(2)} s, saving it to Redis ${saveSeconds.toFixed(2)} s (not timed).`,
        `Timed: \`Snapshots.loadInto\` (src/replication/snapshots.ts) — RedisSnapshotStore.load (GET pointer + GET bytes) then \`loadSnapshot\` (SHA-256 check, decode, apply) into an empty PartitionState; median of ${RUNS} runs (${faradSeconds.map((s) => s.toFixed(2)).join(', ')} s). The Redis fetch alone takes ${(quantile(fetchSeconds, 0.5) * 1000).toFixed(0)} ms.`,
        `Baseline \`redis-get-plain-map\`: GET of the same bytes, then a loop over the rows (JSON.parse of the key, avsc fromBuffer of the value, Map.set) — no checksum, no key validation, no freezing; median ${(base * 1000).toFixed(0)} ms.`,
        `For comparison (not a target): the same rows in a binary layout (u8 table, f64 key, u32 length, Avro value; no JSON), decoded by a plain loop into Maps with Object.freeze, plus the same Redis fetch time: ${Math.round(binaryRate).toLocaleString('en-US')} records/s — the ceiling of a snapshot format without JSON keys.`,
      ],
      ...(profileFile ? { profiles: [{ title: 'restore-snapshot (Snapshots.loadInto)', file: profileFile, heapFile }] } : {}),
    };
  } finally {
    try {
      const keys = await redis.keys(`farad:{${compiled.name}:0}:*`);
      if (keys.length > 0) await redis.del(...keys);
    } catch {
      // best effort
    }
    redis.disconnect();
    await store.close();
  }
}

export async function restoreChangelog(ctx: BenchContext): Promise<ScenarioReport> {
  const n = ctx.size('restore-changelog', 1_000_000, 50_000);
  const { compiled } = restoreApp(ctx);
  const logger = createLogger('warn');
  const dataDir = tempDir('farad-bench-restore-');
  const options = {
    dataDir,
    logger,
    group: compiled.name,
    inputTopics: compiled.inputTopics,
    changelogTopic: compiled.changelogTopic,
    partitions: 1,
  };
  try {
    progress(`restore-changelog: writing ${n.toLocaleString('en-US')} changelog records to the embedded log in ${dataDir}`);
    const phones = distinctPhones(n);
    const valueType = compiled.tables.get('votesByPhone')!.valueType;
    const log = await EmbeddedLog.open(options);
    await log.ensureTopics([{ name: compiled.changelogTopic, partitions: 1, compacted: true, exactPartitions: 'changelog' }]);
    const report = progressEvery('restore-changelog: written');
    const timestamp = Date.now();
    for (let start = 0; start < n; start += 50_000) {
      const records: OutRecord[] = [];
      for (let i = start; i < Math.min(n, start + 50_000); i++) {
        records.push({
          topic: compiled.changelogTopic,
          partition: 0,
          timestamp,
          key: encodeChangeKey('votesByPhone', phones[i]!),
          value: valueType.toBuffer({ accepted: 1 + (i & 1) }),
        });
      }
      await log.append(records);
      report(Math.min(n, start + 50_000), n);
    }
    await log.close();
    global.gc?.();

    // Re-open (a cold start: the journal is indexed, nothing is cached) and restore like a partition owner.
    const measure = async () => {
      const opened = performance.now();
      const reopened = await EmbeddedLog.open(options);
      const openSeconds = (performance.now() - opened) / 1000;
      const state = new PartitionState(0, 1, compiled.tables.values());
      const codec = new RowCodec(compiled.tables.values(), compiled.droppedTables);
      const t0 = performance.now();
      for await (const chunk of reopened.readRange(compiled.changelogTopic, 0, 0)) {
        for (const record of chunk) codec.apply(state, record.key, record.value);
      }
      const seconds = (performance.now() - t0) / 1000;
      await reopened.close();
      if (rowsOf(state) !== n) throw new Error(`changelog restore gave ${rowsOf(state)} rows, expected ${n}`);
      return { seconds, openSeconds };
    };
    const runs: Array<{ seconds: number; openSeconds: number }> = [];
    let profileFile: string | undefined;
    let heapFile: string | undefined;
    for (let run = 0; run < RUNS; run++) {
      if (ctx.profileDir && run === RUNS - 1) {
        const p = await profiled(ctx.profileDir, 'restore-changelog', measure);
        runs.push(p.result);
        profileFile = p.file;
        heapFile = p.heapFile;
      } else {
        runs.push(await measure());
      }
      global.gc?.();
      progress(`restore-changelog: run ${run + 1}/${RUNS}: ${Math.round(n / runs[run]!.seconds).toLocaleString('en-US')} records/s`);
    }
    const seconds = quantile(runs.map((r) => r.seconds), 0.5);
    const openSeconds = quantile(runs.map((r) => r.openSeconds), 0.5);
    const rate = n / seconds;
    return {
      rows: [{ scenario: 'restore-changelog', eventsPerSec: round(rate), p50Ms: null, p99Ms: null, baseline: null, baselineEventsPerSec: null, ratio: null }],
      details: [
        `${n.toLocaleString('en-US')} changelog records (one per phone, no duplicates, so compaction would not shrink it) on the embedded log, one partition.`,
        `Timed: the partition owner's restore loop — \`readRange\` of the changelog partition (journal reads, page cache warm) and \`RowCodec.apply\` into an empty PartitionState; median of ${RUNS} runs (${runs.map((r) => r.seconds.toFixed(2)).join(', ')} s).`,
        `Not timed: re-opening the embedded log (journal scan and offset index) took ${openSeconds.toFixed(2)} s more — a cold start on the embedded log pays it too; on Kafka the changelog is fetched from the broker instead.`,
      ],
      ...(profileFile ? { profiles: [{ title: 'restore-changelog (readRange + RowCodec.apply)', file: profileFile, heapFile }] } : {}),
    };
  } finally {
    removeDir(dataDir);
  }
}
