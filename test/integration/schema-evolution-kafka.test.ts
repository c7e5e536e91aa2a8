/**
 * Table schema evolution on Kafka (KAFKA_BROKERS) with the ledger fixture
 * (test/e2e/fixtures/evolving-app.ts) run by `farad run` as child processes:
 *
 * (a) v1 with Redis snapshots stops (final snapshots), more v1 input goes to the changelog only;
 *     v2 (a field added with a default) restores every partition from the v1 snapshot + changelog
 *     tail and reads the rows converted, then processes new input; an incompatible v2 (long ->
 *     string) is refused at start, exit status 2, before it consumes or answers anything.
 * (a') Every other change the embedded test (test/e2e/schema-evolution.test.ts) covers, each on a
 *     fresh app from the same v1 state (a v1 snapshot per partition + a v1 changelog tail):
 *     int -> long, a field renamed through an alias, long -> string refused at start then
 *     accepted with `migrate`, a table renamed with `formerly` (the old-name rows tombstoned in
 *     the changelog), a table removed undeclared (refused) then declared in `droppedTables` (its
 *     rows tombstoned). The new version restores from snapshot + tail, serves every row = an
 *     independent tally, processes new input, and after a restart from the changelog alone
 *     serves the same rows; every receipt exactly once.
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
import { isDeepStrictEqual } from 'node:util';
import avsc from 'avsc';
import { ledgerDeposits, tally, type Totals } from '../support/ledger.js';
import type { Kafka, Producer } from 'kafkajs';
import { decodeChangeKey, fingerprint, rowSchemaOf, schemaFingerprint } from '../../src/codec/index.js';
import {
  ACCOUNT_SCHEMAS,
  accountsTable,
  DEPOSIT_SCHEMA,
  hasLastDeposit,
  ledgerNames,
  PARTITIONS,
  RECEIPT_SCHEMA,
  type Deposit,
  type LedgerNames,
  type Variant,
} from '../e2e/fixtures/evolving-app.js';
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

/** `count` deterministic deposits over `accounts` accounts from acct-`first` on, amounts 1..1000. */
function makeDeposits(count: number, seed: number, accounts: number, first = 0): Deposit[] {
  return ledgerDeposits(prng(seed), count, accounts, { first, width: 3 });
}

// ---- an independent tally (tally() in test/support/ledger.ts) ----------------------------------------

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

/** A private copy of the ledger app on Kafka (one instance at a time, no replicas) with a private Redis. */
interface SoloLedger {
  readonly names: LedgerNames;
  readonly kafka: Kafka;
  readonly admin: ReturnType<Kafka['admin']>;
  readonly producer: Producer;
  readonly redis: PrivateRedis;
  readonly client: ReturnType<typeof testRedis>;
  /** `farad run` of `variant` (env added last); killed -9 after the test if still running. */
  spawn(variant: Variant, env?: Record<string, string>): Promise<Instance>;
  /** Spawns `variant`, waits until ready, sends `deposits` and waits until every input is committed. */
  run(label: string, variant: Variant, env: Record<string, string>, deposits: readonly Deposit[]): Promise<Instance>;
}

/** Topics, clients and a Redis of a fresh app copy, all cleaned up after the test. */
async function soloLedger(t: TestContext): Promise<SoloLedger> {
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
    // Only the final snapshot at a graceful stop: the tail after it is then exactly what a run without Redis wrote.
    FARAD_SNAPSHOT_INTERVAL_MS: '600000',
  };
  const id = `solo-${suffix}`;
  const spawn = async (variant: Variant, env: Record<string, string> = {}): Promise<Instance> => {
    const instance = await spawnInstance(id, { ...common, FARAD_TEST_SCHEMA: variant, ...env }, FIXTURE);
    instances.push(instance);
    return instance;
  };
  const run = async (label: string, variant: Variant, env: Record<string, string>, deposits: readonly Deposit[]): Promise<Instance> => {
    const instance = await spawn(variant, env);
    await waitWithLogs(`${label}: /readyz 200`, [instance], () => readyz(instance), { timeoutMs: 60_000, intervalMs: 100 });
    await sendDeposits(producer, names.input, deposits);
    await waitWithLogs(`${label}: every deposit committed`, [instance], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
    return instance;
  };
  return { names, kafka, admin, producer, redis, client, spawn, run };
}

/**
 * The state a schema change meets: v1 with Redis takes `snapshotted` and stops gracefully (a
 * final snapshot of every partition), then v1 without Redis takes `tail`, whose rows exist only in
 * the changelog after those snapshots.
 */
async function v1SnapshotAndTail(ledger: SoloLedger, snapshotted: readonly Deposit[], tail: readonly Deposit[]): Promise<void> {
  const v1 = await ledger.run('v1 with Redis', 'v1', { FARAD_REDIS_URL: ledger.redis.url }, snapshotted);
  assert.equal((await terminate(v1)).code, 0, `v1 stops cleanly\n${v1.output().slice(-2000)}`);
  for (const p of ALL) assert.ok(await ledger.client.get(`farad:{${ledger.names.app}:${p}}:current`), `partition ${p} has a v1 snapshot`);
  const v1b = await ledger.run('v1 without Redis', 'v1', {}, tail);
  assert.equal((await terminate(v1b)).code, 0, `v1 stops cleanly\n${v1b.output().slice(-2000)}`);
}

/** Waits for a `partition restored` line per partition (info logs): every one from its snapshot, plus a changelog tail. Returns the tail's records. */
async function restoredFromSnapshots(instance: Instance, label: string): Promise<number> {
  const restores = await waitWithLogs(`${label}: a restore line per partition`, [instance], () => {
    const lines = restoreLines(instance.output());
    return new Set(lines.map((l) => l.partition)).size === PARTITIONS ? lines : undefined;
  });
  assert.deepEqual(restores.filter((r) => r.source !== 'snapshot'), [], `${label}: every partition restored from its v1 snapshot`);
  const tail = restores.reduce((s, r) => s + r.changelogRecords, 0);
  assert.ok(tail > 0, `${label}: and replayed the changelog tail v1 wrote after it`);
  return tail;
}

/**
 * `farad run` of a version that must be refused: it exits by itself with status 2, its HTTP port
 * never answers, it commits no input and writes no output; one `farad: ` message, no stack trace,
 * no retry loop. Returns the message (from `farad: ` to the end of the output).
 */
async function refusedStart(ledger: SoloLedger, variant: Variant): Promise<{ message: string; output: string; ms: number }> {
  const { admin, names } = ledger;
  const committedBefore = await groupOffsets(admin, names.app, names.input);
  const outputBefore = await endOffsets(admin, names.output);
  const refused = await ledger.spawn(variant, { FARAD_REDIS_URL: ledger.redis.url });
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
  const ms = Date.now() - refused.startedAt;
  const output = refused.output();
  assert.ok(exit, `${variant}: the refused instance exits by itself\n${output}`);
  assert.equal(exit.code, 2, `${variant}: exit status 2\n${output}`);
  assert.deepEqual(answers, [], `${variant}: its HTTP port never answered`);
  const at = output.indexOf('farad: ');
  assert.ok(at >= 0, `${variant}: a "farad: " message\n${output}`);
  assert.equal(output.split('\n').filter((l) => l.startsWith('farad: ')).length, 1, `${variant}: one message\n${output}`);
  assert.doesNotMatch(output, /\n\s+at |retrying/, `${variant}: a message, no stack trace, no retry loop`);
  assert.deepEqual(await groupOffsets(admin, names.app, names.input), committedBefore, `${variant}: it committed no input`);
  assert.deepEqual(await endOffsets(admin, names.output), outputBefore, `${variant}: it wrote no output`);
  return { message: output.slice(at).trimEnd(), output, ms };
}

test('Kafka + Redis: v2 (added field) restores from a v1 snapshot + changelog tail; an incompatible v2 is refused before consuming anything', { timeout: 150_000 }, async (t) => {
  const testStarted = Date.now();
  const ledger = await soloLedger(t);
  const { names, kafka, admin, producer, redis } = ledger;

  const phase1 = makeDeposits(600, 21, 40);
  const phase2 = makeDeposits(300, 22, 40);
  const phase3 = makeDeposits(200, 23, 48); // acct-040..047 are opened by v2
  const refusedInput = makeDeposits(50, 24, 48);

  // 1.-2. v1 with Redis (final snapshots at SIGTERM), then v1 without: a changelog tail after the snapshots.
  await v1SnapshotAndTail(ledger, phase1, phase2);
  const beforeV2 = [...phase1, ...phase2];
  const oldAccounts = new Set(tally(beforeV2).keys());

  // 3. v2 (currency added, default EUR) with Redis: snapshot + tail, rows converted.
  const v2 = await ledger.spawn('v2-added', { FARAD_REDIS_URL: redis.url, FARAD_LOG_LEVEL: 'info' });
  await waitWithLogs('v2: /readyz 200', [v2], () => readyz(v2), { timeoutMs: 60_000, intervalMs: 100 });
  t.diagnostic(`v2 ready ${Date.now() - v2.startedAt} ms after spawn`);
  const tail = await restoredFromSnapshots(v2, 'v2');
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
  const { message, output, ms } = await refusedStart(ledger, 'v2-string');
  assert.match(message, /^farad: app "ledger_[0-9a-f]+": table "accounts": field "balance" was long and is now string/, output);
  assert.match(message, /migrate: \{ fromVersion: \d, up\(oldRow\)/);
  t.diagnostic(`refused in ${ms} ms: ${message}`);

  assertReceipts(await readTopic(kafka, names.output), afterV2);
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});

// ---- (a') every other schema change, from a v1 snapshot + changelog tail -------------------------------

/** An account row of `variant` for the tally's totals (v2-added, whose rows depend on history, is test (a)'s). */
function accountRow(variant: Variant, { balance, deposits }: Totals): Record<string, unknown> {
  switch (variant) {
    case 'v2-alias':
      return { balance, count: deposits };
    case 'v2-string':
    case 'v2-migrated':
      return { balance: String(balance), deposits };
    default:
      return { balance, deposits };
  }
}

/** The tally as `variant`'s account rows. */
function expectedAccounts(variant: Variant, deposits: readonly Deposit[]): Map<string, Record<string, unknown>> {
  return new Map([...tally(deposits)].map(([account, totals]) => [account, accountRow(variant, totals)]));
}

/** The last amount deposited per account (the lastDeposit table). */
function lastAmounts(deposits: readonly Deposit[]): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const { account, amount } of deposits) out.set(account, { amount });
  return out;
}

/** Rows that differ from the expected ones (first five), and a count mismatch. */
function exactDiffs(rows: ReadonlyMap<string, unknown>, expected: ReadonlyMap<string, unknown>): string[] {
  const out: string[] = [];
  if (rows.size !== expected.size) out.push(`${rows.size} rows, expected ${expected.size}`);
  for (const [key, value] of expected) {
    if (!isDeepStrictEqual(rows.get(key), value)) out.push(`${key}: ${JSON.stringify(rows.get(key))}, expected ${JSON.stringify(value)}`);
    if (out.length >= 5) break;
  }
  return out;
}

/** Every row `variant` serves over HTTP (its accounts table under its name, lastDeposit if it has one) = the tally of `deposits`. */
async function assertLedgerRows(base: string, variant: Variant, deposits: readonly Deposit[], what: string): Promise<void> {
  const accounts = await scanTable(base, accountsTable(variant));
  assert.deepEqual(exactDiffs(accounts.rows, expectedAccounts(variant, deposits)), [], `${variant}: ${what}`);
  if (hasLastDeposit(variant)) {
    const last = await scanTable(base, 'lastDeposit');
    assert.deepEqual(exactDiffs(last.rows, lastAmounts(deposits)), [], `${variant}: ${what} (lastDeposit)`);
  } else {
    assert.equal((await fetch(`${base}/tables/lastDeposit`)).status, 404, `${variant}: lastDeposit is no table any more`);
  }
  if (accountsTable(variant) !== 'accounts') assert.equal((await fetch(`${base}/tables/accounts`)).status, 404, `${variant}: the old name is no table any more`);
}

/** What log compaction would keep of the changelog (read_committed): the latest record per `[table, key]`, tombstones included. */
function compactedChangelog(records: readonly ReadRecord[]): Map<string, ReadRecord & { table: string; row: string }> {
  const out = new Map<string, ReadRecord & { table: string; row: string }>();
  // readTopic sorts by partition and offset, and a row's records share a partition.
  for (const r of records) {
    if (r.key === null) continue;
    const { table, key } = decodeChangeKey(Buffer.from(r.key));
    out.set(r.key, { ...r, table, row: String(key) });
  }
  return out;
}

interface Evolution {
  readonly variant: Variant;
  readonly title: string;
  /** A version refused at start first (on the same v1 state), and what its message must say. */
  readonly refused?: { readonly variant: Variant; readonly says: readonly RegExp[] };
  /** Checks of the changelog v2 left behind (compacted, read_committed), given the v1 accounts and every deposit. */
  readonly changelog?: (kept: ReturnType<typeof compactedChangelog>, v1Accounts: readonly string[], all: readonly Deposit[]) => void;
}

const EVOLUTIONS: readonly Evolution[] = [
  { variant: 'v2-long', title: 'int promoted to long' },
  { variant: 'v2-alias', title: 'field renamed through an alias (deposits read as count)' },
  {
    variant: 'v2-migrated',
    title: 'long -> string refused at start, then accepted with migrate',
    refused: {
      variant: 'v2-string',
      says: [/^farad: app "ledger_[0-9a-f]+": table "accounts": field "balance" was long and is now string/, /stored rows use schema version 1/, /migrate: \{ fromVersion: 1, up\(oldRow\)/],
    },
  },
  {
    variant: 'v2-renamed-table',
    title: 'table renamed with formerly (old-name rows tombstoned in the changelog)',
    changelog: (kept, v1Accounts, all) => {
      const notDeleted = v1Accounts.filter((a) => kept.get(JSON.stringify(['accounts', a]))?.value !== null);
      assert.deepEqual(notDeleted, [], 'the old-name row of every v1 account ends in a tombstone');
      const live = [...kept.values()].filter((r) => r.value !== null);
      assert.deepEqual(live.filter((r) => r.table === 'accounts').map((r) => r.row), [], 'no live row under the old name');
      const type = avsc.Type.forSchema(ACCOUNT_SCHEMAS['v2-renamed-table']);
      const ledgers = live.filter((r) => r.table === 'ledgers');
      // A row value is a single object: `C3 01`, the fingerprint of the schema that wrote it, the Avro body.
      assert.deepEqual(ledgers.filter((r) => rowSchemaOf(r.value!) !== schemaFingerprint(type)).map((r) => r.row), [], 'rows under the new name name their schema');
      const rows = new Map(ledgers.map((r) => [r.row, { ...(type.fromBuffer(r.value!.subarray(10)) as object) }]));
      assert.deepEqual(exactDiffs(rows, expectedAccounts('v2-renamed-table', all)), [], 'the compacted changelog holds every row under the new name');
    },
  },
  {
    variant: 'v2-dropped',
    title: 'table removed: refused undeclared, its rows tombstoned when declared in droppedTables',
    refused: {
      variant: 'v2-dropped-undeclared',
      says: [/^farad: app "ledger_[0-9a-f]+": table "lastDeposit" holds state/, /droppedTables: \['lastDeposit'\]/, /formerly: 'lastDeposit'/],
    },
    changelog: (kept, v1Accounts, all) => {
      const notDeleted = v1Accounts.filter((a) => kept.get(JSON.stringify(['lastDeposit', a]))?.value !== null);
      assert.deepEqual(notDeleted, [], 'every lastDeposit row ends in a tombstone');
      const live = [...kept.values()].filter((r) => r.value !== null);
      assert.deepEqual(live.filter((r) => r.table === 'lastDeposit').map((r) => r.row), [], 'no live lastDeposit row');
      assert.equal(live.filter((r) => r.table === 'accounts').length, tally(all).size, 'the accounts rows are kept');
    },
  },
];

for (const [index, evolution] of EVOLUTIONS.entries()) {
  const { variant, refused, changelog } = evolution;
  test(`Kafka + Redis, ${evolution.title}: ${variant} restores from a v1 snapshot + changelog tail, rows = tally, then again from the changelog alone`, { timeout: 90_000 }, async (t) => {
    const testStarted = Date.now();
    const ledger = await soloLedger(t);
    const { names, kafka, admin, producer, redis } = ledger;
    const seed = 100 + 10 * index;
    const phase1 = makeDeposits(300, seed, 30);
    const phase2 = makeDeposits(150, seed + 1, 30);
    // Waiting while a version is refused, processed by the accepted one.
    const pending = refused ? makeDeposits(60, seed + 2, 30) : [];
    // acct-025..044: a few v1 accounts, mostly new ones; acct-000..024 are never written again after the change.
    const phase3 = makeDeposits(150, seed + 3, 20, 25);

    await v1SnapshotAndTail(ledger, phase1, phase2);
    const v1Accounts = [...tally([...phase1, ...phase2]).keys()];

    if (refused) {
      await sendDeposits(producer, names.input, pending);
      const { message, output, ms } = await refusedStart(ledger, refused.variant);
      for (const says of refused.says) assert.match(message, says, output);
      assert.equal(message.split('\n').length, 1, `one problem, one line: ${message}`);
      t.diagnostic(`${refused.variant} refused in ${ms} ms: ${message}`);
    }

    // The new version, with Redis: every partition from its v1 snapshot + the tail, converted.
    const v2 = await ledger.spawn(variant, { FARAD_REDIS_URL: redis.url, FARAD_LOG_LEVEL: 'info' });
    await waitWithLogs(`${variant}: /readyz 200`, [v2], () => readyz(v2), { timeoutMs: 60_000, intervalMs: 100 });
    const tail = await restoredFromSnapshots(v2, variant);
    const before = [...phase1, ...phase2, ...pending];
    await waitWithLogs(`${variant}: input committed`, [v2], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
    await assertLedgerRows(v2.base, variant, before, `every v1 row (snapshot and tail${refused ? ', then the input waiting' : ''}) = the tally`);
    await sendDeposits(producer, names.input, phase3);
    await waitWithLogs(`${variant}: new input committed`, [v2], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
    const all = [...before, ...phase3];
    await assertLedgerRows(v2.base, variant, all, 'new deposits processed on the converted rows');
    assert.doesNotMatch(v2.output(), /restore failed|truncated buffer|partition failed|cannot be read/, v2.output().slice(-2000));
    assert.equal((await terminate(v2)).code, 0, `${variant} stops cleanly\n${v2.output().slice(-2000)}`);

    changelog?.(compactedChangelog(await readTopic(kafka, names.changelog)), v1Accounts, all);

    // Restarted without Redis: from the changelog alone (v1 rows, what the change wrote, v2 rows).
    const again = await ledger.spawn(variant);
    await waitWithLogs(`${variant} again: /readyz 200`, [again], () => readyz(again), { timeoutMs: 60_000, intervalMs: 100 });
    await assertLedgerRows(again.base, variant, all, 'the same rows after a restart from the changelog alone');
    assert.equal((await terminate(again)).code, 0, `${variant} stops cleanly\n${again.output().slice(-2000)}`);

    assertReceipts(await readTopic(kafka, names.output), all);
    t.diagnostic(`${variant}: ${PARTITIONS} partitions from v1 snapshots + ${tail} changelog records; ${all.length} deposits, every receipt exactly once; whole test ${Date.now() - testStarted} ms`);
  });
}

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
  const { suffix, names, kafka, admin, producer, instances, common, old } = await oldInstance(t);
  const stream = new DepositStream(producer, names.input, makeDeposits(40_000, 31, 60));
  t.after(() => stream.stop().catch(() => undefined));

  // The old version runs alone, under load.
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
/** A v1 instance owning every partition of a fresh app (k=1), for rolling upgrades; cleaned up after the test. */
async function oldInstance(t: TestContext): Promise<{
  suffix: string;
  names: LedgerNames;
  kafka: Kafka;
  admin: ReturnType<Kafka['admin']>;
  producer: Producer;
  instances: Instance[];
  common: Record<string, string>;
  old: Instance;
}> {
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
  return { suffix, names, kafka, admin, producer, instances, common, old };
}

async function oldTakesOver(
  t: TestContext,
  variant: Variant,
): Promise<{ names: LedgerNames; kafka: Kafka; old: Instance; sent: Deposit[]; first: Deposit[]; onNew: number[] }> {
  const { suffix, names, kafka, admin, producer, instances, common, old } = await oldInstance(t);
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
  const { suffix, names, kafka, admin, producer, instances, common, old } = await oldInstance(t);
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
