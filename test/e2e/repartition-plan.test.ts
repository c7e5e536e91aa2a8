/**
 * `farad repartition --plan` on the embedded log, as a user runs it: Voter processed 6k votes and
 * stopped; the plan for 12 and 13 partitions reads every partition's state and says where every
 * row would go, checked against an independent tally (each phone with an accepted vote in the
 * partition its number now hashes to; the per-partition totals folded into one row per
 * contestant). It changes nothing: the app then restarts on its 8 partitions with the same
 * leaderboard. Bad input is refused with the reason.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import voter from '../../examples/voter/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { generateVotes, http, postJson, runCli, startTestService, tallyVotes, tempDir, waitFor, waitProcessed } from './helpers.js';

interface Plan {
  readonly from: number;
  readonly to: number;
  readonly partitions: ReadonlyArray<Record<string, number>>;
  readonly report: { moved: number; stayed: number; merged: number; reset: number; offsetsDropped: number };
}

test('repartition --plan: where every row of a stopped Voter would go, and nothing changed', { timeout: 120_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t);
  const votes = generateVotes(6_000, { phones: 2_500, invalidShare: 0.05, seed: 17 });
  const expected = tallyVotes(votes, 2);
  const first = await startTestService(t, voter, dataDir);
  for (let i = 0; i < votes.length; i += 1000) assert.equal((await postJson(`${first.base}/events/voter.Vote`, votes.slice(i, i + 1000))).status, 202);
  await waitProcessed(first.service, first.log, first.base);
  const leaderboard = async (base: string): Promise<unknown> => (await http(`${base}/queries/leaderboard`)).body;
  await waitFor('every vote counted', async () => ((await leaderboard(first.base)) as Array<{ votes: number }>).reduce((s, r) => s + r.votes, 0) === expected.accepted);
  const board = await leaderboard(first.base);
  await first.service.stop();

  const env = { FARAD_DATA_DIR: dataDir };
  for (const to of [12, 13]) {
    const run = await runCli(t, ['repartition', '--app', 'examples/voter', '--partitions', String(to), '--plan'], env, undefined, 60_000);
    assert.equal(run.code, 0, run.stderr);
    const plan = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Plan;
    assert.match(run.stdout, /nothing was changed \(--plan\)/);
    assert.deepEqual([plan.from, plan.to], [8, to]);

    const phones = Array.from({ length: to }, () => 0);
    for (const phone of expected.acceptedByPhone.keys()) phones[partitionForKey(String(phone), to)]!++;
    const contestants = Array.from({ length: to }, () => 0);
    for (const { contestantNumber, votes: n } of expected.leaderboard) if (n > 0) contestants[partitionForKey(String(contestantNumber), to)]!++;
    assert.deepEqual(
      plan.partitions.map((tables) => [tables['votesByPhone'] ?? 0, tables['votesByContestant'] ?? 0]),
      phones.map((n, p) => [n, contestants[p]]),
      'rows per new partition = the tally',
    );
    assert.equal(plan.report.moved + plan.report.stayed, expected.acceptedByPhone.size);
    assert.equal(plan.report.offsetsDropped, 8, 'one input offset row per old partition, not carried');
    assert.ok(plan.report.merged >= 6 && plan.report.merged <= 6 * 8, `local rows merged: ${plan.report.merged}`);
  }

  const refused = await runCli(t, ['repartition', '--app', 'examples/voter', '--partitions', '6', '--plan'], env);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /larger than today's 8/);
  const notYet = await runCli(t, ['repartition', '--app', 'examples/voter', '--partitions', '12'], env);
  assert.equal(notYet.code, 2);
  assert.match(notYet.stderr, /--plan` shows what the move would do/);

  const again = await startTestService(t, voter, dataDir);
  await waitProcessed(again.service, again.log, again.base);
  assert.equal(again.service.app.partitions, 8);
  assert.deepEqual(await leaderboard(again.base), board, 'the plan changed nothing');
});
