/**
 * failover-kill and handover-graceful: three farad instances (replicas 1, session timeout 6 s)
 * under a steady vote load; kill -9 one of them, later SIGTERM one, and measure how long the
 * results of each partition stop, as a read_committed consumer sees them.
 */
import { performance } from 'node:perf_hooks';
import { Partitioners } from 'kafkajs';
import {
  createTopic,
  kill9,
  metricValues,
  progress,
  quantile,
  readiness,
  round,
  sleep,
  spawnFarad,
  terminate,
  uid,
  waitFor,
  waitForPlacement,
  type BenchContext,
  type FaradInstance,
  type ScenarioReport,
} from './lib.js';
import { KafkaBench, PacedProducer, PARTITIONS } from './kafka.js';
import { benchVoterNames } from './voter-app.js';

const SESSION_TIMEOUT_MS = 6_000;

interface Pauses {
  /** Longest gap between consecutive results per partition, among gaps ending after the event. */
  perPartition: number[];
  moved: number[];
  /** Event → every partition active again (readiness). */
  placedMs: number;
}

export async function failover(ctx: BenchContext, bench: KafkaBench, loadRate: number): Promise<ScenarioReport> {
  const suffix = `${ctx.runId}_fo_${uid(2)}`;
  const input = `votes_bench_${suffix}`;
  const names = benchVoterNames(suffix, input);
  await createTopic(bench.admin, input, PARTITIONS);
  bench.track([input, names.output, names.changelog, names.dlq], [names.app]);
  // Info logs: the survivors' 'group assignment' and 'partition restored' lines give the timeline.
  const options = { brokers: ctx.brokers, suffix, input, replicas: 1, env: { FARAD_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS), FARAD_LOG_LEVEL: process.env['FARAD_BENCH_CHILD_LOG_LEVEL'] ?? 'info' } };
  const ids = ['fo-a', 'fo-b', 'fo-c'];
  const instances = new Map<string, FaradInstance>();
  const start = async (id: string) => instances.set(id, await spawnFarad(id, options));
  const live = () => [...instances.values()].filter((i) => i.running());

  const arrivals: number[][] = Array.from({ length: PARTITIONS }, () => []);
  const readerGroup = `failover_reader_${suffix}`;
  bench.track([], [readerGroup]);
  const consumer = bench.kafka.consumer({ groupId: readerGroup, readUncommitted: false, maxWaitTimeInMs: 10 });
  const producer = bench.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  let paced: PacedProducer | undefined;
  let load: Promise<void> | undefined;
  try {
    progress(`failover: starting 3 farad instances (replicas 1, session timeout ${SESSION_TIMEOUT_MS} ms)`);
    for (const id of ids) await start(id);
    await waitForPlacement(live(), PARTITIONS, 180_000);
    await waitFor('output topic', async () => (await bench.admin.listTopics()).includes(names.output));
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.connect();
    await consumer.subscribe({ topics: [names.output], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        if (batch.messages.length > 0) arrivals[batch.partition]!.push(performance.now());
      },
    });
    await waitFor('result reader to join', () => joined);
    await producer.connect();
    paced = new PacedProducer(producer, input, await bench.encoder(), loadRate, 202);
    load = paced.run();
    progress(`failover: load ${loadRate.toLocaleString('en-US')} votes/s; waiting for warm standbys`);
    await settle(live(), arrivals, ctx.quick ? 3_000 : 8_000);

    // kill -9 the instance with the most active partitions.
    const killed = await busiest(live());
    progress(`failover-kill: kill -9 ${killed.instance.id} (active ${killed.active.join(',')})`);
    const tKill = performance.now();
    const wallKill = Date.now();
    await kill9(killed.instance);
    const kill = await recovery(live(), arrivals, tKill, killed.active);
    const killTimeline = timeline(live(), wallKill, kill);
    progress(`failover-kill: longest pause ${Math.round(Math.max(...kill.perPartition))} ms (partitions active again after ${Math.round(kill.placedMs)} ms)`);

    // Bring it back, let the group settle, then hand over gracefully.
    instances.delete(killed.instance.id);
    await start(killed.instance.id);
    await waitForPlacement(live(), PARTITIONS, 180_000);
    await settle(live(), arrivals, ctx.quick ? 3_000 : 8_000);
    const stopped = await busiest(live());
    progress(`handover-graceful: SIGTERM ${stopped.instance.id} (active ${stopped.active.join(',')})`);
    const tTerm = performance.now();
    const wallTerm = Date.now();
    const exited = terminate(stopped.instance);
    const survivors = live().filter((i) => i !== stopped.instance);
    const graceful = await recovery(survivors, arrivals, tTerm, stopped.active);
    await exited;
    const termTimeline = timeline(survivors, wallTerm, graceful, stopped.instance);
    progress(`handover-graceful: longest pause ${Math.round(Math.max(...graceful.perPartition))} ms`);

    const row = (scenario: string, p: Pauses) => ({
      scenario,
      eventsPerSec: null,
      p50Ms: round(quantile(p.perPartition, 0.5)),
      p99Ms: round(Math.max(...p.perPartition)),
      baseline: null,
      baselineEventsPerSec: null,
      ratio: null,
    });
    const describe = (p: Pauses) =>
      `partitions ${p.perPartition.map((ms, i) => `${i}${p.moved.includes(i) ? '*' : ''}: ${Math.round(ms)}`).join(', ')} ms (* = moved); every partition active again ${Math.round(p.placedMs)} ms after the signal`;
    return {
      rows: [row('failover-kill', kill), row('handover-graceful', graceful)],
      rowDetails: {
        'failover-kill': [`kill -9 of ${killed.instance.id}: ${describe(kill)}.`, `Timeline after the kill: ${killTimeline}.`],
        'handover-graceful': [`SIGTERM of ${stopped.instance.id}: ${describe(graceful)}.`, `Timeline after the signal: ${termTimeline}.`],
      },
      details: [
        `Three instances (\`node --import tsx src/cli/main.ts run\`, FARAD_TRANSPORT=kafka, FARAD_REPLICAS=1, FARAD_SESSION_TIMEOUT_MS=${SESSION_TIMEOUT_MS}), a paced producer at ${loadRate.toLocaleString('en-US')} votes/s and a read_committed reader of the results (maxWaitTimeInMs 10). The victim is the instance with the most active partitions.`,
        `**Here \`p50Ms\` / \`p99Ms\` carry pauses, \`eventsPerSec\` is null**: a partition's pause is the longest gap between two consecutive fetched results that ends after the signal; \`p50Ms\` = median over the ${PARTITIONS} partitions, \`p99Ms\` = the longest (the number checked against the target).`,
      ],
    };
  } finally {
    paced?.stop();
    await load?.catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await consumer.disconnect().catch(() => undefined);
    for (const instance of instances.values()) await terminate(instance, 15_000);
  }
}

/**
 * What the logs say happened after the signal: when each survivor got its new assignment and
 * restored each moved partition (and from where), and when the stopped instance exited.
 */
function timeline(survivors: FaradInstance[], wallT: number, pauses: Pauses, stopped?: FaradInstance): string {
  const events: Array<{ at: number; text: string }> = [];
  const scan = (instance: FaradInstance, pick: (entry: { time: number; msg: string; [k: string]: unknown }) => string | undefined) => {
    for (const line of instance.output().split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry: { time: number; msg: string; [k: string]: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if (typeof entry.time !== 'number' || entry.time < wallT) continue;
      const text = pick(entry);
      if (text) events.push({ at: entry.time - wallT, text: `${instance.id} ${text}` });
    }
  };
  for (const instance of survivors) {
    let assignments = 0;
    scan(instance, (e) => {
      if (e.msg === 'group assignment' && assignments++ === 0) return `assigned [${String(e['partitions'])}]`;
      if (e.msg === 'partition restored' && pauses.moved.includes(Number(e['partition']))) {
        return `restored ${String(e['partition'])} from ${String(e['source'])} (${Number(e['changelogRecords'])} changelog records, ${(Number(e['seconds']) * 1000).toFixed(0)} ms)`;
      }
      return undefined;
    });
  }
  if (stopped) scan(stopped, (e) => (e.msg === 'farad stopped' ? 'stopped' : undefined));
  events.sort((a, b) => a.at - b.at);
  return events.length === 0 ? 'no log lines' : events.map((e) => `+${e.at} ms ${e.text}`).join('; ');
}

async function busiest(instances: FaradInstance[]): Promise<{ instance: FaradInstance; active: number[] }> {
  let best: { instance: FaradInstance; active: number[] } | undefined;
  for (const instance of instances) {
    const r = await readiness(instance);
    if (r && (!best || r.active.length > best.active.length)) best = { instance, active: r.active };
  }
  if (!best) throw new Error('no instance answers /readyz');
  return best;
}

/** Every partition produces results, every partition has a caught-up standby; then `extraMs` more. */
async function settle(instances: FaradInstance[], arrivals: number[][], extraMs: number): Promise<void> {
  const since = performance.now();
  await waitFor(
    'results from every partition and warm standbys',
    async () => {
      if (arrivals.some((a) => (a.at(-1) ?? 0) < since)) return false;
      const lags = (await Promise.all(instances.map((i) => metricValues(i, 'farad_standby_lag_records')))).flat();
      return lags.length >= PARTITIONS && lags.every((l) => l.value < 1_000);
    },
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  await sleep(extraMs);
}

/** Waits until the survivors hold every partition and each has results again, then 2 s more. */
async function recovery(survivors: FaradInstance[], arrivals: number[][], t: number, moved: number[]): Promise<Pauses> {
  await waitForPlacement(survivors, PARTITIONS, 120_000);
  const placedMs = performance.now() - t;
  await waitFor('results from every partition after the event', () => arrivals.every((a) => (a.at(-1) ?? 0) > t + placedMs), {
    timeoutMs: 60_000,
    intervalMs: 50,
  });
  await sleep(2_000);
  const perPartition = arrivals.map((a) => {
    let longest = 0;
    for (let i = 1; i < a.length; i++) if (a[i]! > t && a[i]! - a[i - 1]! > longest) longest = a[i]! - a[i - 1]!;
    return longest;
  });
  return { perPartition, moved, placedMs };
}
