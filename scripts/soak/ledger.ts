/**
 * The independent ledger and its checks (pure): what the driver was acknowledged, what the input
 * topics hold, what farad's outputs (read_committed) and state say, compared by rules restated
 * here from the Voter and bank examples, not by farad's code.
 *
 *  - inputs: every acknowledged event is in its input topic, exactly once; nothing is there that
 *    was not sent (a send that failed may or may not have landed: what landed counts as input);
 *  - Voter: per phone, the outcomes in the results topic are those of its votes in input order
 *    (contestants 1-6 valid, two accepted votes per phone), each exactly once; the leaderboard is
 *    the tally;
 *  - bank: one outcome per transfer, as its input says (NOT_POSITIVE, SAME_ACCOUNT are decided by
 *    the transfer itself); each WithdrawalRejected matches a withdrawal; the balances the inputs and
 *    the outcomes make (deposits − accepted withdrawals ± completed transfers) equal the balances
 *    table, none negative, and sum to deposits − accepted withdrawals (money conserved) = the
 *    consistent total every instance answers;
 *  - fencing: in each partition of the outputs and the changelog, a transactional producer's
 *    committed records never go back to an older epoch (a fenced owner never committed again);
 *  - embedded: acknowledged votes and deposits applied once, refused ones not at all, unanswered
 *    ones once or not at all.
 */
import { AREA_CODE_STATES } from '../../examples/voter/area-codes.js';
import type { Money, SoakEvent, Transfer, Vote } from './workload.js';

export type Status = 'acked' | 'failed';
export type LedgerEntry = SoakEvent & { readonly status: Status };

export interface InputRecord {
  readonly partition: number;
  readonly offset: number;
  /** The `soak-id` header (null: none). */
  readonly id: string | null;
  readonly type: string;
  readonly key: string | null;
  readonly value: Readonly<Record<string, unknown>>;
  readonly timestamp: number;
}

export interface OutputRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly type: string;
  readonly value: Readonly<Record<string, unknown>>;
  readonly timestamp: number;
  readonly producerId?: string;
  readonly epoch?: number;
}

export interface Report {
  readonly violations: string[];
  readonly stats: Record<string, number>;
}

const MAX_LISTED = 8;

/** Adds `what` with up to MAX_LISTED examples, once. */
function violation(out: string[], what: string, examples: readonly string[]): void {
  if (examples.length === 0) return;
  out.push(`${what}: ${examples.length} (e.g. ${examples.slice(0, MAX_LISTED).join('; ')})`);
}

// ---- inputs ------------------------------------------------------------------------------------

/** The ledger against the input topics: acknowledged ⊆ input, each id at most once, nothing unknown. */
export function checkInputs(ledger: ReadonlyMap<string, LedgerEntry>, inputs: readonly InputRecord[]): Report {
  const seen = new Map<string, InputRecord>();
  const doubled: string[] = [];
  const unknown: string[] = [];
  const differ: string[] = [];
  for (const r of inputs) {
    const where = `${r.type} at ${r.partition}/${r.offset}`;
    if (r.id === null) {
      unknown.push(`${where} without a soak-id`);
      continue;
    }
    const first = seen.get(r.id);
    if (first) doubled.push(`${r.id} at ${first.partition}/${first.offset} and ${r.partition}/${r.offset}`);
    else seen.set(r.id, r);
    const entry = ledger.get(r.id);
    if (!entry) unknown.push(`${r.id} (${where}) was never sent`);
    else if (entry.type !== r.type || entry.key !== r.key || !sameFields(entry.value, r.value)) differ.push(`${r.id}: sent ${entry.type} ${JSON.stringify(entry.value)}, input has ${r.type} ${JSON.stringify(r.value)}`);
  }
  const lost: string[] = [];
  let acked = 0;
  let failedLanded = 0;
  let failed = 0;
  for (const entry of ledger.values()) {
    if (entry.status === 'acked') {
      acked++;
      if (!seen.has(entry.id)) lost.push(`${entry.id} ${entry.type} ${JSON.stringify(entry.value)}`);
    } else {
      failed++;
      if (seen.has(entry.id)) failedLanded++;
    }
  }
  const violations: string[] = [];
  violation(violations, 'acknowledged events missing from their input topic (lost by Kafka or the driver)', lost);
  violation(violations, 'input events appended twice', doubled);
  violation(violations, 'input events nobody sent', unknown);
  violation(violations, 'input events that differ from what was sent', differ);
  return { violations, stats: { acked, failedSends: failed, failedSendsLanded: failedLanded, inputs: inputs.length } };
}

function sameFields(a: object, b: Readonly<Record<string, unknown>>): boolean {
  return Object.entries(a).every(([k, v]) => String(b[k]) === String(v));
}

// ---- Voter ---------------------------------------------------------------------------------------

const STATES = new Map(AREA_CODE_STATES.map(([code, state]) => [code, state]));
const MAX_VOTES_PER_PHONE = 2;

/** What Voter must answer a vote with, given the phone's accepted votes so far. */
export function voteOutcome(vote: Vote, acceptedBefore: number): string {
  if (vote.contestantNumber < 1 || vote.contestantNumber > 6) return `rejected:${vote.contestantNumber}:INVALID_CONTESTANT`;
  if (acceptedBefore >= MAX_VOTES_PER_PHONE) return `rejected:${vote.contestantNumber}:OVER_VOTE_LIMIT`;
  return `accepted:${vote.contestantNumber}:${STATES.get(Math.floor(vote.phoneNumber / 10_000_000)) ?? 'XX'}`;
}

export interface VoterReport extends Report {
  /** contestant -> accepted votes, from the inputs. */
  readonly leaderboard: Record<number, number>;
  /** Per vote output: append time − input time (ms), for the stall measurement. */
  readonly latencies: ReadonlyArray<{ readonly ms: number; readonly at: number; readonly partition: number }>;
}

/** `votes`: the votes input topic; `results`: the vote results topic, read_committed. */
export function checkVoter(votes: readonly InputRecord[], results: readonly OutputRecord[]): VoterReport {
  const ordered = [...votes].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  const expected = new Map<string, Array<{ outcome: string; input: InputRecord }>>();
  const accepted = new Map<string, number>();
  const leaderboard: Record<number, number> = { 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0 };
  for (const r of ordered) {
    const vote = { phoneNumber: Number(r.value.phoneNumber), contestantNumber: Number(r.value.contestantNumber) };
    const phone = String(vote.phoneNumber);
    const outcome = voteOutcome(vote, accepted.get(phone) ?? 0);
    if (outcome.startsWith('accepted')) {
      accepted.set(phone, (accepted.get(phone) ?? 0) + 1);
      leaderboard[vote.contestantNumber] = (leaderboard[vote.contestantNumber] ?? 0) + 1;
    }
    let list = expected.get(phone);
    if (!list) expected.set(phone, (list = []));
    list.push({ outcome, input: r });
  }
  const actual = new Map<string, OutputRecord[]>();
  const strange: string[] = [];
  for (const r of [...results].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    const phone = String(r.value.phoneNumber);
    if (r.key !== phone) strange.push(`${r.type} for phone ${phone} keyed ${r.key} at ${r.partition}/${r.offset}`);
    let list = actual.get(phone);
    if (!list) actual.set(phone, (list = []));
    list.push(r);
  }
  const describe = (r: OutputRecord): string =>
    r.type === 'VoteAccepted' ? `accepted:${String(r.value.contestantNumber)}:${String(r.value.state)}` : r.type === 'VoteRejected' ? `rejected:${String(r.value.contestantNumber)}:${String(r.value.reason)}` : `${r.type}?`;
  const lost: string[] = [];
  const doubled: string[] = [];
  const wrong: string[] = [];
  const latencies: Array<{ ms: number; at: number; partition: number }> = [];
  let outcomes = 0;
  for (const phone of new Set([...expected.keys(), ...actual.keys()])) {
    const want = expected.get(phone) ?? [];
    const got = actual.get(phone) ?? [];
    outcomes += got.length;
    const wantText = want.map((w) => w.outcome);
    const gotText = got.map(describe);
    if (got.length > want.length) doubled.push(`phone ${phone}: ${want.length} votes, ${got.length} outcomes [${gotText.join(', ')}]`);
    else if (got.length < want.length) lost.push(`phone ${phone}: ${want.length} votes [${wantText.join(', ')}], ${got.length} outcomes [${gotText.join(', ')}]`);
    else if (wantText.some((w, i) => w !== gotText[i])) wrong.push(`phone ${phone}: expected [${wantText.join(', ')}], got [${gotText.join(', ')}]`);
    for (let i = 0; i < Math.min(want.length, got.length); i++) {
      const input = want[i]!.input;
      const output = got[i]!;
      if (output.partition !== input.partition) strange.push(`phone ${phone}: outcome on partition ${output.partition}, vote on ${input.partition}`);
      latencies.push({ ms: output.timestamp - input.timestamp, at: input.timestamp, partition: input.partition });
    }
  }
  const violations: string[] = [];
  violation(violations, 'votes without their outcome (lost)', lost);
  violation(violations, 'votes answered more than once (doubled)', doubled);
  violation(violations, 'vote outcomes that differ from the tally', wrong);
  violation(violations, 'vote outcomes on the wrong key or partition', strange);
  return { violations, stats: { votes: votes.length, voteOutcomes: outcomes, acceptedVotes: Object.values(leaderboard).reduce((a, b) => a + b, 0) }, leaderboard, latencies };
}

/** A leaderboard answer (GET /queries/leaderboard) against the tally. */
export function checkLeaderboard(where: string, answer: ReadonlyArray<{ contestantNumber: number; votes: number }>, tally: Record<number, number>): string[] {
  const got = Object.fromEntries(answer.map((r) => [r.contestantNumber, r.votes]));
  const differ = Object.keys(tally).filter((c) => got[Number(c)] !== tally[Number(c)]);
  return differ.length === 0 ? [] : [`leaderboard of ${where} differs from the tally: ${differ.map((c) => `contestant ${c}: ${got[Number(c)]} (tally ${tally[Number(c)]})`).join(', ')}`];
}

// ---- bank --------------------------------------------------------------------------------------------

export interface BankReport extends Report {
  /** account -> balance, from inputs and outcomes. */
  readonly balances: ReadonlyMap<string, number>;
  /** Deposits − accepted withdrawals: what the consistent total must be. */
  readonly total: number;
}

/**
 * `transactions`: the bank's input topic; `rejections`: WithdrawalRejected; `transferResults`:
 * TransferCompleted / TransferRejected (both read_committed); `table`: the balances table.
 */
export function checkBank(transactions: readonly InputRecord[], rejections: readonly OutputRecord[], transferResults: readonly OutputRecord[], table: ReadonlyMap<string, number>): BankReport {
  const violations: string[] = [];
  const balances = new Map<string, number>();
  const add = (account: string, amount: number): void => {
    balances.set(account, (balances.get(account) ?? 0) + amount);
  };
  const withdrawals = new Map<string, number>();
  const transfers = new Map<string, Transfer>();
  let deposited = 0;
  let withdrawalCount = 0;
  for (const r of transactions) {
    if (r.type === 'Deposit') {
      const d = r.value as unknown as Money;
      add(String(d.account), Number(d.amount));
      deposited += Number(d.amount);
    } else if (r.type === 'Withdrawal') {
      const key = `${String(r.value.account)}:${Number(r.value.amount)}`;
      withdrawals.set(key, (withdrawals.get(key) ?? 0) + 1);
      withdrawalCount++;
    } else if (r.type === 'Transfer') {
      const t = { transferId: String(r.value.transferId), from: String(r.value.from), to: String(r.value.to), amount: Number(r.value.amount) };
      transfers.set(t.transferId, t);
    }
  }
  // Withdrawals: each rejection matches one withdrawal of that account and amount; the rest were applied.
  const unmatched: string[] = [];
  const implausible: string[] = [];
  const remaining = new Map(withdrawals);
  for (const r of rejections) {
    if (r.type !== 'WithdrawalRejected') {
      unmatched.push(`${r.type} at ${r.partition}/${r.offset}`);
      continue;
    }
    const account = String(r.value.account);
    const amount = Number(r.value.amount);
    const key = `${account}:${amount}`;
    const left = remaining.get(key) ?? 0;
    if (left <= 0) unmatched.push(`WithdrawalRejected ${key} at ${r.partition}/${r.offset}: no withdrawal left to match (doubled or never sent)`);
    else remaining.set(key, left - 1);
    const balance = Number(r.value.balance);
    if (!(balance < amount) || balance < 0) implausible.push(`WithdrawalRejected ${key} with balance ${balance} at ${r.partition}/${r.offset}`);
  }
  let withdrawn = 0;
  for (const [key, n] of remaining) {
    const [account, amount] = [key.slice(0, key.lastIndexOf(':')), Number(key.slice(key.lastIndexOf(':') + 1))];
    add(account, -amount * n);
    withdrawn += amount * n;
  }
  violation(violations, 'withdrawal rejections that match no withdrawal', unmatched);
  violation(violations, 'withdrawal rejections whose balance covers the amount', implausible);

  // Transfers: exactly one outcome each, as the transfer itself decides where it can.
  const outcomes = new Map<string, OutputRecord>();
  const doubled: string[] = [];
  const unknown: string[] = [];
  const wrong: string[] = [];
  let completed = 0;
  for (const r of transferResults) {
    const id = String(r.value.transferId);
    const t = transfers.get(id);
    const where = `${r.type} of ${id} at ${r.partition}/${r.offset}`;
    if (!t) {
      unknown.push(where);
      continue;
    }
    const first = outcomes.get(id);
    if (first) {
      doubled.push(`${where} (first ${first.type} at ${first.partition}/${first.offset})`);
      continue;
    }
    outcomes.set(id, r);
    if (String(r.value.from) !== t.from || String(r.value.to) !== t.to || Number(r.value.amount) !== t.amount) wrong.push(`${where}: ${JSON.stringify(r.value)}, sent ${JSON.stringify(t)}`);
    if (r.key !== t.from) wrong.push(`${where}: keyed ${r.key}, not by its from ${t.from}`);
    const must = t.amount <= 0 ? 'NOT_POSITIVE' : t.from === t.to ? 'SAME_ACCOUNT' : undefined;
    const got = r.type === 'TransferCompleted' ? 'completed' : String(r.value.reason);
    if (must !== undefined ? got !== must : got !== 'completed' && got !== 'INSUFFICIENT_FUNDS') wrong.push(`${where}: ${got}, expected ${must ?? 'completed or INSUFFICIENT_FUNDS'} (${t.amount} ${t.from} -> ${t.to})`);
    if (r.type === 'TransferCompleted' && must === undefined) {
      completed++;
      add(t.from, -t.amount);
      add(t.to, t.amount);
    }
  }
  const missing = [...transfers.values()].filter((t) => !outcomes.has(t.transferId)).map((t) => `${t.transferId} (${t.amount} ${t.from} -> ${t.to})`);
  violation(violations, 'transfers without an outcome (lost)', missing);
  violation(violations, 'transfers with a second outcome (doubled)', doubled);
  violation(violations, 'transfer outcomes of transfers never sent', unknown);
  violation(violations, 'transfer outcomes that contradict the transfer', wrong);

  const total = deposited - withdrawn;
  const negative = [...balances].filter(([, b]) => b < 0).map(([a, b]) => `${a}: ${b}`);
  violation(violations, 'accounts below zero by the inputs and outcomes', negative);
  const tableNegative = [...table].filter(([, b]) => b < 0).map(([a, b]) => `${a}: ${b}`);
  violation(violations, 'negative balances in the balances table', tableNegative);
  const differ = [...new Set([...balances.keys(), ...table.keys()])]
    .filter((a) => (balances.get(a) ?? 0) !== (table.get(a) ?? 0))
    .map((a) => `${a}: table ${table.get(a) ?? 'absent'}, ledger ${balances.get(a) ?? 0}`);
  violation(violations, 'balances that differ from the ledger (deposits − withdrawals ± completed transfers)', differ);
  const derivedSum = [...balances.values()].reduce((a, b) => a + b, 0);
  if (derivedSum !== total) violations.push(`money not conserved by the outcomes: balances sum to ${derivedSum}, deposits − accepted withdrawals = ${total}`);
  const tableSum = [...table.values()].reduce((a, b) => a + b, 0);
  if (tableSum !== total) violations.push(`money not conserved in the balances table: it sums to ${tableSum}, deposits − accepted withdrawals = ${total}`);
  return {
    violations,
    balances,
    total,
    stats: {
      deposits: transactions.filter((r) => r.type === 'Deposit').length,
      withdrawals: withdrawalCount,
      withdrawalsRejected: rejections.length,
      transfers: transfers.size,
      transfersCompleted: completed,
      transfersRejected: outcomes.size - completed,
    },
  };
}

// ---- fencing ---------------------------------------------------------------------------------------

/**
 * Committed records of one topic: per partition and producer, the epoch never goes back. A record
 * of an older epoch after a newer one is a commit by an owner that had been fenced (a zombie).
 */
export function checkEpochs(records: readonly OutputRecord[]): Report {
  const newest = new Map<string, { epoch: number; offset: number }>();
  const zombie: string[] = [];
  let producers = 0;
  for (const r of [...records].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.offset - b.offset)) {
    if (r.producerId === undefined || r.epoch === undefined || r.producerId === '-1') continue;
    const key = `${r.topic}/${r.partition}/${r.producerId}`;
    const before = newest.get(key);
    if (!before) producers++;
    if (before && r.epoch < before.epoch) zombie.push(`${r.topic} ${r.partition}/${r.offset}: producer ${r.producerId} epoch ${r.epoch} committed after epoch ${before.epoch} (at ${before.offset})`);
    if (!before || r.epoch >= before.epoch) newest.set(key, { epoch: r.epoch, offset: r.offset });
  }
  const violations: string[] = [];
  violation(violations, 'records committed by a fenced producer (an older epoch after a newer one)', zombie);
  return { violations, stats: { producerPartitions: producers } };
}

// ---- embedded ----------------------------------------------------------------------------------------

export type EmbeddedStatus = 'acked' | 'refused' | 'uncertain';

export interface EmbeddedEntry {
  readonly id: string;
  readonly type: 'Vote' | 'Deposit';
  readonly events: ReadonlyArray<Vote | Money>;
  readonly status: EmbeddedStatus;
  /** The HTTP status, or the error of a request left unanswered. */
  readonly answer: string;
}

/**
 * The embedded instance's state against its ledger: votesByPhone (phone -> accepted), balances,
 * and the leaderboard.
 */
export function checkEmbedded(
  entries: readonly EmbeddedEntry[],
  votesByPhone: ReadonlyMap<string, number>,
  balances: ReadonlyMap<string, number>,
  leaderboard: ReadonlyArray<{ contestantNumber: number; votes: number }>,
): Report {
  const violations: string[] = [];
  const phones = new Map<string, { status: EmbeddedStatus; contestant: number }>();
  const accounts = new Map<string, { acked: number; uncertain: number[] }>();
  const stats: Record<string, number> = { requests: entries.length, acked: 0, refused: 0, uncertain: 0 };
  for (const e of entries) {
    stats[e.status] = (stats[e.status] ?? 0) + 1;
    for (const ev of e.events) {
      if (e.type === 'Vote') {
        const v = ev as Vote;
        phones.set(String(v.phoneNumber), { status: e.status, contestant: v.contestantNumber });
      } else {
        const d = ev as Money;
        let a = accounts.get(d.account);
        if (!a) accounts.set(d.account, (a = { acked: 0, uncertain: [] }));
        if (e.status === 'acked') a.acked += d.amount;
        else if (e.status === 'uncertain') a.uncertain.push(d.amount);
      }
    }
  }
  const lost: string[] = [];
  const doubled: string[] = [];
  const applied: string[] = [];
  const unknown: string[] = [];
  const board: Record<number, number> = { 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0 };
  for (const [phone, p] of phones) {
    const n = votesByPhone.get(phone) ?? 0;
    if (n > 1) doubled.push(`phone ${phone}: accepted ${n} times (${p.status})`);
    else if (n === 0 && p.status === 'acked') lost.push(`vote of phone ${phone}`);
    else if (n === 1 && p.status === 'refused') applied.push(`vote of phone ${phone}`);
    if (n >= 1) board[p.contestant] = (board[p.contestant] ?? 0) + n;
  }
  for (const phone of votesByPhone.keys()) if (!phones.has(phone)) unknown.push(`votesByPhone row ${phone}`);
  for (const [account, a] of accounts) {
    const balance = balances.get(account) ?? 0;
    const extra = balance - a.acked;
    if (extra === 0) continue;
    if (subsetSums(a.uncertain).has(extra)) continue;
    (extra < 0 ? lost : doubled).push(`${account}: balance ${balance}, acknowledged deposits ${a.acked}, unanswered [${a.uncertain.join(', ')}]`);
  }
  for (const account of balances.keys()) if (!accounts.has(account)) unknown.push(`balance of ${account}`);
  violation(violations, 'embedded: acknowledged events not applied (lost)', lost);
  violation(violations, 'embedded: events applied more than once (doubled)', doubled);
  violation(violations, 'embedded: refused events applied', applied);
  violation(violations, 'embedded: state nobody wrote', unknown);
  violations.push(...checkLeaderboard('the embedded instance', leaderboard, board));
  return { violations, stats: { ...stats, phones: phones.size, accounts: accounts.size } };
}

/** Every sum of a subset of `xs` (few elements: an account has at most a handful of unanswered deposits). */
function subsetSums(xs: readonly number[]): Set<number> {
  let sums = new Set([0]);
  for (const x of xs.slice(0, 16)) sums = new Set([...sums, ...[...sums].map((s) => s + x)]);
  return sums;
}

// ---- stalls -------------------------------------------------------------------------------------------

/** The longest time any vote waited for its outcome, and the longest gap between outcomes of one partition while votes kept coming. */
export function longestStall(latencies: VoterReport['latencies']): { maxLatencyMs: number; at: number; partition: number; p99Ms: number } {
  if (latencies.length === 0) return { maxLatencyMs: 0, at: 0, partition: -1, p99Ms: 0 };
  let worst = latencies[0]!;
  for (const l of latencies) if (l.ms > worst.ms) worst = l;
  const sorted = latencies.map((l) => l.ms).sort((a, b) => a - b);
  return { maxLatencyMs: worst.ms, at: worst.at, partition: worst.partition, p99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0 };
}
