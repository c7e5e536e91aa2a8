/**
 * engine-only: Voter on the embedded log, 2 partitions (one per core of the benchmark machine),
 * processing votes that are already in the log; against the same vote rule as a plain loop over
 * Maps (bench/plain-voter.ts) on the same single-object bytes.
 */
import { performance } from 'node:perf_hooks';
import voter, { type LeaderboardRow } from '../examples/voter/index.js';
import { VoteGenerator } from '../examples/voter/load-generator.js';
import { createLogger, defineApp, EmbeddedLog, Ingest, loadConfig, startService } from '../src/index.js';
import { FaradMetrics } from '../src/metrics/index.js';
import { compileApp, globalViews, type CompiledApp } from '../src/procedures/index.js';
import { partitionForKey, PartitionState } from '../src/state/index.js';
import { BatchProcessor, type LogRecord } from '../src/streams/index.js';
import { RowCodec, type EventCodec } from '../src/codec/index.js';
import { createCodec } from '../src/service/index.js';
import { progress, progressEvery, ratio, removeDir, round, tempDir, type BenchContext, type ScenarioReport } from './lib.js';
import { PlainVoter } from './plain-voter.js';
import { profiled } from './profile.js';

const CHUNK = 50_000;
const BATCH = 10_000;

/**
 * Votes/s of BatchProcessor alone: the records as the log would hand them over, in batches of
 * BATCH per partition, each applied, planned (outputs + changelog encoded) and marked committed.
 */
export function processorOnly(compiled: CompiledApp, catalog: EventCodec, values: readonly Buffer[], keys: readonly Buffer[], withMetrics: boolean): number {
  const globals = globalViews(compiled);
  const observer = withMetrics ? new FaradMetrics(() => []) : undefined;
  const rows = new RowCodec(compiled.tables.values(), compiled.droppedTables);
  const processors = Array.from({ length: compiled.partitions }, (_, p) => {
    const state = new PartitionState(p, compiled.partitions, compiled.tables.values());
    return new BatchProcessor({ app: compiled, state, catalog, rows, globals, partitionsOf: () => compiled.partitions, observer });
  });
  const topic = compiled.inputTopics[0]!;
  const offsets = new Array<number>(compiled.partitions).fill(0);
  let seconds = 0;
  for (let start = 0; start < values.length; start += BATCH * compiled.partitions) {
    const batches: LogRecord[][] = processors.map(() => []);
    for (let i = start; i < Math.min(values.length, start + BATCH * compiled.partitions); i++) {
      const p = partitionForKey(keys[i]!.toString(), compiled.partitions);
      batches[p]!.push({ topic, partition: p, offset: offsets[p]!++, timestamp: 0, key: keys[i]!, value: values[i]!, headers: {} });
    }
    const t0 = performance.now();
    processors.forEach((processor, p) => {
      processor.apply(batches[p]!);
      processor.plan();
      processor.committed();
    });
    seconds += (performance.now() - t0) / 1000;
  }
  return values.length / seconds;
}

export async function engineOnly(ctx: BenchContext): Promise<ScenarioReport> {
  const n = ctx.size('engine-only', 2_000_000, 30_000);
  const phones = Math.max(1_000, Math.round(n / 4));
  const dataDir = tempDir('farad-bench-engine-');
  const app = defineApp({ ...voter.spec, partitions: 2 });
  const compiled = compileApp(app);
  const logger = createLogger('warn');
  // Only what the benchmark sets: no FARAD_* variables of the caller's shell leak in.
  const config = loadConfig({ env: {}, overrides: { transport: 'embedded', dataDir, logLevel: 'warn', http: { port: 0, host: '127.0.0.1' } } });
  try {
    // 1. Append the votes to the embedded log, without running the app.
    progress(`engine-only: appending ${n.toLocaleString('en-US')} votes (${phones.toLocaleString('en-US')} phones) to the embedded log in ${dataDir}`);
    const catalog = await createCodec(compiled, config);
    const log = await EmbeddedLog.open({
      dataDir,
      logger,
      group: compiled.name,
      inputTopics: compiled.inputTopics,
      changelogTopic: compiled.changelogTopic,
      partitions: compiled.partitions,
    });
    await log.ensureTopics(compiled.inputTopics.map((name) => ({ name, partitions: compiled.partitions, exactPartitions: 'input' as const })));
    const ingest = new Ingest(compiled, catalog, log);
    const event = ingest.inputEvent('voter.Vote');
    const generator = new VoteGenerator({ phones, invalidShare: 0.01, seed: 20_240_601 });
    const values: Buffer[] = [];
    const keys: Buffer[] = [];
    const report = progressEvery('engine-only: appended');
    const timestamp = Date.now();
    const appendStarted = performance.now();
    for (let sent = 0; sent < n; ) {
      const count = Math.min(CHUNK, n - sent);
      const records = Array.from({ length: count }, () => ingest.record(event, generator.next(), timestamp));
      for (const r of records) {
        values.push(r.value!);
        keys.push(r.key!);
      }
      await ingest.send(event, records);
      sent += count;
      report(sent, n);
    }
    const appendSeconds = (performance.now() - appendStarted) / 1000;
    await log.close();

    // 2. Baseline: the same rule as a plain loop over the same bytes (twice; the second run counts).
    let baselineRate = 0;
    let plain: PlainVoter | undefined;
    for (let round_ = 0; round_ < 2; round_++) {
      plain = new PlainVoter(compiled.partitions);
      const started = performance.now();
      for (let i = 0; i < values.length; i++) plain.handle(values[i]!, keys[i]!);
      baselineRate = values.length / ((performance.now() - started) / 1000);
    }
    progress(`engine-only: plain loop ${Math.round(baselineRate).toLocaleString('en-US')} votes/s`);
    global.gc?.();

    // 2b. Where between the plain loop and the service the time goes: farad's BatchProcessor
    // alone on the same records (no log), without and with the metrics observer the service uses.
    const layers: Array<{ label: string; rate: number }> = [];
    const warm = Math.min(values.length, 50_000); // JIT warm-up of both variants first
    for (const withMetrics of [false, true]) processorOnly(compiled, catalog, values.slice(0, warm), keys.slice(0, warm), withMetrics);
    for (const withMetrics of [false, true]) {
      const rate = processorOnly(compiled, catalog, values, keys, withMetrics);
      layers.push({ label: `BatchProcessor + Voter handler, no log${withMetrics ? ', with FaradMetrics observer' : ', no metrics'}`, rate });
      progress(`engine-only: ${layers.at(-1)!.label}: ${Math.round(rate).toLocaleString('en-US')} votes/s`);
      global.gc?.();
    }
    values.length = 0;
    keys.length = 0;
    global.gc?.();

    // 3. farad: start the service on the log and time until every vote is committed.
    const measure = async () => {
      const opened = performance.now();
      const service = await startService(app, config, { http: false, logger });
      const openSeconds = (performance.now() - opened) / 1000;
      let done = 0;
      const report2 = progressEvery('engine-only: committed');
      const finished = new Promise<void>((resolve, reject) => {
        service.host.committed$.subscribe({
          next: ({ records }) => {
            done += records;
            report2(done, n);
            if (done >= n) resolve();
          },
          error: reject,
        });
      });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await finished;
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const board = (await service.reads.query('leaderboard')).body as LeaderboardRow[];
      const accepted = board.reduce((s, r) => s + r.votes, 0);
      await service.stop();
      return { seconds, cpuSeconds, openSeconds, accepted };
    };
    let run: Awaited<ReturnType<typeof measure>>;
    let profileFile: string | undefined;
    let heapFile: string | undefined;
    if (ctx.profileDir) {
      const profiledRun = await profiled(ctx.profileDir, 'engine-only', measure);
      run = profiledRun.result;
      profileFile = profiledRun.file;
      heapFile = profiledRun.heapFile;
    } else {
      run = await measure();
    }
    const rate = n / run.seconds;
    const coresUsed = run.cpuSeconds / run.seconds;
    const perCore = n / run.cpuSeconds;
    progress(`engine-only: farad ${Math.round(rate).toLocaleString('en-US')} votes/s (${coresUsed.toFixed(2)} cores busy, ${Math.round(perCore).toLocaleString('en-US')} votes per CPU-second)`);
    const consistent = run.accepted === plain!.accepted;
    return {
      rows: [
        {
          scenario: 'engine-only',
          eventsPerSec: round(rate),
          p50Ms: null,
          p99Ms: null,
          baseline: 'plain-map-loop',
          baselineEventsPerSec: round(baselineRate),
          ratio: ratio(rate, baselineRate),
        },
      ],
      details: [
        `${n.toLocaleString('en-US')} votes over ${phones.toLocaleString('en-US')} phones (1% invalid contestants), 2 partitions, embedded log (fsync per commit group), maxBatchRecords 10000, commitIntervalMs 100.`,
        `Appending them took ${appendSeconds.toFixed(1)} s (${Math.round(n / appendSeconds).toLocaleString('en-US')} votes/s through \`Ingest\`); opening the journal and starting the service ${run.openSeconds.toFixed(2)} s (not timed).`,
        `Processing: ${run.seconds.toFixed(2)} s wall, ${run.cpuSeconds.toFixed(2)} s CPU of the process (${coresUsed.toFixed(2)} cores busy): ${Math.round(perCore).toLocaleString('en-US')} votes per CPU-second. farad runs every partition on the one JavaScript thread, so "per core" is votes per CPU-second of the whole process (journal I/O threads included).`,
        `Layers (same votes, one thread, in this run): plain loop ${Math.round(baselineRate).toLocaleString('en-US')} votes/s → ${layers.map((l) => `${l.label} ${Math.round(l.rate).toLocaleString('en-US')} votes/s`).join(' → ')} → the whole service on the embedded log ${Math.round(rate).toLocaleString('en-US')} votes/s. The processor layers time \`apply\` + \`plan\` (changelog encoding) + \`committed\` per batch of ${BATCH.toLocaleString('en-US')}, not building the input records.`,
        `Baseline \`plain-map-loop\`: bench/plain-voter.ts over the same value bytes in one loop — header check, avsc decode, the vote rule on Maps, single-object encode of the result, murmur2 partition of the key; no log, no undo log, no changelog, no fsync.`,
        `Check: farad accepted ${run.accepted.toLocaleString('en-US')} votes, the plain loop ${plain!.accepted.toLocaleString('en-US')}${consistent ? ' (equal)' : ' — MISMATCH'}.`,
      ],
      metrics: { perCore, coresUsed, ...Object.fromEntries(layers.map((l, i) => [`layer${i}`, l.rate])) },
      ...(profileFile ? { profiles: [{ title: 'engine-only (in-process, whole service)', file: profileFile, heapFile }] } : {}),
    };
  } finally {
    removeDir(dataDir);
  }
}
