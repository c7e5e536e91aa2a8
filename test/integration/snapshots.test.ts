// Redis snapshots on the Kafka transport, with a redis-server of the test's own (never the shared
// one): a cold start from snapshot + changelog tail against one from the changelog alone (same
// state, both timed), a corrupt snapshot (the restart falls back to the changelog), and Redis
// going away mid-run (processing goes on, snapshots are counted as skipped/failed, and resume once
// Redis is back).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allConsumed,
  cleanUpVoter,
  createTopic,
  endOffsets,
  groupOffsets,
  makeVotes,
  plainProducer,
  produceVotes,
  readTopic,
  testKafka,
  uid,
  voterNames,
  VoterTally,
} from './helpers.js';
import {
  assertResultsMatch,
  assertStateMatches,
  fmt,
  kill9,
  PARTITIONS,
  privateRedis,
  readyz,
  samples,
  spawnInstance,
  SteadyProducer,
  terminate,
  testRedis,
  total,
  waitWithLogs,
  type Instance,
  type PrivateRedis,
} from './replication-helpers.js';

interface RestoreLog {
  time: number;
  partition: number;
  source: string;
  changelogRecords: number;
  seconds: number;
}

/** The `partition restored` lines (info level) of an instance's log. */
function restoreLines(output: string): RestoreLog[] {
  const out: RestoreLog[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('"partition restored"')) continue;
    try {
      out.push(JSON.parse(line) as RestoreLog);
    } catch {
      // not a JSON line
    }
  }
  return out.sort((a, b) => a.partition - b.partition);
}

async function committedTotal(admin: Parameters<typeof groupOffsets>[0], group: string, topic: string): Promise<number> {
  return [...(await groupOffsets(admin, group, topic)).values()].filter((o) => o > 0).reduce((a, b) => a + b, 0);
}

test('cold start: snapshot + changelog tail vs changelog alone give the same state; a corrupt snapshot falls back to the changelog', { timeout: 180_000 }, async (t) => {
  const testStarted = Date.now();
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const redis: PrivateRedis = await privateRedis();
  const instances: Instance[] = [];
  const client = testRedis(redis.url);
  t.after(async () => {
    for (const i of instances) await kill9(i);
    client.disconnect();
    await redis.stop();
    await cleanUpVoter(admin, names);
    await admin.disconnect();
  });
  await redis.start();

  await createTopic(admin, names.input, PARTITIONS);
  const votes = makeVotes(50_000, { phones: 40_000, seed: 41 });
  const tally = new VoterTally(votes);
  const producer = await plainProducer(kafka);
  try {
    await produceVotes(producer, names.input, votes, 1000);
  } finally {
    await producer.disconnect();
  }
  const base = { FARAD_TEST_VOTER_SUFFIX: suffix, FARAD_REPLICAS: '0', FARAD_SESSION_TIMEOUT_MS: '6000', FARAD_SNAPSHOT_INTERVAL_MS: '1000' };
  const id = `solo-${suffix}`;

  // 1. Process everything, with periodic snapshots; SIGTERM leaves final ones.
  const first = await spawnInstance(id, { ...base, FARAD_REDIS_URL: redis.url });
  instances.push(first);
  const processStart = Date.now();
  await waitWithLogs('all 50k votes committed', [first], () => allConsumed(admin, names.app, names.input), { timeoutMs: 100_000, intervalMs: 250 });
  t.diagnostic(`processed ${votes.length} votes in ${Date.now() - processStart} ms (from spawn)`);
  // Snapshots are periodic (1 s here): the votes may all be in before the first one.
  await waitWithLogs('a periodic snapshot', [first], async () => (await total(first.base, 'farad_snapshots_total', { outcome: 'ok' })) > 0, { timeoutMs: 10_000, intervalMs: 100 });
  const stop1 = await terminate(first);
  assert.equal(stop1.code, 0, `SIGTERM stops cleanly\n${first.output().slice(-2000)}`);

  // Every partition's current snapshot reflects its whole changelog (the final snapshot).
  const changelogEnds = await endOffsets(admin, names.changelog);
  let changelogRecords = 0;
  for (const [p, end] of changelogEnds) {
    changelogRecords += end;
    const current = await client.get(`farad:{${names.app}:${p}}:current`);
    assert.ok(current, `partition ${p} has a current snapshot`);
    const info = JSON.parse((await client.hget(`farad:{${names.app}:${p}}:info`, current)) ?? '{}') as { changelogOffset?: number; rows?: number };
    // Its offset is the changelog end, or the offset of the last commit marker (the snapshot was
    // taken right after the commit, before the broker appended the marker): no data after it.
    const offset = info.changelogOffset ?? -1;
    assert.ok(offset === end || offset === end - 1, `partition ${p}: the current snapshot reflects the whole changelog (offset ${offset}, end ${end})`);
  }
  t.diagnostic(`changelog: ${changelogRecords} offsets over ${PARTITIONS} partitions; ${tally.acceptedByPhone.size} phones with accepted votes`);

  // 2. Cold start from the snapshots (+ an empty tail), then 3. from the changelog alone.
  type ColdStart = { instance: Instance; readyMs: number; restores: RestoreLog[]; windowMs: number };
  const coldStart = async (label: string, env: Record<string, string>): Promise<ColdStart> => {
    const instance = await spawnInstance(id, { ...base, FARAD_LOG_LEVEL: 'info', ...env });
    instances.push(instance);
    await waitWithLogs(`${label}: /readyz 200`, [instance], () => readyz(instance), { timeoutMs: 60_000, intervalMs: 25 });
    const readyMs = Date.now() - instance.startedAt;
    const restores = await waitWithLogs(`${label}: a restore line per partition`, [instance], () => {
      const lines = restoreLines(instance.output());
      return new Set(lines.map((l) => l.partition)).size === PARTITIONS ? lines : undefined;
    });
    // From the group assignment to the last partition restored (the logs' timestamps).
    const assigned = instance
      .output()
      .split('\n')
      .filter((l) => l.includes('"group assignment"'))
      .map((l) => (JSON.parse(l) as { time: number }).time);
    const windowMs = Math.max(...restores.map((r) => r.time)) - Math.min(...assigned);
    return { instance, readyMs, restores, windowMs };
  };
  const describeRestores = ({ restores, windowMs }: ColdStart): string => {
    const slowest = Math.max(...restores.map((r) => r.seconds)) * 1000;
    const records = restores.reduce((s, r) => s + r.changelogRecords, 0);
    const sources = [...new Set(restores.map((r) => r.source))].join('+');
    return `assignment -> all ${PARTITIONS} partitions restored ${fmt(windowMs)}; slowest partition ${fmt(slowest)}; ${records} changelog records replayed; sources ${sources}`;
  };
  const rates = async (instance: Instance): Promise<string> =>
    (await samples(instance.base, 'farad_restore_records_per_second'))
      .sort((a, b) => Number(a.labels.partition) - Number(b.labels.partition))
      .map((s) => `${s.labels.partition}:${Math.round(s.value)}`)
      .join(' ');

  const fromSnapshot = await coldStart('restart with Redis', { FARAD_REDIS_URL: redis.url });
  assert.ok(fromSnapshot.restores.every((r) => r.source === 'snapshot'), `every partition restored from its snapshot: ${JSON.stringify(fromSnapshot.restores)}`);
  assert.deepEqual(
    fromSnapshot.restores.filter((r) => r.changelogRecords > 0),
    [],
    'the final snapshots cover the whole changelog: no tail to replay',
  );
  t.diagnostic(`snapshot restore: farad_restore_records_per_second ${await rates(fromSnapshot.instance)}`);
  const rowsFromSnapshot = await assertStateMatches(fromSnapshot.instance.base, tally);
  assert.equal((await terminate(fromSnapshot.instance)).code, 0);

  const fromChangelog = await coldStart('restart without Redis', {});
  assert.ok(fromChangelog.restores.every((r) => r.source === 'changelog'), 'every partition restored from the changelog');
  t.diagnostic(`changelog restore: farad_restore_records_per_second ${await rates(fromChangelog.instance)}`);
  const rowsFromChangelog = await assertStateMatches(fromChangelog.instance.base, tally);
  assert.deepEqual(rowsFromChangelog, rowsFromSnapshot, 'the same votesByPhone either way');
  assert.equal((await terminate(fromChangelog.instance)).code, 0);

  t.diagnostic(`MEASURED cold start from snapshot + tail: spawn -> /readyz ${fmt(fromSnapshot.readyMs)}; ${describeRestores(fromSnapshot)}`);
  t.diagnostic(`MEASURED cold start from changelog alone: spawn -> /readyz ${fmt(fromChangelog.readyMs)}; ${describeRestores(fromChangelog)}`);

  // 4. Corrupt partition 0's current snapshot: the restart restores it from the changelog.
  const current = await client.get(`farad:{${names.app}:0}:current`);
  assert.ok(current);
  await client.set(`farad:{${names.app}:0}:data:${current}`, Buffer.from('garbage, not a farad snapshot'));
  const afterCorruption = await coldStart('restart with a corrupt snapshot', { FARAD_REDIS_URL: redis.url });
  const p0 = afterCorruption.restores.find((r) => r.partition === 0)!;
  assert.equal(p0.source, 'changelog', 'partition 0 restored from the changelog');
  assert.ok(
    afterCorruption.restores.filter((r) => r.partition !== 0).every((r) => r.source === 'snapshot'),
    'the other partitions still restore from their snapshots',
  );
  assert.match(afterCorruption.instance.output(), /"partition":0[^\n]*snapshot unusable/, 'a warning names the unusable snapshot');
  const rowsAfterCorruption = await assertStateMatches(afterCorruption.instance.base, tally);
  assert.deepEqual(rowsAfterCorruption, rowsFromSnapshot, 'the same votesByPhone');
  t.diagnostic(`MEASURED cold start with partition 0's snapshot corrupt: spawn -> /readyz ${fmt(afterCorruption.readyMs)}; ${describeRestores(afterCorruption)}`);
  assert.equal((await terminate(afterCorruption.instance)).code, 0);
  assert.equal((await readTopic(kafka, names.output)).length, votes.length, 'the restarts reprocessed nothing');
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});

test('Redis stopped mid-run: processing goes on, snapshots are counted as skipped/failed, and resume when Redis is back', { timeout: 150_000 }, async (t) => {
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const redis = await privateRedis();
  const instances: Instance[] = [];
  let steady: SteadyProducer | undefined;
  const producer = await plainProducer(kafka);
  t.after(async () => {
    await steady?.stop().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    for (const i of instances) await kill9(i);
    await redis.stop();
    await cleanUpVoter(admin, names);
    await admin.disconnect();
  });
  await redis.start();
  await createTopic(admin, names.input, PARTITIONS);
  const farad = await spawnInstance(`solo-${suffix}`, {
    FARAD_TEST_VOTER_SUFFIX: suffix,
    FARAD_REPLICAS: '0',
    FARAD_SESSION_TIMEOUT_MS: '6000',
    FARAD_SNAPSHOT_INTERVAL_MS: '1000',
    FARAD_REDIS_URL: redis.url,
  });
  instances.push(farad);
  await waitWithLogs('/readyz 200', [farad], () => readyz(farad), { timeoutMs: 60_000, intervalMs: 100 });
  steady = new SteadyProducer(producer, names.input, makeVotes(60_000, { phones: 5_000, seed: 53 }), { perTick: 20, tickMs: 50 });

  const snapshots = async (outcome: string): Promise<number> => total(farad.base, 'farad_snapshots_total', { outcome });
  const okBefore = await waitWithLogs('snapshots of every partition', [farad], async () => {
    const ok = await snapshots('ok');
    return ok >= PARTITIONS ? ok : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 });
  const notOkBefore = (await snapshots('skipped')) + (await snapshots('failed'));
  assert.equal(notOkBefore, 0, 'no snapshot failed while Redis was up');

  // Redis goes away.
  await redis.stop();
  const downAt = Date.now();
  const committedAtDown = await committedTotal(admin, names.app, names.input);
  const notOk = await waitWithLogs('snapshots counted as skipped or failed', [farad], async () => {
    const n = (await snapshots('skipped')) + (await snapshots('failed'));
    return n > 0 ? n : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  const committedMoved = await waitWithLogs('votes still committed while Redis is down', [farad], async () => {
    const now = await committedTotal(admin, names.app, names.input);
    return now >= committedAtDown + 1000 ? now - committedAtDown : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  assert.ok(await readyz(farad), 'still ready with Redis down');
  const okWhileDown = await snapshots('ok');
  t.diagnostic(
    `Redis down for ${Date.now() - downAt} ms: ${committedMoved} more votes committed; snapshots skipped ${await snapshots('skipped')}, failed ${await snapshots('failed')}, ok ${okBefore} -> ${okWhileDown}`,
  );
  assert.ok(notOk > 0);

  // Redis comes back on the same port (empty: it keeps nothing).
  await redis.start();
  const upAt = Date.now();
  await waitWithLogs('snapshots to succeed again', [farad], async () => ((await snapshots('ok')) > okWhileDown ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  t.diagnostic(`MEASURED snapshots resume ${fmt(Date.now() - upAt)} after Redis is back`);
  const client = testRedis(redis.url);
  try {
    const currents = await client.keys(`farad:{${names.app}:*}:current`);
    assert.ok(currents.length > 0, 'snapshots are in the restarted Redis');
  } finally {
    client.disconnect();
  }

  const sent = await steady.stop();
  await waitWithLogs('all input committed', [farad], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
  assertResultsMatch(await readTopic(kafka, names.output), sent);
  assert.equal((await terminate(farad)).code, 0, `SIGTERM stops cleanly\n${farad.output().slice(-2000)}`);
  t.diagnostic(`${sent.length} votes, all processed exactly once`);
});
