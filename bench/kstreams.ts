/**
 * Kafka Streams as farad's peer: the Voter on Apache Kafka's own Kafka Streams (bench/kstreams/,
 * Java, Processor API, in-memory stores with changelogs, exactly_once_v2, 2 stream threads) on the
 * same broker, measured the way kafka-eos-k0 and latency measure farad:
 *   kafka-streams-eos      gated pre-loaded votes, votes/s until the group has committed them all,
 *                          CPU-seconds of the JVM over that window, results checked against a tally
 *   kafka-streams-latency  the paced producer and read_committed reader of the latency scenario
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AREA_CODE_STATES } from '../examples/voter/area-codes.js';
import { Partitioners } from 'kafkajs';
import { partitionForKey } from '../src/state/index.js';
import { aliveCheck, drain, drainTimeout, measureLatency, PARTITIONS, preloadVotes, type KafkaBench } from './kafka.js';
import {
  committedSum,
  createTopic,
  fmt,
  processCpuSeconds,
  progress,
  ratio,
  removeDir,
  ROOT,
  spawnProcess,
  round,
  terminate,
  uid,
  waitFor,
  type BenchContext,
  type Child,
  type ScenarioReport,
} from './lib.js';

const PROJECT = join(ROOT, 'bench/kstreams');
const JAR = join(PROJECT, 'target/kstreams-voter.jar');
const LIB = join(PROJECT, 'target/lib');
const MAIN_CLASS = 'dev.farad.bench.kstreams.VoterStreams';
const STORES = ['votesByPhone', 'votesByContestant'];
/** Kafka Streams' version, as the pom has it. */
const VERSION = /<kafka\.version>([^<]+)</.exec(readFileSync(join(PROJECT, 'pom.xml'), 'utf8'))?.[1] ?? '?';

export interface KafkaStreamsOptions {
  /** `statestore.cache.max.bytes`; 0 (default) turns record caching off, so every write reaches the changelog as farad's do. */
  readonly cacheMaxBytes?: number;
  /**
   * kafka-streams-eos only: votes the JVM processes before the clock starts (from a second input
   * topic, phones of their own), so its JIT has compiled the hot paths; 0 (default) = a cold JVM,
   * as farad's node process is cold.
   */
  readonly warmupVotes?: number;
}

// ---- build --------------------------------------------------------------------------------------

let built: Promise<void> | undefined;

/** `mvn package` of bench/kstreams once per run, skipped when the jar is newer than every source. */
export function ensureKafkaStreamsBuilt(): Promise<void> {
  built ??= build().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return built;
}

function newestSource(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestSource(join(path, name))));
}

async function build(): Promise<void> {
  const sources = Math.max(newestSource(join(PROJECT, 'pom.xml')), newestSource(join(PROJECT, 'src')));
  if (existsSync(JAR) && existsSync(LIB) && statSync(JAR).mtimeMs > sources) return;
  progress('kafka-streams: building bench/kstreams (mvn package; the first build fetches Kafka Streams and Avro from Maven Central)');
  const started = performance.now();
  const mvn = spawnProcess('mvn package', 'mvn', ['-B', '-q', '-f', join(PROJECT, 'pom.xml'), 'package']);
  const { code } = await mvn.exited;
  if (code !== 0) throw new Error(`kafka-streams: mvn package failed (exit ${code}); JDK 17 and Maven are needed:\n${mvn.output().slice(-20_000)}`);
  progress(`kafka-streams: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

// ---- the Java process ---------------------------------------------------------------------------

interface AppNames {
  app: string;
  input: string;
  /** Second input topic for warm-up votes, when there are any. */
  warmup?: string;
  output: string;
  /** Changelog topics Kafka Streams creates for the stores. */
  changelogs: string[];
}

function appNames(ctx: BenchContext, label: string, input: string): AppNames {
  const app = `kstreams_bench_${ctx.runId}_${label.replace(/[^a-z0-9]+/gi, '_')}_${uid(2)}`;
  return { app, input, output: `${app}_results`, changelogs: STORES.map((s) => `${app}-${s}-changelog`) };
}

/**
 * `java -cp … VoterStreams` as a `Child` (stdout lines, output kept for errors), its JVM's pid
 * being the child's.
 */
function spawnKafkaStreams(ctx: BenchContext, names: AppNames, stateDir: string, options: KafkaStreamsOptions): Child {
  const args = [
    '-cp',
    `${JAR}:${LIB}/*`,
    MAIN_CLASS,
    ...['--bootstrap', ctx.brokers.join(',')],
    ...['--application-id', names.app],
    ...['--input', [names.input, ...(names.warmup ? [names.warmup] : [])].join(',')],
    ...['--output', names.output],
    ...['--state-dir', stateDir],
    ...['--schemas', join(ROOT, 'config/schemas/voter')],
    ...['--area-codes', join(ROOT, 'examples/voter/area-codes.ts')],
    ...['--threads', '2'],
    ...['--cache-max-bytes', String(options.cacheMaxBytes ?? 0)],
  ];
  return spawnProcess(`kafka-streams ${names.app}`, 'java', args);
}

/**
 * Starts the app on topics that exist and waits until it processes: RUNNING with every input
 * partition among its active tasks, and the consumer group stable. Returns the seconds that took.
 */
async function startKafkaStreams(ctx: BenchContext, bench: KafkaBench, names: AppNames, stateDir: string, options: KafkaStreamsOptions): Promise<{ child: Child; startSeconds: number }> {
  await ensureKafkaStreamsBuilt();
  const started = performance.now();
  const child = spawnKafkaStreams(ctx, names, stateDir, options);
  try {
    const all = Array.from({ length: PARTITIONS }, (_, p) => p).join(',');
    // Both awaited together: the two lines come in one burst.
    await Promise.all([child.line(/^running$/, 180_000), child.line(new RegExp(`^assigned ${all}$`), 180_000)]);
    await waitFor(`${names.app}: consumer group stable`, async () => {
      if (!child.running()) throw new Error(`${child.name} exited:\n${child.output().slice(-3000)}`);
      const [group] = (await bench.admin.describeGroups([names.app])).groups;
      return group?.state === 'Stable' && group.members.length > 0;
    }, { timeoutMs: 60_000 });
    return { child, startSeconds: (performance.now() - started) / 1000 };
  } catch (err) {
    await terminate(child, 10_000);
    throw err;
  }
}

// ---- result check -------------------------------------------------------------------------------

interface Tally {
  accepted: number;
  INVALID_CONTESTANT: number;
  OVER_VOTE_LIMIT: number;
  /** Accepted votes per contestant 1..6 (index 0 unused). */
  byContestant: number[];
}

const emptyTally = (): Tally => ({ accepted: 0, INVALID_CONTESTANT: 0, OVER_VOTE_LIMIT: 0, byContestant: [0, 0, 0, 0, 0, 0, 0] });

/**
 * Voter's outcome of the `n` votes `KafkaBench.gatedInput` writes, replayed from the same
 * generator (`preloadVotes`) and tallied without farad.
 * The counts do not depend on the interleaving of partitions: a phone's votes share one.
 */
function expectedTally(n: number): Tally {
  const generator = preloadVotes(n);
  const accepted = new Map<number, number>();
  const tally = emptyTally();
  for (let i = 0; i < n; i++) {
    const { phoneNumber, contestantNumber } = generator.next();
    if (contestantNumber < 1 || contestantNumber > 6) {
      tally.INVALID_CONTESTANT++;
      continue;
    }
    const count = accepted.get(phoneNumber) ?? 0;
    if (count >= 2) {
      tally.OVER_VOTE_LIMIT++;
      continue;
    }
    accepted.set(phoneNumber, count + 1);
    tally.accepted++;
    tally.byContestant[contestantNumber]!++;
  }
  return tally;
}

/**
 * Reads every committed result from `output` (read_committed) and tallies them, the warm-up
 * votes' apart; also checks each record's key (the vote's phone number), partition (murmur2 of the
 * key, as farad writes) and, for accepted votes, the state of the area code. Stops once all
 * `n + warmup` results were read and 2 s pass without another (a duplicate shows as an extra result).
 */
async function readResults(bench: KafkaBench, output: string, n: number, warmup: number): Promise<{ tally: Tally; faults: string[] }> {
  const codec = await bench.encoder();
  const states = new Map<number, string>(AREA_CODE_STATES.map(([code, state]) => [code, state]));
  const measured = emptyTally();
  const warm = emptyTally();
  const total = n + warmup;
  const faults: string[] = [];
  const fault = (message: string) => {
    if (faults.length < 10) faults.push(message);
  };
  let read = 0;
  let lastAt = performance.now();
  const group = `kstreams_check_${uid(4)}`;
  bench.track([], [group]);
  const consumer = bench.kafka.consumer({ groupId: group, readUncommitted: false, maxWaitTimeInMs: 100 });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [output], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          read++;
          const key = m.key?.toString() ?? '';
          if (partitionForKey(key, PARTITIONS) !== batch.partition) fault(`key ${key} in partition ${batch.partition}`);
          const { name, value } = codec.decode(m.value!);
          const result = value as { phoneNumber: number; contestantNumber: number; state?: string; reason?: 'INVALID_CONTESTANT' | 'OVER_VOTE_LIMIT' };
          if (key !== String(result.phoneNumber)) fault(`key ${key} on the result for ${result.phoneNumber}`);
          const areaCode = Math.floor(result.phoneNumber / 10_000_000);
          const tally = areaCode === WARMUP_AREA ? warm : measured;
          if (name === 'voter.VoteAccepted') {
            tally.accepted++;
            tally.byContestant[result.contestantNumber] = (tally.byContestant[result.contestantNumber] ?? 0) + 1;
            const state = states.get(areaCode) ?? 'XX';
            if (result.state !== state) fault(`${result.phoneNumber} accepted with state ${result.state}, expected ${state}`);
          } else if (name === 'voter.VoteRejected') {
            tally[result.reason!]++;
          } else {
            fault(`unexpected result type ${name}`);
          }
        }
        lastAt = performance.now();
      },
    });
    await waitFor(`all ${total.toLocaleString('en-US')} results read back from ${output}`, () => read >= total && performance.now() - lastAt > 2_000, {
      timeoutMs: 60_000 + total / 10,
      intervalMs: 200,
    }).catch((err: unknown) => fault(`${(err as Error).message}: read ${read}`));
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  if (read !== total) fault(`${read.toLocaleString('en-US')} results for ${total.toLocaleString('en-US')} votes`);
  const warmRead = warm.accepted + warm.INVALID_CONTESTANT + warm.OVER_VOTE_LIMIT;
  if (warmRead !== warmup) fault(`${warmRead} results for ${warmup} warm-up votes`);
  return { tally: measured, faults };
}

const tallyLine = (t: Tally) =>
  `accepted ${t.accepted} (by contestant ${t.byContestant.slice(1).join('/')}), INVALID_CONTESTANT ${t.INVALID_CONTESTANT}, OVER_VOTE_LIMIT ${t.OVER_VOTE_LIMIT}`;

// ---- warm-up -----------------------------------------------------------------------------------

/** Area code of the warm-up votes' phones: not one the vote generator picks, so their results are told apart. */
const WARMUP_AREA = 999;

/**
 * `w` committed votes into `topic` that take every path of the rule (accepted, over the limit:
 * three votes per phone, invalid contestant 7), on phones `999xxxxxxx` of their own.
 */
async function writeWarmup(bench: KafkaBench, topic: string, w: number): Promise<void> {
  const codec = await bench.encoder();
  const phones = Math.max(1, Math.floor(w / 3));
  const producer = bench.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let sent = 0; sent < w; ) {
      const count = Math.min(20_000, w - sent);
      const messages = Array.from({ length: count }, (_, i) => {
        const seq = sent + i;
        const phoneNumber = WARMUP_AREA * 10_000_000 + (seq % phones);
        const key = String(phoneNumber);
        return { key, value: codec.encode('voter.Vote', { phoneNumber, contestantNumber: 1 + (seq % 7) }), partition: partitionForKey(key, PARTITIONS) };
      });
      await producer.send({ topic, messages, acks: -1 });
      sent += count;
    }
  } finally {
    await producer.disconnect();
  }
}

// ---- kafka-streams-eos --------------------------------------------------------------------------

/**
 * Kafka Streams draining `n` gated votes, timed like kafka-eos-k0: the clock starts when the
 * pre-load transaction commits (the app RUNNING with all partitions, group stable) and stops when
 * the group (= application.id) has committed every input offset.
 */
export async function kafkaStreamsEos(ctx: BenchContext, bench: KafkaBench, n: number, options: KafkaStreamsOptions = {}): Promise<ScenarioReport> {
  const cached = (options.cacheMaxBytes ?? 0) > 0;
  const warmup = options.warmupVotes ?? 0;
  const scenario = `kafka-streams-eos${cached ? '-cached' : ''}`;
  await ensureKafkaStreamsBuilt();
  const { topic: input, release } = await bench.gatedInput(n, scenario);
  const names = appNames(ctx, scenario, input);
  await createTopic(bench.admin, names.output, PARTITIONS);
  bench.track([names.output, ...names.changelogs], [names.app]);
  if (warmup > 0) {
    names.warmup = `${names.app}_warmup`;
    await createTopic(bench.admin, names.warmup, PARTITIONS);
    bench.track([names.warmup]);
    await writeWarmup(bench, names.warmup, warmup);
  }
  const stateDir = mkdtempSync(join(ctx.tmp, 'kstreams-'));
  progress(`${scenario}: starting Kafka Streams (application.id ${names.app}, exactly_once_v2, 2 threads, cache ${options.cacheMaxBytes ?? 0} bytes)`);
  let child: Child | undefined;
  try {
    const started = await startKafkaStreams(ctx, bench, names, stateDir, options);
    child = started.child;
    const pid = child.process.pid;
    progress(`${scenario}: running after ${started.startSeconds.toFixed(1)} s`);
    let warmupSeconds = 0;
    if (names.warmup) {
      const t0 = performance.now();
      const alive = aliveCheck([child]);
      const warmTopic = names.warmup;
      await waitFor(`${scenario}: warm-up votes committed`, async () => (alive(), (await committedSum(bench.admin, names.app, warmTopic)) >= warmup), {
        timeoutMs: drainTimeout(warmup),
      });
      warmupSeconds = (performance.now() - t0) / 1000;
      progress(`${scenario}: warmed up on ${warmup.toLocaleString('en-US')} votes in ${warmupSeconds.toFixed(1)} s`);
    }
    let cpuBefore = NaN;
    let result: Awaited<ReturnType<typeof drain>>;
    try {
      result = await drain(scenario, bench.admin, names.app, input, n, aliveCheck([child]), drainTimeout(n), async () => {
        cpuBefore = processCpuSeconds(pid);
        await release();
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- kafka streams (last lines) ---\n${child.output().split('\n').slice(-20).join('\n')}`);
    }
    const cpu = processCpuSeconds(pid) - cpuBefore;
    const cpuMicros = (cpu / (n - result.before)) * 1e6;
    progress(`${scenario}: ${Math.round(result.rate).toLocaleString('en-US')} votes/s, ${fmt(cpuMicros, 1)} µs of JVM CPU per vote (${fmt(cpu / result.seconds, 2)} cores)`);
    await terminate(child, 10_000);

    const expected = expectedTally(n);
    const { tally, faults } = await readResults(bench, names.output, n, warmup);
    if (tallyLine(tally) !== tallyLine(expected) || faults.length > 0) {
      throw new Error(`${scenario}: the results differ from Voter's rule\n  expected ${tallyLine(expected)}\n  got      ${tallyLine(tally)}${faults.map((f) => `\n  ${f}`).join('')}`);
    }
    progress(`${scenario}: results check out (${tallyLine(tally)})`);

    const farad = ctx.results.get('kafka-eos-k0')?.eventsPerSec ?? null;
    const faradOverKafkaStreams = farad === null ? null : ratio(farad, result.rate);
    return {
      rows: [{ scenario, eventsPerSec: round(result.rate), p50Ms: null, p99Ms: null, baseline: 'kafka-eos-k0', baselineEventsPerSec: farad, ratio: ratio(result.rate, farad) }],
      details: [
        `Apache Kafka Streams ${VERSION} (bench/kstreams/, Java 17): Voter as a Processor API topology — source → processor → sink, in-memory key-value stores votesByPhone (long → int) and votesByContestant (int → long, per task = per partition) with changelogs, hand-written single-object Avro decoding and encoding of the values (checked against Avro's BinaryMessageEncoder/Decoder at start). One JVM with default flags, processing.guarantee exactly_once_v2, num.stream.threads 2, commit.interval.ms 100 (EOS default), statestore.cache.max.bytes ${options.cacheMaxBytes ?? 0}${cached ? ' (record caching on: repeated writes to a key within a commit reach the changelog once)' : ' (record caching off: every store write goes to the changelog, as farad writes every change)'}, no standbys; producer and consumer settings Kafka Streams' defaults.`,
        `Timed like kafka-eos-k0: ${n.toLocaleString('en-US')} votes pre-loaded in one open transaction; the clock starts when it commits, once the app is RUNNING with all ${PARTITIONS} partitions (${started.startSeconds.toFixed(1)} s after the JVM started) and its group is stable${warmup > 0 ? `, and it has processed ${warmup.toLocaleString('en-US')} warm-up votes from a second input topic (own phones; ${warmupSeconds.toFixed(1)} s), so the JIT has compiled the hot paths` : ' (a cold JVM: JIT compilation runs inside the window)'}, and stops when the group's committed offsets reach the end: ${result.seconds.toFixed(2)} s. CPU of the JVM while the clock ran: ${cpu.toFixed(2)} s, ${fmt(cpuMicros, 1)} µs per vote, ${fmt(cpu / result.seconds, 2)} cores on average (user + system from /proc, all threads, JIT compilation included).`,
        `Results checked: the ${n.toLocaleString('en-US')} result records${warmup > 0 ? ' (besides the warm-up ones)' : ''}, read back read_committed, match Voter's rule replayed over the same generated votes exactly (${tallyLine(tally)}); keys, partitions and states as farad writes them.`,
        ...(faradOverKafkaStreams !== null ? [`farad (kafka-eos-k0, one instance) / Kafka Streams: ${faradOverKafkaStreams} in throughput.`] : []),
      ],
      metrics: {
        cpuSeconds: round(cpu, 3),
        cpuMicrosPerEvent: cpuMicros,
        cpuSecondsPerEvent: cpuMicros / 1e6,
        cpuCores: round(cpu / result.seconds, 3),
        startSeconds: round(started.startSeconds, 2),
        ...(warmup > 0 ? { warmupVotes: warmup } : {}),
        ...(faradOverKafkaStreams !== null ? { faradOverKafkaStreams } : {}),
      },
    };
  } finally {
    if (child) await terminate(child, 10_000);
    removeDir(stateDir);
  }
}

// ---- kafka-streams-latency ----------------------------------------------------------------------

/** Kafka Streams under the latency scenario's paced load (same producer, reader and warm-up as farad's). */
export async function kafkaStreamsLatency(
  ctx: BenchContext,
  bench: KafkaBench,
  rate: number,
  seconds: number,
  rateSource = 'given',
  options: KafkaStreamsOptions = {},
): Promise<ScenarioReport> {
  const scenario = 'kafka-streams-latency';
  const warmupSeconds = ctx.quick ? 1 : 3;
  await ensureKafkaStreamsBuilt();
  progress(`${scenario}: ${Math.round(rate).toLocaleString('en-US')} votes/s (${rateSource}) for ${warmupSeconds} s warm-up + ${seconds} s`);
  const names = appNames(ctx, 'lat', `votes_bench_${ctx.runId}_kstreams_lat_${uid(2)}`);
  await createTopic(bench.admin, names.input, PARTITIONS);
  await createTopic(bench.admin, names.output, PARTITIONS);
  bench.track([names.input, names.output, ...names.changelogs], [names.app]);
  const stateDir = mkdtempSync(join(ctx.tmp, 'kstreams-'));
  let child: Child | undefined;
  try {
    const started = await startKafkaStreams(ctx, bench, names, stateDir, options);
    child = started.child;
    const cpuBefore = processCpuSeconds(child.process.pid);
    const t0 = performance.now();
    const run = await measureLatency(scenario, bench, names.input, names.output, rate, seconds, warmupSeconds, child);
    const cpu = processCpuSeconds(child.process.pid) - cpuBefore;
    // Per vote sent, warm-up included, as the latency scenario counts farad's.
    const cpuMicros = (cpu / Math.max(1, run.sent)) * 1e6;
    const cores = cpu / ((performance.now() - t0) / 1000);
    const farad = ctx.results.get('latency');
    return {
      rows: [{ scenario, eventsPerSec: round(run.achieved), p50Ms: round(run.p50, 1), p99Ms: round(run.p99, 1), baseline: null, baselineEventsPerSec: null, ratio: null }],
      details: [
        `The Kafka Streams app of kafka-streams-eos (exactly_once_v2, 2 threads, commit.interval.ms 100 as farad's commitIntervalMs, cache ${options.cacheMaxBytes ?? 0} bytes) under the latency scenario's load: the same paced producer (${Math.round(rate).toLocaleString('en-US')} votes/s, ${rateSource}, every 5 ms, acks=all) and read_committed reader (maxWaitTimeInMs 10); latency per vote = time its result was fetched − time it was handed to the producer.`,
        `${run.measured.toLocaleString('en-US')} votes measured after ${warmupSeconds} s of warm-up (offered ${run.achieved.toFixed(0)} votes/s): p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms, max ${run.max.toFixed(1)} ms${run.missing ? `; ${run.missing} votes got no result within 30 s (left out)` : ''}. Producer acks p50 ${run.ackP50.toFixed(1)} / p99 ${run.ackP99.toFixed(1)} ms. The JVM used ${fmt(cpuMicros, 1)} µs of CPU per vote sent (warm-up included), ${fmt(cores, 2)} cores on average.`,
        ...(farad?.p99Ms != null ? [`farad (latency, one instance) at ${fmt(farad.eventsPerSec)} votes/s: p50 ${farad.p50Ms} ms, p99 ${farad.p99Ms} ms.`] : []),
      ],
      metrics: { cpuMicrosPerEvent: cpuMicros, cpuCores: round(cores, 3) },
    };
  } finally {
    if (child) await terminate(child, 10_000);
    removeDir(stateDir);
  }
}
