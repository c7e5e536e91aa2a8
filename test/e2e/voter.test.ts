/**
 * Voter end to end on the embedded log: ~20k deterministic votes in, half through HTTP and half
 * through `service.ingest`; leaderboard, vote-results and votesByPhone checked against an
 * independent tally; a settings override changes the outcome.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import voter from '../../examples/voter/index.js';
import type { EmbeddedLog, Service } from '../../src/index.js';
import {
  catalogOf,
  decodeAll,
  generateVotes,
  http,
  postJson,
  readTopic,
  scanTableHttp,
  startTestService,
  tallyVotes,
  tempDir,
  waitFor,
  waitProcessed,
  withLog,
  type Tally,
  type VoteIn,
} from './helpers.js';

const CHUNK = 500;

/** Sends votes in order, alternating chunks between HTTP (arrays) and `service.ingest`. */
async function sendVotes(service: Service, base: string, votes: readonly VoteIn[]): Promise<{ viaHttp: number; viaIngest: number }> {
  const event = service.ingest.inputEvent('voter.Vote');
  let viaHttp = 0;
  let viaIngest = 0;
  for (let i = 0, chunk = 0; i < votes.length; i += CHUNK, chunk++) {
    const part = votes.slice(i, i + CHUNK);
    if (chunk % 2 === 0) {
      const answer = await postJson(`${base}/events/voter.Vote`, part);
      assert.equal(answer.status, 202, answer.text);
      const { position, ...accepted } = answer.body;
      assert.deepEqual(accepted, { accepted: part.length, eventType: 'voter.Vote', topic: 'votes' });
      assert.match(String(position), /^votes:\d:\d+(,votes:\d:\d+)*$/);
      viaHttp += part.length;
    } else {
      await service.ingest.send(event, part.map((v) => service.ingest.record(event, v)));
      viaIngest += part.length;
    }
  }
  return { viaHttp, viaIngest };
}

async function leaderboard(base: string): Promise<Tally['leaderboard']> {
  const answer = await http<Tally['leaderboard']>(`${base}/queries/leaderboard`);
  assert.equal(answer.status, 200, answer.text);
  return answer.body;
}

/** Waits until the service processed everything and the leaderboard shows every accepted vote. */
async function waitDone(service: Service, log: EmbeddedLog, base: string, expected: Tally, total: number): Promise<void> {
  let end = 0;
  for (let p = 0; p < service.app.partitions; p++) end += log.endOffset('votes', p);
  assert.equal(end, total, 'every vote sent is on the votes topic');
  await waitProcessed(service, log, base);
  await waitFor('leaderboard to add up', async () => (await leaderboard(base)).reduce((s, r) => s + r.votes, 0) === expected.accepted);
}

/** vote-results holds, per partition, exactly one result per vote, in the votes' log order, as the tally says. */
function checkResults(log: EmbeddedLog, votes: readonly VoteIn[], expected: Tally, partitions: number): void {
  const catalog = catalogOf(voter);
  // The tally's outcomes per phone, in the order the phone's votes were sent.
  const outcomesByPhone = new Map<number, Array<Tally['outcomes'][number]>>();
  votes.forEach((v, i) => {
    let list = outcomesByPhone.get(v.phoneNumber);
    if (!list) outcomesByPhone.set(v.phoneNumber, (list = []));
    list.push(expected.outcomes[i]!);
  });
  const inputs = readTopic(log, 'votes', partitions);
  const results = readTopic(log, 'vote-results', partitions);
  let count = 0;
  const reasons = new Map<string, number>();
  for (let p = 0; p < partitions; p++) {
    const decodedVotes = decodeAll(catalog, inputs[p]!);
    const decodedResults = decodeAll(catalog, results[p]!);
    assert.equal(decodedResults.length, decodedVotes.length, `partition ${p}: one result per vote`);
    for (let i = 0; i < decodedVotes.length; i++) {
      const vote = decodedVotes[i]!;
      assert.equal(vote.type, 'voter.Vote');
      const want = outcomesByPhone.get(vote['phoneNumber'] as number)?.shift();
      assert.ok(want, `partition ${p} offset ${i}: vote of a phone that sent no more votes`);
      assert.equal(want.contestantNumber, vote['contestantNumber'], `partition ${p} offset ${i}: votes of a phone out of order`);
      assert.deepEqual(decodedResults[i], want, `partition ${p}, result ${i}`);
      assert.equal(results[p]![i]!.key!.toString(), String(vote['phoneNumber']), 'results are keyed by phone');
      const label = want.type === 'voter.VoteRejected' ? want.reason : 'ACCEPTED';
      reasons.set(label, (reasons.get(label) ?? 0) + 1);
      count++;
    }
  }
  assert.equal(count, votes.length);
  for (const [phone, rest] of outcomesByPhone) assert.equal(rest.length, 0, `phone ${phone}: votes missing from the log`);
  // The workload exercises every outcome.
  for (const label of ['ACCEPTED', 'INVALID_CONTESTANT', 'OVER_VOTE_LIMIT']) assert.ok((reasons.get(label) ?? 0) > 100, `${label}: ${reasons.get(label)}`);
}

async function checkVotesByPhone(base: string, votes: readonly VoteIn[], expected: Tally): Promise<void> {
  // Full scan through the paged API equals the tally's per-phone counts.
  const rows = await scanTableHttp(base, 'votesByPhone', 1000);
  const scanned = new Map(rows.map((r) => [r.key as number, (r.value as { accepted: number }).accepted]));
  assert.equal(rows.length, scanned.size, 'no key twice in a scan of a partitioned table');
  assert.deepEqual(
    [...scanned].sort((a, b) => a[0] - b[0]),
    [...expected.acceptedByPhone].sort((a, b) => a[0] - b[0]),
  );
  // Point reads, including phones that only ever voted for invalid contestants (404).
  const phones = [...new Set(votes.map((v) => v.phoneNumber))];
  const zero = phones.filter((p) => !expected.acceptedByPhone.has(p));
  assert.ok(zero.length > 0, 'some phones have no accepted vote');
  const sample = [...phones.filter((_, i) => i % 25 === 0), ...zero.slice(0, 20)];
  for (const phone of sample) {
    const answer = await http<{ key: number; value: { accepted: number } }>(`${base}/tables/votesByPhone/${phone}`);
    const accepted = expected.acceptedByPhone.get(phone);
    if (accepted === undefined) assert.equal(answer.status, 404, `phone ${phone}: ${answer.text}`);
    else {
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.body.key, phone);
      assert.deepEqual(answer.body.value, { accepted });
    }
  }
}

test('Voter: 20k votes via HTTP and ingest match an independent tally', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t);
  const votes = generateVotes(20_000, { phones: 8_000, invalidShare: 0.05, seed: 20240601 });
  const expected = tallyVotes(votes, 2);
  const { service, base, log } = await startTestService(t, voter, dataDir);
  await waitFor('/readyz', async () => (await fetch(`${base}/readyz`)).status === 200);

  const sent = await sendVotes(service, base, votes);
  assert.deepEqual(sent, { viaHttp: 10_000, viaIngest: 10_000 });
  await waitDone(service, log, base, expected, votes.length);

  assert.deepEqual(await leaderboard(base), expected.leaderboard);
  await checkVotesByPhone(base, votes, expected);
  checkResults(log, votes, expected, service.app.partitions);

  // Nothing was dead-lettered.
  for (let p = 0; p < service.app.partitions; p++) assert.equal(log.endOffset('voter-dlq', p), 0);

  // After a clean stop, the data dir holds the same results, and a restart restores the same state.
  await service.stop();
  await withLog(dataDir, voter, (reopened) => checkResults(reopened, votes, expected, 8));
  const again = await startTestService(t, voter, dataDir);
  await waitProcessed(again.service, again.log, again.base);
  assert.deepEqual(await leaderboard(again.base), expected.leaderboard);
  const rows = await scanTableHttp(again.base, 'votesByPhone', 1000);
  assert.equal(rows.length, expected.acceptedByPhone.size);
});

test('Voter: maxVotesPerPhone from FARAD_SETTINGS_MAX_VOTES_PER_PHONE and from config settings', { timeout: 60_000 }, async (t: TestContext) => {
  const votes = generateVotes(4_000, { phones: 800, invalidShare: 0.05, seed: 77 });
  const withTwo = tallyVotes(votes, 2);
  const withThree = tallyVotes(votes, 3);
  assert.notDeepEqual(withThree.leaderboard, withTwo.leaderboard, 'the workload must be sensitive to the limit');
  assert.ok(withThree.accepted > withTwo.accepted);

  const cases: Array<{ name: string; start: (dir: string) => ReturnType<typeof startTestService> }> = [
    { name: 'environment', start: (dir) => startTestService(t, voter, dir, {}, { FARAD_SETTINGS_MAX_VOTES_PER_PHONE: '3' }) },
    { name: 'config settings', start: (dir) => startTestService(t, voter, dir, { settings: { maxVotesPerPhone: 3 } }) },
  ];
  for (const { name, start } of cases) {
    const { service, base, log } = await start(tempDir(t));
    assert.equal(service.app.settings['maxVotesPerPhone'], 3, name);
    await sendVotes(service, base, votes);
    await waitDone(service, log, base, withThree, votes.length);
    assert.deepEqual(await leaderboard(base), withThree.leaderboard, name);
    checkResults(log, votes, withThree, service.app.partitions);
    const rows = await scanTableHttp(base, 'votesByPhone', 500);
    assert.ok(rows.some((r) => (r.value as { accepted: number }).accepted === 3), `${name}: some phone has 3 accepted votes`);
    await service.stop();
  }
});

test('Voter: stop while a backlog is being processed, restart, every vote applied exactly once', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t);
  const votes = generateVotes(30_000, { phones: 5_000, invalidShare: 0.05, seed: 5150 });
  const expected = tallyVotes(votes, 2);
  const first = await startTestService(t, voter, dataDir, { maxBatchRecords: 500 });
  const event = first.service.ingest.inputEvent('voter.Vote');
  await first.service.ingest.send(event, votes.map((v) => first.service.ingest.record(event, v)));
  const committed = (log: EmbeddedLog): number => {
    let n = 0;
    for (let p = 0; p < 8; p++) n += log.committedOffset('voter', 'votes', p);
    return n;
  };
  await waitFor('some votes committed', () => committed(first.log) > 0);
  await first.service.stop();

  // Whatever was committed has exactly its results; nothing beyond the committed offsets.
  const done = await withLog(dataDir, voter, (log) => {
    for (let p = 0; p < 8; p++) {
      assert.equal(log.endOffset('vote-results', p), log.committedOffset('voter', 'votes', p), `partition ${p}: results = committed inputs`);
    }
    return committed(log);
  });
  t.diagnostic(`stopped with ${done} of ${votes.length} votes committed`);

  const second = await startTestService(t, voter, dataDir);
  await waitDone(second.service, second.log, second.base, expected, votes.length);
  assert.deepEqual(await leaderboard(second.base), expected.leaderboard);
  checkResults(second.log, votes, expected, 8);
});
