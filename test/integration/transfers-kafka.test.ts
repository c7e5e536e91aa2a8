// Multi-partition transactions on Kafka: the bank example's transfers (debit one account, credit
// another, wherever they live) and its consistent `total`, with farad children that are killed.
// Every test keeps an independent ledger of what it produced (deposits, withdrawals, transfers
// with what each must or may come to) and checks it against what a read_committed consumer sees
// and what the instances answer:
//  - money is conserved: every GET /queries/total asked while transfers run, on every instance,
//    equals deposits − withdrawals (a consistent query never sees half a transfer);
//  - exactly one TransferCompleted or TransferRejected per transfer, equal to what was sent, the
//    deterministic rejections (SAME_ACCOUNT, NOT_POSITIVE, more than all the money) as planned;
//  - the final balances (GET /tables/balances) = the funds + every completed transfer, none
//    negative, summing to GET /queries/total;
//  - the outcomes are those of a serial run in one order: the committed requests of the protocol
//    topic's partition 0, where the coordinator queues them (each transfer queued exactly once).
// The tests:
//  1. two instances, replicas 1: kill -9 of the coordinator's instance (owner of partition 0)
//     while transfers stream, its restart, then kill -9 of the other one (a participant);
//  2. one instance killed (-9) while transfers are in flight and started again, restoring from the
//     changelog or from Redis snapshots;
//  3. latency and throughput of consistent queries: idle, many clients, under transfer load;
//  4. a burst of transfers produced at once: the coordinator's queue under a backlog (one row per request).
// The protocol topic (`<app>-mp`) and the results topic are created by the test with the broker's
// append time as timestamps: the protocol topic then shows which rounds a kill interrupted, the
// results topic when each transfer was decided. Each kill is aimed: the victim is frozen (SIGSTOP)
// as soon as a round is seen open, and killed (-9) once the log confirms the round is undecided
// there (else thawed, and the next round tried).
// The protocol topic is read with kcat: its partition 0 is written by every partition's
// transactional producer, and kafkajs 2.2.4 (whose read_committed filter expects aborted
// transactions sorted by first offset, which brokers do not promise) can hand out records of
// aborted transactions there; librdkafka sorts them, as the Java client does. Every partition of
// the results topic has one writer (the coordinator's producer), so kafkajs reads it right.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import bank from '../../examples/bank/index.js';
import { brokers, createTopic, deleteGroups, deleteTopics, kafkaPartition, plainProducer, prng, readTopic, requireKcat, ROOT, sleep, testKafka, uid, waitFor, type ReadRecord } from './helpers.js';
import { deleteSnapshots, fmt, isRunning, kill9, outputs, readTable, spawnInstance, terminate, waitWithLogs, type Instance } from './replication-helpers.js';
import { bankNames, type BankNames } from './fixtures/transfers-bank-app.js';
import { SingleObjects } from './single-objects.js';

const BANK_FIXTURE = join(ROOT, 'test/integration/fixtures/transfers-bank-app.ts');
const PARTITIONS = bank.spec.partitions;
const ALL_PARTITIONS = Array.from({ length: PARTITIONS }, (_, p) => p);
const SESSION_TIMEOUT_MS = 6000;
/** Accounts the tests move money between. */
const ACCOUNTS = 200;

// ---- Avro single-object encoding of the bank's events, from the schemas it declares ------------



const objects = new SingleObjects(bank);

// ---- the ledger: what the test sends and what each transfer must or may come to -----------------

interface Transfer {
  readonly transferId: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
}

type Reason = 'INSUFFICIENT_FUNDS' | 'SAME_ACCOUNT' | 'NOT_POSITIVE';
/** What a transfer must come to: a fixed rejection, or (enough money or not) completed or INSUFFICIENT_FUNDS. */
type Expect = Reason | 'funds-permitting';

interface Planned extends Transfer {
  readonly expect: Expect;
}

interface Funds {
  readonly deposits: ReadonlyArray<{ account: string; amount: number }>;
  readonly withdrawals: ReadonlyArray<{ account: string; amount: number }>;
  /** Balances once both are applied (one account's commands share a partition: applied in the order sent). */
  readonly balances: ReadonlyMap<string, number>;
  readonly deposited: number;
  /** Withdrawals accepted (the rest are over the balance: WithdrawalRejected). */
  readonly withdrawn: number;
  readonly rejectedWithdrawals: number;
  /** deposits − accepted withdrawals: what GET /queries/total must answer while only transfers run. */
  readonly total: number;
}

function accountNames(suffix: string): string[] {
  return Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}-${suffix}`);
}

/** One or two deposits per account, then withdrawals of a sixth of them (a third of those over the balance). */
function makeFunds(accounts: readonly string[], seed: number): Funds {
  const random = prng(seed);
  const deposits: Array<{ account: string; amount: number }> = [];
  const balances = new Map<string, number>();
  for (const account of accounts) {
    for (let n = random() < 0.3 ? 2 : 1; n > 0; n--) {
      const amount = 200 + Math.floor(random() * 1000);
      deposits.push({ account, amount });
      balances.set(account, (balances.get(account) ?? 0) + amount);
    }
  }
  const withdrawals: Array<{ account: string; amount: number }> = [];
  let withdrawn = 0;
  let rejectedWithdrawals = 0;
  accounts.forEach((account, i) => {
    if (i % 6 !== 0) return;
    const balance = balances.get(account)!;
    const amount = i % 18 === 0 ? balance + 1 + Math.floor(random() * 100) : 1 + Math.floor(random() * (balance / 2));
    withdrawals.push({ account, amount });
    if (amount > balance) rejectedWithdrawals++;
    else {
      balances.set(account, balance - amount);
      withdrawn += amount;
    }
  });
  const deposited = deposits.reduce((s, d) => s + d.amount, 0);
  return { deposits, withdrawals, balances, deposited, withdrawn, rejectedWithdrawals, total: deposited - withdrawn };
}

/**
 * `count` transfers between random accounts (three quarters cross partitions), amounts 1-400: as
 * balances drift some run short (INSUFFICIENT_FUNDS, decided by the order they run in). About 3%
 * each are NOT_POSITIVE (0 or less), SAME_ACCOUNT, and more than all the money there is.
 */
function planTransfers(count: number, accounts: readonly string[], total: number, suffix: string, seed: number): Planned[] {
  const random = prng(seed);
  const pick = (): string => accounts[Math.floor(random() * accounts.length)]!;
  const other = (from: string): string => {
    for (;;) {
      const to = pick();
      if (to !== from) return to;
    }
  };
  return Array.from({ length: count }, (_, i) => {
    const transferId = `x${i}-${suffix}`;
    const from = pick();
    const r = random();
    if (r < 0.03) return { transferId, from, to: other(from), amount: -Math.floor(random() * 50), expect: 'NOT_POSITIVE' };
    if (r < 0.06) return { transferId, from, to: from, amount: 1 + Math.floor(random() * 100), expect: 'SAME_ACCOUNT' };
    if (r < 0.09) return { transferId, from, to: other(from), amount: total + 1 + Math.floor(random() * 1000), expect: 'INSUFFICIENT_FUNDS' };
    return { transferId, from, to: other(from), amount: 1 + Math.floor(random() * 400), expect: 'funds-permitting' };
  });
}

/** The bank's rules for one transfer, on `balances` (changed when it completes). */
function applyTransfer(balances: Map<string, number>, t: Transfer): 'completed' | Reason {
  if (t.amount <= 0) return 'NOT_POSITIVE';
  if (t.from === t.to) return 'SAME_ACCOUNT';
  const from = balances.get(t.from) ?? 0;
  if (t.amount > from) return 'INSUFFICIENT_FUNDS';
  balances.set(t.from, from - t.amount);
  balances.set(t.to, (balances.get(t.to) ?? 0) + t.amount);
  return 'completed';
}

async function sendFunds(producer: Producer, topic: string, funds: Funds): Promise<void> {
  // Deposits before withdrawals: one send, one account's records on one partition, in this order.
  await producer.send({
    topic,
    acks: -1,
    messages: [
      ...funds.deposits.map((d) => ({ key: d.account, value: objects.encode('Deposit', d) })),
      ...funds.withdrawals.map((w) => ({ key: w.account, value: objects.encode('Withdrawal', w) })),
    ],
  });
}

/** Produces transfers keyed by `from`, `perTick` every `tickMs`, until they run out or `stop()`; keeps each one's send time. */
class TransferStream {
  private count = 0;
  private stopped = false;
  private readonly done: Promise<void>;
  readonly sentAt = new Map<string, number>();
  firstSentAt = 0;
  lastSentAt = 0;

  constructor(
    producer: Producer,
    topic: string,
    private readonly plan: readonly Planned[],
    { perTick, tickMs }: { perTick: number; tickMs: number },
  ) {
    this.done = (async () => {
      while (!this.stopped && this.count < plan.length) {
        const started = Date.now();
        const chunk = plan.slice(this.count, this.count + perTick);
        await producer.send({ topic, acks: -1, messages: chunk.map((t) => ({ key: t.from, value: objects.encode('Transfer', t) })) });
        for (const t of chunk) this.sentAt.set(t.transferId, started);
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

  sent(): Planned[] {
    return this.plan.slice(0, this.count);
  }

  /** Stops after the send in flight; resolves with every transfer acknowledged. */
  async stop(): Promise<Planned[]> {
    this.stopped = true;
    await this.done;
    return this.sent();
  }
}

// ---- consistent totals, asked all along -----------------------------------------------------

interface TotalAnswer {
  readonly instance: string;
  readonly at: number;
  readonly ms: number;
  readonly status: number;
  readonly total?: number;
  readonly error?: string;
}

async function askTotal(base: string, timeoutMs = 20_000): Promise<{ status: number; total?: number; error?: string }> {
  try {
    const res = await fetch(`${base}/queries/total`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    if (res.status !== 200) return { status: res.status, error: text.slice(0, 300) };
    const body = JSON.parse(text) as { total?: unknown };
    if (typeof body.total !== 'number') return { status: res.status, error: `no total in ${text.slice(0, 300)}` };
    return { status: 200, total: body.total };
  } catch (err) {
    return { status: 0, error: (err as Error).message };
  }
}

/**
 * Asks GET /queries/total of every running instance every `intervalMs` (one request in flight per
 * instance at most) until stopped, and keeps every answer.
 */
class TotalPoller {
  readonly answers: TotalAnswer[] = [];
  private stopped = false;
  private readonly busy = new Set<Instance>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly done: Promise<void>;

  constructor(targets: () => readonly Instance[], intervalMs = 150) {
    this.done = (async () => {
      while (!this.stopped) {
        for (const instance of targets()) {
          if (!isRunning(instance) || this.busy.has(instance)) continue;
          this.busy.add(instance);
          const at = Date.now();
          const ask: Promise<void> = askTotal(instance.base).then((answer) => {
            this.answers.push({ instance: instance.id, at, ms: Date.now() - at, ...answer });
            this.busy.delete(instance);
            this.inFlight.delete(ask);
          });
          this.inFlight.add(ask);
        }
        await sleep(intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await Promise.all([...this.inFlight]);
  }

  ok(): TotalAnswer[] {
    return this.answers.filter((a) => a.status === 200);
  }

  /** Answers whose total is not `expected`: a transfer half seen (or money made or lost). */
  wrong(expected: number): TotalAnswer[] {
    return this.ok().filter((a) => a.total !== expected);
  }

  /** The first 200 answer asked at or after `at` on any of `instances`. */
  firstOkAfter(at: number, instances?: ReadonlySet<string>): TotalAnswer | undefined {
    return this.ok()
      .filter((a) => a.at >= at && (!instances || instances.has(a.instance)))
      .sort((x, y) => x.at + x.ms - (y.at + y.ms))[0];
  }

  describeFailures(): string {
    const byKind = new Map<string, number>();
    for (const a of this.answers) {
      if (a.status === 200) continue;
      const kind = `${a.instance} ${a.status} ${(a.error ?? '').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 120)}`;
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    }
    return [...byKind].map(([k, n]) => `${n}x ${k}`).join('; ') || 'none';
  }
}

// ---- a live read_committed count of the results ---------------------------------------------

/** Every committed TransferCompleted / TransferRejected of the results topic, from the beginning, while the test runs. */
class ResultsWatcher {
  readonly ids = new Set<string>();

  private constructor(
    private readonly consumer: Consumer,
    private readonly admin: Admin,
    private readonly groupId: string,
  ) {}

  static async start(kafka: Kafka, admin: Admin, topic: string): Promise<ResultsWatcher> {
    const groupId = `farad-test-watch-${uid()}`;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
    const watcher = new ResultsWatcher(consumer, admin, groupId);
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const record = { partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value, headers: {}, timestamp: Number(m.timestamp) };
          watcher.ids.add(String(objects.decode(record).value.transferId));
        }
      },
    });
    return watcher;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
    await deleteGroups(this.admin, [this.groupId]);
  }
}

// ---- rounds as they happen: a kill aimed at one in flight -------------------------------------

/**
 * Follows the protocol topic read_uncommitted (records show up as soon as they are appended, before
 * their transaction commits) to see rounds start and end, so a kill can be aimed at an open one.
 */
class RoundWatcher {
  /** Round -> partitions it holds, and those decided (with the decision's append time). */
  private readonly rounds = new Map<number, { holds: Set<number>; decided: Map<number, number> }>();
  private listener: (() => void) | undefined;
  joined = false;

  private constructor(
    private readonly consumer: Consumer,
    private readonly admin: Admin,
    private readonly groupId: string,
  ) {}

  static async start(kafka: Kafka, admin: Admin, topic: string): Promise<RoundWatcher> {
    const groupId = `farad-test-rounds-${uid()}`;
    const consumer = kafka.consumer({ groupId, readUncommitted: true, maxWaitTimeInMs: 50 });
    const watcher = new RoundWatcher(consumer, admin, groupId);
    consumer.on(consumer.events.GROUP_JOIN, () => (watcher.joined = true));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const records = parseProtocol(batch.messages.map((m) => ({ partition: batch.partition, offset: Number(m.offset), key: null, value: m.value, headers: {}, timestamp: Number(m.timestamp) })));
        for (const r of records) {
          if (r.round === undefined) continue;
          let entry = watcher.rounds.get(r.round);
          if (!entry) watcher.rounds.set(r.round, (entry = { holds: new Set(), decided: new Map() }));
          if (r.kind === 'prepare' && r.hold) entry.holds.add(r.partition);
          else if (r.kind === 'decision') entry.decided.set(r.partition, Math.min(entry.decided.get(r.partition) ?? Infinity, r.timestamp));
        }
        watcher.listener?.();
      },
    });
    await waitFor(`a read_uncommitted consumer of ${topic} to join its group`, () => watcher.joined, { timeoutMs: 20_000, intervalMs: 20 });
    return watcher;
  }

  /**
   * Resolves with a round as soon as one is seen prepared (holding one of `partitions`, when
   * given) and not yet decided everywhere it holds.
   */
  openRound(partitions: readonly number[] | undefined, timeoutMs: number): Promise<number> {
    // Only rounds seen from now on: an old round left undecided in the log is no evidence.
    const known = new Set(this.rounds.keys());
    const find = (): number | undefined => {
      for (const [round, r] of this.rounds) {
        if (known.has(round) || r.holds.size === 0 || r.decided.size >= r.holds.size) continue;
        if (partitions && ![...r.holds].some((p) => partitions.includes(p) && !r.decided.has(p))) continue;
        return round;
      }
      return undefined;
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listener = undefined;
        reject(new Error(`no multi-partition round seen open${partitions ? ` on partitions [${partitions.join(',')}]` : ''} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.listener = () => {
        const round = find();
        if (round === undefined) return;
        clearTimeout(timer);
        this.listener = undefined;
        resolve(round);
      };
    });
  }

  /**
   * True when `round`, as far as the log showed by now, was undecided at `at` on one of the
   * partitions it holds (of `partitions`, when given): no decision sent there before `at`.
   */
  undecidedAt(round: number, at: number, partitions?: readonly number[]): boolean {
    const r = this.rounds.get(round);
    if (!r) return false;
    return [...r.holds].some((p) => (!partitions || partitions.includes(p)) && (r.decided.get(p) ?? Infinity) >= at);
  }

  async stop(): Promise<void> {
    this.listener = undefined;
    await this.consumer.disconnect().catch(() => undefined);
    await deleteGroups(this.admin, [this.groupId]);
  }
}

// ---- a per-test bank on Kafka -------------------------------------------------------------------

interface BankCluster {
  readonly suffix: string;
  readonly names: BankNames;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  /** Every child started: all are killed after the test. */
  readonly instances: Instance[];
  /** Environment of the children. */
  readonly env: Record<string, string>;
  readonly stoppers: Array<() => Promise<unknown>>;
}

/**
 * Fresh topics of a bank copy: input and rejections; results and the protocol topic with the
 * broker's append time as timestamps (farad finds them there and uses them). Cleans up children,
 * watchers, pollers, producers, topics, the group and, with `redisUrl`, the snapshots.
 */
async function bankCluster(t: TestContext, { replicas, redisUrl, snapshotIntervalMs }: { replicas: number; redisUrl?: string; snapshotIntervalMs?: number }): Promise<BankCluster> {
  requireKcat();
  const suffix = uid();
  const names = bankNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const producer = await plainProducer(kafka);
  const env: Record<string, string> = { FARAD_TEST_BANK_SUFFIX: suffix, FARAD_REPLICAS: String(replicas), FARAD_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS) };
  if (redisUrl) env.FARAD_REDIS_URL = redisUrl;
  if (snapshotIntervalMs !== undefined) env.FARAD_SNAPSHOT_INTERVAL_MS = String(snapshotIntervalMs);
  const cluster: BankCluster = { suffix, names, kafka, admin, producer, instances: [], env, stoppers: [] };
  t.after(async () => {
    for (const stop of cluster.stoppers) await stop().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    for (const i of cluster.instances) await terminate(i, 10_000);
    await deleteTopics(admin, [names.input, names.rejections, names.results, names.changelog, names.dlq, names.protocol, names.schemas]);
    // The app's group, and those of farad's own changelog readers and followers (named after the app's topics).
    const groups = await admin.listGroups().then(({ groups: all }) => all.map((g) => g.groupId).filter((g) => g === names.app || g.includes(`-${names.app}-`)), () => [names.app]);
    await deleteGroups(admin, groups);
    await admin.disconnect();
    if (redisUrl) await deleteSnapshots(redisUrl, names.app);
  });
  const appendTime = [{ name: 'message.timestamp.type', value: 'LogAppendTime' }];
  await createTopic(admin, names.input, PARTITIONS);
  await createTopic(admin, names.rejections, PARTITIONS);
  await createTopic(admin, names.results, PARTITIONS, appendTime);
  await createTopic(admin, names.protocol, PARTITIONS, appendTime);
  return cluster;
}

async function startInstance(cluster: BankCluster, id: string, env: Record<string, string> = {}): Promise<Instance> {
  const instance = await spawnInstance(id, { ...cluster.env, ...env }, BANK_FIXTURE);
  cluster.instances.push(instance);
  return instance;
}

/**
 * Opens the test's accounts (deposits, then withdrawals; seeded) and waits until `asker`'s
 * consistent total shows all of them.
 */
async function fundAccounts(cluster: BankCluster, asker: Instance, seed: number): Promise<{ accounts: string[]; funds: Funds }> {
  const accounts = accountNames(cluster.suffix);
  const funds = makeFunds(accounts, seed);
  await sendFunds(cluster.producer, cluster.names.input, funds);
  await waitWithLogs(`the consistent total to reach deposits − withdrawals (${funds.total})`, cluster.instances, async () => (await askTotal(asker.base, 5000)).total === funds.total, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  return { accounts, funds };
}

/** The results and the protocol's rounds read as they come, and consistent totals polled; all stopped with the cluster. */
async function watch(cluster: BankCluster): Promise<{ watcher: ResultsWatcher; roundWatcher: RoundWatcher; poller: TotalPoller }> {
  const { kafka, admin, names } = cluster;
  const watcher = await ResultsWatcher.start(kafka, admin, names.results);
  cluster.stoppers.push(() => watcher.stop());
  const roundWatcher = await RoundWatcher.start(kafka, admin, names.protocol);
  cluster.stoppers.push(() => roundWatcher.stop());
  const poller = new TotalPoller(() => cluster.instances);
  cluster.stoppers.push(() => poller.stop());
  return { watcher, roundWatcher, poller };
}

// ---- who owns what (GET /readyz roles) ----------------------------------------------------------

interface Placement {
  /** Instance id -> partitions active there. */
  readonly active: Map<string, number[]>;
  /** Instance id -> partitions it keeps a standby copy of. */
  readonly standby: Map<string, number[]>;
}

async function readyzRoles(instance: Instance): Promise<{ ready: boolean; active: number[]; standby: number[] } | undefined> {
  try {
    const res = await fetch(`${instance.base}/readyz`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { partitions?: Array<{ partition: number; role: string }> };
    const of = (role: string): number[] => (body.partitions ?? []).filter((p) => p.role === role).map((p) => p.partition).sort((a, b) => a - b);
    return { ready: res.status === 200, active: of('active'), standby: of('standby') };
  } catch {
    return undefined;
  }
}

/**
 * Every instance ready and every partition active on exactly one of them; with `standbys`, each
 * partition also has a standby copy on another instance; with `everyOwns`, each owns one at least.
 */
async function placement(instances: readonly Instance[], { standbys = false, everyOwns = false } = {}): Promise<Placement | undefined> {
  const active = new Map<string, number[]>();
  const standby = new Map<string, number[]>();
  for (const i of instances) {
    const roles = await readyzRoles(i);
    if (!roles?.ready) return undefined;
    if (everyOwns && roles.active.length === 0) return undefined;
    active.set(i.id, roles.active);
    standby.set(i.id, roles.standby);
  }
  if ([...active.values()].flat().sort((a, b) => a - b).join() !== ALL_PARTITIONS.join()) return undefined;
  if (standbys) {
    for (const p of ALL_PARTITIONS) {
      const owner = [...active].find(([, ps]) => ps.includes(p))![0];
      if (![...standby].some(([id, ps]) => id !== owner && ps.includes(p))) return undefined;
    }
  }
  return { active, standby };
}

function describePlacement(view: Placement): string {
  return [...view.active].map(([id, ps]) => `${id}: active [${ps.join(',')}] standby [${(view.standby.get(id) ?? []).join(',')}]`).join('; ');
}

/** The instance whose partition 0 makes it the coordinator. */
function coordinatorOf(view: Placement, instances: readonly Instance[]): Instance {
  const id = [...view.active].find(([, ps]) => ps.includes(0))?.[0];
  const instance = instances.find((i) => i.id === id);
  assert.ok(instance, `partition 0 has an owner among ${instances.map((i) => i.id).join(', ')}`);
  return instance;
}

// ---- the protocol topic, as the committed log shows it ------------------------------------------

/**
 * Every record of a topic (value as text) read by kcat from the beginning to the end (the last
 * stable offset, read_committed), with librdkafka's filtering of aborted transactions.
 */
function kcatRead(topic: string, { readUncommitted = false } = {}): ReadRecord[] {
  const res = spawnSync(
    'kcat',
    ['-C', '-b', brokers().join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-X', `isolation.level=${readUncommitted ? 'read_uncommitted' : 'read_committed'}`, '-f', '%p\t%o\t%T\t%s\n'],
    { encoding: 'utf8', timeout: 60_000, maxBuffer: 1024 * 1024 * 1024 },
  );
  assert.equal(res.error, undefined, `kcat could not run: ${String(res.error)}`);
  assert.equal(res.status, 0, `kcat -C ${topic} failed: ${res.stderr}`);
  return res.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [partition, offset, timestamp, ...value] = line.split('\t');
      return { partition: Number(partition), offset: Number(offset), key: null, value: Buffer.from(value.join('\t')), headers: {}, timestamp: Number(timestamp) };
    });
}

/**
 * The records of `<app>-mp` the checks need, restated here (the test does not use farad's codec):
 * JSON with a `kind`; a request carries its input record's value (base64); prepares, votes and
 * decisions carry their round.
 */
interface ProtocolRecord {
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly kind: string;
  readonly round?: number;
  /** A request's input record value. */
  readonly value?: string;
  /** A vote's partition. */
  readonly from?: number;
  /** A prepare's hold flag. */
  readonly hold?: boolean;
}

function parseProtocol(records: readonly ReadRecord[]): ProtocolRecord[] {
  return records.map((r) => {
    const json = JSON.parse(r.value?.toString('utf8') ?? 'null') as { kind?: unknown; round?: unknown; value?: unknown; partition?: unknown; hold?: unknown } | null;
    if (!json || typeof json.kind !== 'string') throw new Error(`protocol record ${r.partition}/${r.offset} has no kind`);
    return {
      partition: r.partition,
      offset: r.offset,
      timestamp: r.timestamp,
      kind: json.kind,
      ...(typeof json.round === 'number' ? { round: json.round } : {}),
      ...(typeof json.value === 'string' ? { value: json.value } : {}),
      ...(typeof json.partition === 'number' ? { from: json.partition } : {}),
      ...(typeof json.hold === 'boolean' ? { hold: json.hold } : {}),
    };
  });
}

interface Round {
  readonly round: number;
  /** First prepare appended. */
  readonly start: number;
  /** Last vote or decision appended. */
  readonly end: number;
  readonly participants: number[];
  readonly holds: number[];
  readonly votes: number[];
  readonly decisions: number[];
}

/** Rounds by number, with problems of the exactly-once kind: a message doubled, a round skipped or left undecided. */
function roundsOf(protocol: readonly ProtocolRecord[]): { rounds: Round[]; problems: string[] } {
  const byRound = new Map<number, { prepares: ProtocolRecord[]; votes: ProtocolRecord[]; decisions: ProtocolRecord[] }>();
  for (const r of protocol) {
    if (r.round === undefined || !['prepare', 'vote', 'decision'].includes(r.kind)) continue;
    let entry = byRound.get(r.round);
    if (!entry) byRound.set(r.round, (entry = { prepares: [], votes: [], decisions: [] }));
    (r.kind === 'prepare' ? entry.prepares : r.kind === 'vote' ? entry.votes : entry.decisions).push(r);
  }
  const problems: string[] = [];
  const rounds: Round[] = [];
  const numbers = [...byRound.keys()].sort((a, b) => a - b);
  numbers.forEach((n, i) => {
    if (n !== i + 1) problems.push(`round ${n} is the ${i + 1}th round in the log (a round number skipped)`);
  });
  const last = numbers[numbers.length - 1];
  for (const n of numbers) {
    const { prepares, votes, decisions } = byRound.get(n)!;
    const participants = prepares.map((p) => p.partition).sort((a, b) => a - b);
    const holds = prepares.filter((p) => p.hold === true).map((p) => p.partition).sort((a, b) => a - b);
    const voted = votes.map((v) => v.from ?? -1).sort((a, b) => a - b);
    const decided = decisions.map((d) => d.partition).sort((a, b) => a - b);
    if (new Set(participants).size !== participants.length) problems.push(`round ${n}: prepared twice on a partition [${participants.join(',')}]`);
    if (voted.join() !== participants.join() && n !== last) problems.push(`round ${n}: votes from [${voted.join(',')}], prepared [${participants.join(',')}]`);
    if (decided.join() !== holds.join() && n !== last) problems.push(`round ${n}: decisions to [${decided.join(',')}], holds [${holds.join(',')}]`);
    const times = [...votes, ...decisions].map((r) => r.timestamp);
    rounds.push({
      round: n,
      start: Math.min(...prepares.map((p) => p.timestamp)),
      end: times.length === 0 ? Infinity : Math.max(...times),
      participants,
      holds,
      votes: voted,
      decisions: decided,
    });
  }
  return { rounds, problems };
}

/**
 * Rounds a kill at `at` interrupted: prepared before it (by a committed prepare, or by one the
 * kill aborted: `uncommitted` is a read_uncommitted read of the topic, which shows those too)
 * and finished after it.
 */
function roundsOpenAt(rounds: readonly Round[], uncommitted: readonly ProtocolRecord[], at: number): Array<Round & { aborted: boolean }> {
  const firstPrepare = new Map<number, number>();
  for (const r of uncommitted) {
    if (r.kind !== 'prepare' || r.round === undefined) continue;
    firstPrepare.set(r.round, Math.min(firstPrepare.get(r.round) ?? Infinity, r.timestamp));
  }
  // `at` is when the victim was frozen, taken after the watcher saw the round prepared: a prepare
  // stamped in that same millisecond came before it.
  return rounds
    .filter((r) => r.end > at && Math.min(r.start, firstPrepare.get(r.round) ?? Infinity) <= at)
    .map((r) => ({ ...r, aborted: r.start > at }));
}

function describeOpen(open: ReadonlyArray<Round & { aborted: boolean }>, at: number): string {
  return open.map((r) => `${r.round} (holds [${r.holds.join(',')}]${r.aborted ? ', its first prepare aborted by the kill' : ''}, decided ${fmt(r.end - at)} after it)`).join(', ') || 'none';
}

/** The committed rounds around `at`, for a failure message. */
function roundsAround(rounds: readonly Round[], at: number): string {
  const i = rounds.findIndex((r) => r.start >= at);
  return rounds
    .slice(Math.max(0, (i < 0 ? rounds.length : i) - 3), (i < 0 ? rounds.length : i) + 2)
    .map((r) => `round ${r.round}: prepared ${r.start - at} ms, finished ${r.end - at} ms from the kill`)
    .join('; ');
}

// ---- the checks ------------------------------------------------------------------------------

interface Outcome {
  readonly name: 'TransferCompleted' | 'TransferRejected';
  readonly transfer: Transfer;
  readonly reason?: Reason;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly timestamp: number;
}

interface LedgerReport {
  readonly completed: number;
  readonly rejected: Record<string, number>;
  readonly outcomes: Map<string, Outcome>;
  readonly balances: Map<string, number>;
}

/**
 * The results topic against the ledger: exactly one outcome per transfer sent (none for anything
 * else), equal to the transfer, keyed by and on the partition of `from`; the planned rejections
 * as planned; the balances the funds and the completed transfers make, none negative.
 */
function checkOutcomes(records: readonly ReadRecord[], sent: readonly Planned[], funds: Funds, protocolTopic: string): LedgerReport {
  const planned = new Map(sent.map((t) => [t.transferId, t]));
  const outcomes = new Map<string, Outcome>();
  const problems: string[] = [];
  for (const record of records) {
    const e = objects.decode(record);
    const transfer = { transferId: String(e.value.transferId), from: String(e.value.from), to: String(e.value.to), amount: Number(e.value.amount) };
    const where = `${e.name} of ${transfer.transferId} at ${e.partition}/${e.offset}`;
    if (e.name !== 'TransferCompleted' && e.name !== 'TransferRejected') {
      problems.push(`${where}: not a transfer outcome`);
      continue;
    }
    const plan = planned.get(transfer.transferId);
    if (!plan) {
      problems.push(`${where}: no such transfer was sent`);
      continue;
    }
    const previous = outcomes.get(transfer.transferId);
    if (previous) problems.push(`${where}: a second outcome (first ${previous.name} at ${previous.partition}/${previous.offset})`);
    if (transfer.from !== plan.from || transfer.to !== plan.to || transfer.amount !== plan.amount) problems.push(`${where}: ${JSON.stringify(transfer)}, sent ${JSON.stringify(plan)}`);
    if (e.key !== plan.from || e.partition !== kafkaPartition(plan.from, PARTITIONS)) problems.push(`${where}: keyed ${e.key} on partition ${e.partition}, expected ${plan.from} on ${kafkaPartition(plan.from, PARTITIONS)}`);
    const reason = e.name === 'TransferRejected' ? (String(e.value.reason) as Reason) : undefined;
    const allowed = plan.expect === 'funds-permitting' ? ['completed', 'INSUFFICIENT_FUNDS'] : [plan.expect];
    if (!allowed.includes(reason ?? 'completed')) problems.push(`${where}: ${reason ?? 'completed'}, expected ${allowed.join(' or ')} (amount ${plan.amount}, ${plan.from} -> ${plan.to})`);
    outcomes.set(transfer.transferId, { name: e.name, transfer: plan, ...(reason ? { reason } : {}), partition: e.partition, offset: e.offset, key: e.key, timestamp: e.timestamp });
  }
  const missing = sent.filter((t) => !outcomes.has(t.transferId));
  if (missing.length > 0) problems.push(`${missing.length} transfers have no outcome, e.g. ${missing.slice(0, 5).map((t) => t.transferId).join(', ')}`);
  if (problems.length > 0) problems.unshift(queuedCounts(protocolTopic, problems));
  assert.deepEqual(problems.slice(0, 16), [], `${problems.length - 1} problems with the transfer outcomes`);

  // Every completed transfer moves its amount; nothing else moves money.
  const balances = new Map(funds.balances);
  const rejected: Record<string, number> = {};
  let completed = 0;
  for (const o of outcomes.values()) {
    if (o.name === 'TransferRejected') {
      rejected[o.reason!] = (rejected[o.reason!] ?? 0) + 1;
      continue;
    }
    completed++;
    balances.set(o.transfer.from, (balances.get(o.transfer.from) ?? 0) - o.transfer.amount);
    balances.set(o.transfer.to, (balances.get(o.transfer.to) ?? 0) + o.transfer.amount);
  }
  const negative = [...balances].filter(([, b]) => b < 0);
  assert.deepEqual(negative, [], 'no account goes below zero by the completed transfers');
  assert.equal([...balances.values()].reduce((a, b) => a + b, 0), funds.total, 'the completed transfers conserve money');
  return { completed, rejected, outcomes, balances };
}

/** For a failure message: how often the committed protocol log queued the transfers `problems` name. */
function queuedCounts(protocolTopic: string, problems: readonly string[]): string {
  const ids = new Set(problems.flatMap((p) => [...p.matchAll(/\b(x\d+-[0-9a-f]+)\b/g)].map((m) => m[1]!)));
  const queued = new Map<string, number>();
  for (const r of parseProtocol(kcatRead(protocolTopic))) {
    if (r.partition !== 0 || r.kind !== 'request') continue;
    const id = String(objects.decodeBytes(Buffer.from(r.value ?? '', 'base64'), `${protocolTopic} 0/${r.offset}`).value.transferId);
    if (ids.has(id)) queued.set(id, (queued.get(id) ?? 0) + 1);
  }
  const once = [...ids].filter((id) => queued.get(id) === 1).length;
  return (
    `requests of these transfers in the committed log of ${protocolTopic} partition 0 (kcat): ${[...ids].slice(0, 20).map((id) => `${id} ${queued.get(id) ?? 0}x`).join(', ')}` +
    (once > 0 ? ` (a request committed once but decided twice was also read from an aborted transaction)` : '')
  );
}

/**
 * The outcomes are those of running the transfers one at a time in the coordinator's queue
 * order: the requests committed to the protocol topic's partition 0 (each transfer exactly once),
 * replayed from the funds' balances by the bank's rules.
 */
function checkSerialOrder(protocol: readonly ProtocolRecord[], report: LedgerReport, funds: Funds, sent: readonly Planned[]): number {
  const requests = protocol.filter((r) => r.partition === 0 && r.kind === 'request').sort((a, b) => a.offset - b.offset);
  const order = requests.map((r) => {
    const { name, value } = objects.decodeBytes(Buffer.from(r.value ?? '', 'base64'), `request at mp 0/${r.offset}`);
    assert.equal(name, 'Transfer', `the request at 0/${r.offset} forwards a Transfer`);
    return String(value.transferId);
  });
  const seen = new Map<string, number>();
  for (const id of order) seen.set(id, (seen.get(id) ?? 0) + 1);
  const doubled = [...seen].filter(([, n]) => n > 1);
  assert.deepEqual(doubled.slice(0, 10), [], `${doubled.length} transfers queued more than once on the coordinator`);
  assert.equal(order.length, sent.length, 'every transfer sent was queued on the coordinator exactly once');
  const planned = new Map(sent.map((t) => [t.transferId, t]));
  const balances = new Map(funds.balances);
  const differ: string[] = [];
  for (const [i, id] of order.entries()) {
    const transfer = planned.get(id);
    assert.ok(transfer, `queued transfer ${id} was sent`);
    const want = applyTransfer(balances, transfer);
    const got = report.outcomes.get(id)!;
    const gotText = got.reason ?? 'completed';
    if (want !== gotText) differ.push(`#${i} ${id} (${transfer.amount} ${transfer.from} -> ${transfer.to}): serial run says ${want}, output says ${gotText}`);
  }
  assert.deepEqual(differ.slice(0, 10), [], `${differ.length} outcomes differ from a serial run in the coordinator's order`);
  assert.deepEqual([...balances].filter(([k, b]) => b !== report.balances.get(k)), [], 'the serial run ends with the balances the outcomes make');
  return order.length;
}

/** GET /tables/balances = the ledger's balances; GET /queries/total = their sum = deposits − withdrawals. */
async function checkState(base: string, report: LedgerReport, funds: Funds): Promise<void> {
  const rows = await readTable(base, 'balances');
  const read = new Map([...rows].map(([k, v]) => [k, Number((v as { balance: number }).balance)]));
  const differ = [...new Set([...read.keys(), ...report.balances.keys()])].filter((k) => read.get(k) !== report.balances.get(k));
  assert.deepEqual(
    differ.slice(0, 10).map((k) => `${k}: table ${read.get(k)}, ledger ${report.balances.get(k)}`),
    [],
    `${differ.length} balances differ from the ledger (funds + completed transfers)`,
  );
  const sum = [...read.values()].reduce((a, b) => a + b, 0);
  assert.equal(sum, funds.total, 'the balances sum to deposits − withdrawals');
  const answer = await askTotal(base);
  assert.equal(answer.total, funds.total, `GET /queries/total answers deposits − withdrawals: ${JSON.stringify(answer)}`);
}

/** Withdrawals rejected as the funds say; no dead letters. */
async function checkSideTopics(kafka: Kafka, names: BankNames, funds: Funds): Promise<void> {
  const rejections = (await readTopic(kafka, names.rejections)).map((r) => objects.decode(r));
  assert.equal(rejections.length, funds.rejectedWithdrawals, 'one WithdrawalRejected per withdrawal over the balance');
  const dead = await readTopic(kafka, names.dlq);
  assert.deepEqual(
    dead.slice(0, 5).map((r) => JSON.stringify(r.headers)),
    [],
    `${dead.length} dead letters`,
  );
}

// ---- measurements ------------------------------------------------------------------------------

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The longest gap between consecutive decided transfers (by append time) that ends in [from, to]. */
function longestGap(times: readonly number[], from: number, to: number): { ms: number; at: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = { ms: 0, at: 0 };
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]! < from || sorted[i - 1]! > to) continue;
    if (sorted[i]! - sorted[i - 1]! > best.ms) best = { ms: sorted[i]! - sorted[i - 1]!, at: sorted[i - 1]! };
  }
  return best;
}

/** Most transfers decided within any one second (by append time). */
function peakPerSecond(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= 1000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** Decided per second over [from, to) (by append time). */
function ratePerSecond(times: readonly number[], from: number, to: number): number {
  return (times.filter((x) => x >= from && x < to).length * 1000) / Math.max(1, to - from);
}

/**
 * Freezes `victim` (SIGSTOP) as soon as a round is seen open (holding one of `holding`, when
 * given), and kills it (-9) once the log shows that round undecided there at the freeze;
 * otherwise thaws it (SIGCONT) and waits for the next round. Returns the freeze time: the
 * process did nothing after it.
 */
async function killInRound(rounds: RoundWatcher, victim: Instance, holding?: readonly number[]): Promise<{ round: number; killedAt: number; attempts: number }> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const round = await rounds.openRound(holding, 15_000);
    victim.child.kill('SIGSTOP');
    const frozenAt = Date.now();
    await sleep(400); // the watcher reads what was appended before the freeze
    if (rounds.undecidedAt(round, frozenAt, holding)) {
      await kill9(victim);
      return { round, killedAt: frozenAt, attempts: attempt };
    }
    victim.child.kill('SIGCONT');
  }
  throw new Error(`no round was still undecided when ${victim.id} was frozen, in 10 tries`);
}

interface Kill {
  readonly victim: Instance;
  readonly role: string;
  readonly killedAt: number;
  readonly recoveredAt: number;
  readonly partitions: number[];
}

/** kill -9 in an open round (holding one of `holding`, when given), and wait until the survivors own every partition. */
async function killAndRecover(
  t: TestContext,
  rounds: RoundWatcher,
  victim: Instance,
  role: string,
  survivors: readonly Instance[],
  view: Placement,
  holding?: readonly number[],
): Promise<Kill> {
  const partitions = view.active.get(victim.id) ?? [];
  const { round, killedAt, attempts } = await killInRound(rounds, victim, holding);
  t.diagnostic(`kill -9 ${victim.id} (${role}, active [${partitions.join(',')}]) in round ${round} (try ${attempts})`);
  const after = await waitWithLogs(`the survivors to own every partition after kill -9 of ${victim.id}`, survivors, () => placement(survivors), { timeoutMs: 45_000, intervalMs: 100 });
  const recoveredAt = Date.now();
  t.diagnostic(`recovered ${recoveredAt - killedAt} ms after the kill: ${describePlacement(after)}`);
  return { victim, role, killedAt, recoveredAt, partitions };
}

/** Waits for every transfer sent to have a committed outcome. */
async function waitForOutcomes(watcher: ResultsWatcher, sent: readonly Planned[], instances: readonly Instance[], timeoutMs = 45_000): Promise<void> {
  await waitWithLogs(
    `an outcome for each of the ${sent.length} transfers sent`,
    instances,
    () => {
      if (watcher.ids.size < sent.length) return false;
      return sent.every((t) => watcher.ids.has(t.transferId));
    },
    { timeoutMs, intervalMs: 200 },
  );
}

/** When each transfer was first decided: its first outcome's append time (the results topic has the broker's). */
function decidedTimes(records: readonly ReadRecord[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of records) {
    const id = String(objects.decode(r).value.transferId);
    if (!out.has(id) || out.get(id)! > r.timestamp) out.set(id, r.timestamp);
  }
  return out;
}

/** Transfer latency: its outcome's append time − when it was sent, for those sent in [from, to). */
function latencies(decided: ReadonlyMap<string, number>, stream: TransferStream, from: number, to: number): number[] {
  const out: number[] = [];
  for (const [id, at] of decided) {
    const sentAt = stream.sentAt.get(id);
    if (sentAt !== undefined && sentAt >= from && sentAt < to) out.push(at - sentAt);
  }
  return out;
}

function checkTotals(t: TestContext, poller: TotalPoller, funds: Funds, kills: readonly Kill[]): void {
  const wrong = poller.wrong(funds.total);
  const rel = (at: number): string => kills.map((k) => `${at - k.killedAt >= 0 ? '+' : ''}${at - k.killedAt} ms from kill of ${k.victim.id}`).join(', ');
  assert.deepEqual(
    wrong.slice(0, 10).map((a) => `${a.instance} asked at ${a.at} (${rel(a.at)}): total ${a.total}`),
    [],
    `${wrong.length} of ${poller.ok().length} consistent totals differ from deposits − withdrawals (${funds.total}): a transfer half seen`,
  );
  const ms = poller.ok().map((a) => a.ms);
  t.diagnostic(
    `consistent totals while transfers ran: ${poller.ok().length} answered, all ${funds.total}; ${poller.answers.length - poller.ok().length} not answered (${poller.describeFailures()}); latency p50 ${fmt(percentile(ms, 50))}, p99 ${fmt(percentile(ms, 99))}, max ${fmt(Math.max(...ms))}`,
  );
}

// ---- 1. kill -9 of the coordinator, then of a participant ----------------------------------

test('transfers across kill -9 of the coordinator and later of a participant (two instances, replicas 1): money conserved, one outcome each, every consistent total exact', { timeout: 175_000 }, async (t) => {
  const testStarted = Date.now();
  const cluster = await bankCluster(t, { replicas: 1 });
  const { suffix, names, kafka, producer, instances } = cluster;
  const a = await startInstance(cluster, `a-${suffix}`);
  const b = await startInstance(cluster, `b-${suffix}`);
  const first = await waitWithLogs('two instances, every partition active once with a standby on the other', instances, () => placement([a, b], { standbys: true, everyOwns: true }), {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  t.diagnostic(`settled ${Date.now() - testStarted} ms after start: ${describePlacement(first)}`);

  const { accounts, funds } = await fundAccounts(cluster, a, 21);
  const { watcher, roundWatcher, poller } = await watch(cluster);

  // ~150 transfers/s: every round has several, and each kill lands among open rounds.
  const plan = planTransfers(20_000, accounts, funds.total, suffix, 22);
  const stream = new TransferStream(producer, names.input, plan, { perTick: 15, tickMs: 100 });
  cluster.stoppers.push(() => stream.stop());
  await sleep(6000);
  const steadyEnd = Date.now();

  // The coordinator: whoever owns partition 0.
  const view1 = await waitWithLogs('placement before the first kill', instances, () => placement([a, b]), { timeoutMs: 20_000, intervalMs: 100 });
  const coordinator = coordinatorOf(view1, [a, b]);
  const other = coordinator === a ? b : a;
  const kill1 = await killAndRecover(t, roundWatcher, coordinator, 'coordinator', [other], view1);
  await sleep(3000);

  // Its restart (same instance id), until both own partitions and every partition has a standby again.
  const restarted = await startInstance(cluster, coordinator.id);
  const pair = [other, restarted];
  const view2 = await waitWithLogs('the restarted instance to own partitions, with standbys everywhere', pair, () => placement(pair, { standbys: true, everyOwns: true }), {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  const restartSettled = Date.now();
  t.diagnostic(`restarted ${coordinator.id}: settled ${restartSettled - restarted.startedAt} ms after its start: ${describePlacement(view2)}`);
  await sleep(3000);

  // Then a participant: the instance not owning partition 0.
  const view3 = await waitWithLogs('placement before the second kill', pair, () => placement(pair), { timeoutMs: 20_000, intervalMs: 100 });
  const coordinator2 = coordinatorOf(view3, pair);
  const participant = coordinator2 === other ? restarted : other;
  assert.ok((view3.active.get(participant.id) ?? []).length > 0, 'the participant owns partitions');
  const kill2 = await killAndRecover(t, roundWatcher, participant, 'participant', [coordinator2], view3, view3.active.get(participant.id));
  await sleep(4000);

  const sent = await stream.stop();
  const streamEnd = stream.lastSentAt;
  await waitForOutcomes(watcher, sent, [coordinator2]);
  await sleep(1000);
  await poller.stop();
  const kills = [kill1, kill2];
  t.diagnostic(`sent ${sent.length} transfers over ${fmt(streamEnd - stream.firstSentAt)}`);

  // Measured first (also when a check below fails): from the results' append times.
  const results = await readTopic(kafka, names.results);
  const decided = decidedTimes(results);
  const decidedAt = [...decided.values()];
  for (const k of kills) {
    const gap = longestGap(decidedAt, k.killedAt - 2000, k.recoveredAt + 10_000);
    const firstDecided = Math.min(...decidedAt.filter((x) => x > k.killedAt));
    const firstAnswer = poller.firstOkAfter(k.killedAt, new Set([coordinator2.id]));
    t.diagnostic(
      `MEASURED failover (kill -9 of the ${k.role}): all partitions owned again after ${fmt(k.recoveredAt - k.killedAt)}; first transfer decided after ${fmt(firstDecided - k.killedAt)}; longest pause in decided transfers ${fmt(gap.ms)}; first consistent total answered on the survivor after ${firstAnswer ? fmt(firstAnswer.at + firstAnswer.ms - k.killedAt) : 'never'}`,
    );
  }
  const steadyRate = ratePerSecond(decidedAt, stream.firstSentAt + 1000, steadyEnd);
  // Sent well before the first kill (the last ones before it wait for the failover).
  const steadyLatency = latencies(decided, stream, stream.firstSentAt, steadyEnd - 1500);
  t.diagnostic(
    `MEASURED MP throughput: steady ${steadyRate.toFixed(0)} transfers/s decided (input ${((sent.length * 1000) / (streamEnd - stream.firstSentAt)).toFixed(0)}/s); peak ${peakPerSecond(decidedAt)}/s (backlog after a failover); latency before the kills p50 ${fmt(percentile(steadyLatency, 50))}, p99 ${fmt(percentile(steadyLatency, 99))}`,
  );

  // The ledger.
  const report = checkOutcomes(results, sent, funds, names.protocol);
  t.diagnostic(`outcomes: ${report.completed} completed, rejected ${JSON.stringify(report.rejected)}`);
  await checkState(coordinator2.base, report, funds);
  checkTotals(t, poller, funds, kills);
  for (const id of [a.id, b.id]) assert.ok(poller.ok().some((x) => x.instance === id), `${id} answered consistent totals`);
  assert.ok(poller.ok().some((x) => x.instance === restarted.id && x.at >= restarted.startedAt), `the restarted ${restarted.id} answered consistent totals`);
  assert.ok(poller.ok().filter((x) => x.at > kill2.recoveredAt).length >= 5, 'consistent totals are answered after the second failover');

  const exit = await terminate(coordinator2);
  assert.equal(exit.code, 0, `${coordinator2.id} stops cleanly on SIGTERM\n${coordinator2.output().slice(-2000)}`);
  await checkSideTopics(kafka, names, funds);
  const protocol = parseProtocol(kcatRead(names.protocol));
  const uncommitted = parseProtocol(kcatRead(names.protocol, { readUncommitted: true }));
  const queued = checkSerialOrder(protocol, report, funds, sent);
  const { rounds, problems } = roundsOf(protocol);
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} protocol problems`);
  const txnRounds = rounds.filter((r) => r.holds.length > 0);
  t.diagnostic(`protocol: ${queued} transfers queued in order; ${rounds.length} rounds (${txnRounds.length} writing), ${(queued / Math.max(1, txnRounds.length)).toFixed(1)} transfers per writing round`);

  // Each kill interrupted rounds in flight.
  for (const k of kills) {
    const open = roundsOpenAt(rounds, uncommitted, k.killedAt);
    t.diagnostic(`kill of the ${k.role}: rounds open at the kill: ${describeOpen(open, k.killedAt)}`);
    assert.ok(open.length > 0, `the kill of the ${k.role} landed while a round was in flight: ${roundsAround(rounds, k.killedAt)}`);
  }
  t.diagnostic(`whole test ${fmt(Date.now() - testStarted)}`);
});

// ---- 2. restart of a single instance --------------------------------------------------------------

for (const restore of ['changelog', 'snapshot'] as const) {
  const how = restore === 'snapshot' ? 'Redis snapshots every second and the changelog after them' : 'the changelog';
  test(`transfers across kill -9 and restart of the only instance (restored from ${how}): the ledger holds`, { timeout: 150_000 }, async (t) => {
    const testStarted = Date.now();
    const redisUrl = restore === 'snapshot' ? process.env.REDIS_URL : undefined;
    if (restore === 'snapshot') assert.ok(redisUrl, 'REDIS_URL is set (snapshots)');
    const cluster = await bankCluster(t, { replicas: 0, ...(redisUrl ? { redisUrl, snapshotIntervalMs: 1000 } : {}) });
    const { suffix, names, kafka, producer } = cluster;
    const firstInstance = await startInstance(cluster, `solo-${suffix}`);
    await waitWithLogs('the instance to own every partition', [firstInstance], () => placement([firstInstance]), { timeoutMs: 60_000, intervalMs: 250 });

    const { accounts, funds } = await fundAccounts(cluster, firstInstance, 31);
    const { watcher, roundWatcher, poller } = await watch(cluster);
    const plan = planTransfers(20_000, accounts, funds.total, suffix, 32);
    const stream = new TransferStream(producer, names.input, plan, { perTick: 15, tickMs: 100 });
    cluster.stoppers.push(() => stream.stop());
    await sleep(restore === 'snapshot' ? 5000 : 4000);

    const { round, killedAt, attempts } = await killInRound(roundWatcher, firstInstance);
    const producedAtKill = stream.produced;
    t.diagnostic(`kill -9 after ${producedAtKill} transfers sent, in round ${round} (try ${attempts})`);
    await sleep(2000); // transfers keep coming while nothing runs
    const second = await startInstance(cluster, `solo-${suffix}`, { FARAD_LOG_LEVEL: 'info' });
    await waitWithLogs('the restarted instance to own every partition', [second], () => placement([second]), { timeoutMs: 60_000, intervalMs: 100 });
    const readyAt = Date.now();
    t.diagnostic(`restarted ${second.startedAt - killedAt} ms after the kill; ready ${readyAt - second.startedAt} ms after its start`);
    await sleep(3000);
    const sent = await stream.stop();
    await waitForOutcomes(watcher, sent, [second]);
    await sleep(500);
    await poller.stop();

    const results = await readTopic(kafka, names.results);
    const decidedAt = [...decidedTimes(results).values()];
    const firstDecided = Math.min(...decidedAt.filter((x) => x > killedAt));
    t.diagnostic(`MEASURED restart: kill -9 -> ready ${fmt(readyAt - killedAt)} (2 s of it down on purpose); kill -9 -> first transfer decided ${fmt(firstDecided - killedAt)}; ready -> first decided ${fmt(firstDecided - readyAt)}; peak ${peakPerSecond(decidedAt)} transfers/s after it`);
    const report = checkOutcomes(results, sent, funds, names.protocol);
    t.diagnostic(`sent ${sent.length} transfers (${sent.length - producedAtKill} after the kill): ${report.completed} completed, rejected ${JSON.stringify(report.rejected)}`);
    await checkState(second.base, report, funds);
    checkTotals(t, poller, funds, [{ victim: firstInstance, role: 'only instance', killedAt, recoveredAt: readyAt, partitions: ALL_PARTITIONS }]);
    assert.ok(poller.ok().filter((x) => x.instance === second.id && x.at >= readyAt).length >= 5, 'the restarted instance answers consistent totals');

    const restored = second
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"partition restored"'))
      .map((line) => /"source":"([^"]+)"/.exec(line)?.[1] ?? '?');
    t.diagnostic(`the restarted instance restored its partitions from: ${JSON.stringify(restored)}`);
    if (restore === 'snapshot') assert.ok(restored.includes('snapshot'), `a partition restored from a snapshot\n${outputs([second])}`);

    const exit = await terminate(second);
    assert.equal(exit.code, 0, `the instance stops cleanly on SIGTERM\n${second.output().slice(-2000)}`);
    await checkSideTopics(kafka, names, funds);
    const protocol = parseProtocol(kcatRead(names.protocol));
    const uncommitted = parseProtocol(kcatRead(names.protocol, { readUncommitted: true }));
    checkSerialOrder(protocol, report, funds, sent);
    const { rounds, problems } = roundsOf(protocol);
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} protocol problems`);
    const open = roundsOpenAt(rounds, uncommitted, killedAt);
    t.diagnostic(`rounds open at the kill: ${describeOpen(open, killedAt)}`);
    assert.ok(open.length > 0, `the kill landed while a round was in flight: ${roundsAround(rounds, killedAt)}`);
    t.diagnostic(`whole test ${fmt(Date.now() - testStarted)}`);
  });
}

// ---- 3. consistent queries: latency and throughput ---------------------------------------------

/** `clients` loops asking GET /queries/total for `ms` (round-robin over `bases`); every answer kept. */
async function askFor(bases: readonly string[], clients: number, ms: number): Promise<Array<{ ms: number; status: number; total?: number; error?: string }>> {
  const until = Date.now() + ms;
  const answers: Array<{ ms: number; status: number; total?: number; error?: string }> = [];
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let n = c; Date.now() < until; n++) {
        const at = Date.now();
        const answer = await askTotal(bases[n % bases.length]!);
        answers.push({ ms: Date.now() - at, ...answer });
      }
    }),
  );
  return answers;
}

test('consistent queries on Kafka (two instances): latency idle, with 8 clients and under transfers; every answer exact', { timeout: 120_000 }, async (t) => {
  const cluster = await bankCluster(t, { replicas: 0 });
  const { suffix, names, kafka, admin, producer, instances } = cluster;
  const a = await startInstance(cluster, `qa-${suffix}`);
  const b = await startInstance(cluster, `qb-${suffix}`);
  const view = await waitWithLogs('two instances, every partition active once', instances, () => placement([a, b], { everyOwns: true }), { timeoutMs: 60_000, intervalMs: 250 });
  const coordinator = coordinatorOf(view, [a, b]);
  const other = coordinator === a ? b : a;
  const { accounts, funds } = await fundAccounts(cluster, a, 41);

  const summary = (answers: ReadonlyArray<{ ms: number; status: number; total?: number }>, seconds?: number): string => {
    const ms = answers.filter((x) => x.status === 200).map((x) => x.ms);
    return `n=${answers.length} p50 ${fmt(percentile(ms, 50))} p99 ${fmt(percentile(ms, 99))} max ${fmt(Math.max(...ms))}${seconds ? `, ${(answers.length / seconds).toFixed(0)} answers/s` : ''}`;
  };
  const exact = (what: string, answers: ReadonlyArray<{ status: number; total?: number; error?: string }>): void => {
    const bad = answers.filter((x) => x.status !== 200 || x.total !== funds.total);
    assert.deepEqual(bad.slice(0, 5), [], `${what}: ${bad.length} of ${answers.length} answers not ${funds.total}`);
  };

  // Idle, one at a time, on the coordinator's instance and on the other (whose answer comes back over the protocol topic).
  const idle = new Map<string, Array<{ ms: number; status: number; total?: number }>>();
  for (const [label, instance] of [['coordinator', coordinator], ['other', other]] as const) {
    const answers: Array<{ ms: number; status: number; total?: number }> = [];
    for (let n = 0; n < 100; n++) {
      const at = Date.now();
      const answer = await askTotal(instance.base);
      answers.push({ ms: Date.now() - at, ...answer });
    }
    exact(`idle on the ${label}'s instance`, answers);
    idle.set(label, answers);
    t.diagnostic(`MEASURED consistent GET /queries/total, idle, one at a time, on the ${label}'s instance: ${summary(answers)}`);
  }
  const idleAll = [...idle.values()].flat().map((x) => x.ms);

  // Many clients: queries asked together share rounds.
  const busyMs = 5000;
  const busy = await askFor([a.base, b.base], 8, busyMs);
  exact('8 clients', busy);
  t.diagnostic(`MEASURED consistent GET /queries/total, 8 clients on both instances: ${summary(busy, busyMs / 1000)}`);

  // Under transfers: ~200/s while 2 clients ask.
  const watcher = await ResultsWatcher.start(kafka, admin, names.results);
  cluster.stoppers.push(() => watcher.stop());
  const plan = planTransfers(5000, accounts, funds.total, suffix, 42);
  const stream = new TransferStream(producer, names.input, plan, { perTick: 20, tickMs: 100 });
  cluster.stoppers.push(() => stream.stop());
  await sleep(1000);
  const loaded = await askFor([a.base, b.base], 2, busyMs);
  const sent = await stream.stop();
  exact('under transfers', loaded);
  t.diagnostic(`MEASURED consistent GET /queries/total under ~200 transfers/s, 2 clients: ${summary(loaded, busyMs / 1000)}`);
  await waitForOutcomes(watcher, sent, instances);
  const report = checkOutcomes(await readTopic(kafka, names.results), sent, funds, names.protocol);
  await checkState(a.base, report, funds);

  // Bounds far above what an idle 2-core machine shows (tens of ms), to catch a stall, not a slow run.
  assert.ok(percentile(idleAll, 50) < 1000, `idle p50 ${percentile(idleAll, 50)} ms < 1 s`);
  assert.ok(percentile(idleAll, 99) < 3000, `idle p99 ${percentile(idleAll, 99)} ms < 3 s`);
  assert.ok(busy.length / (busyMs / 1000) >= 10, `8 clients get at least 10 answers/s (got ${(busy.length / (busyMs / 1000)).toFixed(1)})`);
  assert.ok(percentile(loaded.map((x) => x.ms), 99) < 5000, 'p99 under transfers < 5 s');
  for (const i of instances) {
    const exit = await terminate(i);
    assert.equal(exit.code, 0, `${i.id} stops cleanly on SIGTERM\n${i.output().slice(-2000)}`);
  }
  const { rounds, problems } = roundsOf(parseProtocol(kcatRead(names.protocol)));
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} protocol problems`);
  t.diagnostic(`protocol: ${rounds.length} rounds in the whole test`);
});

// ---- 4. a burst: the coordinator's queue under a backlog ------------------------------------------

const BURST = 10_000;

test(
  `a burst of ${BURST} transfers produced at once (one instance): all decided, the ledger holds; MP throughput draining a backlog`,
  {
    timeout: 120_000,
  },
  async (t) => {
    const cluster = await bankCluster(t, { replicas: 0 });
    const { suffix, names, kafka, producer, instances } = cluster;
    const solo = await startInstance(cluster, `burst-${suffix}`);
    await waitWithLogs('the instance to own every partition', instances, () => placement([solo]), { timeoutMs: 60_000, intervalMs: 250 });
    const { accounts, funds } = await fundAccounts(cluster, solo, 51);
    const { watcher, poller } = await watch(cluster);

    const sent = planTransfers(BURST, accounts, funds.total, suffix, 52);
    const sentAt = Date.now();
    for (let i = 0; i < sent.length; i += 2000) {
      await producer.send({ topic: names.input, acks: -1, messages: sent.slice(i, i + 2000).map((x) => ({ key: x.from, value: objects.encode('Transfer', x) })) });
    }
    t.diagnostic(`produced ${sent.length} transfers in ${fmt(Date.now() - sentAt)}`);
    // Stops waiting at once when a commit is refused for its size (it is retried forever).
    const refused = (): string | undefined => /[^\n]*larger than the max message size[^\n]*/.exec(solo.output())?.[0];
    await waitWithLogs(`an outcome for each of the ${sent.length} transfers`, instances, () => refused() !== undefined || sent.every((x) => watcher.ids.has(x.transferId)), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    assert.equal(refused(), undefined, `the broker refused a commit of the instance for its size (${watcher.ids.size} of ${sent.length} transfers decided)`);
    await poller.stop();
    const report = checkOutcomes(await readTopic(kafka, names.results), sent, funds, names.protocol);
    await checkState(solo.base, report, funds);
    checkTotals(t, poller, funds, []);
    const decidedAt = [...report.outcomes.values()].map((o) => o.timestamp);
    t.diagnostic(
      `MEASURED MP throughput draining a burst of ${sent.length}: all decided ${fmt(Math.max(...decidedAt) - sentAt)} after the first send, ${((sent.length * 1000) / (Math.max(...decidedAt) - sentAt)).toFixed(0)} transfers/s; peak ${peakPerSecond(decidedAt)}/s`,
    );
    const exit = await terminate(solo);
    assert.equal(exit.code, 0, `the instance stops cleanly on SIGTERM\n${solo.output().slice(-2000)}`);
    checkSerialOrder(parseProtocol(kcatRead(names.protocol)), report, funds, sent);
  },
);
