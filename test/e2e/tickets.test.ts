/**
 * Timers on the embedded log with the tickets example: holds expire by wall clock with no input
 * arriving, confirmations before expiry sell and cancel the timer, every hold ends exactly once,
 * and pending timers survive a restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import tickets from '../../examples/tickets/index.js';
import { EmbeddedLog } from '../../src/index.js';
import { catalogOf, decodeAll, freePort, http, metricValue, postJson, readTopic, spawnCli, startTestService, tempDir, waitFor, withLog } from './helpers.js';

const catalog = catalogOf(tickets);

function events(log: Parameters<typeof readTopic>[0]) {
  return decodeAll(catalog, readTopic(log, 'ticket-events', 8).flat());
}

test('holds expire by wall clock, confirmations sell, each hold ends exactly once', async (t) => {
  const dir = tempDir(t);
  const { base, log } = await startTestService(t, tickets, dir);
  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    const res = await postJson(`${base}/events/tickets.HoldSeat`, { holdId: `h${i}`, seat: `S${i}`, ttlMs: i % 2 === 0 ? 800 : 60_000 });
    assert.equal(res.status, 202, JSON.stringify(res.body));
  }
  // A second hold on a held seat is rejected.
  await postJson(`${base}/events/tickets.HoldSeat`, { holdId: 'late', seat: 'S1', ttlMs: 1000 });
  for (let i = 1; i < 20; i += 2) await postJson(`${base}/events/tickets.ConfirmHold`, { holdId: `h${i}`, seat: `S${i}` });
  await postJson(`${base}/events/tickets.ConfirmHold`, { holdId: 'nope', seat: 'S3' });

  await waitFor('ten holds expire', () => events(log).filter((e) => e.type === 'tickets.HoldExpired').length === 10);
  const all = events(log);
  const held = all.filter((e) => e.type === 'tickets.SeatHeld');
  assert.equal(held.length, 20);
  for (const e of all.filter((x) => x.type === 'tickets.HoldExpired')) {
    const hold = held.find((h) => h['holdId'] === e['holdId'])!;
    assert.ok(Number(hold['expiresAt']) <= Date.now());
  }
  assert.equal(all.filter((e) => e.type === 'tickets.SeatSold').length, 10);
  assert.deepEqual(all.filter((e) => e.type === 'tickets.HoldRejected').map((e) => [e['holdId'], e['reason']]), [['late', 'SEAT_TAKEN']]);
  assert.deepEqual(all.filter((e) => e.type === 'tickets.ConfirmRejected').map((e) => [e['holdId'], e['reason']]), [['nope', 'NO_SUCH_HOLD']]);
  const seat0 = await http<{ value: unknown }>(`${base}/tables/seats/S0`);
  assert.deepEqual(seat0.body.value, { state: 'FREE', holdId: null });
  const seat1 = await http<{ value: unknown }>(`${base}/tables/seats/S1`);
  assert.deepEqual(seat1.body.value, { state: 'SOLD', holdId: 'h1' });
  assert.ok(Date.now() - started < 10_000);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.equal(metricValue(metrics, 'farad_timers_fired_total', { timer: 'timer:holdExpiry' }), 10);
  assert.equal(metricValue(metrics, 'farad_timers_pending'), 0);
  assert.equal(metricValue(metrics, 'farad_timer_lag_seconds_count', { timer: 'timer:holdExpiry' }), 10);
});

test('kill -9 with holds pending and mid-expiry: after restart every hold ends exactly once, never before its due time', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const start = async () => {
    const port = await freePort();
    const child = spawnCli(t, ['run', '--app', 'examples/tickets'], { FARAD_DATA_DIR: dir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' });
    const base = `http://127.0.0.1:${port}`;
    await waitFor('farad ready', async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000 });
    return { child, base };
  };
  const first = await start();
  const holds = Array.from({ length: 200 }, (_, i) => ({ holdId: `k${i}`, seat: `K${i}`, ttlMs: 300 + (i % 20) * 100 }));
  assert.equal((await postJson(`${first.base}/events/tickets.HoldSeat`, holds)).status, 202);
  // Confirm every fourth hold at once: those sell, the rest expire.
  const confirms = holds.filter((_, i) => i % 4 === 0).map(({ holdId, seat }) => ({ holdId, seat }));
  assert.equal((await postJson(`${first.base}/events/tickets.ConfirmHold`, confirms)).status, 202);
  // Kill while expiries are firing: some committed, some due, some not yet due.
  await new Promise((resolve) => setTimeout(resolve, 900));
  first.child.process.kill('SIGKILL');
  await first.child.exited;

  const second = await start();
  await waitFor('every hold resolved', async () => {
    const rows = await Promise.all(holds.map(async (h) => (await http<{ value: { state: string } }>(`${second.base}/tables/seats/${h.seat}`)).body.value?.state));
    return rows.every((s) => s === 'FREE' || s === 'SOLD');
  }, { timeoutMs: 30_000 });
  second.child.process.kill('SIGTERM');
  await second.child.exited;

  await withLog(dir, tickets, (log: EmbeddedLog) => {
    const out = events(log);
    const held = new Map(out.filter((e) => e.type === 'tickets.SeatHeld').map((e) => [e['holdId'], Number(e['expiresAt'])]));
    assert.equal(held.size, holds.length, 'each hold was held once');
    const ends = new Map<unknown, string[]>();
    for (const e of out) if (e.type === 'tickets.SeatSold' || e.type === 'tickets.HoldExpired') ends.set(e['holdId'], [...(ends.get(e['holdId']) ?? []), e.type]);
    for (const [i, h] of holds.entries()) {
      assert.deepEqual(ends.get(h.holdId), [i % 4 === 0 ? 'tickets.SeatSold' : 'tickets.HoldExpired'], `hold ${h.holdId}`);
    }
    // The expiry's record timestamp is its recorded fire time: never before the hold's expiresAt.
    const records = readTopic(log, 'ticket-events', 8).flat();
    const decoded = decodeAll(catalog, records);
    decoded.forEach((e, i) => {
      if (e.type === 'tickets.HoldExpired') assert.ok(records[i]!.timestamp >= held.get(e['holdId'])!, `${String(e['holdId'])} expired early`);
    });
  });
});
