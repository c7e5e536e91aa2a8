// Two failovers in a row, then recovery: three farad instances (children, replicas 1) under a
// steady stream of votes; kill -9 A, wait until B and C own everything, kill -9 B, wait until C
// owns everything, then restart A and B with their instance ids. The output topic
// (read_committed) and the state restored afterwards equal an independent tally of every vote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allConsumed, baseUrl, makeVotes, readTopic, sleep, startKafkaService, voterCopy } from './helpers.js';
import {
  assertResultsMatch,
  assertStateMatches,
  type ClusterView,
  describeView,
  fmt,
  type Instance,
  kill9,
  longestGaps,
  PARTITIONS,
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

test('kill -9 A, then B, of three instances; restart both: the output and state equal the tally', { timeout: 180_000 }, async (t) => {
  const testStarted = Date.now();
  const cluster = await replicationFixture(t, SESSION_TIMEOUT_MS);
  const { suffix, names, kafka, admin, producer, instances, env } = cluster;
  const idA = `a-${suffix}`;
  const idB = `b-${suffix}`;
  const idC = `c-${suffix}`;
  const a = await spawnInstance(idA, env);
  const b = await spawnInstance(idB, env);
  const c = await spawnInstance(idC, env);
  instances.push(a, b, c);

  const votes = makeVotes(80_000, { phones: 6_000, seed: 23 });
  const steady = (cluster.steady = new SteadyProducer(producer, names.input, votes, { perTick: 25, tickMs: 50 }));

  const initial = await waitWithLogs('three instances with standbys', instances, () => settledWithStandbys([a, b, c]), { timeoutMs: 60_000, intervalMs: 250 });
  const settledAt = Date.now();
  t.diagnostic(`settled: ${describeView(initial)}`);
  await sleep(2000);

  const failoversOf = async (i: Instance): Promise<number> => total(i.base, 'farad_failovers_total');
  const kills: Array<{ id: string; at: number; orphaned: number[]; recoveredAt: number }> = [];
  const killAndRecover = async (victim: Instance, survivors: Instance[], before: ClusterView, standbysAfter: boolean): Promise<ClusterView> => {
    const orphaned = before.active.get(victim.id) ?? [];
    const at = await kill9(victim);
    t.diagnostic(`kill -9 ${victim.id} (active [${orphaned.join(',')}]) after ${steady!.produced} votes`);
    const view = await waitWithLogs(
      `${survivors.map((s) => s.id).join(' and ')} to own every partition${standbysAfter ? ', with standbys' : ''}`,
      survivors,
      () => (standbysAfter ? settledWithStandbys(survivors) : settled(survivors)),
      { timeoutMs: 50_000, intervalMs: 100 },
    );
    kills.push({ id: victim.id, at, orphaned, recoveredAt: Date.now() });
    t.diagnostic(`recovered ${Date.now() - at} ms after the kill: ${describeView(view)}`);
    return view;
  };

  const cFailovers0 = await failoversOf(c);
  const afterA = await killAndRecover(a, [b, c], initial, true);
  await sleep(2000); // C's copies of B's partitions catch up
  const afterB = await killAndRecover(b, [c], afterA, false);
  assert.deepEqual(afterB.active.get(c.id), Array.from({ length: PARTITIONS }, (_, p) => p), 'C owns every partition');
  const cFailovers1 = await failoversOf(c);
  t.diagnostic(`farad_failovers_total on C: ${cFailovers0} -> ${cFailovers1}`);
  assert.ok(cFailovers1 > cFailovers0, 'C took partitions over from warm copies');
  await sleep(2000);

  // A and B come back with the same instance ids.
  const a2 = await spawnInstance(idA, env);
  const b2 = await spawnInstance(idB, env);
  instances.push(a2, b2);
  const restartedAt = Date.now();
  const final = await waitWithLogs('A, B and C to share the partitions again, with standbys', [a2, b2, c], () => settledWithStandbys([a2, b2, c]), {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  t.diagnostic(`after the restart (${Date.now() - restartedAt} ms): ${describeView(final)}`);
  await sleep(2000);
  const sent = await steady.stop();
  const stoppedAt = steady.lastSentAt;
  t.diagnostic(`produced ${sent.length} votes`);

  await waitWithLogs('the group to commit all input', [a2, b2, c], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
  const records = await readTopicTimed(kafka, names.output);
  const tally = assertResultsMatch(records, sent);
  assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');

  // Pauses: per kill, the longest gap of an orphaned partition that ends after the kill.
  for (const [n, kill] of kills.entries()) {
    const end = kills[n + 1]?.at ?? restartedAt;
    const gaps = longestGaps(records, kill.at, end);
    const worst = Math.max(...kill.orphaned.map((p) => gaps.get(p)?.ms ?? Infinity));
    t.diagnostic(`MEASURED failover pause (kill -9 #${n + 1}, ${kill.id}, ${kill.orphaned.length} orphaned partitions): ${fmt(worst)}; all partitions active again after ${fmt(kill.recoveredAt - kill.at)}`);
    assert.ok(worst <= SESSION_TIMEOUT_MS + 5000, `pause after kill #${n + 1}: ${worst} ms <= session timeout + 5 s`);
  }
  const rejoin = longestGaps(records, restartedAt, stoppedAt);
  t.diagnostic(`MEASURED longest output gap while A and B rejoin (handover to restarted instances): ${fmt(Math.max(...[...rejoin.values()].map((g) => g.ms)))}`);
  const overall = longestGaps(records, settledAt, stoppedAt);
  t.diagnostic(`MEASURED longest output gap of any partition in the whole run: ${fmt(Math.max(...[...overall.values()].map((g) => g.ms)))}`);

  for (const i of [a2, b2, c]) {
    const exit = await terminate(i);
    assert.equal(exit.code, 0, `${i.id} stops cleanly on SIGTERM\n${i.output().slice(-2000)}`);
  }
  const restored = (cluster.restored = await startKafkaService(voterCopy(suffix)));
  await assertStateMatches(baseUrl(restored), tally);
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});
