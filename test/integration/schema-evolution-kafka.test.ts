/**
 * Table schema evolution on Kafka (KAFKA_BROKERS) with the ledger fixture
 * (test/e2e/fixtures/evolving-app.ts) run by `farad run` as child processes:
 *
 * (a) v1 with Redis snapshots stops (final snapshots), more v1 input goes to the changelog only;
 *     v2 (a field added with a default) restores every partition from the v1 snapshot + changelog
 *     tail and reads the rows converted, then processes new input; an incompatible v2 (long ->
 *     string) is refused at start, exit status 2, before it consumes or answers anything.
 * (b) Rolling upgrade with one replica: a v1 and a v2 instance of the same app side by side under
 *     load; v1's standby copies of v2's partitions read the rows v2 writes (its new field dropped);
 *     v2 is killed -9 and v1 takes over from its standby copies. Output and state = an
 *     independent tally, exactly once.
 * (c) Rolling upgrade where v2 adds a table: the v1 instance that takes v2's partitions over
 *     (kill -9) leaves that table's changelog rows alone (it used to tombstone every one of them).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import avsc from 'avsc';
import type { Kafka, Producer } from 'kafkajs';
import { fingerprint } from '../../src/codec/index.js';
import { DEPOSIT_SCHEMA, ledgerNames, PARTITIONS, RECEIPT_SCHEMA, type Deposit, type LedgerNames, type Variant } from '../e2e/fixtures/evolving-app.js';
import {
  allConsumed,
  createTopic,
  deleteGroups,
  deleteTopics,
  endOffsets,
  groupOffsets,
  kafkaPartition,
  plainProducer,
  prng,
  readTopic,
  ROOT,
  sleep,
  testKafka,
  uid,
  waitFor,
  type ReadRecord,
} from './helpers.js';
import {
  activePartitions,
  isRunning,
  kill9,
  outputs,
  privateRedis,
  readyz,
  spawnInstance,
  standbyPartitions,
  terminate,
  testRedis,
  waitWithLogs,
  type Instance,
  type PrivateRedis,
} from './replication-helpers.js';

const FIXTURE = join(ROOT, 'test/e2e/fixtures/evolving-app.ts');
const ALL = Array.from({ length: PARTITIONS }, (_, p) => p);

// ---- Avro single objects, encoded here --------------------------------------------------------------

const DEPOSIT = avsc.Type.forSchema(DEPOSIT_SCHEMA);
const RECEIPT = avsc.Type.forSchema(RECEIPT_SCHEMA);
const DEPOSIT_HEADER = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint(DEPOSIT)]);
const RECEIPT_HEADER = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint(RECEIPT)]);

async function sendDeposits(producer: Producer, topic: string, deposits: readonly Deposit[], chunk = 500): Promise<void> {
  for (let i = 0; i < deposits.length; i += chunk) {
    await producer.send({
      topic,
      acks: -1,
      messages: deposits.slice(i, i + chunk).map((d) => ({ key: d.account, value: Buffer.concat([DEPOSIT_HEADER, DEPOSIT.toBuffer(d)]) })),
    });
  }
}

function makeDeposits(count: number, seed: number, accounts: number): Deposit[] {
  const random = prng(seed);
  return Array.from({ length: count }, () => ({
    account: `acct-${String(Math.floor(random() * accounts)).padStart(3, '0')}`,
    amount: 1 + Math.floor(random() * 1000),
  }));
}

// ---- an independent tally ---------------------------------------------------------------------------

interface Totals {
  balance: number;
  deposits: number;
}

function tally(deposits: readonly Deposit[]): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const { account, amount } of deposits) {
    const t = out.get(account) ?? { balance: 0, deposits: 0 };
    out.set(account, { balance: t.balance + amount, deposits: t.deposits + 1 });
  }
  return out;
}

/**
 * The receipts topic (read_committed) against the deposits produced: exactly one receipt per
 * deposit, keyed by its account, and per account the running balance and count of its deposits
 * in production order (one account = one partition = one order).
 */
function assertReceipts(records: readonly ReadRecord[], sent: readonly Deposit[]): void {
  const expected = new Map<string, string[]>();
  const running = new Map<string, Totals>();
  for (const { account, amount } of sent) {
    const t = running.get(account) ?? { balance: 0, deposits: 0 };
    const next = { balance: t.balance + amount, deposits: t.deposits + 1 };
    running.set(account, next);
    let list = expected.get(account);
    if (!list) expected.set(account, (list = []));
    list.push(`${next.balance}/${next.deposits}`);
  }
  const actual = new Map<string, string[]>();
  const problems: string[] = [];
  for (const r of records) {
    if (r.value === null || !r.value.subarray(0, 10).equals(RECEIPT_HEADER)) {
      problems.push(`not a Receipt at ${r.partition}/${r.offset}`);
      continue;
    }
    const receipt = RECEIPT.fromBuffer(r.value.subarray(10)) as { account: string; balance: number; deposits: number };
    if (r.key !== receipt.account) problems.push(`key ${r.key} of the receipt of ${receipt.account} at ${r.partition}/${r.offset}`);
    let list = actual.get(receipt.account);
    if (!list) actual.set(receipt.account, (list = []));
    list.push(`${receipt.balance}/${receipt.deposits}`);
  }
  assert.deepEqual(problems, [], 'every output record is a Receipt keyed by its account');
  assert.equal(records.length, sent.length, 'exactly one committed receipt per deposit (none lost, none doubled)');
  const diffs: string[] = [];
  for (const account of new Set([...expected.keys(), ...actual.keys()])) {
    const e = expected.get(account) ?? [];
    const a = actual.get(account) ?? [];
    if (e.join() !== a.join()) diffs.push(`${account}: expected [${e.join(', ')}] got [${a.join(', ')}]`);
    if (diffs.length >= 5) break;
  }
  assert.deepEqual(diffs, [], 'per account, the receipts of its deposits in order = the tally');
}

// ---- reading farad --------------------------------------------------------------------------------

/** Every row of a table over HTTP (`stale`: from this instance's own copies, standby ones included). */
async function scanTable(
  base: string,
  table: string,
  stale = false,
): Promise<{ rows: Map<string, Record<string, unknown>>; partitions: Map<string, number>; staleAnswer: boolean }> {
  const rows = new Map<string, Record<string, unknown>>();
  const partitions = new Map<string, number>();
  let after: string | null = null;
  let staleAnswer = false;
  for (;;) {
    const url: string = `${base}/tables/${table}?limit=1000${stale ? '&stale=true' : ''}${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
    staleAnswer ||= res.headers.get('x-farad-stale') === 'true';
    const page = (await res.json()) as { items: Array<{ key: string; partition: number; value: Record<string, unknown> }>; next: string | null };
    for (const item of page.items) {
      rows.set(String(item.key), item.value);
      partitions.set(String(item.key), item.partition);
    }
    if (page.next === null) return { rows, partitions, staleAnswer };
    after = String(page.next);
  }
}

/** Differences between rows read and the tally (`extra`: which other fields a row may or must have). */
function rowDiffs(rows: ReadonlyMap<string, Record<string, unknown>>, expected: ReadonlyMap<string, Totals>, check: (account: string, row: Record<string, unknown>) => string | undefined = () => undefined): string[] {
  const out: string[] = [];
  if (rows.size !== expected.size) out.push(`${rows.size} rows, tally has ${expected.size} accounts`);
  for (const [account, t] of expected) {
    const row = rows.get(account);
    if (!row) out.push(`${account}: missing`);
    else if (row.balance !== t.balance || row.deposits !== t.deposits) out.push(`${account}: ${JSON.stringify(row)}, tally ${JSON.stringify(t)}`);
    else {
      const problem = check(account, row);
      if (problem) out.push(`${account}: ${problem} (${JSON.stringify(row)})`);
    }
    if (out.length >= 5) break;
  }
  return out;
}

const V1_FIELDS = (_: string, row: Record<string, unknown>): string | undefined =>
  Object.keys(row).sort().join() === 'balance,deposits' ? undefined : 'a v1 row has exactly balance and deposits';

interface RestoreLine {
  partition: number;
  source: string;
  changelogRecords: number;
}

/** The `partition restored` lines (info level) of an instance's output. */
function restoreLines(output: string): RestoreLine[] {
  const out: RestoreLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('"partition restored"')) continue;
    try {
      out.push(JSON.parse(line) as RestoreLine);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

async function cleanUp(kafka: Kafka, names: LedgerNames): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await deleteTopics(admin, [names.input, names.output, names.changelog, names.dlq, names.schemas]);
    await deleteGroups(admin, [names.app]);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Deposits sent `perTick` every `tickMs` while started; `sent()` is the acknowledged prefix. */
class DepositStream {
  private count = 0;
  private stopped = true;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private deposits: readonly Deposit[],
    private readonly perTick = 20,
    private readonly tickMs = 50,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = (async () => {
      while (!this.stopped && this.count < this.deposits.length) {
        const started = Date.now();
        const chunk = this.deposits.slice(this.count, this.count + this.perTick);
        await sendDeposits(this.producer, this.topic, chunk);
        this.count += chunk.length;
        const wait = this.tickMs - (Date.now() - started);
        if (wait > 0) await sleep(wait);
      }
    })();
  }

  async stop(): Promise<Deposit[]> {
    this.stopped = true;
    await this.loop;
    return this.sent();
  }

  sent(): Deposit[] {
    return this.deposits.slice(0, this.count);
  }

  /** While stopped: what is sent next (after what was sent already). */
  continueWith(more: readonly Deposit[]): void {
    assert.ok(this.stopped, 'continueWith while stopped');
    this.deposits = [...this.sent(), ...more];
  }
}

// ---- (a) snapshots and refusal -----------------------------------------------------------------------

test('Kafka + Redis: v2 (added field) restores from a v1 snapshot + changelog tail; an incompatible v2 is refused before consuming anything', { timeout: 150_000 }, async (t) => {
  const testStarted = Date.now();
  const suffix = uid();
  const names = ledgerNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const redis: PrivateRedis = await privateRedis();
  const client = testRedis(redis.url);
  const producer = await plainProducer(kafka);
  const instances: Instance[] = [];
  t.after(async () => {
    for (const i of instances) await kill9(i);
    await producer.disconnect().catch(() => undefined);
    client.disconnect();
    await redis.stop();
    await cleanUp(kafka, names);
    await admin.disconnect().catch(() => undefined);
  });
  await redis.start();
  await createTopic(admin, names.input, PARTITIONS);
  const common = {
    FARAD_TEST_APP_SUFFIX: suffix,
    FARAD_REPLICAS: '0',
    FARAD_SESSION_TIMEOUT_MS: '6000',
    // Only the final snapshot at a graceful stop: the tail after it is then exactly phase 2's.
    FARAD_SNAPSHOT_INTERVAL_MS: '600000',
  };
  const id = `solo-${suffix}`;
  const run = async (label: string, env: Record<string, string>, deposits: readonly Deposit[]): Promise<Instance> => {
    const instance = await spawnInstance(id, { ...common, ...env }, FIXTURE);
    instances.push(instance);
    await waitWithLogs(`${label}: /readyz 200`, [instance], () => readyz(instance), { timeoutMs: 60_000, intervalMs: 100 });
    await sendDeposits(producer, names.input, deposits);
    await waitWithLogs(`${label}: every deposit committed`, [instance], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
    return instance;
  };

  const phase1 = makeDeposits(600, 21, 40);
  const phase2 = makeDeposits(300, 22, 40);
  const phase3 = makeDeposits(200, 23, 48); // acct-040..047 are opened by v2
  const refusedInput = makeDeposits(50, 24, 48);

  // 1. v1 with Redis; SIGTERM writes a final snapshot of every partition.
  const v1 = await run('v1 with Redis', { FARAD_TEST_SCHEMA: 'v1', FARAD_REDIS_URL: redis.url }, phase1);
  assert.equal((await terminate(v1)).code, 0, `v1 stops cleanly\n${v1.output().slice(-2000)}`);
  for (const p of ALL) assert.ok(await client.get(`farad:{${names.app}:${p}}:current`), `partition ${p} has a v1 snapshot`);

  // 2. v1 again, without Redis: these rows exist only in the changelog, after the snapshots.
  const v1b = await run('v1 without Redis', { FARAD_TEST_SCHEMA: 'v1' }, phase2);
  assert.equal((await terminate(v1b)).code, 0, `v1 stops cleanly\n${v1b.output().slice(-2000)}`);
  const beforeV2 = [...phase1, ...phase2];
  const oldAccounts = new Set(tally(beforeV2).keys());

  // 3. v2 (currency added, default EUR) with Redis: snapshot + tail, rows converted.
  const v2 = await spawnInstance(id, { ...common, FARAD_TEST_SCHEMA: 'v2-added', FARAD_REDIS_URL: redis.url, FARAD_LOG_LEVEL: 'info' }, FIXTURE);
  instances.push(v2);
  await waitWithLogs('v2: /readyz 200', [v2], () => readyz(v2), { timeoutMs: 60_000, intervalMs: 100 });
  t.diagnostic(`v2 ready ${Date.now() - v2.startedAt} ms after spawn`);
  const restores = await waitWithLogs('v2: a restore line per partition', [v2], () => {
    const lines = restoreLines(v2.output());
    return new Set(lines.map((l) => l.partition)).size === PARTITIONS ? lines : undefined;
  });
  assert.deepEqual(restores.filter((r) => r.source !== 'snapshot'), [], 'every partition restored from its v1 snapshot');
  const tail = restores.reduce((s, r) => s + r.changelogRecords, 0);
  assert.ok(tail > 0, 'and replayed the changelog tail v1 wrote after it');
  t.diagnostic(`v2 restored ${PARTITIONS} partitions from v1 snapshots + ${tail} changelog records`);
  const converted = await scanTable(v2.base, 'accounts');
  assert.deepEqual(
    rowDiffs(converted.rows, tally(beforeV2), (_, row) => (row.currency === 'EUR' && Object.keys(row).length === 3 ? undefined : 'currency should be the default EUR')),
    [],
    'every v1 row (snapshot and tail) reads back with the default',
  );
  await sendDeposits(producer, names.input, phase3);
  await waitWithLogs('v2: phase 3 committed', [v2], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
  const afterV2 = [...beforeV2, ...phase3];
  const rows = await scanTable(v2.base, 'accounts');
  assert.deepEqual(
    rowDiffs(rows.rows, tally(afterV2), (account, row) => {
      const currency = oldAccounts.has(account) ? 'EUR' : 'USD';
      return row.currency === currency ? undefined : `currency should be ${currency}`;
    }),
    [],
    'v2 processes new deposits on the converted rows',
  );
  assert.doesNotMatch(v2.output(), /restore failed|truncated buffer|partition failed/);
  assert.equal((await terminate(v2)).code, 0, `v2 stops cleanly\n${v2.output().slice(-2000)}`);

  // 4. An incompatible v2 (balance long -> string, no migration): refused before consuming anything.
  await sendDeposits(producer, names.input, refusedInput);
  const committedBefore = await groupOffsets(admin, names.app, names.input);
  const outputBefore = await endOffsets(admin, names.output);
  const refused = await spawnInstance(id, { ...common, FARAD_TEST_SCHEMA: 'v2-string', FARAD_REDIS_URL: redis.url }, FIXTURE);
  instances.push(refused);
  const answers: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const res = await fetch(`${refused.base}/events/ledger.Deposit`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ account: 'probe', amount: 1 }),
          signal: AbortSignal.timeout(1000),
        });
        answers.push(res.status);
      } catch {
        // nothing listens
      }
      await sleep(25);
    }
  })();
  const exit = await Promise.race([refused.exited, sleep(30_000).then(() => undefined)]);
  polling = false;
  await poller;
  const refusedMs = Date.now() - refused.startedAt;
  assert.ok(exit, `the refused instance exits by itself\n${refused.output()}`);
  assert.equal(exit.code, 2, `exit status 2\n${refused.output()}`);
  assert.deepEqual(answers, [], 'its HTTP port never answered');
  const out = refused.output();
  const message = out.slice(out.indexOf('farad: '));
  assert.match(message, /^farad: app "ledger_[0-9a-f]+": table "accounts": field "balance" was long and is now string/, out);
  assert.match(message, /migrate: \{ fromVersion: \d, up\(oldRow\)/);
  assert.doesNotMatch(out, /\n\s+at |retrying/, 'a message, no stack trace, no retry loop');
  t.diagnostic(`refused in ${refusedMs} ms: ${message.trim()}`);
  assert.deepEqual(await groupOffsets(admin, names.app, names.input), committedBefore, 'it committed no input');
  assert.deepEqual(await endOffsets(admin, names.output), outputBefore, 'it wrote no output');

  assertReceipts(await readTopic(kafka, names.output), afterV2);
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});

// ---- (b) rolling upgrade ---------------------------------------------------------------------------

interface View {
  readonly active: Map<string, number[]>;
  readonly standby: Map<string, number[]>;
}

/** Both ready, every partition active on exactly one and standing by on the other, each active somewhere. */
async function splitWithStandbys(instances: readonly Instance[]): Promise<View | undefined> {
  for (const i of instances) if (!(await readyz(i))) return undefined;
  const active = new Map<string, number[]>();
  const standby = new Map<string, number[]>();
  for (const i of instances) {
    active.set(i.id, await activePartitions(i.base));
    standby.set(i.id, (await standbyPartitions(i.base)).map((s) => s.partition));
  }
  if ([...active.values()].flat().sort((a, b) => a - b).join() !== ALL.join()) return undefined;
  if ([...active.values()].some((ps) => ps.length === 0)) return undefined;
  for (const [id, ps] of active) {
    for (const p of ps) if (![...standby].some(([other, ss]) => other !== id && ss.includes(p))) return undefined;
  }
  return { active, standby };
}

test('rolling upgrade on Kafka, one replica: a v1 standby reads the rows v2 writes, and takes over from them after kill -9', { timeout: 150_000 }, async (t) => {
  const testStarted = Date.now();
  const suffix = uid();
  const names = ledgerNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const producer = await plainProducer(kafka);
  const instances: Instance[] = [];
  const stream = new DepositStream(producer, names.input, makeDeposits(40_000, 31, 60));
  t.after(async () => {
    await stream.stop().catch(() => undefined);
    for (const i of instances) await kill9(i);
    await producer.disconnect().catch(() => undefined);
    await cleanUp(kafka, names);
    await admin.disconnect().catch(() => undefined);
  });
  await createTopic(admin, names.input, PARTITIONS);
  const common = { FARAD_TEST_APP_SUFFIX: suffix, FARAD_REPLICAS: '1', FARAD_SESSION_TIMEOUT_MS: '6000', FARAD_LOG_LEVEL: 'info' };

  // The old version runs alone, under load.
  const old = await spawnInstance(`old-${suffix}`, { ...common, FARAD_TEST_SCHEMA: 'v1' }, FIXTURE);
  instances.push(old);
  await waitWithLogs('v1: every partition active', [old], async () => (await readyz(old)) && (await activePartitions(old.base)).join() === ALL.join(), {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  stream.start();
  await sleep(1500);

  // The new version joins: the partitions split, each standing by on the other instance.
  const next = await spawnInstance(`new-${suffix}`, { ...common, FARAD_TEST_SCHEMA: 'v2-added' }, FIXTURE);
  instances.push(next);
  const joinedAt = Date.now();
  const view = await waitWithLogs('v1 and v2 sharing the partitions, with standbys', [old, next], () => splitWithStandbys([old, next]), {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  const onNew = view.active.get(next.id)!;
  t.diagnostic(`${Date.now() - joinedAt} ms to split: v1 active [${view.active.get(old.id)!.join(',')}], v2 active [${onNew.join(',')}]`);
  // New accounts from now on (acct-040..079): those in v2's partitions are opened by v2 (USD).
  await stream.stop();
  stream.continueWith(makeDeposits(40_000, 32, 80));
  stream.start();
  await sleep(3000); // v2 writes v2 rows for its partitions, v1's standby copies follow them

  // Input paused and all processed: v1's copies (its standbys of v2's partitions included) = the tally, v1-shaped.
  let sent = await stream.stop();
  await waitWithLogs('input committed', [old, next], () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 });
  const expected = tally(sent);
  const standbyRead = await waitWithLogs('v1 standby copies caught up with v2', [old, next], async () => {
    const read = await scanTable(old.base, 'accounts', true);
    return rowDiffs(read.rows, expected, V1_FIELDS).length === 0 ? read : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  assert.ok(standbyRead.staleAnswer, 'the read came from v1 standby copies');
  // v2's own copies (its active partitions, and its standby copies of v1's, which hold only
  // v1-written rows) read every row with a currency: the default for rows v1 wrote.
  const v2Rows = await waitWithLogs('v2 standby copies caught up with v1', [old, next], async () => {
    const read = await scanTable(next.base, 'accounts', true);
    return rowDiffs(read.rows, expected).length === 0 ? read : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  assert.deepEqual(
    rowDiffs(v2Rows.rows, expected, (account, row) => {
      const onV1 = !onNew.includes(v2Rows.partitions.get(account)!);
      if (onV1) return row.currency === 'EUR' ? undefined : 'a row only v1 wrote reads with the default currency on v2';
      return row.currency === 'EUR' || row.currency === 'USD' ? undefined : 'a v2 row has a currency';
    }),
    [],
    'v2 reads every row (its own and v1-written ones) with a currency',
  );
  const newAccounts = [...v2Rows.rows].filter(([, row]) => row.currency === 'USD').length;
  assert.ok(newAccounts > 0, 'v2 opened accounts (rows with a non-default value of the new field)');
  t.diagnostic(`${expected.size} accounts; ${newAccounts} opened by v2 (USD); v1 standbys read all of them without the new field`);
  assert.match(old.output(), /standby copy: reading the table schema registry again/, 'v1 learnt v2 schema from the registry');
  assert.doesNotMatch(old.output(), /standby copy dropped|partition failed|cannot be read/, 'no standby copy of v1 was dropped');

  // Under load again, kill -9 the new version: v1 takes its partitions over from its standby copies.
  stream.start();
  await sleep(1000);
  await kill9(next);
  const killedAt = Date.now();
  await waitWithLogs('v1 owns every partition again', [old], async () => (await readyz(old)) && (await activePartitions(old.base)).join() === ALL.join(), {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  t.diagnostic(`v1 took over ${Date.now() - killedAt} ms after kill -9`);
  await sleep(1500);
  sent = await stream.stop();
  await waitWithLogs('all input committed by v1', [old], () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 });
  assert.ok(isRunning(old), outputs([old]));

  const takeovers = restoreLines(old.output()).filter((l) => onNew.includes(l.partition) && l.source === 'own copy');
  assert.deepEqual([...new Set(takeovers.map((l) => l.partition))].sort(), [...onNew].sort(), 'v1 restored v2 partitions from its own standby copies');
  const final = await scanTable(old.base, 'accounts');
  assert.deepEqual(rowDiffs(final.rows, tally(sent), V1_FIELDS), [], 'v1 serves every row = the tally');
  assertReceipts(await readTopic(kafka, names.output), sent);
  assert.doesNotMatch(old.output(), /standby copy dropped|partition failed|cannot be read/);
  assert.equal((await terminate(old)).code, 0, `v1 stops cleanly\n${old.output().slice(-2000)}`);
  t.diagnostic(`${sent.length} deposits over ${tally(sent).size} accounts, every receipt exactly once; whole test ${Date.now() - testStarted} ms`);
});

/**
 * v1 alone, then `variant` joins (one replica each way), deposits in, v2 killed -9, v1 takes
 * every partition over and more deposits go in. Returns what was sent and where v2 was active.
 */
async function oldTakesOver(
  t: TestContext,
  variant: Variant,
): Promise<{ names: LedgerNames; kafka: Kafka; old: Instance; sent: Deposit[]; first: Deposit[]; onNew: number[] }> {
  const suffix = uid();
  const names = ledgerNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const producer = await plainProducer(kafka);
  const instances: Instance[] = [];
  t.after(async () => {
    for (const i of instances) await kill9(i);
    await producer.disconnect().catch(() => undefined);
    await cleanUp(kafka, names);
    await admin.disconnect().catch(() => undefined);
  });
  await createTopic(admin, names.input, PARTITIONS);
  const common = { FARAD_TEST_APP_SUFFIX: suffix, FARAD_REPLICAS: '1', FARAD_SESSION_TIMEOUT_MS: '6000', FARAD_LOG_LEVEL: 'info' };
  const old = await spawnInstance(`old-${suffix}`, { ...common, FARAD_TEST_SCHEMA: 'v1' }, FIXTURE);
  instances.push(old);
  await waitWithLogs('v1: every partition active', [old], async () => (await readyz(old)) && (await activePartitions(old.base)).join() === ALL.join(), {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  const first = makeDeposits(1500, 41, 40);
  await sendDeposits(producer, names.input, first.slice(0, 300));
  await waitWithLogs('v1: input committed', [old], () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 });
  const next = await spawnInstance(`new-${suffix}`, { ...common, FARAD_TEST_SCHEMA: variant }, FIXTURE);
  instances.push(next);
  const view = await waitWithLogs('v1 and v2 sharing the partitions, with standbys', [old, next], () => splitWithStandbys([old, next]), {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  const onNew = view.active.get(next.id)!;
  await sendDeposits(producer, names.input, first.slice(300));
  await waitWithLogs('input committed', [old, next], () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 });
  // v1's standby copies of v2's partitions have followed the changelog to its end.
  await waitWithLogs('v1 standby copies caught up', [old, next], async () => {
    const standbys = await standbyPartitions(old.base);
    return onNew.every((p) => standbys.some((s) => s.partition === p && s.lag === 0));
  }, { timeoutMs: 20_000, intervalMs: 200 });
  await sleep(500);

  await kill9(next);
  await waitWithLogs('v1 owns every partition again', [old], async () => (await readyz(old)) && (await activePartitions(old.base)).join() === ALL.join(), {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  const second = makeDeposits(200, 42, 40);
  await sendDeposits(producer, names.input, second);
  await waitWithLogs('input committed by v1', [old], () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 });
  return { names, kafka, old, sent: [...first, ...second], first, onNew };
}

test('rolling upgrade that adds a table: a v1 instance that takes over leaves the new table rows alone', { timeout: 120_000 }, async (t) => {
  const { names, kafka, old, sent, first, onNew } = await oldTakesOver(t, 'v2-new-table');
  assert.deepEqual(rowDiffs((await scanTable(old.base, 'accounts')).rows, tally(sent), V1_FIELDS), [], 'v1 serves every account row');
  assertReceipts(await readTopic(kafka, names.output), sent);

  // The audit rows v2 wrote are still in the changelog: v1 does not know the table, so it must leave them be.
  const latestAudit = new Map<string, ReadRecord>();
  for (const r of await readTopic(kafka, names.changelog)) {
    const [table, key] = JSON.parse(r.key ?? '[]') as [string, string];
    if (table === 'audit') latestAudit.set(key, r);
  }
  const expectedAudit = [...tally(first).keys()].filter((account) => onNew.includes(kafkaPartition(account, PARTITIONS))).sort();
  assert.ok(expectedAudit.length > 0, 'v2 wrote audit rows');
  assert.deepEqual([...latestAudit.keys()].sort(), expectedAudit, 'an audit row per account of v2 partitions');
  const deleted = [...latestAudit].filter(([, r]) => r.value === null).map(([k]) => k);
  assert.deepEqual(deleted, [], 'no audit row was tombstoned by the v1 instance that took over');
});

test('rolling upgrade that renames a table: the v1 instance refuses it clearly (its copies stop, its takeover fails saying why), never serving wrong balances', { timeout: 150_000 }, async (t) => {
  const suffix = uid();
  const names = ledgerNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const producer = await plainProducer(kafka);
  const instances: Instance[] = [];
  t.after(async () => {
    for (const i of instances) await kill9(i);
    await producer.disconnect().catch(() => undefined);
    await cleanUp(kafka, names);
    await admin.disconnect().catch(() => undefined);
  });
  await createTopic(admin, names.input, PARTITIONS);
  const common = { FARAD_TEST_APP_SUFFIX: suffix, FARAD_REPLICAS: '1', FARAD_SESSION_TIMEOUT_MS: '6000', FARAD_LOG_LEVEL: 'info' };
  const old = await spawnInstance(`old-${suffix}`, { ...common, FARAD_TEST_SCHEMA: 'v1' }, FIXTURE);
  instances.push(old);
  await waitWithLogs('v1: every partition active', [old], async () => (await readyz(old)) && (await activePartitions(old.base)).join() === ALL.join(), {
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  const first = makeDeposits(600, 43, 40);
  await sendDeposits(producer, names.input, first.slice(0, 300));
  await waitWithLogs('v1: input committed', [old], () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 });

  const next = await spawnInstance(`new-${suffix}`, { ...common, FARAD_TEST_SCHEMA: 'v2-renamed-table' }, FIXTURE);
  instances.push(next);
  const onNew = await waitWithLogs('v2 active for some partitions', [old, next], async () => {
    if (!(await readyz(next))) return undefined;
    const mine = await activePartitions(next.base);
    return mine.length > 0 ? mine : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
  await sendDeposits(producer, names.input, first.slice(300));
  await waitWithLogs('input committed', [old, next], () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 });
  // v1's copies of v2's partitions meet rows of "ledgers" (the renamed "accounts") and stop.
  await waitWithLogs('v1 stops following the renamed table', [old, next], () => /renamed to \\"ledgers\\" by a newer version/.test(old.output()), {
    timeoutMs: 30_000,
    intervalMs: 200,
  });

  await kill9(next);
  // v1 takes the partitions back; those v2 wrote fail at once, saying why (no retry loop, no wrong answers).
  const failed = await waitWithLogs('v1 fails the partitions v2 renamed, saying why', [old], async () => {
    const body = (await (await fetch(`${old.base}/readyz`)).json()) as { partitions: Array<{ partition: number; role: string; reason?: string }> };
    const bad = body.partitions.filter((p) => p.role === 'failed');
    return bad.length > 0 && onNew.every((p) => bad.some((b) => b.partition === p)) ? bad : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
  for (const p of failed) assert.match(p.reason ?? '', /table "accounts" was renamed to "ledgers" by a newer version of the app/);
  assert.equal((await fetch(`${old.base}/readyz`)).status, 503, 'v1 is not ready');
  // Nothing wrong was said: every receipt in the output is for a sent deposit, once.
  const receipts = await readTopic(kafka, names.output);
  assert.ok(receipts.length <= first.length, 'no receipt beyond the deposits sent');
  t.diagnostic(`v1 refused partitions ${failed.map((p) => p.partition).join(',')} (v2 had ${onNew.join(',')})`);
});
