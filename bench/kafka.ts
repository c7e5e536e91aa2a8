/**
 * Kafka scenarios: kafka-raw-pipe (the ceiling), kafka-eos-k0 / kafka-eos-k1 (farad end to end,
 * exactly-once) over votes pre-loaded into an input topic, and latency (paced producer → farad →
 * read_committed consumer).
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { Partitioners, type Admin, type Kafka, type Producer } from 'kafkajs';
import voter from '../examples/voter/index.js';
import { VoteGenerator } from '../examples/voter/load-generator.js';
import { loadConfig } from '../src/index.js';
import { compileApp } from '../src/procedures/index.js';
import { createCodec } from '../src/service/index.js';
import { partitionForKey } from '../src/state/index.js';
import { availableCores } from '../src/workers/index.js';
import type { EventCodec } from '../src/codec/index.js';
import {
  benchKafka,
  committedSum,
  createTopic,
  deleteGroups,
  deleteTopics,
  endSum,
  metricValues,
  processCpuSeconds,
  progress,
  progressEvery,
  quantile,
  ratio,
  ROOT,
  round,
  sleep,
  spawnFarad,
  spawnNode,
  terminate,
  toggleProfiles,
  uid,
  waitFor,
  waitForPlacement,
  type BenchContext,
  type Child,
  type FaradInstance,
  type ScenarioReport,
} from './lib.js';
import { consolePage } from './console.js';
import { benchVoterNames } from './voter-app.js';

export const PARTITIONS = voter.spec.partitions;

/** The votes `gatedInput(n)` writes, in order (a tally can replay them). */
export function preloadVotes(n: number): VoteGenerator {
  return new VoteGenerator({ phones: Math.max(1_000, Math.round(n / 4)), invalidShare: 0.01, seed: 20_240_601 });
}

/** Shared by the Kafka scenarios of one run: clients, codec, pre-loaded input topics by size. */
export class KafkaBench {
  readonly kafka: Kafka;
  readonly admin: Admin;
  private readonly topics: string[] = [];
  private readonly groups: string[] = [];
  private codec: EventCodec | undefined;

  private constructor(private readonly ctx: BenchContext) {
    this.kafka = benchKafka(ctx.brokers);
    this.admin = this.kafka.admin();
  }

  static async open(ctx: BenchContext): Promise<KafkaBench> {
    const bench = new KafkaBench(ctx);
    await bench.admin.connect();
    return bench;
  }

  async encoder(): Promise<EventCodec> {
    this.codec ??= await createCodec(compileApp(voter), loadConfig({ env: {} }));
    return this.codec;
  }

  /** Topics and groups to delete at the end. */
  track(topics: string[], groups: string[] = []): void {
    this.topics.push(...topics);
    this.groups.push(...groups);
  }

  /**
   * A new input topic with `n` votes written inside one open transaction: read_committed
   * consumers (farad, the raw pipe) see none of them until `release()` commits it, so the clock
   * can start only once the processor is fully up (group settled, standbys placed), with the
   * whole backlog appearing at once.
   */
  async gatedInput(n: number, label: string): Promise<{ topic: string; release: () => Promise<void> }> {
    const topic = `votes_bench_${this.ctx.runId}_${label}_${uid(2)}`;
    await createTopic(this.admin, topic, PARTITIONS);
    this.track([topic]);
    const codec = await this.encoder();
    const generator = preloadVotes(n);
    const producer = this.kafka.producer({
      transactionalId: `bench-preload-${topic}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 600_000,
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await producer.connect();
    const txn = await producer.transaction();
    progress(`${label}: writing ${n.toLocaleString('en-US')} votes into ${topic} (one open transaction)`);
    const report = progressEvery(`${label}: written`);
    const started = performance.now();
    const chunk = 20_000;
    for (let sent = 0; sent < n; ) {
      const count = Math.min(chunk, n - sent);
      const messages = Array.from({ length: count }, () => {
        const vote = generator.next();
        const key = String(vote.phoneNumber);
        return { key, value: codec.encode('voter.Vote', vote), partition: partitionForKey(key, PARTITIONS) };
      });
      await txn.send({ topic, messages, acks: -1 });
      sent += count;
      report(sent, n);
    }
    progress(`${label}: wrote ${n.toLocaleString('en-US')} votes in ${((performance.now() - started) / 1000).toFixed(1)} s (not yet committed)`);
    return {
      topic,
      release: async () => {
        await txn.commit();
        await producer.disconnect();
      },
    };
  }

  async close(): Promise<void> {
    await deleteTopics(this.admin, this.topics);
    await deleteGroups(this.admin, this.groups);
    await this.admin.disconnect();
  }
}

interface Drain {
  rate: number;
  seconds: number;
  /** Records already committed when the clock started. */
  before: number;
}

/**
 * From now until `group` has committed all `total` records of `topic`: the rate over what was
 * left when the clock started. Polls the committed offsets every 50 ms.
 */
export async function drain(
  label: string,
  admin: Admin,
  group: string,
  topic: string,
  total: number,
  alive: () => void,
  timeoutMs: number,
  release: () => Promise<void>,
): Promise<Drain> {
  const before = await committedSum(admin, group, topic);
  const t0 = performance.now();
  await release();
  const report = progressEvery(`${label}: committed`);
  for (;;) {
    const now = performance.now();
    const done = await committedSum(admin, group, topic);
    report(done, total);
    if (done >= total) {
      const seconds = (now - t0) / 1000;
      if (total - before < total / 10) {
        throw new Error(`${label}: ${before} of ${total} records were committed before the clock started (while partitions were still being placed); use a larger --size ${label}=…`);
      }
      return { rate: (total - before) / seconds, seconds, before };
    }
    alive();
    if (now - t0 > timeoutMs) {
      const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      const behind = ends
        .map((e) => ({ p: e.partition, lag: Number(e.high) - Math.max(0, Number(committed?.partitions.find((c) => c.partition === e.partition)?.offset ?? 0)) }))
        .filter((x) => x.lag > 0)
        .map((x) => `${x.p}: ${x.lag}`);
      throw new Error(`${label}: only ${done} of ${total} records committed after ${timeoutMs / 1000} s; records left per partition ${behind.join(', ')}`);
    }
    await sleep(50);
  }
}

export function aliveCheck(children: readonly Child[]): () => void {
  return () => {
    for (const child of children) {
      if (!child.running()) throw new Error(`${child.name} exited during the measurement:\n${child.output().slice(-4000)}`);
    }
  };
}

export function drainTimeout(n: number): number {
  return Math.max(120_000, n); // at least 1000 records/s
}

// ---- kafka-raw-pipe -----------------------------------------------------------------------------

export async function rawPipe(ctx: BenchContext, bench: KafkaBench, n: number): Promise<ScenarioReport> {
  const { topic: input, release } = await bench.gatedInput(n, 'kafka-raw-pipe');
  const group = `raw_bench_${ctx.runId}_${uid(2)}`;
  const output = `results_raw_${ctx.runId}_${uid(2)}`;
  await createTopic(bench.admin, output, PARTITIONS);
  bench.track([output], [group]);
  progress(`kafka-raw-pipe: starting the raw kafkajs pipe (group ${group})`);
  const child = spawnNode('raw-pipe', join(ROOT, 'bench/raw-pipe.ts'), [], {
    RAW_BROKERS: ctx.brokers.join(','),
    RAW_INPUT: input,
    RAW_OUTPUT: output,
    RAW_GROUP: group,
    RAW_PARTITIONS: String(PARTITIONS),
  });
  try {
    await child.line(/^joined/, 120_000);
    await sleep(1000); // joined: the fetchers start right after
    let result: Drain;
    try {
      result = await drain('kafka-raw-pipe', bench.admin, group, input, n, aliveCheck([child]), drainTimeout(n), release);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- raw pipe (last lines) ---\n${child.output().split('\n').slice(-20).join('\n')}`);
    }
    progress(`kafka-raw-pipe: ${Math.round(result.rate).toLocaleString('en-US')} votes/s`);
    const statsLine = child.line(/^stats /, 10_000).catch(() => undefined);
    await terminate(child);
    const stats = JSON.parse((await statsLine)?.slice(6) ?? '{}') as Record<string, number>;
    const per = (ms: number | undefined) => ((ms ?? NaN) / Math.max(1, stats['batches'] ?? 0)).toFixed(1);
    return {
      rows: [{ scenario: 'kafka-raw-pipe', eventsPerSec: round(result.rate), p50Ms: null, p99Ms: null, baseline: null, baselineEventsPerSec: null, ratio: null }],
      details: [
        `bench/raw-pipe.ts in a child process: kafkajs consumer (read_committed, all ${PARTITIONS} partitions consumed concurrently) → Voter's rule on a Map (bench/plain-voter.ts) → one transactional producer per partition, one transaction per fetched batch (split at 10,000 records, farad's maxBatchRecords) with the results and sendOffsets. ${result.seconds.toFixed(2)} s for ${(n - result.before).toLocaleString('en-US')} votes, timed like kafka-eos-k0.`,
        `Inside the pipe: ${stats['batches'] ?? '?'} batches of ${Math.round((stats['records'] ?? NaN) / Math.max(1, stats['batches'] ?? 0))} records on average (records handled: ${stats['records'] ?? '?'}; redelivered batches count twice); per batch ${per(stats['handleMs'])} ms vote rule + encoding, ${per(stats['sendMs'])} ms send, ${per(stats['offsetsMs'])} ms sendOffsets, ${per(stats['commitMs'])} ms commit; ${stats['failed'] ?? '?'} transactions failed and were retried.`,
      ],
    };
  } finally {
    await terminate(child);
  }
}

// ---- kafka-eos-k0 / k1 --------------------------------------------------------------------------

interface EosRun {
  result: Drain;
  dead: number;
  /** CPU seconds the farad processes used while the clock ran. */
  cpuSeconds: number;
  standbyLag: string;
  profiles: Array<{ title: string; file: string }>;
  /** What the run's watch saw, if it had one. */
  watched: string | undefined;
}

/** `count` farad instances with `replicas` standby copies draining `n` gated votes. */
/** Something that watches the instances while the clock runs (the console page); its stop says what it saw. */
export type RunWatch = (instances: readonly FaradInstance[]) => () => Promise<string>;

async function eosRun(ctx: BenchContext, bench: KafkaBench, n: number, count: number, replicas: number, label: string, watch?: RunWatch): Promise<EosRun> {
  const { topic: input, release } = await bench.gatedInput(n, label);
  const suffix = `${ctx.runId}_${label.replace(/[^a-z0-9]+/gi, '_')}_${uid(2)}`;
  const names = benchVoterNames(suffix, input);
  bench.track([names.output, names.changelog, names.dlq], [names.app]);
  const ids = Array.from({ length: count }, (_, i) => `${label}-${String.fromCharCode(97 + i)}`);
  progress(`${label}: starting ${count} farad instance(s), replicas ${replicas} (app ${names.app})`);
  const instances: FaradInstance[] = [];
  // One instance uses every core (farad's default); several on this machine share them, one worker each.
  const env = { FARAD_LOG_LEVEL: process.env['FARAD_BENCH_CHILD_LOG_LEVEL'] ?? 'info', ...(count > 1 ? { FARAD_WORKERS: '1' } : {}) };
  for (const id of ids) instances.push(await spawnFarad(id, { brokers: ctx.brokers, suffix, input, replicas, cpuProfDir: ctx.profileDir, env }));
  try {
    const placement = await waitForPlacement(instances, PARTITIONS, 180_000);
    progress(`${label}: partitions placed ${[...placement].map(([id, ps]) => `${id}=[${ps.join(',')}]`).join(' ')}`);
    // Standby followers start once the group is learnt; an empty changelog gives no signal of it
    // (farad_standby_lag_records appears with the first fetched batch), so give them 3 s.
    if (replicas > 0) await sleep(3_000);
    let result: Drain;
    let cpuSeconds = NaN;
    let watched: string | undefined;
    try {
      await toggleProfiles(instances, 'start');
      const cpuBefore = instances.map((i) => processCpuSeconds(i.process.pid));
      const stopWatch = watch?.(instances);
      result = await drain(label, bench.admin, names.app, input, n, aliveCheck(instances), drainTimeout(n), release);
      cpuSeconds = instances.reduce((sum, i, at) => sum + processCpuSeconds(i.process.pid) - cpuBefore[at]!, 0);
      watched = await stopWatch?.();
      await toggleProfiles(instances, 'stop');
    } catch (err) {
      const logs = instances.map((i) => `--- ${i.id} (last lines) ---\n${i.output().split('\n').slice(-15).join('\n')}`).join('\n');
      throw new Error(`${(err as Error).message}\n${logs}`);
    }
    let standbyLag = '';
    if (replicas > 0) {
      const lags = (await Promise.all(instances.map((i) => metricValues(i, 'farad_standby_lag_records')))).flat();
      standbyLag = ` Standby lag when the last input was committed: ${lags.length ? lags.map((l) => l.value).join(', ') : 'n/a'} records.`;
    }
    const dead = await endSum(bench.admin, names.dlq).catch(() => NaN);
    progress(`${label}: ${Math.round(result.rate).toLocaleString('en-US')} votes/s`);
    const profiles = instances.filter((i) => i.profileFile).map((i) => ({ title: `${label} farad instance ${i.id} (measured window)`, file: i.profileFile! }));
    progress(`${label}: ${((cpuSeconds / (n - result.before)) * 1e6).toFixed(1)} µs of farad CPU per vote`);
    return { result, dead, cpuSeconds, standbyLag, profiles, watched };
  } finally {
    for (const instance of instances) await terminate(instance);
  }
}

export async function eos(ctx: BenchContext, bench: KafkaBench, n: number, k: 0 | 1, control = true): Promise<ScenarioReport> {
  const scenario = `kafka-eos-k${k}`;
  const count = k === 0 ? 1 : 2;
  const run = await eosRun(ctx, bench, n, count, k, scenario);
  // k=1 runs two processes, k=0 one: on its own k1/k0 mixes the cost of the standby copies with
  // the gain of a second process. A control run, two instances without standbys, separates them.
  let controlRate: number | undefined;
  if (k === 1 && control) {
    const controlRun = await eosRun(ctx, bench, Math.max(1, Math.round(n / 2)), 2, 0, 'kafka-eos-k0x2');
    controlRate = controlRun.result.rate;
  }
  const raw = ctx.results.get('kafka-raw-pipe')?.eventsPerSec ?? null;
  const { result } = run;
  const cpuMicros = (run.cpuSeconds / (n - result.before)) * 1e6;
  return {
    rows: [
      {
        scenario,
        eventsPerSec: round(result.rate),
        p50Ms: null,
        p99Ms: null,
        baseline: 'kafka-raw-pipe',
        baselineEventsPerSec: raw,
        ratio: ratio(result.rate, raw),
      },
    ],
    details: [
      `${count} farad instance(s) (\`node --import tsx src/cli/main.ts run\`, transport kafka, ${count > 1 ? 'one worker process each' : `${process.env['FARAD_WORKERS'] ?? availableCores()} worker process(es)${process.env['FARAD_WORKERS'] ? '' : ' (the default: one per core)'}`}, replicas ${k}${k > 0 ? ": each instance follows the other's changelog as a warm standby" : ''}), Voter with ${PARTITIONS} partitions, commitIntervalMs 100, maxBatchRecords 10000. The votes were written beforehand in one open transaction, invisible to read_committed readers; the clock starts when that transaction commits — once every partition is active${k > 0 ? ' and has had 3 s to start its standby copies' : ''} — and stops when the group's committed offsets reach the end (polled every 50 ms): ${result.seconds.toFixed(2)} s for ${n.toLocaleString('en-US')} votes. Dead letters: ${run.dead}.${run.standbyLag}`,
      `CPU of the farad process${count > 1 ? 'es' : ''} while the clock ran: ${run.cpuSeconds.toFixed(2)} s, ${cpuMicros.toFixed(1)} µs per vote (user + system from /proc, all threads).`,
      ...(controlRate !== undefined
        ? [
            `Control run (not a scenario of its own): two instances with replicas 0 on ${Math.round(n / 2).toLocaleString('en-US')} votes: ${Math.round(controlRate).toLocaleString('en-US')} votes/s, so the standby copies themselves cost ${((1 - result.rate / controlRate) * 100).toFixed(1)}% at equal instance count.`,
          ]
        : []),
    ],
    metrics: { cpuMicrosPerEvent: cpuMicros, ...(controlRate !== undefined ? { controlRate } : {}) },
    ...(run.profiles.length > 0 ? { profiles: run.profiles } : {}),
  };
}

/** kafka-eos-k0 again with the console open on the instance (its page's polls), against kafka-eos-k0 without it. */
export async function consoleOpen(ctx: BenchContext, bench: KafkaBench, n: number): Promise<ScenarioReport> {
  const run = await eosRun(ctx, bench, n, 1, 0, 'console-open', (instances) => {
    const stop = consolePage(instances[0]!);
    return async () => {
      const seen = await stop();
      return `${seen.polls} page polls answered, p50 ${seen.p50Ms.toFixed(0)} ms, slowest ${seen.maxMs.toFixed(0)} ms`;
    };
  });
  const without = ctx.results.get('kafka-eos-k0')?.eventsPerSec ?? null;
  return {
    rows: [{ scenario: 'console-open', eventsPerSec: round(run.result.rate), p50Ms: null, p99Ms: null, baseline: 'kafka-eos-k0', baselineEventsPerSec: without, ratio: ratio(run.result.rate, without) }],
    details: [
      `kafka-eos-k0's run (${n.toLocaleString('en-US')} votes, one instance) with the console open on it: what its page asks, \`/console/api/cluster\` every 2 s and the newest dead letters at first and when their counts change. ${run.watched ?? ''}. The ratio is against kafka-eos-k0 without the console, in this run.`,
    ],
  };
}

// ---- paced producer -----------------------------------------------------------------------------

/**
 * Sends votes at a steady rate: every 5 ms what is due, at most 4 sends in flight, acks=all.
 * Vote `seq` has phone number `areaCode * 10^7 + seq` (distinct phones: every valid vote is
 * accepted) and its key is that number, so a result can be matched to its vote by key.
 */
export class PacedProducer {
  sent = 0;
  /** Milliseconds from each send to its acknowledgement. */
  readonly ackMs: number[] = [];
  private stopped = false;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly codec: EventCodec,
    private readonly rate: number,
    private readonly areaCode: number,
    private readonly limit = 9_999_999,
    private readonly onSend?: (seq: number, now: number) => void,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  /** Resolves after `limit` votes were handed to the producer or `stop()`; rejects on a failed send. */
  run(): Promise<void> {
    let inFlight = 0;
    let failed: unknown;
    const started = performance.now();
    return new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (failed !== undefined) {
          clearInterval(timer);
          reject(failed instanceof Error ? failed : new Error(String(failed)));
          return;
        }
        if (this.stopped || this.sent >= this.limit) {
          clearInterval(timer);
          resolve();
          return;
        }
        if (inFlight >= 4) return;
        const now = performance.now();
        const due = Math.min(this.limit, Math.floor((this.rate * (now - started)) / 1000)) - this.sent;
        if (due <= 0) return;
        const messages = [];
        for (let i = 0; i < due; i++) {
          const seq = this.sent + i;
          const phoneNumber = this.areaCode * 10_000_000 + seq;
          const key = String(phoneNumber);
          this.onSend?.(seq, now);
          messages.push({ key, value: this.codec.encode('voter.Vote', { phoneNumber, contestantNumber: 1 + (seq % 6) }), partition: partitionForKey(key, PARTITIONS) });
        }
        this.sent += due;
        inFlight++;
        this.producer.send({ topic: this.topic, messages, acks: -1 }).then(
          () => {
            inFlight--;
            this.ackMs.push(performance.now() - now);
          },
          (err: unknown) => {
            inFlight--;
            failed = err;
          },
        );
      }, 5);
    });
  }
}

// ---- latency ------------------------------------------------------------------------------------

const LATENCY_AREA = 201; // NJ: every latency vote is accepted (distinct phones, valid contestant)

interface LatencyRun {
  p50: number;
  p99: number;
  max: number;
  achieved: number;
  /** Votes sent, warm-up included. */
  sent: number;
  measured: number;
  missing: number;
  ackP50: number;
  ackP99: number;
}

/**
 * Paced votes into `input`, results read back from `output` by a read_committed consumer; per
 * vote: time its result was fetched − time it was handed to the producer.
 */
export async function measureLatency(
  label: string,
  bench: KafkaBench,
  input: string,
  output: string,
  rate: number,
  seconds: number,
  warmupSeconds: number,
  processor: Child,
): Promise<LatencyRun> {
  const total = Math.ceil(rate * (seconds + warmupSeconds));
  if (total >= 10_000_000) throw new Error('latency: at most 10M votes (phone numbers carry the sequence)');
  const sentAt = new Float64Array(total);
  const seenAt = new Float64Array(total);
  let seen = 0;
  const consumerGroup = `latency_reader_${uid(4)}`;
  bench.track([], [consumerGroup]);
  const consumer = bench.kafka.consumer({ groupId: consumerGroup, readUncommitted: false, maxWaitTimeInMs: 10, minBytes: 1 });
  const producer = bench.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  try {
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.connect();
    await consumer.subscribe({ topics: [output], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = performance.now();
        for (const m of batch.messages) {
          const seq = Number(m.key!.toString()) - LATENCY_AREA * 10_000_000;
          if (seq >= 0 && seq < total && seenAt[seq] === 0) {
            seenAt[seq] = now;
            seen++;
          }
        }
      },
    });
    await waitFor(`${label}: result reader to join`, () => joined);
    await producer.connect();
    const paced = new PacedProducer(producer, input, await bench.encoder(), rate, LATENCY_AREA, total, (seq, now) => (sentAt[seq] = now));
    const started = performance.now();
    await paced.run();
    const producedSeconds = (performance.now() - started) / 1000;
    await waitFor(`${label}: every vote answered`, () => {
      if (!processor.running()) throw new Error(`${processor.name} exited:\n${processor.output().slice(-3000)}`);
      return seen >= total;
    }, { timeoutMs: 30_000 }).catch(() => undefined);
    const measuredFrom = Math.ceil(rate * warmupSeconds);
    const latencies: number[] = [];
    let missing = 0;
    for (let seq = measuredFrom; seq < total; seq++) {
      if (seenAt[seq] === 0) missing++;
      else latencies.push(seenAt[seq]! - sentAt[seq]!);
    }
    const run = {
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: quantile(latencies, 1),
      achieved: total / producedSeconds,
      sent: total,
      measured: latencies.length,
      missing,
      ackP50: quantile(paced.ackMs, 0.5),
      ackP99: quantile(paced.ackMs, 0.99),
    };
    progress(`${label}: p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms, max ${run.max.toFixed(1)} ms over ${run.measured.toLocaleString('en-US')} votes${missing ? `, ${missing} unanswered` : ''} (produce acks p50 ${run.ackP50.toFixed(1)} ms)`);
    return run;
  } finally {
    await producer.disconnect().catch(() => undefined);
    await consumer.disconnect().catch(() => undefined);
  }
}

/** Mean of a Prometheus histogram (sum / count) on an instance; NaN when absent. */
async function histogramMean(instance: FaradInstance, name: string): Promise<{ mean: number; count: number }> {
  const sum = (await metricValues(instance, `${name}_sum`)).reduce((s, v) => s + v.value, 0);
  const count = (await metricValues(instance, `${name}_count`)).reduce((s, v) => s + v.value, 0);
  return { mean: count > 0 ? sum / count : NaN, count };
}

export async function latency(ctx: BenchContext, bench: KafkaBench, seconds: number, rate: number, rateSource: string, withRaw = true): Promise<ScenarioReport> {
  const warmupSeconds = ctx.quick ? 1 : 3;
  progress(`latency: ${Math.round(rate).toLocaleString('en-US')} votes/s (${rateSource}) for ${warmupSeconds} s warm-up + ${seconds} s`);

  // farad
  const suffix = `${ctx.runId}_lat_${uid(2)}`;
  const input = `votes_bench_${suffix}`;
  const names = benchVoterNames(suffix, input);
  await createTopic(bench.admin, input, PARTITIONS);
  bench.track([input, names.output, names.changelog, names.dlq], [names.app]);
  const instance = await spawnFarad('latency-a', { brokers: ctx.brokers, suffix, input, replicas: 0, cpuProfDir: ctx.profileDir, env: {} });
  let farad: LatencyRun;
  let commit: { mean: number; count: number };
  let batch: { mean: number; count: number };
  let cpuPerVote = NaN;
  try {
    await waitForPlacement([instance], PARTITIONS, 180_000);
    await waitFor('output topic', async () => (await bench.admin.listTopics()).includes(names.output));
    const c0 = await histogramMean(instance, 'farad_commit_duration_seconds');
    await toggleProfiles([instance], 'start');
    const cpu0 = processCpuSeconds(instance.process.pid);
    farad = await measureLatency('latency', bench, input, names.output, rate, seconds, warmupSeconds, instance);
    cpuPerVote = ((processCpuSeconds(instance.process.pid) - cpu0) / Math.max(1, farad.sent)) * 1e6;
    await toggleProfiles([instance], 'stop');
    const c1 = await histogramMean(instance, 'farad_commit_duration_seconds');
    commit = { mean: (c1.mean * c1.count - (c0.count > 0 ? c0.mean * c0.count : 0)) / Math.max(1, c1.count - c0.count), count: c1.count - c0.count };
    batch = await histogramMean(instance, 'farad_batch_records');
  } finally {
    await terminate(instance);
  }

  // The same pipeline without farad: the broker's own floor at this rate.
  let raw: LatencyRun | undefined;
  if (withRaw) {
    const rawInput = `votes_raw_lat_${ctx.runId}_${uid(2)}`;
    const rawOutput = `results_raw_lat_${ctx.runId}_${uid(2)}`;
    const group = `raw_lat_${ctx.runId}_${uid(2)}`;
    await createTopic(bench.admin, rawInput, PARTITIONS);
    await createTopic(bench.admin, rawOutput, PARTITIONS);
    bench.track([rawInput, rawOutput], [group]);
    const child = spawnNode('raw-pipe (latency)', join(ROOT, 'bench/raw-pipe.ts'), [], {
      RAW_BROKERS: ctx.brokers.join(','),
      RAW_INPUT: rawInput,
      RAW_OUTPUT: rawOutput,
      RAW_GROUP: group,
      RAW_PARTITIONS: String(PARTITIONS),
    });
    try {
      await child.line(/^joined/, 120_000);
      raw = await measureLatency('latency (raw pipe)', bench, rawInput, rawOutput, rate, seconds, warmupSeconds, child);
    } finally {
      await terminate(child);
    }
  }

  return {
    rows: [{ scenario: 'latency', eventsPerSec: round(farad.achieved), p50Ms: round(farad.p50, 1), p99Ms: round(farad.p99, 1), baseline: null, baselineEventsPerSec: null, ratio: null }],
    details: [
      `One farad instance (replicas 0, default batching: commitLingerMs 20, commitIntervalMs 100). A paced producer in the bench process sends ${Math.round(rate).toLocaleString('en-US')} votes/s (${rateSource}) every 5 ms, acks=all; a read_committed consumer (maxWaitTimeInMs 10) reads the results. Latency per vote = time its result was fetched − time it was handed to the producer (same clock; the phone number carries the sequence number).`,
      `\`eventsPerSec\` is the rate actually offered (${farad.achieved.toFixed(0)} votes/s). ${farad.measured.toLocaleString('en-US')} votes measured after ${warmupSeconds} s of warm-up; max ${farad.max.toFixed(1)} ms${farad.missing ? `; ${farad.missing} votes got no result within 30 s (left out)` : ''}. Producer acks took p50 ${farad.ackP50.toFixed(1)} / p99 ${farad.ackP99.toFixed(1)} ms.`,
      `farad's own metrics over the run: ${commit.count} batch commits (Kafka transactions) of ${batch.mean.toFixed(0)} records on average, ${(commit.mean * 1000).toFixed(1)} ms per commit on average; farad's process used ${cpuPerVote.toFixed(1)} µs of CPU per vote sent (warm-up included).`,
      ...(raw
        ? [
            `For comparison (not a target): the raw kafkajs pipe (bench/raw-pipe.ts, a transaction per fetched batch, no commit interval) at the same rate: p50 ${raw.p50.toFixed(1)} ms, p99 ${raw.p99.toFixed(1)} ms, max ${raw.max.toFixed(1)} ms over ${raw.measured.toLocaleString('en-US')} votes${raw.missing ? ` (${raw.missing} unanswered)` : ''}.`,
          ]
        : []),
    ],
    ...(instance.profileFile ? { profiles: [{ title: 'latency farad instance (measured window)', file: instance.profileFile }] } : {}),
  };
}
