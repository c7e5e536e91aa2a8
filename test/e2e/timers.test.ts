/**
 * Time on the embedded log: windows (tumbling and hopping, grace, late events by closed window
 * and by stream time) give one final result per window matching an independent tally; scheduled
 * procedures run once per slot per partition (app-wide ones on partition 0 only), skip slots
 * missed while stopped and never run a slot twice; pending timers and window state survive a
 * restart and the restored tables equal the ones the active partitions had.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import clock, { GRACE_MS, PARTITIONS, SCHEDULE_EVERY_MS, WINDOW_MS } from './fixtures/clock-app.js';
import { compileApp } from '../../src/procedures/index.js';
import { Ingest } from '../../src/ingest/index.js';
import type { EmbeddedLog } from '../../src/index.js';
import { catalogOf, decodeAll, postJson, readTopic, scanTableHttp, sleep, startTestService, tempDir, waitFor } from './helpers.js';
import { windowTally } from './fixtures/clock-tally.js';

const catalog = catalogOf(clock);
const compiled = compileApp(clock);
const readingType = compiled.events.get('Reading')!;

type Result = { window: string; sensor: string; start: number; end: number; count: number; sum: number; closedAt: number };

function results(log: EmbeddedLog): Result[] {
  return decodeAll(catalog, readTopic(log, 'window-results', PARTITIONS).flat()) as unknown as Result[];
}

/** Appends readings with chosen timestamps (as a producer with its own clock would). */
async function send(log: EmbeddedLog, readings: ReadonlyArray<{ sensor: string; value: number; ts: number }>): Promise<void> {
  const ingest = new Ingest(compiled, catalog, log);
  await log.append(readings.map((r) => ingest.record(readingType, { sensor: r.sensor, value: r.value }, r.ts)));
}


test('windows: one final result per window after end + grace; late events are left out', async (t) => {
  const { log, base } = await startTestService(t, clock, tempDir(t));
  const W = WINDOW_MS;
  const B = Math.ceil(Date.now() / W) * W + W; // a window that has not started yet
  const readings: Array<{ sensor: string; value: number; ts: number; lateIn?: string[] }> = [];
  for (const sensor of ['a', 'b', 'c']) for (let i = 1; i <= 5; i++) readings.push({ sensor, value: i, ts: B + i * 37 });
  // Sensor x jumps ahead (stream time B + 3W): an event for its first window is then late by
  // stream time (that window's end + grace is behind it), although the window has not closed.
  readings.push({ sensor: 'x', value: 1, ts: B + 1 }, { sensor: 'x', value: 100, ts: B + 3 * W }, { sensor: 'x', value: 7, ts: B + 2, lateIn: ['tumbling', 'hopping'] });
  await send(log, readings);

  // Inside the grace period (after the window's end, before end + grace) an event still counts.
  while (Date.now() < B + W + 50) await sleep(10);
  assert.ok(Date.now() < B + W + GRACE_MS - 100, 'the machine was too slow to send inside the grace period');
  const inGrace = { sensor: 'a', value: 1000, ts: B + W - 1 };
  await send(log, [inGrace]);
  readings.push(inGrace);

  const closesBy = B + W + GRACE_MS;
  await waitFor('the first windows close', () => results(log).filter((r) => r.window === 'tumbling' && r.start === B).length === 4);
  // After the close, an event of that window is late (by the closed window), in both kinds.
  const afterClose = { sensor: 'a', value: 5000, ts: B + 5, lateIn: ['tumbling', 'hopping'] };
  await send(log, [afterClose]);
  readings.push(afterClose);

  const expected = windowTally(readings);
  await waitFor('every window closes', () => results(log).length >= expected.size, { timeoutMs: 6 * W + 10_000 });
  await sleep(300);
  const got = results(log);
  const seen = new Map<string, { count: number; sum: number }>();
  for (const r of got) {
    const id = `${r.window}/${r.sensor}/${r.start}`;
    assert.ok(!seen.has(id), `one final result per window: ${id} twice`);
    seen.set(id, { count: r.count, sum: r.sum });
    assert.equal(r.end, r.start + W);
    assert.ok(r.closedAt >= r.end + GRACE_MS, `${id} closed at ${r.closedAt}, before end + grace ${r.end + GRACE_MS}`);
  }
  assert.deepEqual(Object.fromEntries([...seen].sort()), Object.fromEntries([...expected].sort()));
  assert.ok(got.filter((r) => r.start === B && r.window === 'tumbling').every((r) => r.closedAt < closesBy + 1000), 'windows close within 1 s of their due time');
  // The app counted the late readings it was told about.
  const late = Object.fromEntries((await scanTableHttp(base, 'late')).map((r) => [r.key, (r.value as { count: number }).count]));
  assert.deepEqual(late, { a: 1, x: 1 });
});

test('scheduled procedures: one run per slot and partition, app-wide on partition 0, missed slots skipped across a restart', async (t) => {
  const dir = tempDir(t);
  const first = await startTestService(t, clock, dir);
  await sleep(SCHEDULE_EVERY_MS * 5 + 200);
  await first.service.stop();
  const stoppedAt = Date.now();
  await sleep(SCHEDULE_EVERY_MS * 3);
  const second = await startTestService(t, clock, dir);
  const restartedAt = Date.now();
  await sleep(SCHEDULE_EVERY_MS * 4 + 200);
  const ticks = decodeAll(catalog, readTopic(second.log, 'ticks', PARTITIONS).flat()) as unknown as Array<{ schedule: string; partition: number; slot: number; at: number }>;

  for (let p = 0; p < PARTITIONS; p++) {
    const slots = ticks.filter((x) => x.schedule === 'beat' && x.partition === p).map((x) => x.slot);
    assert.ok(slots.length >= 6, `partition ${p} ran ${slots.length} times`);
    assert.equal(new Set(slots).size, slots.length, `partition ${p} ran a slot twice: ${slots.join(', ')}`);
    for (const slot of slots) assert.equal(slot % SCHEDULE_EVERY_MS, 0, 'slots fall on multiples of the interval');
    // Slots missed while stopped are not made up: at most the one due at restart runs late.
    const missed = slots.filter((s) => s > stoppedAt + SCHEDULE_EVERY_MS && s < restartedAt - SCHEDULE_EVERY_MS);
    assert.deepEqual(missed, [], `partition ${p} made up missed slots`);
  }
  for (const x of ticks) assert.ok(x.at >= x.slot, 'never before its slot');
  const census = ticks.filter((x) => x.schedule === 'census');
  assert.ok(census.length >= 3, `census ran ${census.length} times`);
  assert.ok(census.every((x) => x.partition === 0 && x.slot % 1000 === 0), 'the app-wide schedule runs on partition 0, on the cron seconds');
  assert.equal(new Set(census.map((x) => x.slot)).size, census.length);

  // Committed state agrees with the outputs: runs per partition = beat ticks of that partition.
  const rows = await scanTableHttp(second.base, 'runs');
  for (let p = 0; p < PARTITIONS; p++) {
    const row = rows.find((r) => r.partition === p && r.key === 'beat');
    const count = ticks.filter((x) => x.schedule === 'beat' && x.partition === p).length;
    assert.ok(row && Math.abs((row.value as { runs: number }).runs - count) <= 1, `partition ${p}: ${JSON.stringify(row)} vs ${count} ticks`);
  }
});

test('pending timers and open windows survive a restart; the restored state equals the state before', async (t) => {
  const dir = tempDir(t);
  const first = await startTestService(t, clock, dir);
  const B = Math.ceil(Date.now() / WINDOW_MS) * WINDOW_MS + 2 * WINDOW_MS;
  const readings = ['a', 'b', 'c', 'd', 'e', 'f'].map((sensor, i) => ({ sensor, value: i, ts: B + i }));
  await send(first.log, readings);
  await waitFor('readings applied', async () => (await scanTableHttp(first.base, 'tumbling')).length === 6);
  const tables = ['tumbling', 'hopping', '__timers'];
  const before = await Promise.all(tables.map((name) => scanTableHttp(first.base, name)));
  assert.ok(before[2]!.length >= 12, 'window timers are pending');
  await first.service.stop();

  const second = await startTestService(t, clock, dir);
  const after = await Promise.all(tables.map((name) => scanTableHttp(second.base, name)));
  // Schedules fire on their own; compare the window timers only.
  const windowTimers = (rows: typeof before[number]) => rows.filter((r) => !String(r.key).includes('"@'));
  assert.deepEqual(after.slice(0, 2), before.slice(0, 2));
  assert.deepEqual(windowTimers(after[2]!), windowTimers(before[2]!));

  await waitFor('the windows close after the restart', () => results(second.log).filter((r) => r.window === 'tumbling').length === 6, { timeoutMs: 5 * WINDOW_MS + 10_000 });
  const expected = windowTally(readings);
  const got = results(second.log);
  assert.equal(got.length, expected.size, 'each window closed exactly once');
  for (const r of got) assert.deepEqual({ count: r.count, sum: r.sum }, expected.get(`${r.window}/${r.sensor}/${r.start}`));
});

test('an app that drops its timers with some pending is refused at start until it says to discard them', async (t) => {
  const { defineApp, record } = await import('../../src/index.js');
  const ping = record<{ id: string }>({ type: 'record', name: 'Ping', namespace: 'alarm', fields: [{ name: 'id', type: 'string' }] });
  const version = (timers: boolean, dropped: string[] = []) =>
    defineApp({
      name: 'alarm',
      partitions: 2,
      events: { Ping: ping },
      inputs: [{ topic: 'pings', events: ['Ping'] }],
      droppedTables: dropped,
      ...(timers ? { timers: { ring: { handle() {} } } } : {}),
      procedures: {
        Ping: {
          partitionKey: (p) => p.id,
          handle(ctx, p) {
            if (timers) (ctx.timers as unknown as { set(n: string, k: string, s: { at: number }): void }).set('ring', p.id, { at: ctx.timestamp + 3_600_000 });
          },
        },
      },
    });
  const dir = tempDir(t);
  const first = await startTestService(t, version(true), dir);
  assert.equal((await postJson(`${first.base}/events/alarm.Ping`, { id: 'a' })).status, 202);
  await waitFor('the timer is set', async () => (await scanTableHttp(first.base, '__timers')).length === 1);
  await first.service.stop();
  await assert.rejects(startTestService(t, version(false), dir), /declares no timers or schedules now; keep their declarations until pending timers have fired, or declare droppedTables: \['__timers'\]/);
  const third = await startTestService(t, version(false, ['__timers']), dir);
  assert.equal((await postJson(`${third.base}/events/alarm.Ping`, { id: 'b' })).status, 202);
});
