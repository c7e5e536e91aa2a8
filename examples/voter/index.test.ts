/** VoltDB's Voter rules, tested with farad's test driver. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestDriver } from '../../src/testing/index.js';
import voter from './index.js';

test('each phone gets maxVotesPerPhone accepted votes; unknown contestants are rejected', () => {
  const driver = new TestDriver(voter);
  for (const contestantNumber of [1, 2, 3]) driver.send('Vote', { phoneNumber: 2_125_550_100, contestantNumber });
  driver.send('Vote', { phoneNumber: 4_155_550_100, contestantNumber: 9 });

  assert.deepEqual(
    driver.emitted().map((e) => [e.name, e.value]),
    [
      ['VoteAccepted', { phoneNumber: 2_125_550_100, contestantNumber: 1, state: 'NY' }],
      ['VoteAccepted', { phoneNumber: 2_125_550_100, contestantNumber: 2, state: 'NY' }],
      ['VoteRejected', { phoneNumber: 2_125_550_100, contestantNumber: 3, reason: 'OVER_VOTE_LIMIT' }],
      ['VoteRejected', { phoneNumber: 4_155_550_100, contestantNumber: 9, reason: 'INVALID_CONTESTANT' }],
    ],
  );
  const leaderboard = driver.query('leaderboard') as Array<{ contestantNumber: number; votes: number }>;
  assert.deepEqual(leaderboard.slice(0, 3).map((r) => [r.contestantNumber, r.votes]), [[1, 1], [2, 1], [3, 0]]);
});

test('the vote limit is a setting', () => {
  const driver = new TestDriver(voter, { settings: { maxVotesPerPhone: 3 } });
  for (const contestantNumber of [1, 2, 3]) driver.send('Vote', { phoneNumber: 2_125_550_100, contestantNumber });
  assert.equal(driver.emitted('VoteAccepted').length, 3);
});
