// kill -9 of a farad instance (a child process on the Kafka transport) in the middle of a stream
// of votes, then a new instance of the same app: nothing lost, nothing doubled. Checked against an
// independent tally of everything produced, through the leaderboard, the output topic
// (read_committed) and a restore of the state from the changelog by a third instance.
// Also a zombie: an instance frozen (SIGSTOP) past its session while another takes over, then
// thawed: it is fenced, rejoins as a new member and must take its new partitions over afresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Service } from '../../src/index.js';
import {
  allConsumed,
  baseUrl,
  cleanUpVoter,
  createTopic,
  diffOutcomes,
  groupOffsets,
  kafkaPartition,
  killHard,
  leaderboard,
  makeVotes,
  outcomesFromResults,
  plainProducer,
  produceVotes,
  readTopic,
  ROOT,
  sleep,
  spawnFarad,
  startKafkaService,
  sum,
  testKafka,
  uid,
  voterCopy,
  voterNames,
  VoterTally,
  waitFor,
  type FaradChild,
} from './helpers.js';

const VOTES = 12_000;
const CHUNK = 100;
const FIXTURE = join(ROOT, 'test/integration/fixtures/voter-app.ts');

test('kill -9 mid-stream, restart: leaderboard and results equal the tally of all votes, exactly once', { timeout: 90_000 }, async (t) => {
  const testStarted = Date.now();
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const children: FaradChild[] = [];
  let restored: Service | undefined;
  t.after(async () => {
    for (const c of children) await killHard(c);
    await restored?.stop().catch(() => undefined);
    await cleanUpVoter(admin, names);
    await admin.disconnect();
  });

  await createTopic(admin, names.input, 8);
  const env = {
    FARAD_TEST_VOTER_SUFFIX: suffix,
    FARAD_SESSION_TIMEOUT_MS: '6000',
    // A little work per vote, so that transactions are open most of the time.
    FARAD_TEST_VOTE_DELAY_US: '50',
  };
  const first = await spawnFarad(FIXTURE, { ...env, FARAD_INSTANCE_ID: `a-${suffix}` });
  children.push(first);
  await waitFor('the first instance to be ready', async () => (await fetch(`${first.base}/readyz`)).status === 200, { timeoutMs: 40_000, intervalMs: 200 }).catch(
    (err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- child output ---\n${first.output()}`);
    },
  );

  const votes = makeVotes(VOTES, { phones: 3_000, seed: 7 });
  const tally = new VoterTally(votes);
  const producer = await plainProducer(kafka);
  let produced = 0;
  const producing = (async () => {
    for (let i = 0; i < votes.length; i += CHUNK) {
      await produceVotes(producer, names.input, votes.slice(i, i + CHUNK), CHUNK);
      produced = Math.min(votes.length, i + CHUNK);
      await sleep(20);
    }
  })();
  let killedAt: { produced: number; committed: number } | undefined;
  let second: FaradChild | undefined;
  try {
    // Kill once the first instance has committed part of the stream, while votes keep coming.
    await waitFor(
      'the first instance to commit some votes',
      async () => {
        const committed = [...(await groupOffsets(admin, names.app, names.input)).values()].filter((o) => o > 0).reduce((a, b) => a + b, 0);
        return committed >= VOTES / 5 ? committed : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 20 },
    );
    first.child.kill('SIGKILL');
    const exit = await first.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const committed = [...(await groupOffsets(admin, names.app, names.input)).values()].filter((o) => o > 0).reduce((a, b) => a + b, 0);
    killedAt = { produced, committed };
    t.diagnostic(`killed the first instance after ${produced} votes produced, ${committed} committed`);

    second = await spawnFarad(FIXTURE, { ...env, FARAD_INSTANCE_ID: `b-${suffix}` });
    children.push(second);
    await producing;
  } finally {
    await producing.catch(() => undefined);
    await producer.disconnect();
  }
  assert.ok(killedAt.committed < VOTES, 'the kill happened mid-stream');
  const sb = second;

  const recovered = Date.now();
  await waitFor('the group to commit the whole input', () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 }).catch(
    (err: unknown) => {
      throw new Error(`${(err as Error).message}\n--- second instance output ---\n${sb.output().slice(-4000)}`);
    },
  );
  // The sum stops changing once everything committed is applied: compare two reads.
  const board = await waitFor('the leaderboard to settle', async () => {
    const a = await leaderboard(sb.base);
    if (!a) return undefined;
    await sleep(300);
    const b = await leaderboard(sb.base);
    return b && sum(a) === sum(b) ? b : undefined;
  });
  t.diagnostic(`second instance caught up ${Date.now() - recovered} ms after the producer finished`);
  assert.deepEqual(board, tally.leaderboard(), 'leaderboard = tally of all produced votes');

  const committedResults = await readTopic(kafka, names.output);
  const uncommittedResults = await readTopic(kafka, names.output, { readUncommitted: true });
  t.diagnostic(`results: ${committedResults.length} read_committed, ${uncommittedResults.length} read_uncommitted (aborted ones included)`);
  assert.equal(committedResults.length, VOTES, 'exactly one committed result per vote');
  assert.ok(uncommittedResults.length >= committedResults.length);
  const { byPhone, problems } = outcomesFromResults(committedResults);
  assert.deepEqual(problems, []);
  assert.deepEqual(diffOutcomes(tally.outcomesByPhone, byPhone), [], 'per phone, the outcomes of its votes in order');
  assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');

  // A third instance restores the same state from the changelog alone (the input is consumed).
  sb.child.kill('SIGTERM');
  const exit = await sb.exited;
  assert.equal(exit.code, 0, `the second instance stops cleanly on SIGTERM\n${sb.output().slice(-2000)}`);
  restored = await startKafkaService(voterCopy(suffix));
  const restoredBase = baseUrl(restored);
  const restoredBoard = await waitFor('the restored leaderboard', () => leaderboard(restoredBase), { timeoutMs: 30_000 });
  assert.deepEqual(restoredBoard, tally.leaderboard(), 'state restored from the changelog = tally');
  const phone = votes[0]!.phoneNumber;
  const row = (await (await fetch(`${restoredBase}/tables/votesByPhone/${phone}`)).json()) as { value: { accepted: number } };
  assert.equal(row.value.accepted, tally.acceptedByPhone.get(phone));
  await sleep(500);
  assert.equal((await readTopic(kafka, names.output)).length, VOTES, 'the restart reprocessed nothing');
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});

test('a zombie (SIGSTOP past its session, then SIGCONT) is fenced; the group recovers: tally exact, exactly once', { timeout: 90_000 }, async (t) => {
  const testStarted = Date.now();
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const children: FaradChild[] = [];
  let restored: Service | undefined;
  t.after(async () => {
    for (const c of children) {
      c.child.kill('SIGCONT');
      await killHard(c);
    }
    await restored?.stop().catch(() => undefined);
    await cleanUpVoter(admin, names);
    await admin.disconnect();
  });
  await createTopic(admin, names.input, 8);
  const env = { FARAD_TEST_VOTER_SUFFIX: suffix, FARAD_SESSION_TIMEOUT_MS: '6000' };
  const withOutput = (c: FaradChild) => (err: unknown) => {
    throw new Error(`${(err as Error).message}\n--- output of ${c.base} ---\n${c.output().slice(-4000)}`);
  };
  const hosted = async (c: FaradChild): Promise<number[]> => {
    const { partitions } = (await (await fetch(`${c.base}/readyz`)).json()) as { partitions: Array<{ partition: number; role: string }> };
    return partitions.filter((p) => p.role === 'active').map((p) => p.partition);
  };

  const votes = makeVotes(9_000, { phones: 2_000, seed: 99 });
  const tally = new VoterTally(votes);
  const producer = await plainProducer(kafka);
  try {
    const zombie = await spawnFarad(FIXTURE, { ...env, FARAD_INSTANCE_ID: `a-${suffix}` });
    children.push(zombie);
    await waitFor('the first instance to be ready', async () => (await fetch(`${zombie.base}/readyz`)).status === 200, { timeoutMs: 40_000, intervalMs: 200 }).catch(withOutput(zombie));
    await produceVotes(producer, names.input, votes.slice(0, 3_000));
    await waitFor('phase 1 to be committed', () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 }).catch(withOutput(zombie));

    // The first instance freezes; a second one takes over once its session has expired.
    zombie.child.kill('SIGSTOP');
    const second = await spawnFarad(FIXTURE, { ...env, FARAD_INSTANCE_ID: `b-${suffix}` });
    children.push(second);
    await produceVotes(producer, names.input, votes.slice(3_000, 6_000));
    await waitFor('phase 2 to be committed by the second instance', () => allConsumed(admin, names.app, names.input), { timeoutMs: 45_000, intervalMs: 200 }).catch(withOutput(second));

    // The zombie wakes up, finds itself fenced and out of the group, and rejoins.
    zombie.child.kill('SIGCONT');
    const split = await waitFor(
      'the two instances to split the partitions',
      async () => {
        const [a, b] = await Promise.all([hosted(zombie), hosted(second)]);
        return a.length > 0 && b.length > 0 && [...a, ...b].sort((x, y) => x - y).join() === '0,1,2,3,4,5,6,7' ? { a, b } : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 250 },
    ).catch(withOutput(zombie));
    await produceVotes(producer, names.input, votes.slice(6_000));
    await waitFor('phase 3 to be committed', () => allConsumed(admin, names.app, names.input), { timeoutMs: 30_000, intervalMs: 200 }).catch(withOutput(zombie));
    t.diagnostic(`all three phases committed after ${Date.now() - testStarted} ms; partitions ${split.a.join()} back on the thawed instance`);
    // The thawed instance serves what it took over afresh: state that includes the second
    // instance's work, not the state it had when it froze.
    const mine = [...tally.acceptedByPhone].filter(([phone]) => split.a.includes(kafkaPartition(String(phone), 8))).slice(0, 100);
    assert.ok(mine.length > 0);
    for (const [phone, accepted] of mine) {
      const res = await fetch(`${zombie.base}/tables/votesByPhone/${phone}`);
      assert.equal(res.status, 200, `row of phone ${phone} on the thawed instance`);
      assert.deepEqual(((await res.json()) as { value: unknown }).value, { accepted }, `phone ${phone}`);
    }

    for (const c of children) c.child.kill('SIGTERM');
    for (const c of children) await c.exited;
  } finally {
    await producer.disconnect();
  }

  const results = await readTopic(kafka, names.output);
  assert.equal(results.length, votes.length, 'exactly one committed result per vote');
  const { byPhone, problems } = outcomesFromResults(results);
  assert.deepEqual(problems, []);
  assert.deepEqual(diffOutcomes(tally.outcomesByPhone, byPhone), [], 'per phone, the outcomes of its votes in order');

  restored = await startKafkaService(voterCopy(suffix));
  const board = await waitFor('the restored leaderboard', () => leaderboard(baseUrl(restored!)), { timeoutMs: 30_000 });
  assert.deepEqual(board, tally.leaderboard(), 'state restored from the changelog = tally');
  t.diagnostic(`whole test ${Date.now() - testStarted} ms`);
});
