/**
 * Multi-partition transactions on the embedded log with the bank example: transfers between
 * accounts of different partitions are atomic and exactly-once (checked against an independent
 * ledger: money conserved, no negative balance, one result per transfer, every completed
 * transfer in both balances), the consistent `total` never sees a transfer half applied, and a
 * kill -9 at any moment of the protocol loses nothing and doubles nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import bank from '../../examples/bank/index.js';
import type { EmbeddedLog } from '../../src/index.js';
import { catalogOf, decodeAll, freePort, http, postJson, prng, readTopic, scanTableHttp, sleep, spawnCli, startTestService, tempDir, waitFor, withLog } from './helpers.js';

const catalog = catalogOf(bank);
const PARTITIONS = 4;

interface Transfer {
  transferId: string;
  from: string;
  to: string;
  amount: number;
}
type Result = Transfer & { type: string; reason?: string };

function accounts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `acct-${i}`);
}

function makeTransfers(count: number, names: readonly string[], seed: number): Transfer[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => {
    const from = names[Math.floor(random() * names.length)]!;
    const kind = random();
    // Some of each rejection: not positive, same account; insufficient funds happens by itself.
    const to = kind < 0.03 ? from : names[Math.floor(random() * names.length)]!;
    const amount = kind > 0.97 ? 0 : 1 + Math.floor(random() * 60);
    return { transferId: `t${seed}-${i}`, from, to, amount };
  });
}

function results(log: EmbeddedLog): Result[] {
  return decodeAll(catalog, readTopic(log, 'transfer-results', PARTITIONS).flat()) as unknown as Result[];
}

/** Checks outputs and balances against the deposits and the transfers sent. */
function checkLedger(deposits: ReadonlyMap<string, number>, sent: readonly Transfer[], out: readonly Result[], balances: ReadonlyMap<string, number>): void {
  const byId = new Map<string, Result[]>();
  for (const r of out) byId.set(r.transferId, [...(byId.get(r.transferId) ?? []), r]);
  for (const t of sent) assert.equal(byId.get(t.transferId)?.length, 1, `transfer ${t.transferId}: ${JSON.stringify(byId.get(t.transferId))}`);
  assert.equal(byId.size, sent.length, 'no result for a transfer that was not sent');
  const expected = new Map(deposits);
  for (const t of sent) {
    const [r] = byId.get(t.transferId)!;
    if (t.amount <= 0) assert.equal(r!.reason, 'NOT_POSITIVE', t.transferId);
    else if (t.from === t.to) assert.equal(r!.reason, 'SAME_ACCOUNT', t.transferId);
    if (r!.type !== 'bank.TransferCompleted') continue;
    expected.set(t.from, (expected.get(t.from) ?? 0) - t.amount);
    expected.set(t.to, (expected.get(t.to) ?? 0) + t.amount);
  }
  for (const [account, balance] of expected) {
    assert.ok(balance >= 0, `${account} went negative in the ledger: ${balance}`);
    assert.equal(balances.get(account) ?? 0, balance, `balance of ${account}`);
  }
  const total = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  assert.equal(total(balances), total(deposits), 'money is conserved');
}

test('transfers across partitions: atomic, exactly once, and the consistent total never sees one half applied', { timeout: 120_000 }, async (t) => {
  const { base, log } = await startTestService(t, bank, tempDir(t));
  const names = accounts(40);
  const deposits = new Map(names.map((a, i) => [a, 100 + i]));
  assert.equal((await postJson(`${base}/events/bank.Deposit`, names.map((account) => ({ account, amount: deposits.get(account) })))).status, 202);
  const expectedTotal = [...deposits.values()].reduce((a, b) => a + b, 0);
  await waitFor('deposits applied', async () => (await http<{ total: number }>(`${base}/queries/total`)).body.total === expectedTotal);

  const sent = makeTransfers(1500, names, 7);
  let sending = true;
  const totals: number[] = [];
  const reader = (async () => {
    while (sending) {
      const answer = await http<{ total: number }>(`${base}/queries/total`);
      assert.equal(answer.status, 200, answer.text);
      totals.push(answer.body.total);
    }
  })();
  for (let i = 0; i < sent.length; i += 50) {
    assert.equal((await postJson(`${base}/events/bank.Transfer`, sent.slice(i, i + 50))).status, 202);
    await sleep(5);
  }
  await waitFor('every transfer answered', () => results(log).length >= sent.length, { timeoutMs: 60_000 });
  sending = false;
  await reader;
  assert.ok(totals.length >= 5, `the total was read ${totals.length} times`);
  assert.deepEqual([...new Set(totals)], [expectedTotal], 'every consistent total equals the money deposited');

  const rows = await scanTableHttp(base, 'balances');
  checkLedger(deposits, sent, results(log), new Map(rows.map((r) => [String(r.key), (r.value as { balance: number }).balance])));
  const completed = results(log).filter((r) => r.type === 'bank.TransferCompleted').length;
  t.diagnostic(`${completed} of ${sent.length} transfers completed; ${totals.length} consistent totals read while they ran`);
});

test('kill -9 while transfers are in flight, then restart: every transfer applied exactly once, the ledger holds', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const start = async () => {
    const port = await freePort();
    const child = spawnCli(t, ['run', '--app', 'examples/bank'], { FARAD_DATA_DIR: dir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' });
    const base = `http://127.0.0.1:${port}`;
    await waitFor('farad ready', async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000 });
    return { child, base };
  };
  const names = accounts(30);
  const deposits = new Map(names.map((a) => [a, 500]));
  const all = makeTransfers(1200, names, 11);
  const acknowledged: Transfer[] = [];
  /** Sent when a kill cut the request: appended or not, never twice. */
  const uncertain: Transfer[] = [];
  let next = 0;
  for (let round = 0; round < 4; round++) {
    const { child, base } = await start();
    if (round === 0) assert.equal((await postJson(`${base}/events/bank.Deposit`, names.map((account) => ({ account, amount: 500 })))).status, 202);
    // Transfers stream in until a kill -9 lands in the middle of them (and of protocol rounds).
    const killer = sleep(100 + round * 120).then(() => child.process.kill('SIGKILL'));
    while (next < all.length) {
      const chunk = all.slice(next, next + 10);
      next += chunk.length;
      const answer = await postJson(`${base}/events/bank.Transfer`, chunk).catch(() => undefined);
      if (answer?.status === 202) acknowledged.push(...chunk);
      else {
        uncertain.push(...chunk);
        break;
      }
    }
    await killer;
    await child.exited;
  }
  const { child, base } = await start();
  await waitFor('every transfer settled', () => settled(base), { timeoutMs: 60_000 });
  assert.equal((await http<{ total: number }>(`${base}/queries/total`)).body.total, names.length * 500, 'the consistent total');
  const rows = await scanTableHttp(base, 'balances');
  child.process.kill('SIGTERM');
  await child.exited;

  const out = await withLog(dir, bank, (log) => results(log));
  const answered = new Set(out.map((r) => r.transferId));
  const sent = [...acknowledged, ...uncertain.filter((x) => answered.has(x.transferId))];
  checkLedger(deposits, sent, out, new Map(rows.map((r) => [String(r.key), (r.value as { balance: number }).balance])));
  t.diagnostic(`${acknowledged.length} transfers acknowledged, ${uncertain.length} cut by a kill (${sent.length - acknowledged.length} of those were appended)`);
});

/** Input all read and no multi-partition round open or queued, on every partition. */
async function settled(base: string): Promise<boolean> {
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const lag = metrics.split('\n').filter((l) => l.startsWith('farad_consumer_lag_records{')).map((l) => Number(l.split(' ').pop()));
  if (lag.length === 0 || lag.some((n) => n > 0)) return false;
  const rows = await scanTableHttp(base, '__mp');
  // Queued requests and votes are rows of their own (q/…, v/…) until their round is decided.
  return rows.every((r) => {
    if (r.key !== 'coordinator' && r.key !== 'participant') return false;
    const state = JSON.parse((r.value as { json: string }).json) as { held?: number | null; head?: number; tail?: number; open?: unknown };
    return !state.held && state.head === state.tail && !state.open;
  });
}
