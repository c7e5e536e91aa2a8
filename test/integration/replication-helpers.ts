/**
 * Helpers of the primary/backup tests (failover, handover, snapshots): farad children with a
 * known HTTP port and advertised URL, their metrics per label, a steady vote producer, a
 * read_committed reader that keeps the broker's append time of every output record, the longest
 * output pause per partition, and a private redis-server the tests may kill and restart.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Redis } from 'ioredis';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { TestContext } from 'node:test';
import type { Service } from '../../src/index.js';
import {
  brokers,
  cleanUpVoter,
  createTopic,
  diffOutcomes,
  freePort,
  leaderboard,
  outcomesFromResults,
  plainProducer,
  produceVotes,
  readTopic,
  ROOT,
  sleep,
  testKafka,
  uid,
  voterNames,
  VoterTally,
  waitFor,
  type ReadRecord,
  type Vote,
  type VoterNames,
} from './helpers.js';

export const VOTER_FIXTURE = join(ROOT, 'test/integration/fixtures/voter-app.ts');
export const PARTITIONS = 8;
export const ALL_PARTITIONS = Array.from({ length: PARTITIONS }, (_, p) => p);

// ---- farad children --------------------------------------------------------------------------

export interface Instance {
  readonly id: string;
  readonly child: ChildProcess;
  readonly base: string;
  readonly startedAt: number;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `farad run --app <fixture>` on Kafka as a child process, on a free port it also advertises,
 * with FARAD_INSTANCE_ID = `id`. `env` is added last (it may unset FARAD_* by mapping to '').
 */
export async function spawnInstance(id: string, env: Record<string, string>, appPath = VOTER_FIXTURE): Promise<Instance> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const fullEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    FARAD_TRANSPORT: 'kafka',
    FARAD_KAFKA_BROKERS: brokers().join(','),
    FARAD_HTTP_PORT: String(port),
    FARAD_HTTP_HOST: '127.0.0.1',
    FARAD_ADVERTISED_URL: base,
    FARAD_LOG_LEVEL: process.env.FARAD_TEST_CHILD_LOG_LEVEL ?? 'warn',
    FARAD_INSTANCE_ID: id,
    // One process per instance unless a test asks for workers: faults are signals to that process.
    FARAD_WORKERS: '1',
    ...env,
  };
  for (const [k, v] of Object.entries(fullEnv)) if (v === '') delete fullEnv[k];
  const startedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'run', '--app', appPath], {
    cwd: ROOT,
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      // Debugging aid: FARAD_TEST_CHILD_LOG_DIR keeps every child's output in a file.
      const dir = process.env.FARAD_TEST_CHILD_LOG_DIR;
      if (dir) writeFileSync(join(dir, `${id}-${startedAt}.log`), output);
      resolve({ code, signal });
    }),
  );
  return { id, child, base, startedAt, output: () => output, exited };
}

/** The worker processes of an instance started with several workers (its live child processes). */
export function workerPids(instance: Instance): number[] {
  const pid = instance.child.pid;
  if (pid === undefined) return [];
  return processes((p, stat) => Number(stat[1]) === pid && stat[0] !== 'Z');
}

/** Whether a process runs (a zombie left to an init that does not reap it counts as gone). */
export function alive(pid: number): boolean {
  const stat = statOf(pid);
  return stat !== undefined && stat[0] !== 'Z';
}

/** Live processes whose environment holds `entry` (`NAME=value`): an instance's workers, wherever they were reparented. */
export function processesWithEnv(entry: string): number[] {
  return processes((pid, stat) => stat[0] !== 'Z' && readText(`/proc/${pid}/environ`)?.split('\0').includes(entry) === true);
}

/** Pids of /proc whose stat fields (after the command name: state, ppid, ...) pass `keep`, ascending. */
function processes(keep: (pid: number, stat: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = statOf(Number(entry));
    if (stat && keep(Number(entry), stat)) out.push(Number(entry));
  }
  return out.sort((a, b) => a - b);
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces); undefined once it is gone. */
function statOf(pid: number): string[] | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** A file's text, or undefined when it is gone or not ours to read. */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function isRunning(instance: Instance): boolean {
  return instance.child.exitCode === null && instance.child.signalCode === null;
}

/** kill -9, and wait until the process is gone. Returns when the signal was sent. */
export async function kill9(instance: Instance): Promise<number> {
  const at = Date.now();
  if (isRunning(instance)) instance.child.kill('SIGKILL');
  await instance.exited;
  return at;
}

/** SIGTERM, and wait for the exit (graceful stop: commit, leave the group, final snapshots). */
export async function terminate(instance: Instance, timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (isRunning(instance)) instance.child.kill('SIGTERM');
  const timer = setTimeout(() => instance.child.kill('SIGKILL'), timeoutMs);
  try {
    return await instance.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The last `chars` characters of each instance's output, for failure messages. */
export function outputs(instances: readonly Instance[], chars = 3000): string {
  return instances.map((i) => `--- ${i.id} (${isRunning(i) ? 'running' : 'exited'}) ---\n${i.output().slice(-chars)}`).join('\n');
}

/** Runs `probe` with `waitFor`, adding the instances' logs to a timeout. */
export async function waitWithLogs<T>(
  what: string,
  instances: readonly Instance[],
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  try {
    return await waitFor(what, probe, options);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${outputs(instances)}`);
  }
}

export async function readyz(instance: Instance): Promise<boolean> {
  try {
    return (await fetch(`${instance.base}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

// ---- metrics -----------------------------------------------------------------------------------

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Every sample of one metric on an instance (throws when the instance does not answer). */
export async function samples(base: string, name: string): Promise<Sample[]> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${base}/metrics: ${res.status}`);
  const out: Sample[] = [];
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    out.push({ labels, value: Number(m[4]) });
  }
  return out;
}

export async function total(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return (await samples(base, name))
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Partitions active on an instance (farad_partition_role{role="active"} = 1). */
export async function activePartitions(base: string): Promise<number[]> {
  return (await samples(base, 'farad_partition_role'))
    .filter((s) => s.labels.role === 'active' && s.value === 1)
    .map((s) => Number(s.labels.partition))
    .sort((a, b) => a - b);
}

/** Partitions an instance keeps a standby copy of (it reports farad_standby_lag_records for them). */
export async function standbyPartitions(base: string): Promise<Array<{ partition: number; lag: number }>> {
  return (await samples(base, 'farad_standby_lag_records'))
    .map((s) => ({ partition: Number(s.labels.partition), lag: s.value }))
    .sort((a, b) => a.partition - b.partition);
}

export interface ClusterView {
  readonly active: Map<string, number[]>;
  readonly standby: Map<string, Array<{ partition: number; lag: number }>>;
}

export async function clusterView(instances: readonly Instance[]): Promise<ClusterView> {
  const active = new Map<string, number[]>();
  const standby = new Map<string, Array<{ partition: number; lag: number }>>();
  for (const i of instances) {
    active.set(i.id, await activePartitions(i.base));
    standby.set(i.id, await standbyPartitions(i.base));
  }
  return { active, standby };
}

/** Every partition active on exactly one of the instances, all of them ready. */
export async function settled(instances: readonly Instance[]): Promise<ClusterView | undefined> {
  for (const i of instances) if (!(await readyz(i))) return undefined;
  const view = await clusterView(instances);
  const owners = [...view.active.values()].flat().sort((a, b) => a - b);
  if (owners.join() !== ALL_PARTITIONS.join()) return undefined;
  return view;
}

/** Settled, and every partition has a standby copy on an instance other than its owner. */
export async function settledWithStandbys(instances: readonly Instance[]): Promise<ClusterView | undefined> {
  const view = await settled(instances);
  if (!view) return undefined;
  for (const p of ALL_PARTITIONS) {
    const owner = [...view.active].find(([, ps]) => ps.includes(p))![0];
    const backups = [...view.standby].filter(([id, ps]) => id !== owner && ps.some((s) => s.partition === p));
    if (backups.length === 0) return undefined;
  }
  return view;
}

export function describeView(view: ClusterView): string {
  return [...view.active]
    .map(([id, ps]) => `${id}: active [${ps.join(',')}] standby [${(view.standby.get(id) ?? []).map((s) => `${s.partition}(lag ${s.lag})`).join(',')}]`)
    .join('; ');
}

// ---- a replication fault test's cluster -------------------------------------------------------------

/** What a replication fault test works with; `steady` and `restored` are stopped after the test when set. */
export interface ReplicationFixture {
  readonly suffix: string;
  readonly names: VoterNames;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  /** Every farad child started: all are killed after the test. */
  readonly instances: Instance[];
  /** Environment of the Voter children: this test's topics, replicas 1, the given session timeout. */
  readonly env: Record<string, string>;
  steady?: SteadyProducer;
  restored?: Service;
}

/**
 * A fresh Voter app on Kafka for a replication fault test: its input and timed output topics, a
 * plain producer, and cleanup of everything the test starts (children, producers, topics).
 */
export async function replicationFixture(t: TestContext, sessionTimeoutMs: number): Promise<ReplicationFixture> {
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const producer = await plainProducer(kafka);
  const fixture: ReplicationFixture = {
    suffix,
    names,
    kafka,
    admin,
    producer,
    instances: [],
    env: { FARAD_TEST_VOTER_SUFFIX: suffix, FARAD_REPLICAS: '1', FARAD_SESSION_TIMEOUT_MS: String(sessionTimeoutMs) },
  };
  t.after(async () => {
    await fixture.steady?.stop().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    for (const i of fixture.instances) await kill9(i);
    await fixture.restored?.stop().catch(() => undefined);
    await cleanUpVoter(admin, names);
    await admin.disconnect();
  });
  await createTopic(admin, names.input, PARTITIONS);
  await createTimedOutputTopic(admin, names);
  return fixture;
}

// ---- steady input ------------------------------------------------------------------------------

/**
 * Produces `votes` in order, `perTick` every `tickMs`, until they run out or `stop()` is called.
 * `sent()` is exactly the votes acknowledged so far (a prefix of `votes`).
 */
export class SteadyProducer {
  private count = 0;
  private stopped = false;
  private readonly done: Promise<void>;
  firstSentAt = 0;
  lastSentAt = 0;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly votes: readonly Vote[],
    { perTick = 25, tickMs = 50 }: { perTick?: number; tickMs?: number } = {},
  ) {
    this.done = (async () => {
      while (!this.stopped && this.count < votes.length) {
        const started = Date.now();
        const chunk = votes.slice(this.count, this.count + perTick);
        await produceVotes(producer, topic, chunk, perTick);
        if (this.firstSentAt === 0) this.firstSentAt = started;
        this.lastSentAt = Date.now();
        this.count += chunk.length;
        const wait = tickMs - (Date.now() - started);
        if (wait > 0) await sleep(wait);
      }
    })();
  }

  get produced(): number {
    return this.count;
  }

  get exhausted(): boolean {
    return this.count >= this.votes.length;
  }

  sent(): Vote[] {
    return this.votes.slice(0, this.count);
  }

  /** Stops after the send in flight; resolves when the producer is idle. */
  async stop(): Promise<Vote[]> {
    this.stopped = true;
    await this.done;
    return this.sent();
  }
}

/**
 * Creates the app's output topic before farad does, with the broker's append time as record
 * timestamp (farad copies the input's timestamp into what it emits, which says nothing about when
 * it was processed). Read_committed, the timestamps then show processing pauses.
 */
export async function createTimedOutputTopic(admin: Admin, names: VoterNames): Promise<void> {
  await createTopic(admin, names.output, PARTITIONS, [{ name: 'message.timestamp.type', value: 'LogAppendTime' }]);
}

/** A record with its timestamp: on the LogAppendTime topics these tests create, the broker's append time. */
export type TimedRecord = ReadRecord;

/** Reads a whole topic (read_committed) up to the end offsets it has when called; see helpers' readTopic. */
export function readTopicTimed(kafka: Kafka, topic: string, timeoutMs = 40_000): Promise<TimedRecord[]> {
  return readTopic(kafka, topic, { timeoutMs });
}

export interface Pause {
  readonly partition: number;
  readonly ms: number;
  /** Timestamps of the records around the gap. */
  readonly from: number;
  readonly to: number;
}

/**
 * The longest gap between consecutive output records of each partition, counting only gaps that
 * end within [windowStart, windowEnd] (while input kept arriving, so any long gap is a pause).
 */
export function longestGaps(records: readonly TimedRecord[], windowStart: number, windowEnd: number): Map<number, Pause> {
  const out = new Map<number, Pause>();
  const byPartition = new Map<number, TimedRecord[]>();
  for (const r of records) {
    let list = byPartition.get(r.partition);
    if (!list) byPartition.set(r.partition, (list = []));
    list.push(r);
  }
  for (const [partition, list] of byPartition) {
    list.sort((a, b) => a.offset - b.offset);
    let best: Pause = { partition, ms: 0, from: 0, to: 0 };
    for (let i = 1; i < list.length; i++) {
      const from = list[i - 1]!.timestamp;
      const to = list[i]!.timestamp;
      if (to < windowStart || from > windowEnd) continue;
      if (to - from > best.ms) best = { partition, ms: to - from, from, to };
    }
    out.set(partition, best);
  }
  return out;
}

/** Per partition, the first output record's timestamp at or after `at` (undefined: none). */
export function firstOutputAfter(records: readonly TimedRecord[], at: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of records) {
    if (r.timestamp < at) continue;
    const seen = out.get(r.partition);
    if (seen === undefined || r.timestamp < seen) out.set(r.partition, r.timestamp);
  }
  return out;
}

/** Per phone, how many VoteAccepted records carry it (from decoded outcome strings). */
export function acceptedCounts(byPhone: ReadonlyMap<number, readonly string[]>): Map<number, number> {
  return new Map([...byPhone].map(([phone, outcomes]) => [phone, outcomes.filter((o) => o.startsWith('accepted:')).length]));
}

// ---- a private redis-server --------------------------------------------------------------------

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Starts (or restarts) redis-server on the same port; resolves when it answers PING. */
  start(): Promise<void>;
  /** SIGKILLs it (if running) and waits for the exit. */
  stop(): Promise<void>;
  running(): boolean;
}

/** A redis-server of this test alone on a free loopback port, no persistence. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    port,
    url,
    running,
    async start() {
      if (running()) return;
      const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = proc;
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      let stderr = '';
      proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      await waitFor(
        `redis-server on port ${port} to answer`,
        async () => {
          if (proc.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
          const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
          client.on('error', () => undefined);
          try {
            await client.connect();
            return (await client.ping()) === 'PONG';
          } finally {
            client.disconnect();
          }
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      );
    },
    async stop() {
      if (running()) child!.kill('SIGKILL');
      await exited;
    },
  };
}

/** A plain ioredis client of the test (fails fast; for inspecting and corrupting snapshots). */
/** Deletes an app's snapshots from Redis (test clean-up; never fails). */
export async function deleteSnapshots(url: string, app: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys = await redis.keys(`farad:{${app}:*`);
    if (keys.length > 0) await redis.del(...keys);
  } catch {
    // best effort
  } finally {
    redis.disconnect();
  }
}

export function testRedis(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  return client;
}

// ---- exactly-once checks -----------------------------------------------------------------------

/**
 * The output topic (read_committed) against an independent tally of the votes produced: exactly
 * one VoteAccepted/VoteRejected per vote, at most two accepted per phone, and per phone the
 * outcomes of its votes in production order (one phone = one partition = one order).
 */
export function assertResultsMatch(records: readonly ReadRecord[], sent: readonly Vote[]): VoterTally {
  const tally = new VoterTally(sent);
  const { byPhone, problems } = outcomesFromResults(records);
  assert.deepEqual(problems, [], 'every output record is a VoteAccepted/VoteRejected keyed by its phone');
  assert.equal(records.length, sent.length, 'exactly one committed result per produced vote (none lost, none doubled)');
  const overLimit = [...acceptedCounts(byPhone)].filter(([, n]) => n > 2);
  assert.deepEqual(overLimit, [], 'no phone has more than 2 accepted votes');
  for (const [phone, n] of acceptedCounts(byPhone)) {
    if (n !== (tally.acceptedByPhone.get(phone) ?? 0)) assert.fail(`phone ${phone}: ${n} accepted in the output, tally says ${tally.acceptedByPhone.get(phone) ?? 0}`);
  }
  assert.deepEqual(diffOutcomes(tally.outcomesByPhone, byPhone), [], 'per phone, the outcomes of its votes in order = the tally');
  return tally;
}

/** Every row of a partitioned table, paging through GET /tables/:table (all partitions must be hosted). */
export async function readTable(base: string, table: string): Promise<Map<string, unknown>> {
  const rows = new Map<string, unknown>();
  let after: string | null = null;
  for (;;) {
    const url: string = `${base}/tables/${table}?limit=1000${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { items: Array<{ key: string | number; value: unknown }>; next: string | number | null };
    for (const item of page.items) rows.set(String(item.key), item.value);
    if (page.next === null) return rows;
    after = String(page.next);
  }
}

/** votesByPhone and the leaderboard of one instance hosting every partition = the tally. */
export async function assertStateMatches(base: string, tally: VoterTally): Promise<Map<string, unknown>> {
  const board = await waitFor('the leaderboard', () => leaderboard(base), { timeoutMs: 30_000, intervalMs: 200 });
  assert.deepEqual(board, tally.leaderboard(), 'leaderboard = tally');
  const rows = await readTable(base, 'votesByPhone');
  const expected = new Map([...tally.acceptedByPhone].map(([phone, accepted]) => [String(phone), { accepted }]));
  assert.equal(rows.size, expected.size, 'votesByPhone has one row per phone with an accepted vote');
  for (const [phone, value] of expected) {
    if (!isDeepStrictEqual(rows.get(phone), value)) assert.fail(`votesByPhone[${phone}] = ${JSON.stringify(rows.get(phone))}, tally says ${JSON.stringify(value)}`);
  }
  return rows;
}

export function fmt(ms: number): string {
  return `${Math.round(ms)} ms`;
}
