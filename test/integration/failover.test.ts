// Primary/backup failover on Kafka: three farad instances (children, replicas 1) under a steady
// stream of votes; kill -9 of one of them; a warm standby takes over each orphaned partition.
// Checked against an independent tally of every vote produced: the output topic (read_committed)
// has exactly one result per vote, in per-phone order, and the state restored afterwards equals
// the tally. Measures the processing pause (longest gap between committed outputs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allConsumed, baseUrl, makeVotes, readTopic, sleep, startKafkaService, voterCopy } from './helpers.js';
import {
  assertResultsMatch,
  assertStateMatches,
  describeView,
  firstOutputAfter,
  fmt,
  kill9,
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

test('kill -9 of one of three instances (replicas 1): standbys take over, nothing lost or doubled, bounded pause', { timeout: 180_000 }, async (t) => {
  const testStarted = Date.now();
  const cluster = await replicationFixture(t, SESSION_TIMEOUT_MS);
  const { suffix, names, kafka, admin, producer, instances, env } = cluster;
  for (const id of ['a', 'b', 'c']) instances.push(await spawnInstance(`${id}-${suffix}`, env));

  // ~500 votes/s over 6000 phones: every partition gets input every tick.
  const votes = makeVotes(60_000, { phones: 6_000, seed: 11 });
  const steady = (cluster.steady = new SteadyProducer(producer, names.input, votes, { perTick: 25, tickMs: 50 }));

  const before = await waitWithLogs('three instances, every partition active once, a standby for each', instances, () => settledWithStandbys(instances), {
    timeoutMs: 60_000,
    intervalMs: 250,
  });
  const settledAt = Date.now();
  t.diagnostic(`settled ${settledAt - testStarted} ms after start: ${describeView(before)}`);
  await sleep(3000); // steady processing with warm standbys

  const [victim, ...survivors] = [...instances].sort((x, y) => (before.active.get(y.id)?.length ?? 0) - (before.active.get(x.id)?.length ?? 0));
  const orphaned = before.active.get(victim!.id)!;
  assert.ok(orphaned.length > 0, 'the victim owns partitions');
  const failoversBefore = new Map<string, number>();
  for (const s of survivors) for (const p of orphaned) failoversBefore.set(`${s.id}/${p}`, await total(s.base, 'farad_failovers_total', { partition: String(p) }));
  const producedAtKill = steady.produced;
  const killedAt = await kill9(victim!);
  t.diagnostic(`kill -9 ${victim!.id} (active [${orphaned.join(',')}]) after ${producedAtKill} votes produced`);

  const after = await waitWithLogs('the survivors to own every partition', survivors, () => settled(survivors), { timeoutMs: 40_000, intervalMs: 100 });
  const recoveredAt = Date.now();
  t.diagnostic(`recovered: ${describeView(after)}`);
  await sleep(3000); // input keeps coming after the takeover
  const sent = await steady.stop();
  const stoppedAt = steady.lastSentAt;
  t.diagnostic(`produced ${sent.length} votes, ${sent.length - producedAtKill} after the kill`);

  await waitWithLogs('the group to commit all input', survivors, () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });

  // Exactly once, against the tally.
  const records = await readTopicTimed(kafka, names.output);
  const tally = assertResultsMatch(records, sent);
  assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');

  // The pause: longest gap between committed outputs of a partition, while votes kept coming.
  const gaps = longestGaps(records, settledAt, stoppedAt);
  const first = firstOutputAfter(records, killedAt);
  const worstOrphan = Math.max(...orphaned.map((p) => gaps.get(p)?.ms ?? Infinity));
  const worstAll = Math.max(...[...gaps.values()].map((g) => g.ms));
  const killToOutput = Math.max(...orphaned.map((p) => (first.get(p) ?? Infinity) - killedAt));
  for (const p of orphaned) t.diagnostic(`partition ${p}: longest gap ${fmt(gaps.get(p)?.ms ?? NaN)}, first output ${fmt((first.get(p) ?? NaN) - killedAt)} after the kill`);
  t.diagnostic(`MEASURED failover pause (kill -9, longest output gap of an orphaned partition): ${fmt(worstOrphan)}`);
  t.diagnostic(`MEASURED failover kill -9 -> first output of every orphaned partition: ${fmt(killToOutput)}`);
  t.diagnostic(`MEASURED failover kill -9 -> all partitions active on survivors (polled): ${fmt(recoveredAt - killedAt)}`);
  t.diagnostic(`MEASURED longest output gap of any partition during the failover run: ${fmt(worstAll)} (session timeout ${SESSION_TIMEOUT_MS} ms)`);
  assert.ok(Number.isFinite(killToOutput), 'every orphaned partition produced output after the kill');
  assert.ok(worstAll <= SESSION_TIMEOUT_MS + 5000, `pause ${worstAll} ms <= session timeout + 5 s`);

  // An orphaned partition that went to a survivor holding its warm copy fails over from it
  // (counted in farad_failovers_total there); one that balance put elsewhere restores in full.
  let warmTakeovers = 0;
  for (const p of orphaned) {
    const owner = survivors.find((s) => after.active.get(s.id)!.includes(p))!;
    const hadCopy = before.standby.get(owner.id)!.some((s) => s.partition === p);
    const gained = (await total(owner.base, 'farad_failovers_total', { partition: String(p) })) - failoversBefore.get(`${owner.id}/${p}`)!;
    t.diagnostic(`partition ${p} -> ${owner.id} (${hadCopy ? 'held a warm copy' : 'held no copy'}): farad_failovers_total +${gained}`);
    if (hadCopy) assert.equal(gained, 1, `partition ${p} failed over from the warm copy on ${owner.id}`);
    warmTakeovers += gained;
  }
  t.diagnostic(`MEASURED orphaned partitions taken over from a warm standby: ${warmTakeovers}/${orphaned.length}`);
  assert.ok(warmTakeovers >= 1, 'farad_failovers_total increased on a survivor');

  // The state the survivors hold, restored by a fresh instance from the changelog = the tally.
  for (const s of survivors) {
    const exit = await terminate(s);
    assert.equal(exit.code, 0, `${s.id} stops cleanly on SIGTERM\n${s.output().slice(-2000)}`);
  }
  const restored = (cluster.restored = await startKafkaService(voterCopy(suffix)));
  await assertStateMatches(baseUrl(restored), tally);
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});
