// Graceful handover: three farad instances (children, replicas 1) under a steady stream of votes;
// SIGTERM one. It commits what it has, leaves the group, and the others take its partitions over
// from their warm copies at once (no session timeout to wait for). Measures the processing pause
// of its partitions and checks the output (read_committed) against an independent tally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allConsumed, makeVotes, readTopic, sleep } from './helpers.js';
import {
  assertResultsMatch,
  describeView,
  firstOutputAfter,
  fmt,
  longestGaps,
  readTopicTimed,
  replicationFixture,
  settled,
  settledWithStandbys,
  spawnInstance,
  SteadyProducer,
  terminate,
  total,
  waitWithLogs,
} from './replication-helpers.js';

const SESSION_TIMEOUT_MS = 6000;
const MAX_HANDOVER_PAUSE_MS = 5000;

test('SIGTERM of one of three instances: its partitions move with a short pause, exactly once', { timeout: 150_000 }, async (t) => {
  const testStarted = Date.now();
  const cluster = await replicationFixture(t, SESSION_TIMEOUT_MS);
  const { suffix, names, kafka, admin, producer, instances, env } = cluster;
  for (const id of ['a', 'b', 'c']) instances.push(await spawnInstance(`${id}-${suffix}`, env));

  const votes = makeVotes(60_000, { phones: 6_000, seed: 31 });
  const steady = (cluster.steady = new SteadyProducer(producer, names.input, votes, { perTick: 25, tickMs: 50 }));

  const before = await waitWithLogs('three instances with standbys', instances, () => settledWithStandbys(instances), { timeoutMs: 60_000, intervalMs: 250 });
  const settledAt = Date.now();
  t.diagnostic(`settled: ${describeView(before)}`);
  await sleep(3000);

  const [leaving, ...staying] = [...instances].sort((x, y) => (before.active.get(y.id)?.length ?? 0) - (before.active.get(x.id)?.length ?? 0));
  const moved = before.active.get(leaving!.id)!;
  const failoversBefore = new Map<string, number>();
  for (const s of staying) failoversBefore.set(s.id, await total(s.base, 'farad_failovers_total'));
  const termAt = Date.now();
  const exit = await terminate(leaving!);
  const exitedAt = Date.now();
  assert.equal(exit.code, 0, `${leaving!.id} stops cleanly on SIGTERM\n${leaving!.output().slice(-2000)}`);
  t.diagnostic(`SIGTERM ${leaving!.id} (active [${moved.join(',')}]): exited after ${exitedAt - termAt} ms`);

  const after = await waitWithLogs('the others to own every partition', staying, () => settled(staying), { timeoutMs: 30_000, intervalMs: 50 });
  const recoveredAt = Date.now();
  t.diagnostic(`taken over: ${describeView(after)}`);
  await sleep(3000);
  const sent = await steady.stop();
  const stoppedAt = steady.lastSentAt;

  await waitWithLogs('the group to commit all input', staying, () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
  const records = await readTopicTimed(kafka, names.output);
  assertResultsMatch(records, sent);
  assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');

  const gaps = longestGaps(records, termAt, stoppedAt);
  const first = firstOutputAfter(records, exitedAt);
  for (const p of moved) t.diagnostic(`partition ${p}: longest gap ${fmt(gaps.get(p)?.ms ?? NaN)}, first output ${fmt((first.get(p) ?? NaN) - exitedAt)} after the exit`);
  const worst = Math.max(...moved.map((p) => gaps.get(p)?.ms ?? Infinity));
  const worstAll = Math.max(...[...longestGaps(records, settledAt, stoppedAt).values()].map((g) => g.ms));
  t.diagnostic(`MEASURED graceful handover pause (SIGTERM, longest output gap of a moved partition): ${fmt(worst)}`);
  t.diagnostic(`MEASURED graceful handover SIGTERM -> process exit: ${fmt(exitedAt - termAt)}; SIGTERM -> all partitions active elsewhere (polled): ${fmt(recoveredAt - termAt)}`);
  t.diagnostic(`MEASURED longest output gap of any partition during the handover run: ${fmt(worstAll)}`);
  assert.ok(worst <= MAX_HANDOVER_PAUSE_MS, `handover pause ${worst} ms <= ${MAX_HANDOVER_PAUSE_MS} ms`);

  let gained = 0;
  for (const s of staying) gained += (await total(s.base, 'farad_failovers_total')) - failoversBefore.get(s.id)!;
  t.diagnostic(`MEASURED moved partitions taken over from a warm standby: ${gained}/${moved.length}`);
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});
