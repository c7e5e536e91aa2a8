/**
 * Table schema evolution on the embedded log, as a user meets it: version 1 of an app (the ledger
 * fixture, test/e2e/fixtures/evolving-app.ts) runs on a data dir and is fed deposits over HTTP,
 * then stops; a changed version starts on the same data dir. Compatible changes (a field added
 * with a default, int -> long, a field renamed through an alias, a table renamed with `formerly`,
 * a table dropped with `droppedTables`, an incompatible change with `migrate`) start, read every
 * row converted and go on processing; incompatible or undeclared changes are refused by
 * `farad run` within seconds, exit status 2, with a message naming app, table, field, old and new
 * types and the fix, and the HTTP port never answers.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import avsc from 'avsc';
import { ledgerDeposits, tally, type Totals } from '../support/ledger.js';
import { decodeChangeKey, rowSchemaOf, schemaFingerprint } from '../../src/codec/index.js';
import { EmbeddedLog } from '../../src/index.js';
import { compileApp } from '../../src/procedures/index.js';
import {
  ACCOUNT_SCHEMAS,
  evolvingApp,
  ledgerNames,
  PARTITIONS,
  type Deposit,
  type Variant,
} from './fixtures/evolving-app.js';
import {
  exitOf,
  freePort,
  postJson,
  prng,
  ROOT,
  scanTableHttp,
  silentLogger,
  sleep,
  spawnCli,
  startTestService,
  tempDir,
  waitFor,
  waitProcessed,
  type Child,
} from './helpers.js';

const FIXTURE = join(ROOT, 'test/e2e/fixtures/evolving-app.ts');
const NAMES = ledgerNames();
const EVENT = 'ledger.Deposit';

// ---- deposits and an independent tally -------------------------------------------------------------

/** `count` deterministic deposits over `accounts` accounts (acct-00, acct-01, ...), amounts 1..1000. */
function makeDeposits(count: number, seed: number, accounts: number): Deposit[] {
  return ledgerDeposits(prng(seed), count, accounts, { width: 2 });
}

/** The tally as rows of a version's accounts table (`oldAccounts`: accounts that existed before v2-added). */
function expectedRows(totals: Map<string, Totals>, variant: Variant, oldAccounts: ReadonlySet<string> = new Set()): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const account of [...totals.keys()].sort()) {
    const { balance, deposits } = totals.get(account)!;
    switch (variant) {
      case 'v2-added':
        out[account] = { balance, deposits, currency: oldAccounts.has(account) ? 'EUR' : 'USD' };
        break;
      case 'v2-alias':
        out[account] = { balance, count: deposits };
        break;
      case 'v2-string':
      case 'v2-migrated':
        out[account] = { balance: String(balance), deposits };
        break;
      default:
        out[account] = { balance, deposits };
    }
  }
  return out;
}

/** The last amount deposited per account. */
function lastAmounts(deposits: readonly Deposit[]): Record<string, unknown> {
  const out = new Map<string, unknown>();
  for (const { account, amount } of deposits) out.set(account, { amount });
  return Object.fromEntries([...out].sort(([a], [b]) => a.localeCompare(b)));
}

// ---- driving the app -----------------------------------------------------------------------------

/** POSTs deposits in chunks; every chunk must be answered 202. */
async function post(base: string, deposits: readonly Deposit[]): Promise<void> {
  for (let i = 0; i < deposits.length; i += 200) {
    const chunk = deposits.slice(i, i + 200);
    const answer = await postJson(`${base}/events/${EVENT}`, chunk);
    assert.equal(answer.status, 202, answer.text);
    assert.equal(answer.body.accepted, chunk.length);
  }
}

/** Every row of a table over HTTP, sorted by key. */
async function rowsOf(base: string, table: string): Promise<Record<string, unknown>> {
  const rows = await scanTableHttp(base, table);
  return Object.fromEntries(rows.map((r) => [String(r.key), r.value]).sort(([a], [b]) => String(a).localeCompare(String(b))));
}

async function ready(base: string): Promise<boolean> {
  try {
    return (await fetch(`${base}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

/** Starts `variant` in-process on `dataDir` and waits until it is ready. */
async function startVersion(t: TestContext, variant: Variant, dataDir: string): Promise<Awaited<ReturnType<typeof startTestService>>> {
  const started = await startTestService(t, evolvingApp(variant), dataDir);
  await waitFor(`${variant}: /readyz 200`, () => ready(started.base), { timeoutMs: 20_000 });
  return started;
}

/** Version 1 on a fresh data dir: `deposits` in over HTTP, processed, checked, stopped. */
async function runV1(t: TestContext, dataDir: string, deposits: readonly Deposit[]): Promise<void> {
  const { service, base, log } = await startVersion(t, 'v1', dataDir);
  await post(base, deposits);
  await waitProcessed(service, log, base);
  assert.deepEqual(await rowsOf(base, 'accounts'), expectedRows(tally(deposits), 'v1'), 'v1 rows = tally');
  assert.deepEqual(await rowsOf(base, 'lastDeposit'), lastAmounts(deposits), 'v1 lastDeposit rows');
  await service.stop();
}

/** Starts `variant` in-process, checks its rows, feeds `more`, checks again, stops. */
async function upgradeAndCheck(
  t: TestContext,
  variant: Variant,
  dataDir: string,
  before: readonly Deposit[],
  more: readonly Deposit[],
  table = 'accounts',
): Promise<void> {
  const { service, base, log } = await startVersion(t, variant, dataDir);
  assert.deepEqual(await rowsOf(base, table), expectedRows(tally(before), variant), `${variant}: every v1 row reads back converted`);
  await post(base, more);
  await waitProcessed(service, log, base);
  const all = [...before, ...more];
  assert.deepEqual(await rowsOf(base, table), expectedRows(tally(all), variant), `${variant}: new events processed on the converted rows`);
  await service.stop();
  // A second restart reads the mix of old and new rows.
  const again = await startVersion(t, variant, dataDir);
  assert.deepEqual(await rowsOf(again.base, table), expectedRows(tally(all), variant), `${variant}: the same rows after another restart`);
  await again.service.stop();
}

/** `farad run` of `variant` on `dataDir`: must exit 2 within seconds, HTTP port never answering. */
async function refusedStart(t: TestContext, variant: Variant, dataDir: string): Promise<{ message: string; ms: number }> {
  const port = await freePort();
  const started = Date.now();
  const child: Child = spawnCli(t, ['run', '--app', FIXTURE], {
    FARAD_DATA_DIR: dataDir,
    FARAD_HTTP_PORT: String(port),
    FARAD_HTTP_HOST: '127.0.0.1',
    FARAD_LOG_LEVEL: 'warn',
    FARAD_TEST_SCHEMA: variant,
  });
  // Hammer the port with events for as long as the process lives: nothing may ever be accepted.
  const answers: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/events/${EVENT}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ account: 'probe', amount: 1 }),
          signal: AbortSignal.timeout(1000),
        });
        answers.push(res.status);
      } catch {
        // connection refused: nothing listens (the expected case)
      }
      await sleep(20);
    }
  })();
  const exit = await exitOf(child, 30_000).finally(() => (polling = false));
  await poller;
  const ms = Date.now() - started;
  assert.equal(exit.code, 2, `${variant}: exit status 2\n${child.stderr}`);
  assert.deepEqual(answers, [], `${variant}: the HTTP port never answered (it never listened)`);
  assert.ok(ms < 15_000, `${variant}: refused within seconds (took ${ms} ms)`);
  assert.doesNotMatch(child.stderr, /\n\s+at /, 'a message, not a stack trace');
  assert.doesNotMatch(child.stderr, /retrying|restore failed/, 'no retry loop');
  const at = child.stderr.indexOf('farad: ');
  assert.ok(at >= 0, `a "farad: " message on stderr:\n${child.stderr}`);
  const message = child.stderr.slice(at).trimEnd();
  assert.equal(child.stderr.split('\n').filter((l) => l.startsWith('farad: ')).length, 1, 'one message');
  t.diagnostic(`${variant} refused in ${ms} ms (spawn -> exit): ${message}`);
  return { message, ms };
}

// ---- reading the changelog back ------------------------------------------------------------------

interface ChangelogRow {
  readonly partition: number;
  readonly offset: number;
  readonly table: string;
  readonly key: string | number;
  readonly value: Buffer | null;
  readonly schema: string | undefined;
}

/** Every changelog record of a stopped app's data dir, through EmbeddedLog.open + readRange. */
async function readChangelog(dataDir: string, variant: Variant): Promise<ChangelogRow[]> {
  const compiled = compileApp(evolvingApp(variant));
  const log = await EmbeddedLog.open({
    dataDir,
    logger: silentLogger,
    group: compiled.name,
    inputTopics: compiled.inputTopics,
    changelogTopic: compiled.changelogTopic,
    partitions: compiled.partitions,
  });
  try {
    const out: ChangelogRow[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      for await (const chunk of log.readRange(NAMES.changelog, p, 0)) {
        for (const r of chunk) {
          if (r.key === null) continue;
          const { table, key } = decodeChangeKey(r.key);
          out.push({ partition: p, offset: r.offset, table, key, value: r.value, schema: r.value ? rowSchemaOf(r.value) : undefined });
        }
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

/** What log compaction would keep: the latest record per (table, key), tombstones included. */
function latest(rows: readonly ChangelogRow[]): Map<string, ChangelogRow> {
  const out = new Map<string, ChangelogRow>();
  for (const r of [...rows].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) out.set(JSON.stringify([r.table, r.key]), r);
  return out;
}

const fingerprintOf = (variant: Variant): string => schemaFingerprint(avsc.Type.forSchema(ACCOUNT_SCHEMAS[variant]));

// ---- the tests -----------------------------------------------------------------------------------

const V1_DEPOSITS = makeDeposits(300, 7, 12);
const MORE = makeDeposits(120, 8, 16); // acct-12..acct-15 are new accounts

test('added field with a default: farad run of v2 reads every v1 row with the default, new accounts get the new value', { timeout: 90_000 }, async (t) => {
  const dataDir = join(tempDir(t), 'data');
  await runV1(t, dataDir, V1_DEPOSITS);
  const oldAccounts = new Set(tally(V1_DEPOSITS).keys());

  // v2 as a user runs it: the CLI, on the same data dir.
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawnCli(t, ['run', '--app', FIXTURE], {
    FARAD_DATA_DIR: dataDir,
    FARAD_HTTP_PORT: String(port),
    FARAD_HTTP_HOST: '127.0.0.1',
    FARAD_LOG_LEVEL: 'warn',
    FARAD_TEST_SCHEMA: 'v2-added',
  });
  const startedAt = Date.now();
  await waitFor('v2-added: /readyz 200', async () => {
    if (child.process.exitCode !== null) throw new Error(`farad run exited ${child.process.exitCode}: ${child.stderr}`);
    return ready(base);
  }, { timeoutMs: 30_000, intervalMs: 50 });
  t.diagnostic(`v2-added ready ${Date.now() - startedAt} ms after spawn`);
  assert.deepEqual(await rowsOf(base, 'accounts'), expectedRows(tally(V1_DEPOSITS), 'v2-added', oldAccounts), 'v1 rows read with currency = the default');

  await post(base, MORE);
  const all = [...V1_DEPOSITS, ...MORE];
  const expected = expectedRows(tally(all), 'v2-added', oldAccounts);
  await waitFor('v2-added: the new deposits in the rows', async () => isDeepStrictEqual(await rowsOf(base, 'accounts'), expected), {
    timeoutMs: 20_000,
    intervalMs: 100,
  });
  assert.deepEqual(await rowsOf(base, 'accounts'), expected);
  assert.deepEqual(await rowsOf(base, 'lastDeposit'), lastAmounts(all));
  child.process.kill('SIGTERM');
  assert.equal((await exitOf(child, 15_000)).code, 0, child.stderr);
  assert.doesNotMatch(child.stderr, /restore failed|retrying|truncated buffer/, child.stderr);

  // Restarted again: v1 rows (resolved) and v2 rows (current) side by side in the changelog.
  const again = await startVersion(t, 'v2-added', dataDir);
  assert.deepEqual(await rowsOf(again.base, 'accounts'), expected, 'the same rows after another restart');
  await again.service.stop();
  // Every row names the schema that wrote it; the ones v2 wrote name v2's.
  const changelog = await readChangelog(dataDir, 'v2-added');
  const written = changelog.filter((r) => r.table === 'accounts' && r.value !== null);
  const known = new Set([fingerprintOf('v1'), fingerprintOf('v2-added')]);
  assert.deepEqual(written.filter((r) => !known.has(r.schema ?? '')), [], 'changelog rows name v1 or v2-added');
  const v2Type = avsc.Type.forSchema(ACCOUNT_SCHEMAS['v2-added']);
  const lastWrite = latest(written);
  for (const account of tally(MORE).keys()) {
    const row = lastWrite.get(JSON.stringify(['accounts', account]))!;
    assert.equal(row.schema, fingerprintOf('v2-added'), `${account}: last written by v2`);
    assert.deepEqual({ ...(v2Type.fromBuffer(row.value!.subarray(10)) as object) }, expected[account], `${account}: the changelog row decodes with v2's schema`);
  }
});

test('int promoted to long: every row reads back, new deposits still count', { timeout: 60_000 }, async (t) => {
  const dataDir = join(tempDir(t), 'data');
  await runV1(t, dataDir, V1_DEPOSITS);
  await upgradeAndCheck(t, 'v2-long', dataDir, V1_DEPOSITS, MORE);
});

test('field renamed through an alias: deposits is read as count', { timeout: 60_000 }, async (t) => {
  const dataDir = join(tempDir(t), 'data');
  await runV1(t, dataDir, V1_DEPOSITS);
  await upgradeAndCheck(t, 'v2-alias', dataDir, V1_DEPOSITS, MORE);
});

test('long -> string is refused at start (exit 2, one message); the same change with migrate works; a downgrade is refused', { timeout: 90_000 }, async (t) => {
  const dataDir = join(tempDir(t), 'data');
  await runV1(t, dataDir, V1_DEPOSITS);

  const { message } = await refusedStart(t, 'v2-string', dataDir);
  assert.match(message, /app "ledger"/, 'names the app');
  assert.match(message, /table "accounts"/, 'names the table');
  assert.match(message, /field "balance" was long and is now string/, 'names the field, the old and the new type');
  assert.match(message, /migrate: \{ fromVersion: 1, up\(oldRow\)/, 'says what to do');
  assert.equal(message.split('\n').length, 1, `one problem, one line: ${message}`);

  // The fix the message names: the same schema with a migration. Rows come out migrated.
  await upgradeAndCheck(t, 'v2-migrated', dataDir, V1_DEPOSITS, MORE);

  // Going back to v1 now would misread the string rows: refused too, naming the other direction.
  const back = await refusedStart(t, 'v1', dataDir);
  assert.match(back.message, /app "ledger": table "accounts": field "balance" was string and is now long/);
});

test('table renamed with formerly: rows move to the new name, the old rows are tombstoned, a second restart still has them', { timeout: 90_000 }, async (t) => {
  const dataDir = join(tempDir(t), 'data');
  await runV1(t, dataDir, V1_DEPOSITS);
  const v1Accounts = [...tally(V1_DEPOSITS).keys()];

  const first = await startVersion(t, 'v2-renamed-table', dataDir);
  assert.deepEqual(await rowsOf(first.base, 'ledgers'), expectedRows(tally(V1_DEPOSITS), 'v2-renamed-table'), 'the rows under the new name');
  assert.equal((await fetch(`${first.base}/tables/accounts`)).status, 404, 'the old name is no table any more');
  await post(first.base, MORE);
  await waitProcessed(first.service, first.log, first.base);
  const all = [...V1_DEPOSITS, ...MORE];
  assert.deepEqual(await rowsOf(first.base, 'ledgers'), expectedRows(tally(all), 'v2-renamed-table'), 'new events update the renamed table');
  await first.service.stop();

  // The changelog, as compaction would keep it: no row under the old name, every row under the new one.
  const changelog = await readChangelog(dataDir, 'v2-renamed-table');
  const kept = latest(changelog);
  const accountsType = avsc.Type.forSchema(ACCOUNT_SCHEMAS['v2-renamed-table']);
  const expected = tally(all);
  for (const account of v1Accounts) {
    const old = kept.get(JSON.stringify(['accounts', account]));
    assert.ok(old, `the old row of ${account} is in the changelog`);
    assert.equal(old.value, null, `the old row of ${account} is tombstoned`);
  }
  const compacted: Record<string, unknown> = {};
  for (const r of kept.values()) {
    if (r.value === null) continue;
    assert.notEqual(r.table, 'accounts', `no live row under the old name: ${r.key}`);
    if (r.table !== 'ledgers') continue;
    assert.equal(r.schema, fingerprintOf('v2-renamed-table'), 'rows under the new name name their schema');
    compacted[String(r.key)] = { ...(accountsType.fromBuffer(r.value.subarray(10)) as object) };
  }
  assert.deepEqual(
    Object.fromEntries(Object.entries(compacted).sort(([a], [b]) => a.localeCompare(b))),
    expectedRows(expected, 'v2-renamed-table'),
    'the compacted changelog holds every row under the new name',
  );

  const second = await startVersion(t, 'v2-renamed-table', dataDir);
  assert.deepEqual(await rowsOf(second.base, 'ledgers'), expectedRows(expected, 'v2-renamed-table'), 'still every row after a second restart');
  assert.deepEqual(await rowsOf(second.base, 'lastDeposit'), lastAmounts(all), 'the other table is untouched');
  await second.service.stop();
});

test('a table removed without a declaration is refused; declared in droppedTables its rows are deleted', { timeout: 90_000 }, async (t) => {
  const dataDir = join(tempDir(t), 'data');
  await runV1(t, dataDir, V1_DEPOSITS);

  const { message } = await refusedStart(t, 'v2-dropped-undeclared', dataDir);
  assert.match(message, /app "ledger"/, 'names the app');
  assert.match(message, /table "lastDeposit" holds state/, 'names the table');
  assert.match(message, /droppedTables: \['lastDeposit'\]/, 'says how to drop it');
  assert.match(message, /formerly: 'lastDeposit'/, 'or how to rename it');

  await upgradeAndCheck(t, 'v2-dropped', dataDir, V1_DEPOSITS, MORE);
  const kept = latest(await readChangelog(dataDir, 'v2-dropped'));
  const live = [...kept.values()].filter((r) => r.value !== null);
  assert.deepEqual(live.filter((r) => r.table === 'lastDeposit').map((r) => r.key), [], 'every lastDeposit row is tombstoned');
  assert.equal(live.filter((r) => r.table === 'accounts').length, tally([...V1_DEPOSITS, ...MORE]).size, 'accounts rows are kept');
  assert.ok([...kept.values()].some((r) => r.table === 'lastDeposit' && r.value === null), 'the tombstones are there');
});
