// The soak's seeded fault schedule, its workload and its command line (scripts/soak): pure parts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArgsError, parseArgs, replayCommand } from '../../scripts/soak/args.js';
import { buildSchedule, CLUSTER_KINDS, EMBEDDED_KINDS, estimateMs, REDIS_KINDS, redisOutageMs, type Schedule } from '../../scripts/soak/schedule.js';
import { ClusterWorkload, EmbeddedWorkload } from '../../scripts/soak/workload.js';

const options = { minutes: 3, sessionTimeoutMs: 6000, embedded: true, serviceFaults: true };
const all = (s: Schedule) => [...s.cluster, ...s.redis, ...s.embedded];

test('the same seed gives the same schedule; another seed another one', () => {
  const a = buildSchedule({ ...options, seed: 1 });
  const b = buildSchedule({ ...options, seed: 1 });
  assert.deepEqual(a, b);
  const c = buildSchedule({ ...options, seed: 2 });
  assert.notDeepEqual(all(a), all(c));
});

test('a 3-minute schedule has every kind of fault, each track in order, inside the window', () => {
  for (let seed = 0; seed < 50; seed++) {
    const s = buildSchedule({ ...options, seed });
    const kinds = new Set(all(s).map((p) => p.fault.kind));
    for (const kind of [...CLUSTER_KINDS, ...REDIS_KINDS, ...EMBEDDED_KINDS]) assert.ok(kinds.has(kind), `seed ${seed}: ${kind} planned`);
    for (const track of [s.cluster, s.redis, s.embedded]) {
      track.forEach((p, i) => {
        assert.equal(p.n, i + 1);
        assert.ok(p.atMs + estimateMs(p.fault, 6000) <= s.windowMs, `seed ${seed}: ${p.track} #${p.n} ends inside the window`);
        if (i > 0) assert.ok(p.atMs >= track[i - 1]!.atMs + estimateMs(track[i - 1]!.fault, 6000), `seed ${seed}: ${p.track} #${p.n} starts after #${i} ends`);
      });
    }
  }
});

test('pauses outlast the session timeout; targets are instances; the Redis outage scales with the window', () => {
  for (let seed = 0; seed < 50; seed++) {
    for (const p of buildSchedule({ ...options, seed, minutes: 20 }).cluster) {
      if (p.fault.kind === 'pause') assert.ok(p.fault.pauseMs > 6000 + 1000, `pause of ${p.fault.pauseMs} ms`);
      if ('target' in p.fault) assert.ok([0, 1, 2].includes(p.fault.target));
    }
  }
  assert.equal(redisOutageMs(3 * 60_000), 30_000);
  assert.equal(redisOutageMs(60 * 60_000), 60_000);
  assert.equal(redisOutageMs(60_000), 10_000);
});

test('options leave out the embedded track and the service faults', () => {
  const s = buildSchedule({ ...options, seed: 3, embedded: false, serviceFaults: false });
  assert.equal(s.embedded.length, 0);
  assert.equal(s.redis.length, 0);
  assert.ok(s.cluster.every((p) => p.fault.kind !== 'broker-restart'));
});

test('--faults keeps only the kinds asked for', () => {
  const s = buildSchedule({ ...options, seed: 4, faults: ['broker-restart', 'disk-full'] });
  assert.equal(s.redis.length, 0);
  assert.ok(s.cluster.length > 0 && s.cluster.every((p) => p.fault.kind === 'broker-restart'));
  assert.ok(s.embedded.length > 0 && s.embedded.every((p) => p.fault.kind === 'disk-full'));
  assert.deepEqual(parseArgs(['--faults', 'broker-restart,pause']).faults, ['broker-restart', 'pause']);
  assert.throws(() => parseArgs(['--faults', 'broker-restart,meteor']), /unknown kind "meteor"/);
  assert.equal(replayCommand(parseArgs(['--seed', '2', '--faults=pause'])), 'npm run soak -- --minutes 3 --seed 2 --faults pause');
});

test('an hour spreads many faults of every kind', () => {
  const s = buildSchedule({ ...options, seed: 9, minutes: 60 });
  assert.ok(s.cluster.length >= 20, `${s.cluster.length} cluster faults`);
  assert.ok(s.redis.length >= 5, `${s.redis.length} Redis faults`);
});

test('the workloads are seeded: the same events for the same seed, unique ids', () => {
  const a = new ClusterWorkload(7);
  const b = new ClusterWorkload(7);
  const ticksA = Array.from({ length: 50 }, () => a.tick()).flat();
  const ticksB = Array.from({ length: 50 }, () => b.tick()).flat();
  assert.deepEqual(ticksA, ticksB);
  assert.equal(new Set(ticksA.map((e) => e.id)).size, ticksA.length);
  assert.notDeepEqual(new ClusterWorkload(8).tick(), new ClusterWorkload(7).tick());
  const e = new EmbeddedWorkload(7);
  const phones = Array.from({ length: 500 }, () => e.next()).flatMap((r) => (r.type === 'Vote' ? r.events.map((v) => v.phoneNumber) : []));
  assert.equal(new Set(phones).size, phones.length, 'every embedded vote is a new phone');
});

test('command line: defaults, values, errors, replay', () => {
  assert.deepEqual(parseArgs(['--minutes', '3', '--seed', '1']), { minutes: 3, seed: 1, keep: false, embedded: true, serviceFaults: true });
  assert.equal(parseArgs(['--minutes=60', '--seed=42']).minutes, 60);
  assert.equal(parseArgs([], () => 77).seed, 77);
  assert.throws(() => parseArgs(['--minutes', '0']), ArgsError);
  assert.throws(() => parseArgs(['--seed', '-1']), ArgsError);
  assert.throws(() => parseArgs(['--seed']), ArgsError);
  assert.throws(() => parseArgs(['--bogus']), /unknown argument "--bogus"/);
  assert.equal(replayCommand(parseArgs(['--minutes', '3', '--seed', '1', '--no-embedded'])), 'npm run soak -- --minutes 3 --seed 1 --no-embedded');
});
