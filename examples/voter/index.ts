import { defineApp, globalTable, table } from '../../src/index.js';
import { AREA_CODE_STATES } from './area-codes.js';
import { schemas } from './schemas.js';

/** VoltDB's Voter contestants. */
export const CONTESTANTS: ReadonlyArray<readonly [number, string]> = [
  [1, 'Edwina Burnam'],
  [2, 'Tabatha Gehling'],
  [3, 'Kelly Clauss'],
  [4, 'Jessie Alloway'],
  [5, 'Alana Bregman'],
  [6, 'Jessie Eichman'],
];

export interface LeaderboardRow {
  contestantNumber: number;
  name: string;
  votes: number;
}

/**
 * Voter, after VoltDB's benchmark: phone votes for contestants, at most `maxVotesPerPhone`
 * accepted votes per phone, each vote answered by a VoteAccepted or VoteRejected event.
 */
export default defineApp({
  name: 'voter',
  partitions: 8,
  events: {
    Vote: schemas.Vote,
    VoteAccepted: schemas.VoteAccepted,
    VoteRejected: schemas.VoteRejected,
  },
  tables: {
    votesByPhone: table({ key: 'long', value: schemas.PhoneVotes }),
    // Per-partition running totals; the leaderboard query sums them (and a repartition too).
    votesByContestant: table({ key: 'int', value: schemas.VoteCount, scope: 'local', regroup: { merge: (a, b) => ({ votes: a.votes + b.votes }) } }),
  },
  globalTables: {
    contestants: globalTable({
      key: 'int',
      value: schemas.Contestant,
      load: () => CONTESTANTS.map(([n, name]) => [n, { contestantNumber: n, name }] as const),
    }),
    areaCodes: globalTable({
      key: 'int',
      value: schemas.AreaCodeState,
      load: () => AREA_CODE_STATES.map(([code, state]) => [code, { state }] as const),
    }),
  },
  settings: { maxVotesPerPhone: 2 },
  inputs: [{ topic: 'votes', events: ['Vote'] }],
  outputs: { VoteAccepted: 'vote-results', VoteRejected: 'vote-results' },
  procedures: {
    Vote: {
      partitionKey: (vote) => String(vote.phoneNumber),
      emits: ['VoteAccepted', 'VoteRejected'],
      handle(ctx, vote) {
        const { phoneNumber, contestantNumber } = vote;
        if (!ctx.globals.contestants.has(contestantNumber)) {
          ctx.emit('VoteRejected', { phoneNumber, contestantNumber, reason: 'INVALID_CONTESTANT' });
          return;
        }
        const accepted = ctx.tables.votesByPhone.get(phoneNumber)?.accepted ?? 0;
        if (accepted >= ctx.settings.maxVotesPerPhone) {
          ctx.emit('VoteRejected', { phoneNumber, contestantNumber, reason: 'OVER_VOTE_LIMIT' });
          return;
        }
        ctx.tables.votesByPhone.put(phoneNumber, { accepted: accepted + 1 });
        const total = ctx.tables.votesByContestant.get(contestantNumber)?.votes ?? 0;
        ctx.tables.votesByContestant.put(contestantNumber, { votes: total + 1 });
        const areaCode = Math.floor(phoneNumber / 10_000_000);
        const state = ctx.globals.areaCodes.get(areaCode)?.state ?? 'XX';
        ctx.emit('VoteAccepted', { phoneNumber, contestantNumber, state });
      },
    },
  },
  queries: (query) => ({
    leaderboard: query({
      partition: (ctx) => ctx.tables.votesByContestant.scan(),
      merge(parts): LeaderboardRow[] {
        const totals = new Map<number, number>(CONTESTANTS.map(([n]) => [n, 0]));
        for (const rows of parts) {
          for (const [contestant, { votes }] of rows) totals.set(contestant, (totals.get(contestant) ?? 0) + votes);
        }
        return CONTESTANTS.map(([contestantNumber, name]) => ({
          contestantNumber,
          name,
          votes: totals.get(contestantNumber) ?? 0,
        })).sort((a, b) => b.votes - a.votes || a.contestantNumber - b.contestantNumber);
      },
    }),
  }),
});
