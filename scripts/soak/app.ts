/**
 * The soak's app: Voter and the bank example in one farad app, renamed per run so runs never share
 * a consumer group, transactional ids, topics or snapshots. Every instance of a run loads it as its
 * `--app` with SOAK_APP_SUFFIX naming the run's copy.
 *
 * One app (not two) keeps the soak at three farad processes on a small machine; its procedures,
 * tables and queries are the examples' own, unchanged.
 */
import bank from '../../examples/bank/index.js';
import voter from '../../examples/voter/index.js';
import { defineApp, type App } from '../../src/index.js';
import { soakNames, SOAK_PARTITIONS } from './names.js';

export function soakApp(suffix: string): App {
  const names = soakNames(suffix);
  const v = voter.spec;
  const b = bank.spec;
  const spec = {
    name: names.app,
    partitions: SOAK_PARTITIONS,
    events: { ...v.events, ...b.events },
    tables: { ...v.tables, ...b.tables },
    globalTables: v.globalTables,
    settings: v.settings,
    inputs: [
      { topic: names.votes, events: ['Vote'] },
      { topic: names.transactions, events: ['Deposit', 'Withdrawal', 'Transfer'] },
    ],
    outputs: {
      VoteAccepted: names.voteResults,
      VoteRejected: names.voteResults,
      WithdrawalRejected: names.rejections,
      TransferCompleted: names.transferResults,
      TransferRejected: names.transferResults,
    },
    procedures: { ...v.procedures, ...b.procedures },
    queries: (query: Parameters<NonNullable<typeof v.queries>>[0]) => ({ ...v.queries?.(query), ...b.queries?.(query) }),
  };
  return defineApp(spec as unknown as Parameters<typeof defineApp>[0]);
}

export default soakApp(process.env.SOAK_APP_SUFFIX ?? 'fixture');
