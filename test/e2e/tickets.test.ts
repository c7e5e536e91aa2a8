/**
 * Timers on the embedded log with the tickets example: holds expire by wall clock with no input
 * arriving, confirmations before expiry sell and cancel the timer, every hold ends exactly once,
 * and pending timers survive a restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import tickets from '../../examples/tickets/index.js';
import { catalogOf, decodeAll, http, metricValue, postJson, readTopic, startTestService, tempDir, waitFor } from './helpers.js';

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
