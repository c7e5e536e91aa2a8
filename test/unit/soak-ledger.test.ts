// The soak's ledger checks (scripts/soak/ledger.ts): a clean run passes, and each kind of fault a
// soak hunts — lost, doubled, negative, money not conserved, a fenced producer committing — is caught.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkBank, checkEmbedded, checkEpochs, checkInputs, checkLeaderboard, checkVoter, voteOutcome, type EmbeddedEntry, type InputRecord, type LedgerEntry, type OutputRecord } from '../../scripts/soak/ledger.js';

let offset = 0;
const input = (type: string, value: Record<string, unknown>, key: string, id: string | null = `id${offset}`, partition = 0): InputRecord => ({ partition, offset: offset++, id, type, key, value, timestamp: 1000 + offset });
const output = (topic: string, type: string, value: Record<string, unknown>, key: string, extra: Partial<OutputRecord> = {}): OutputRecord => ({ topic, partition: 0, offset: offset++, key, type, value, timestamp: 2000 + offset, ...extra });

// ---- inputs -------------------------------------------------------------------------------------

test('inputs: acknowledged events must be in the topic once; failed sends may be; nothing unknown', () => {
  const vote = (id: string, status: LedgerEntry['status']): LedgerEntry => ({ id, type: 'Vote', key: '2015550100', value: { phoneNumber: 2015550100, contestantNumber: 1 }, status });
  const ledger = new Map([vote('a', 'acked'), vote('b', 'acked'), vote('c', 'failed'), vote('d', 'failed')].map((e) => [e.id, e]));
  const rec = (id: string | null) => input('Vote', { phoneNumber: 2015550100, contestantNumber: 1 }, '2015550100', id);
  const clean = checkInputs(ledger, [rec('a'), rec('b'), rec('c')]);
  assert.deepEqual(clean.violations, []);
  assert.equal(clean.stats.failedSendsLanded, 1);
  assert.match(checkInputs(ledger, [rec('a')]).violations.join(), /missing from their input topic.*: 1 .*b Vote/);
  assert.match(checkInputs(ledger, [rec('a'), rec('b'), rec('b')]).violations.join(), /appended twice: 1/);
  assert.match(checkInputs(ledger, [rec('a'), rec('b'), rec('zzz')]).violations.join(), /nobody sent: 1/);
});

// ---- Voter --------------------------------------------------------------------------------------

const PHONE = 2015550100; // area code 201: NJ
const votes = (): InputRecord[] => [1, 2, 3, 8].map((c) => input('Vote', { phoneNumber: PHONE, contestantNumber: c }, String(PHONE)));
const outcomes = (): OutputRecord[] => [
  output('r', 'VoteAccepted', { phoneNumber: PHONE, contestantNumber: 1, state: 'NJ' }, String(PHONE)),
  output('r', 'VoteAccepted', { phoneNumber: PHONE, contestantNumber: 2, state: 'NJ' }, String(PHONE)),
  output('r', 'VoteRejected', { phoneNumber: PHONE, contestantNumber: 3, reason: 'OVER_VOTE_LIMIT' }, String(PHONE)),
  output('r', 'VoteRejected', { phoneNumber: PHONE, contestantNumber: 8, reason: 'INVALID_CONTESTANT' }, String(PHONE)),
];

test('Voter: the rules restated', () => {
  assert.equal(voteOutcome({ phoneNumber: PHONE, contestantNumber: 2 }, 0), 'accepted:2:NJ');
  assert.equal(voteOutcome({ phoneNumber: 9990000000, contestantNumber: 2 }, 1), 'accepted:2:XX');
  assert.equal(voteOutcome({ phoneNumber: PHONE, contestantNumber: 2 }, 2), 'rejected:2:OVER_VOTE_LIMIT');
  assert.equal(voteOutcome({ phoneNumber: PHONE, contestantNumber: 7 }, 0), 'rejected:7:INVALID_CONTESTANT');
});

test('Voter: outcomes as the tally says pass; lost, doubled and wrong ones are caught; the leaderboard is the tally', () => {
  const ok = checkVoter(votes(), outcomes());
  assert.deepEqual(ok.violations, []);
  assert.deepEqual(ok.leaderboard, { 1: 1, 2: 1, 3: 0, 4: 0, 5: 0, 6: 0 });
  assert.match(checkVoter(votes(), outcomes().slice(0, 3)).violations.join(), /without their outcome \(lost\): 1/);
  const doubled = outcomes();
  doubled.splice(1, 0, doubled[0]!);
  assert.match(checkVoter(votes(), doubled).violations.join(), /more than once \(doubled\): 1/);
  const wrong = outcomes();
  wrong[2] = output('r', 'VoteAccepted', { phoneNumber: PHONE, contestantNumber: 3, state: 'NJ' }, String(PHONE));
  assert.match(checkVoter(votes(), wrong).violations.join(), /differ from the tally: 1/);
  const board = [1, 2, 3, 4, 5, 6].map((c) => ({ contestantNumber: c, votes: c <= 2 ? 1 : 0 }));
  assert.deepEqual(checkLeaderboard('i1', board, ok.leaderboard), []);
  board[0] = { contestantNumber: 1, votes: 2 };
  assert.match(checkLeaderboard('i1', board, ok.leaderboard).join(), /contestant 1: 2 \(tally 1\)/);
});

// ---- bank ---------------------------------------------------------------------------------------

const bankInputs = (): InputRecord[] => [
  input('Deposit', { account: 'a', amount: 100 }, 'a'),
  input('Deposit', { account: 'b', amount: 50 }, 'b'),
  input('Withdrawal', { account: 'b', amount: 80 }, 'b'),
  input('Withdrawal', { account: 'a', amount: 10 }, 'a'),
  input('Transfer', { transferId: 't1', from: 'a', to: 'b', amount: 30 }, 'a'),
  input('Transfer', { transferId: 't2', from: 'b', to: 'b', amount: 5 }, 'b'),
  input('Transfer', { transferId: 't3', from: 'b', to: 'a', amount: 1000 }, 'b'),
  input('Transfer', { transferId: 't4', from: 'a', to: 'b', amount: 0 }, 'a'),
];
const rejections = (): OutputRecord[] => [output('rej', 'WithdrawalRejected', { account: 'b', amount: 80, balance: 50 }, 'b')];
const transferResults = (): OutputRecord[] => [
  output('tr', 'TransferCompleted', { transferId: 't1', from: 'a', to: 'b', amount: 30 }, 'a'),
  output('tr', 'TransferRejected', { transferId: 't2', from: 'b', to: 'b', amount: 5, reason: 'SAME_ACCOUNT' }, 'b'),
  output('tr', 'TransferRejected', { transferId: 't3', from: 'b', to: 'a', amount: 1000, reason: 'INSUFFICIENT_FUNDS' }, 'b'),
  output('tr', 'TransferRejected', { transferId: 't4', from: 'a', to: 'b', amount: 0, reason: 'NOT_POSITIVE' }, 'a'),
];
// a: 100 − 10 − 30 = 60; b: 50 + 30 = 80; total 140
const table = (): Map<string, number> => new Map([['a', 60], ['b', 80]]);

test('bank: a consistent run passes, with the total money conserved', () => {
  const r = checkBank(bankInputs(), rejections(), transferResults(), table());
  assert.deepEqual(r.violations, []);
  assert.equal(r.total, 140);
  assert.deepEqual(Object.fromEntries(r.balances), { a: 60, b: 80 });
  assert.equal(r.stats.transfersCompleted, 1);
});

test('bank: a lost transfer outcome, a doubled one, a lost deposit and a doubled deposit are caught', () => {
  assert.match(checkBank(bankInputs(), rejections(), transferResults().slice(1), new Map([['a', 90], ['b', 50]])).violations.join('\n'), /transfers without an outcome \(lost\): 1 \(e.g. t1/);
  const doubled = [...transferResults(), transferResults()[0]!];
  assert.match(checkBank(bankInputs(), rejections(), doubled, table()).violations.join('\n'), /second outcome \(doubled\): 1/);
  // A deposit applied twice: the table has 100 more than the ledger, and more money than was deposited.
  const twice = checkBank(bankInputs(), rejections(), transferResults(), new Map([['a', 160], ['b', 80]])).violations.join('\n');
  assert.match(twice, /balances that differ from the ledger.*: 1 \(e.g. a: table 160, ledger 60\)/);
  assert.match(twice, /money not conserved in the balances table: it sums to 240, deposits − accepted withdrawals = 140/);
  // A deposit lost in the table.
  assert.match(checkBank(bankInputs(), rejections(), transferResults(), new Map([['a', 60], ['b', 30]])).violations.join('\n'), /b: table 30, ledger 80/);
});

test('bank: negative balances, unconserved transfers, contradicting outcomes and phantom rejections are caught', () => {
  // The table went negative (a withdrawal applied without the money).
  assert.match(checkBank(bankInputs(), rejections(), transferResults(), new Map([['a', 60], ['b', -30]])).violations.join('\n'), /negative balances in the balances table: 1 \(e.g. b: -30\)/);
  // A transfer completed that was more than all the money: the outcomes drive an account below zero.
  const tooMuch = transferResults();
  tooMuch[2] = output('tr', 'TransferCompleted', { transferId: 't3', from: 'b', to: 'a', amount: 1000 }, 'b');
  const negative = checkBank(bankInputs(), rejections(), tooMuch, new Map([['a', 1060], ['b', -920]])).violations.join('\n');
  assert.match(negative, /accounts below zero by the inputs and outcomes: 1 \(e.g. b: -920\)/);
  // A completed transfer credited twice (money made): the table is not conserved.
  assert.match(checkBank(bankInputs(), rejections(), transferResults(), new Map([['a', 60], ['b', 110]])).violations.join('\n'), /not conserved in the balances table: it sums to 170/);
  // SAME_ACCOUNT completed: contradicts the transfer.
  const same = transferResults();
  same[1] = output('tr', 'TransferCompleted', { transferId: 't2', from: 'b', to: 'b', amount: 5 }, 'b');
  assert.match(checkBank(bankInputs(), rejections(), same, table()).violations.join('\n'), /contradict the transfer: 1 .*completed, expected SAME_ACCOUNT/);
  // A rejection of a withdrawal nobody made, and one whose balance covered it.
  const phantom = [...rejections(), output('rej', 'WithdrawalRejected', { account: 'a', amount: 999, balance: 5 }, 'a')];
  assert.match(checkBank(bankInputs(), phantom, transferResults(), table()).violations.join('\n'), /match no withdrawal: 1/);
  const covered = [output('rej', 'WithdrawalRejected', { account: 'b', amount: 80, balance: 90 }, 'b')];
  assert.match(checkBank(bankInputs(), covered, transferResults(), table()).violations.join('\n'), /balance covers the amount: 1/);
});

// ---- fencing ------------------------------------------------------------------------------------

test('fencing: epochs that only grow pass; a fenced epoch committing after its successor is caught', () => {
  const rec = (partition: number, producerId: string, epoch: number): OutputRecord => ({ ...output('cl', 'change', {}, 'k'), partition, producerId, epoch });
  assert.deepEqual(checkEpochs([rec(0, '7', 1), rec(0, '7', 1), rec(0, '7', 2), rec(1, '8', 5), rec(1, '9', 0)]).violations, []);
  assert.match(checkEpochs([rec(0, '7', 1), rec(0, '7', 2), rec(0, '7', 1)]).violations.join(), /fenced producer.*: 1 .*producer 7 epoch 1 committed after epoch 2/);
});

// ---- embedded -----------------------------------------------------------------------------------

test('embedded: acknowledged applied once, refused never, unanswered at most once', () => {
  const entries: EmbeddedEntry[] = [
    { id: 'e0', type: 'Vote', events: [{ phoneNumber: 1, contestantNumber: 1 }, { phoneNumber: 2, contestantNumber: 2 }], status: 'acked', answer: '202' },
    { id: 'e1', type: 'Vote', events: [{ phoneNumber: 3, contestantNumber: 1 }], status: 'refused', answer: '507' },
    { id: 'e2', type: 'Vote', events: [{ phoneNumber: 4, contestantNumber: 3 }], status: 'uncertain', answer: 'ECONNRESET' },
    { id: 'e3', type: 'Deposit', events: [{ account: 'x', amount: 10 }], status: 'acked', answer: '202' },
    { id: 'e4', type: 'Deposit', events: [{ account: 'x', amount: 7 }], status: 'uncertain', answer: 'ECONNRESET' },
    { id: 'e5', type: 'Deposit', events: [{ account: 'y', amount: 5 }], status: 'refused', answer: '507' },
  ];
  const board = (c1: number, c2: number, c3: number) => [c1, c2, c3, 0, 0, 0].map((votes, i) => ({ contestantNumber: i + 1, votes }));
  const votes = (extra: Array<[string, number]> = []) => new Map<string, number>([['1', 1], ['2', 1], ...extra]);
  assert.deepEqual(checkEmbedded(entries, votes(), new Map([['x', 10]]), board(1, 1, 0)).violations, []);
  assert.deepEqual(checkEmbedded(entries, votes([['4', 1]]), new Map([['x', 17]]), board(1, 1, 1)).violations, []);
  assert.match(checkEmbedded(entries, new Map([['1', 1]]), new Map([['x', 10]]), board(1, 0, 0)).violations.join(), /not applied \(lost\): 1 \(e.g. vote of phone 2\)/);
  assert.match(checkEmbedded(entries, votes([['4', 2]]), new Map([['x', 10]]), board(1, 1, 2)).violations.join(), /more than once \(doubled\): 1 \(e.g. phone 4/);
  assert.match(checkEmbedded(entries, votes([['3', 1]]), new Map([['x', 10]]), board(2, 1, 0)).violations.join(), /refused events applied: 1/);
  assert.match(checkEmbedded(entries, votes(), new Map([['x', 20]]), board(1, 1, 0)).violations.join(), /doubled.*x: balance 20/);
  assert.match(checkEmbedded(entries, votes(), new Map([['x', 10], ['y', 5]]), board(1, 1, 0)).violations.join(), /state nobody wrote|doubled/);
  assert.match(checkEmbedded(entries, votes(), new Map([['x', 10]]), board(2, 1, 0)).violations.join(), /leaderboard of the embedded instance differs/);
});
