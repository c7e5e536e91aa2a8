// Durable timers and scheduled procedures on Kafka, with farad children that are killed and
// restarted. The tickets example holds seats with a TTL timer; confirmations sell and cancel it.
// Each test keeps an independent tally of what it produced (and when: every command carries an
// explicit timestamp) and checks it against a read_committed read of the output topic, the
// changelog's fired-timer tombstones and the final table rows:
//  - kill -9 of one of two instances (replicas 1) while holds are pending: each hold ends exactly
//    once, never before it is due, and the holds of the dead instance expire soon after the takeover;
//  - a single instance stopped (SIGTERM with Redis snapshots, or kill -9) and started again: the
//    pending holds expire exactly once, on the new instance;
//  - `every: '1s'` schedules per partition and per app on two instances: one run per partition
//    and second, none doubled, the app-wide one on partition 0 only.
// Confirmations sent while a partition has no owner, before their hold is due, sell the seat even
// when the takeover comes after the due time (a timer waits for input written before it came due).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import tickets from '../../examples/tickets/index.js';
import {
  createTopic,
  deleteGroups,
  deleteTopics,
  getJson,
  kafkaPartition,
  plainProducer,
  prng,
  readTopic,
  ROOT,
  sleep,
  testKafka,
  uid,
} from './helpers.js';
import {
  deleteSnapshots,
  describeView,
  fmt,
  kill9,
  outputs,
  PARTITIONS,
  settled,
  settledWithStandbys,
  spawnInstance,
  terminate,
  waitWithLogs,
  type Instance,
} from './replication-helpers.js';
import { ticketsNames } from './fixtures/timers-tickets-app.js';
import { APP_KEY, PARTITION_KEYS, scheduleApp, scheduleNames, SCHEDULE_EVERY_MS, SCHEDULE_PARTITIONS } from './fixtures/timers-schedule-app.js';
import { SingleObjects, type Decoded } from './single-objects.js';

const TICKETS_FIXTURE = join(ROOT, 'test/integration/fixtures/timers-tickets-app.ts');
const SCHEDULE_FIXTURE = join(ROOT, 'test/integration/fixtures/timers-schedule-app.ts');
const SESSION_TIMEOUT_MS = 6000;
/** Changelog header on a fired timer's tombstone (farad's FIRED_AT_HEADER, restated: the test must not trust farad's constant). */
const FIRED_AT_HEADER = 'farad.timer.fired-at';
/** A timer due while its partition had an owner fires within this of its due time. */
const ON_TIME_MS = 2500;
/** A timer due while its partition had no owner fires within this of the takeover being visible. */
const AFTER_TAKEOVER_MS = 3000;

// ---- Avro single-object encoding of an app's events, from the schemas it declares ------------



const ticketObjects = new SingleObjects(tickets);

// ---- a live read_committed view of an output topic ------------------------------------------

/** Collects every committed record of a topic from the beginning, while the test runs. */
class OutputWatcher {
  readonly events: Decoded[] = [];

  private constructor(
    private readonly consumer: Consumer,
    private readonly admin: Admin,
    private readonly groupId: string,
  ) {}

  static async start(kafka: Kafka, admin: Admin, topic: string, objects: SingleObjects): Promise<OutputWatcher> {
    const groupId = `farad-test-watch-${uid()}`;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
    const watcher = new OutputWatcher(consumer, admin, groupId);
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const record = { partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value, headers: {}, timestamp: Number(m.timestamp) };
          watcher.events.push(objects.decode(record));
        }
      },
    });
    return watcher;
  }

  count(name: string): number {
    return this.events.filter((e) => e.name === name).length;
  }

  /** holdIds of the events of this name seen so far. */
  holdIds(name: string): Set<string> {
    return new Set(this.events.filter((e) => e.name === name).map((e) => String(e.value.holdId)));
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
    await deleteGroups(this.admin, [this.groupId]);
  }
}

// ---- a per-test app on Kafka -------------------------------------------------------------------

interface AppCluster {
  readonly suffix: string;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  /** Every child started: all are killed after the test. */
  readonly instances: Instance[];
  readonly watchers: OutputWatcher[];
}

/**
 * Fresh topics (input, and output with CreateTime so record timestamps are farad's), a plain
 * producer and cleanup of everything the test starts: children, watchers, the app's topics
 * (with its table schema registry), its group and, when `redisUrl` is given, its snapshots.
 */
async function appCluster(
  t: TestContext,
  names: { app: string; input: string; output: string; changelog: string; dlq: string },
  suffix: string,
  { partitions = PARTITIONS, redisUrl }: { partitions?: number; redisUrl?: string } = {},
): Promise<AppCluster> {
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const producer = await plainProducer(kafka);
  const cluster: AppCluster = { suffix, kafka, admin, producer, instances: [], watchers: [] };
  t.after(async () => {
    for (const w of cluster.watchers) await w.stop();
    await producer.disconnect().catch(() => undefined);
    // A graceful stop leaves the group empty, so it can be deleted.
    for (const i of cluster.instances) await terminate(i, 10_000);
    await deleteTopics(admin, [names.input, names.output, names.changelog, names.dlq, `${names.app}-schemas`]);
    await deleteGroups(admin, [names.app]);
    await admin.disconnect();
    if (redisUrl) await deleteSnapshots(redisUrl, names.app);
  });
  await createTopic(admin, names.input, partitions);
  await createTopic(admin, names.output, partitions);
  return cluster;
}

// ---- the tickets model: holds, their plans and an independent tally ----------------------------

type Plan =
  /** Confirmed right after the hold, long before it is due: sold. */
  | 'sold'
  /** Never confirmed: expires. */
  | 'expires'
  /** Confirmed after its expiry (by the confirmation's timestamp): expires, the confirmation is rejected. */
  | 'late-confirm'
  /**
   * Confirmed before its expiry while its partition had no owner (after the kill or stop, before
   * the takeover). In the failover test every such hold comes due before the takeover; in the
   * restart tests some come due after it.
   */
  | 'outage-confirm';

interface Hold {
  readonly holdId: string;
  readonly seat: string;
  readonly ttlMs: number;
  readonly partition: number;
  plan: Plan;
  /** The HoldSeat's record timestamp. */
  heldAt: number;
  /** A second HoldSeat of another holdId while this one is held: HoldRejected. */
  duplicate?: string;
  /** Timestamp of its ConfirmHold, when one was sent. */
  confirmedAt?: number;
}

function expiresAt(hold: Hold): number {
  return hold.heldAt + hold.ttlMs;
}

function makeHolds(count: number, suffix: string, { minTtlMs, maxTtlMs, seed }: { minTtlMs: number; maxTtlMs: number; seed: number }): Hold[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => {
    const seat = `seat-${i}`;
    return { holdId: `h${i}-${suffix}`, seat, ttlMs: minTtlMs + Math.floor(random() * (maxTtlMs - minTtlMs)), partition: kafkaPartition(seat, PARTITIONS), plan: 'expires', heldAt: 0 };
  });
}

/** Sends ticket commands keyed by seat, all with one explicit timestamp (returned). */
async function sendCommands(
  producer: Producer,
  topic: string,
  commands: ReadonlyArray<{ name: 'HoldSeat' | 'ConfirmHold'; value: { holdId: string; seat: string; ttlMs?: number } }>,
): Promise<number> {
  const timestamp = Date.now();
  if (commands.length === 0) return timestamp;
  await producer.send({
    topic,
    acks: -1,
    messages: commands.map((c) => ({ key: c.value.seat, value: ticketObjects.encode(c.name, c.value), timestamp: String(timestamp) })),
  });
  return timestamp;
}

const holdSeat = (hold: Hold, holdId = hold.holdId) => ({ name: 'HoldSeat' as const, value: { holdId, seat: hold.seat, ttlMs: hold.ttlMs } });
const confirmHold = (hold: Hold) => ({ name: 'ConfirmHold' as const, value: { holdId: hold.holdId, seat: hold.seat } });

/** The events the output may hold for one seat, as sorted lists of `<event>:<holdId>`. */
function expectedEvents(hold: Hold): string[][] {
  const base = [`SeatHeld:${hold.holdId}`, ...(hold.duplicate ? [`HoldRejected:${hold.duplicate}`] : [])];
  const sold = [...base, `SeatSold:${hold.holdId}`].sort();
  const expired = [...base, `HoldExpired:${hold.holdId}`].sort();
  const rejected = [...base, `HoldExpired:${hold.holdId}`, `ConfirmRejected:${hold.holdId}`].sort();
  switch (hold.plan) {
    case 'sold':
      return [sold];
    case 'expires':
      return [expired];
    case 'late-confirm':
      return [rejected];
    case 'outage-confirm':
      // Sold: a timer that came due while its partition had no owner waits for the input that
      // was written before it came due.
      return [sold];
  }
}


/** True when the watcher has seen every hold's end and every answer the tally expects. */
function allResolved(watcher: OutputWatcher, holds: readonly Hold[]): boolean {
  const expired = watcher.holdIds('HoldExpired');
  const ended = new Set([...watcher.holdIds('SeatSold'), ...expired]);
  const confirmRejected = watcher.holdIds('ConfirmRejected');
  const holdRejected = watcher.holdIds('HoldRejected');
  const rejectionDue = (h: Hold): boolean => h.plan === 'late-confirm' || (h.plan === 'outage-confirm' && expired.has(h.holdId));
  return holds.every((h) => ended.has(h.holdId) && (!rejectionDue(h) || confirmRejected.has(h.holdId)) && (h.duplicate === undefined || holdRejected.has(h.duplicate)));
}

interface Expiry {
  readonly hold: Hold;
  readonly firedAt: number;
  readonly lateMs: number;
}

/**
 * Checks the whole output against the tally: per seat exactly the expected events (so exactly
 * one SeatSold or HoldExpired, none doubled), SeatHeld first, on the seat's partition, with the
 * expiresAt the tally computes; every HoldExpired's timestamp (its fire time) at or after the due
 * time. Returns the expiries.
 */
function checkOutput(events: readonly Decoded[], holds: readonly Hold[]): { expiries: Expiry[]; sold: Set<string> } {
  const bySeat = new Map<string, Decoded[]>();
  for (const e of events) {
    const seat = String(e.value.seat);
    assert.equal(e.key, seat, `${e.name} of seat ${seat} is keyed by the seat (at ${e.partition}/${e.offset})`);
    assert.equal(e.partition, kafkaPartition(seat, PARTITIONS), `${e.name} of seat ${seat} is on the seat's partition`);
    let list = bySeat.get(seat);
    if (!list) bySeat.set(seat, (list = []));
    list.push(e);
  }
  assert.deepEqual([...bySeat.keys()].sort(), holds.map((h) => h.seat).sort(), 'output events for exactly the held seats');
  const expiries: Expiry[] = [];
  const sold = new Set<string>();
  const problems: string[] = [];
  for (const hold of holds) {
    const list = bySeat.get(hold.seat)!.sort((a, b) => a.offset - b.offset);
    const got = list.map((e) => `${e.name}:${String(e.value.holdId)}`);
    const want = expectedEvents(hold);
    if (!want.some((w) => w.join() === got.slice().sort().join())) {
      const expected = want.map((w) => `[${w.join(', ')}]`).join(' or ');
      problems.push(`${hold.seat} (${hold.plan}, due ${expiresAt(hold)}${hold.confirmedAt ? `, confirmed at ${hold.confirmedAt}` : ''}): expected ${expected} got [${got.join(', ')}]`);
      continue;
    }
    if (list.some((e) => e.name === 'SeatSold')) sold.add(hold.holdId);
    const held = list[0]!;
    if (held.name !== 'SeatHeld') problems.push(`${hold.seat}: first event is ${held.name}, not SeatHeld`);
    if (Number(held.value.expiresAt) !== expiresAt(hold)) problems.push(`${hold.seat}: SeatHeld.expiresAt ${String(held.value.expiresAt)}, tally says ${expiresAt(hold)}`);
    const expired = list.find((e) => e.name === 'HoldExpired');
    if (expired) {
      if (expired.timestamp < expiresAt(hold)) problems.push(`${hold.seat}: HoldExpired at ${expired.timestamp}, ${expiresAt(hold) - expired.timestamp} ms before it was due`);
      expiries.push({ hold, firedAt: expired.timestamp, lateMs: expired.timestamp - expiresAt(hold) });
    }
  }
  assert.deepEqual(problems.slice(0, 15), [], `${problems.length} seats differ from the tally`);
  return { expiries, sold };
}

/**
 * Fired-timer tombstones of the changelog (read_committed): per seat, the fire times in its
 * `farad.timer.fired-at` headers. Checks each is on the seat's partition and a holdExpiry timer.
 */
async function firedTombstones(kafka: Kafka, changelog: string): Promise<Map<string, number[]>> {
  const fired = new Map<string, number[]>();
  for (const r of await readTopic(kafka, changelog)) {
    const header = r.headers[FIRED_AT_HEADER];
    if (header === undefined) continue;
    assert.equal(r.value, null, `a record with ${FIRED_AT_HEADER} is a tombstone (${r.partition}/${r.offset})`);
    const [table, rowKey] = JSON.parse(r.key!) as [string, string];
    assert.equal(table, '__timers', `fired-at header on a row of ${table}`);
    const [kind, seat] = JSON.parse(rowKey) as [string, string, string];
    assert.equal(kind, 'holdExpiry');
    assert.equal(r.partition, kafkaPartition(seat, PARTITIONS), `timer of ${seat} fired on its partition`);
    assert.equal(r.timestamp, Number(header), 'the tombstone carries the fire time as its timestamp too');
    let list = fired.get(seat);
    if (!list) fired.set(seat, (list = []));
    list.push(Number(header));
  }
  return fired;
}

/** Each expired hold's timer fired exactly once in the committed changelog, at its HoldExpired's timestamp; sold ones never fired. */
function checkFiredTombstones(fired: Map<string, number[]>, holds: readonly Hold[], expiries: readonly Expiry[]): void {
  const byHold = new Map(expiries.map((e) => [e.hold.holdId, e]));
  const problems: string[] = [];
  for (const hold of holds) {
    const times = fired.get(hold.seat) ?? [];
    const expiry = byHold.get(hold.holdId);
    const want = expiry ? [expiry.firedAt] : [];
    if (times.join() !== want.join()) problems.push(`${hold.seat} (${hold.plan}): fired-at tombstones [${times.join(', ')}], expected [${want.join(', ')}]`);
  }
  assert.deepEqual(problems.slice(0, 15), [], `${problems.length} seats' fired timers differ`);
}

/** GET /tables/seats/:seat on `base` for every hold: FREE after expiry, SOLD (by its holdId) after a sale (`sold`: holdIds). */
async function checkSeats(base: string, holds: readonly Hold[], sold: ReadonlySet<string>): Promise<void> {
  const problems: string[] = [];
  for (const hold of holds) {
    const { status, body } = await getJson(`${base}/tables/seats/${encodeURIComponent(hold.seat)}`);
    const want = sold.has(hold.holdId) ? { state: 'SOLD', holdId: hold.holdId } : { state: 'FREE', holdId: null };
    const value = status === 200 ? (body as { value: unknown }).value : `HTTP ${status} ${JSON.stringify(body)}`;
    if (JSON.stringify(value) !== JSON.stringify(want)) problems.push(`${hold.seat}: ${JSON.stringify(value)}, expected ${JSON.stringify(want)}`);
  }
  assert.deepEqual(problems.slice(0, 15), [], `${problems.length} seats read back wrong`);
}

function worst(expiries: readonly Expiry[]): Expiry | undefined {
  return expiries.reduce<Expiry | undefined>((w, e) => (w === undefined || e.lateMs > w.lateMs ? e : w), undefined);
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function untilTime(at: number): Promise<void> {
  const wait = at - Date.now();
  if (wait > 0) await sleep(wait);
}

// ---- 1. failover -----------------------------------------------------------------------------

test('timers across kill -9 and failover (two instances, replicas 1): each hold ends exactly once, never early, soon after the takeover', { timeout: 150_000 }, async (t) => {
  const suffix = uid();
  const names = ticketsNames(suffix);
  const cluster = await appCluster(t, names, suffix);
  const { kafka, admin, producer, instances } = cluster;
  const env = { FARAD_TEST_TICKETS_SUFFIX: suffix, FARAD_REPLICAS: '1', FARAD_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS) };
  for (const id of ['a', 'b']) instances.push(await spawnInstance(`${id}-${suffix}`, env, TICKETS_FIXTURE));
  await waitWithLogs('two instances, every partition active once', instances, () => settled(instances), { timeoutMs: 60_000, intervalMs: 250 });
  const watcher = await OutputWatcher.start(kafka, admin, names.output, ticketObjects);
  cluster.watchers.push(watcher);

  // 240 holds on distinct seats, due 2-8 s after they are sent; every other one is confirmed
  // at once, and some get a second HoldSeat while held.
  const holds = makeHolds(240, suffix, { minTtlMs: 2000, maxTtlMs: 8000, seed: 7 });
  const heldAt = await sendCommands(producer, names.input, holds.map((h) => holdSeat(h)));
  for (const h of holds) h.heldAt = heldAt;
  const duplicates = holds.filter((_, i) => i % 12 === 7);
  for (const h of duplicates) h.duplicate = `${h.holdId}-again`;
  await sendCommands(producer, names.input, duplicates.map((h) => holdSeat(h, h.duplicate)));
  const sold = holds.filter((_, i) => i % 2 === 0);
  const confirmedAt = await sendCommands(producer, names.input, sold.map(confirmHold));
  for (const h of sold) {
    h.plan = 'sold';
    h.confirmedAt = confirmedAt;
  }
  assert.ok(confirmedAt < heldAt + 1500, `confirmations sent ${confirmedAt - heldAt} ms after the holds, well before the first is due`);
  await waitWithLogs('every hold and early confirmation answered', instances, () => watcher.count('SeatHeld') === holds.length && watcher.count('SeatSold') === sold.length, {
    timeoutMs: 20_000,
    intervalMs: 50,
  });
  // A standby reports its copy once the changelog has rows to follow: the holds' rows.
  const before = await waitWithLogs('a standby copy of every partition', instances, () => settledWithStandbys(instances), { timeoutMs: 10_000, intervalMs: 100 });
  t.diagnostic(`settled: ${describeView(before)}`);

  // kill -9 the instance with the most active partitions while every unsold hold is pending.
  const [victim, survivor] = [...instances].sort((x, y) => (before.active.get(y.id)?.length ?? 0) - (before.active.get(x.id)?.length ?? 0)) as [Instance, Instance];
  const orphaned = before.active.get(victim.id)!;
  const killedAt = await kill9(victim);
  const pendingOrphaned = holds.filter((h) => h.plan !== 'sold' && orphaned.includes(h.partition) && expiresAt(h) > killedAt);
  t.diagnostic(`kill -9 ${victim.id} (active [${orphaned.join(',')}]) ${killedAt - heldAt} ms after the holds; ${pendingOrphaned.length} of its holds pending`);
  assert.ok(pendingOrphaned.length >= 20, `the victim had pending holds (${pendingOrphaned.length})`);

  // While its partitions have no owner: confirmations before expiry of holds due before any
  // takeover can happen (the session timeout alone is 6 s), and confirmations after expiry.
  const outage = holds.filter((h, i) => i % 4 === 1 && orphaned.includes(h.partition) && expiresAt(h) > killedAt + 2600 && expiresAt(h) < killedAt + 4500);
  assert.ok(outage.length > 0, 'holds to confirm during the outage');
  await untilTime(killedAt + 1000);
  const outageAt = await sendCommands(producer, names.input, outage.map(confirmHold));
  for (const h of outage) {
    h.plan = 'outage-confirm';
    h.confirmedAt = outageAt;
  }
  await untilTime(killedAt + 2500);
  const lateInOutage = holds.filter((h, i) => i % 4 === 3 && expiresAt(h) < Date.now() - 100);
  const lateInOutageAt = await sendCommands(producer, names.input, lateInOutage.map(confirmHold));
  for (const h of lateInOutage) {
    h.plan = 'late-confirm';
    h.confirmedAt = lateInOutageAt;
  }
  t.diagnostic(`during the outage: ${outage.length} confirmations before expiry (at kill + ${outageAt - killedAt} ms), ${lateInOutage.length} after expiry`);

  const after = await waitWithLogs('the survivor to own every partition', [survivor], () => settled([survivor]), { timeoutMs: 40_000, intervalMs: 100 });
  const recoveredAt = Date.now();
  t.diagnostic(`MEASURED kill -9 -> every partition active on the survivor (polled): ${fmt(recoveredAt - killedAt)}; ${describeView(after)}`);

  // After every hold's expiry: confirmations that must be rejected.
  await untilTime(Math.max(...holds.map(expiresAt)) + 300);
  const late = holds.filter((h, i) => i % 8 === 5 && h.plan === 'expires');
  const lateAt = await sendCommands(producer, names.input, late.map(confirmHold));
  for (const h of late) {
    h.plan = 'late-confirm';
    h.confirmedAt = lateAt;
  }
  await waitWithLogs('every hold ended and every late confirmation rejected', [survivor], () => allResolved(watcher, holds), { timeoutMs: 30_000, intervalMs: 100 });
  await sleep(500); // nothing more may come
  t.diagnostic(`plans: ${['sold', 'expires', 'late-confirm', 'outage-confirm'].map((p) => `${p} ${holds.filter((h) => h.plan === p).length}`).join(', ')}; ${duplicates.length} duplicate holds`);

  // The whole output, read to its end offsets, against the tally.
  const events = (await readTopic(kafka, names.output)).map((r) => ticketObjects.decode(r));
  const { expiries, sold: soldIds } = checkOutput(events, holds);
  assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');

  // Fire times: never early (checked above); on time where the partition had an owner; soon
  // after the takeover where it had none.
  const tooLate: string[] = [];
  for (const e of expiries) {
    const takenOver = orphaned.includes(e.hold.partition) && expiresAt(e.hold) > killedAt - ON_TIME_MS;
    const bound = takenOver ? Math.max(expiresAt(e.hold), recoveredAt) + AFTER_TAKEOVER_MS : expiresAt(e.hold) + ON_TIME_MS;
    if (e.firedAt > bound) tooLate.push(`${e.hold.seat} (p${e.hold.partition}) due ${expiresAt(e.hold)} fired ${e.firedAt} (+${e.lateMs} ms)`);
  }
  const orphanedAfterKill = expiries.filter((e) => orphaned.includes(e.hold.partition) && expiresAt(e.hold) > killedAt);
  const kept = expiries.filter((e) => !orphaned.includes(e.hold.partition));
  const firstAfterTakeover = Math.min(...orphanedAfterKill.map((e) => e.firedAt));
  t.diagnostic(`MEASURED kill -9 -> first timer fired on an orphaned partition: ${fmt(firstAfterTakeover - killedAt)}`);
  t.diagnostic(`MEASURED timer lateness, orphaned partitions (due after the kill, n=${orphanedAfterKill.length}): worst ${fmt(worst(orphanedAfterKill)?.lateMs ?? NaN)}, p50 ${fmt(percentile(orphanedAfterKill.map((e) => e.lateMs), 50))}`);
  t.diagnostic(`MEASURED worst fire time past max(due, takeover seen): ${fmt(Math.max(...orphanedAfterKill.map((e) => e.firedAt - Math.max(expiresAt(e.hold), recoveredAt))))}`);
  t.diagnostic(`MEASURED timer lateness, the survivor's own partitions (n=${kept.length}): worst ${fmt(worst(kept)?.lateMs ?? NaN)}, p50 ${fmt(percentile(kept.map((e) => e.lateMs), 50))}`);
  assert.deepEqual(tooLate.slice(0, 10), [], `${tooLate.length} timers fired too late (kill at ${killedAt}, takeover seen at ${recoveredAt})`);
  assert.ok(firstAfterTakeover > killedAt, 'timers of the orphaned partitions fired after the kill');

  checkFiredTombstones(await firedTombstones(kafka, names.changelog), holds, expiries);
  await checkSeats(survivor.base, holds, soldIds);
  await checkOutageConfirmations(t, outage, soldIds, recoveredAt);
});

/**
 * Confirmations produced before their hold was due, while the hold's partition had no owner, and
 * still before it was due: the app sells (its ConfirmHold compares the confirmation's own
 * timestamp with the due time), even when the timer came due before the takeover.
 */
async function checkOutageConfirmations(t: TestContext, outage: readonly Hold[], sold: ReadonlySet<string>, takeoverAt: number): Promise<void> {
  const overdue = outage.filter((h) => expiresAt(h) < takeoverAt);
  const lost = outage.filter((h) => !sold.has(h.holdId));
  t.diagnostic(`confirmations sent before expiry while the partition had no owner: ${outage.length} (${overdue.length} of those holds overdue at the takeover), ${lost.length} lost to the timer`);
  await t.test('a confirmation produced before its hold was due sells the seat, even when the takeover comes after the due time', () => {
    assert.deepEqual(
      lost.map((h) => `${h.seat}: confirmed at ${h.confirmedAt}, due ${expiresAt(h)}, takeover at ${takeoverAt}: expired`),
      [],
    );
  });
}

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

// ---- 2. restart --------------------------------------------------------------------------------

for (const stop of ['SIGTERM', 'SIGKILL'] as const) {
  const how = stop === 'SIGTERM' ? 'SIGTERM (final snapshot to Redis)' : 'kill -9 (restore from the changelog)';
  test(`pending timers survive a restart of the only instance, ${how}: each hold expires exactly once, on the new instance`, { timeout: 120_000 }, async (t) => {
    const suffix = uid();
    const names = ticketsNames(suffix);
    const redisUrl = stop === 'SIGTERM' ? process.env.REDIS_URL : undefined;
    if (stop === 'SIGTERM') assert.ok(redisUrl, 'REDIS_URL is set (snapshots of the SIGTERM case)');
    const cluster = await appCluster(t, names, suffix, redisUrl ? { redisUrl } : {});
    const { kafka, admin, producer, instances } = cluster;
    const env: Record<string, string> = { FARAD_TEST_TICKETS_SUFFIX: suffix, FARAD_REPLICAS: '0', FARAD_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS) };
    if (redisUrl) env.FARAD_REDIS_URL = redisUrl;
    const first = await spawnInstance(`first-${suffix}`, env, TICKETS_FIXTURE);
    instances.push(first);
    await waitWithLogs('the instance to own every partition', instances, () => settled([first]), { timeoutMs: 60_000, intervalMs: 250 });
    const watcher = await OutputWatcher.start(kafka, admin, names.output, ticketObjects);
    cluster.watchers.push(watcher);

    // 80 holds due 3-9 s after they are sent (the new instance takes over after about 6 s); a
    // quarter confirmed at once.
    const holds = makeHolds(80, suffix, { minTtlMs: 3000, maxTtlMs: 9000, seed: 3 });
    const heldAt = await sendCommands(producer, names.input, holds.map((h) => holdSeat(h)));
    for (const h of holds) h.heldAt = heldAt;
    const sold = holds.filter((_, i) => i % 4 === 0);
    const confirmedAt = await sendCommands(producer, names.input, sold.map(confirmHold));
    for (const h of sold) {
      h.plan = 'sold';
      h.confirmedAt = confirmedAt;
    }
    await waitWithLogs('every hold and confirmation answered', instances, () => watcher.count('SeatHeld') === holds.length && watcher.count('SeatSold') === sold.length, {
      timeoutMs: 20_000,
      intervalMs: 50,
    });

    const stoppedAt = Date.now();
    if (stop === 'SIGTERM') {
      const exit = await terminate(first);
      assert.equal(exit.code, 0, `the instance stops cleanly on SIGTERM\n${first.output().slice(-2000)}`);
    } else {
      await kill9(first);
    }
    const downAt = Date.now();
    const expiring = holds.filter((h) => h.plan === 'expires');
    const earliest = Math.min(...expiring.map(expiresAt));
    t.diagnostic(`${stop} ${stoppedAt - heldAt} ms after the holds, gone ${downAt - stoppedAt} ms later; ${expiring.length} holds pending, the first due ${earliest - downAt} ms after that`);
    assert.ok(downAt < earliest, 'every unsold hold was still pending when the instance was gone');
    assert.equal(watcher.count('HoldExpired'), 0, 'nothing expired before the stop');

    // Down for a while: confirmations of some holds arrive (long before they are due), and
    // holds come due with no instance running.
    const outage = holds.filter((_, i) => i % 4 === 1);
    const outageAt = await sendCommands(producer, names.input, outage.map(confirmHold));
    for (const h of outage) {
      h.plan = 'outage-confirm';
      h.confirmedAt = outageAt;
    }
    assert.ok(outageAt < earliest - 1000, 'the outage confirmations are sent well before any hold is due');
    await sleep(3000);
    const second = await spawnInstance(`second-${suffix}`, { ...env, FARAD_LOG_LEVEL: 'info' }, TICKETS_FIXTURE);
    instances.push(second);
    await waitWithLogs('the new instance to own every partition', [second], () => settled([second]), { timeoutMs: 60_000, intervalMs: 100 });
    const ownedAt = Date.now();
    t.diagnostic(`new instance started ${second.startedAt - downAt} ms after the stop, owns every partition ${ownedAt - second.startedAt} ms later`);
    await waitWithLogs('every hold ended', [second], () => allResolved(watcher, holds), { timeoutMs: 30_000, intervalMs: 100 });
    await sleep(500);

    const events = (await readTopic(kafka, names.output)).map((r) => ticketObjects.decode(r));
    const { expiries, sold: soldIds } = checkOutput(events, holds);
    assert.equal(expiries.length + soldIds.size, holds.length);
    // Every expiry is the new instance's: the old one was gone before any hold was due.
    const early = expiries.filter((e) => e.firedAt < second.startedAt);
    assert.deepEqual(early.map((e) => `${e.hold.seat} fired ${e.firedAt}`), [], 'no expiry fired before the new instance started');
    const tooLate = expiries.filter((e) => e.firedAt > Math.max(expiresAt(e.hold), ownedAt) + AFTER_TAKEOVER_MS);
    assert.deepEqual(tooLate.map((e) => `${e.hold.seat} due ${expiresAt(e.hold)} fired ${e.firedAt}`), [], `timers fire soon after the restart (owned at ${ownedAt})`);
    const dueWhileDown = expiries.filter((e) => expiresAt(e.hold) < ownedAt);
    t.diagnostic(`MEASURED ${dueWhileDown.length} holds came due while no instance owned them; worst lateness ${fmt(worst(expiries)?.lateMs ?? NaN)}, of those due afterwards ${fmt(worst(expiries.filter((e) => expiresAt(e.hold) >= ownedAt))?.lateMs ?? NaN)}`);
    assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');
    checkFiredTombstones(await firedTombstones(kafka, names.changelog), holds, expiries);
    await checkSeats(second.base, holds, soldIds);

    const restored = [...second.output().matchAll(/"source":"([^"]+)"[^\n]*"msg":"partition restored"|"msg":"partition restored"[^\n]*"source":"([^"]+)"/g)].map((m) => m[1] ?? m[2] ?? '?');
    t.diagnostic(`new instance restored its partitions from: ${JSON.stringify(countBy(restored))}`);
    if (stop === 'SIGTERM') assert.equal(restored.filter((s) => s === 'snapshot').length, PARTITIONS, `every partition restored from the SIGTERM's snapshots\n${outputs([second])}`);
    await checkOutageConfirmations(t, outage, soldIds, ownedAt);
  });
}

// ---- 3. scheduled procedures -----------------------------------------------------------------

test("scheduled procedures on Kafka (two instances): every '1s' runs once per partition and second, the app-wide one on partition 0 only", { timeout: 120_000 }, async (t) => {
  const suffix = uid();
  const names = scheduleNames(suffix);
  const objects = new SingleObjects(scheduleApp(suffix));
  const cluster = await appCluster(t, names, suffix, { partitions: SCHEDULE_PARTITIONS });
  const { kafka, instances } = cluster;
  const env = { FARAD_TEST_SCHEDULE_SUFFIX: suffix, FARAD_REPLICAS: '1', FARAD_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS) };
  for (const id of ['a', 'b']) instances.push(await spawnInstance(`${id}-${suffix}`, env, SCHEDULE_FIXTURE));
  const view = await waitWithLogs('two instances, every partition active once', instances, () => settled(instances), { timeoutMs: 60_000, intervalMs: 250 });
  const settledAt = Date.now();
  t.diagnostic(`settled: ${describeView(view)}`);
  await sleep(6000);
  const windowEnd = Date.now();

  // The committed run counters, then the output (which holds at least the runs they count).
  const counted = new Map<string, number>();
  for (const key of [...PARTITION_KEYS, APP_KEY]) {
    const { status, body } = await getJson(`${instances[0]!.base}/tables/runs/${encodeURIComponent(key)}`);
    assert.equal(status, 200, `GET /tables/runs/${key}: ${JSON.stringify(body)}`);
    counted.set(key, Number((body as { value: { runs: number } }).value.runs));
  }
  const events = (await readTopic(kafka, names.output)).map((r) => objects.decode(r));
  assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');

  const problems: string[] = [];
  let skipped = 0;
  /**
   * Checks one schedule's runs on one partition: counted 1..n (none lost or doubled), where they
   * should be, each for its own second (`run.scheduledFor` on a second boundary, strictly
   * increasing), fired at or after it; about one per second in [settledAt, windowEnd).
   */
  const checkRuns = (what: string, runs: readonly Decoded[], partition: number, key: string): { count: number; inWindow: number; late: number[] } => {
    runs = [...runs].sort((a, b) => a.offset - b.offset);
    const counts = runs.map((r) => Number(r.value.runs));
    if (counts.join() !== counts.map((_, i) => i + 1).join()) problems.push(`${what}: run counts [${counts.join(',')}], expected 1..${runs.length} (a run lost or doubled)`);
    const late: number[] = [];
    let previous: number | undefined;
    for (const r of runs) {
      const slot = Number(r.value.slot);
      const at = Number(r.value.at);
      if (r.partition !== partition || r.key !== key || Number(r.value.partition) !== partition) problems.push(`${what}: run ${String(r.value.runs)} ran on partition ${String(r.value.partition)}, landed on ${r.partition} keyed ${r.key}`);
      if (at !== r.timestamp) problems.push(`${what}: run ${String(r.value.runs)} ctx.timestamp ${at} != its record's timestamp ${r.timestamp}`);
      if (slot % SCHEDULE_EVERY_MS !== 0) problems.push(`${what}: run ${String(r.value.runs)} is for ${slot}, not a second boundary`);
      if (at < slot) problems.push(`${what}: run ${String(r.value.runs)} for ${slot} fired early, at ${at}`);
      if (previous !== undefined && slot <= previous) problems.push(`${what}: run ${String(r.value.runs)} is for ${slot}, after a run for ${previous} (a slot ran twice)`);
      if (previous !== undefined && slot > previous + SCHEDULE_EVERY_MS && at >= settledAt) skipped += (slot - previous) / SCHEDULE_EVERY_MS - 1;
      previous = slot;
      late.push(at - slot);
    }
    if ((counted.get(key) ?? 0) > runs.length) problems.push(`${what}: the table counts ${counted.get(key)} runs, the output has ${runs.length}`);
    const inWindow = runs.filter((r) => Number(r.value.slot) >= settledAt && Number(r.value.slot) < windowEnd).length;
    if (Math.abs(inWindow - windowSeconds) > 1.5) problems.push(`${what}: ${inWindow} runs for the ${windowSeconds.toFixed(1)} s from settling to the end (once a second expected)`);
    return { count: runs.length, inWindow, late };
  };

  const windowSeconds = (windowEnd - settledAt) / SCHEDULE_EVERY_MS;
  const lateness: number[] = [];
  const perPartition: string[] = [];
  for (let p = 0; p < SCHEDULE_PARTITIONS; p++) {
    const ticks = events.filter((e) => e.name === 'Tick' && e.partition === p);
    const { count, inWindow, late } = checkRuns(`partition ${p}`, ticks, p, PARTITION_KEYS[p]!);
    lateness.push(...late);
    perPartition.push(`${p}: ${count} (${inWindow} in window)`);
  }
  const strays = events.filter((e) => e.name === 'Tick' && Number(e.value.partition) !== e.partition);
  assert.equal(strays.length, 0, 'every Tick on its partition');

  // Once for the app: on partition 0 (its key's partition too), not once per partition or instance.
  const appTicks = events.filter((e) => e.name === 'AppTick');
  assert.equal(kafkaPartition(APP_KEY, SCHEDULE_PARTITIONS), 0);
  const app = checkRuns('app-wide', appTicks, 0, APP_KEY);

  t.diagnostic(`runs per partition: ${perPartition.join(', ')}; app-wide ${app.count} (${app.inWindow} in window); window ${windowSeconds.toFixed(1)} s`);
  t.diagnostic(`MEASURED schedule fire time past its slot: p50 ${fmt(percentile(lateness, 50))}, worst ${fmt(Math.max(...lateness))}; slots skipped after settling: ${skipped}`);
  assert.deepEqual(problems.slice(0, 15), [], `${problems.length} problems\n${outputs(instances, 1500)}`);
  for (const i of instances) {
    const exit = await terminate(i);
    assert.equal(exit.code, 0, `${i.id} stops cleanly on SIGTERM\n${i.output().slice(-2000)}`);
  }
});
