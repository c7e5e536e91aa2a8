/**
 * The soak's events, drawn from the run's seed (pure): Voter votes and bank deposits, withdrawals
 * and transfers for the Kafka cluster, and votes and deposits for the embedded-log instance. Every
 * event has an id unique in the run; on Kafka it travels as the record header `soak-id`.
 */
import { AREA_CODE_STATES } from '../../examples/voter/area-codes.js';
import { between, pick, streamOf, type Random } from './prng.js';

export interface Vote {
  readonly phoneNumber: number;
  readonly contestantNumber: number;
}
export interface Money {
  readonly account: string;
  readonly amount: number;
}
export interface Transfer {
  readonly transferId: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
}

export type SoakEvent =
  | { readonly id: string; readonly type: 'Vote'; readonly key: string; readonly value: Vote }
  | { readonly id: string; readonly type: 'Deposit' | 'Withdrawal'; readonly key: string; readonly value: Money }
  | { readonly id: string; readonly type: 'Transfer'; readonly key: string; readonly value: Transfer };

/** Events per 100 ms tick on the Kafka cluster: about 150 votes/s and 60 bank commands/s. */
export const TICK_MS = 100;
export const ACCOUNTS = 60;

export function accountName(i: number): string {
  return `acct-${String(i).padStart(3, '0')}`;
}

const AREA_CODES = AREA_CODE_STATES.map(([code]) => code);

/** A phone number with a known area code, or (1 in 17) area code 999, which has no state. */
function phone(random: Random): number {
  const area = random() < 1 / 17 ? 999 : pick(random, AREA_CODES);
  return area * 10_000_000 + between(random, 0, 9_999_999);
}

/** The Kafka cluster's workload: `tick()` gives the next 100 ms of events. */
export class ClusterWorkload {
  private readonly random: Random;
  private readonly phones: number[] = [];
  private seq = 0;
  private transfers = 0;

  constructor(seed: number) {
    this.random = streamOf(seed, 'cluster-workload');
  }

  tick(): SoakEvent[] {
    const r = this.random;
    const out: SoakEvent[] = [];
    for (let i = 0; i < 15; i++) {
      // Phones repeat (at most two accepted votes each): a pool that grows with the run.
      if (this.phones.length < 500 || r() < 0.25) this.phones.push(phone(r));
      const phoneNumber = pick(r, this.phones);
      const contestantNumber = r() < 0.08 ? between(r, 7, 9) : between(r, 1, 6);
      out.push({ id: `v${this.seq++}`, type: 'Vote', key: String(phoneNumber), value: { phoneNumber, contestantNumber } });
    }
    for (let i = 0; i < 3; i++) {
      const account = accountName(between(r, 0, ACCOUNTS - 1));
      out.push({ id: `d${this.seq++}`, type: 'Deposit', key: account, value: { account, amount: between(r, 50, 500) } });
    }
    if (r() < 0.6) {
      const account = accountName(between(r, 0, ACCOUNTS - 1));
      out.push({ id: `w${this.seq++}`, type: 'Withdrawal', key: account, value: { account, amount: between(r, 10, 700) } });
    }
    for (let i = 0; i < 2; i++) {
      const from = accountName(between(r, 0, ACCOUNTS - 1));
      const x = r();
      const to = x < 0.02 ? from : accountName((Number(from.slice(5)) + between(r, 1, ACCOUNTS - 1)) % ACCOUNTS);
      const amount = x >= 0.02 && x < 0.04 ? -between(r, 0, 20) : between(r, 1, 300);
      const transferId = `t${this.transfers++}`;
      out.push({ id: `x${this.seq++}`, type: 'Transfer', key: from, value: { transferId, from, to, amount } });
    }
    return out;
  }
}

/** One POST /events request of the embedded phase: votes of new phones, or one deposit. */
export type EmbeddedRequest =
  | { readonly id: string; readonly type: 'Vote'; readonly events: readonly Vote[] }
  | { readonly id: string; readonly type: 'Deposit'; readonly events: readonly Money[] };

/**
 * The embedded instance's workload. Every vote is a new phone's first (so it is accepted: a
 * doubled one shows as 2 in votesByPhone). Deposits go to a pool of accounts; an account whose
 * deposit was left unanswered (uncertain) is retired, so no account has more than one deposit
 * that may or may not have been applied.
 */
export class EmbeddedWorkload {
  private readonly random: Random;
  private seq = 0;
  private nextAccount = 0;
  private phones = 0;
  private readonly active: string[] = [];

  constructor(seed: number) {
    this.random = streamOf(seed, 'embedded-workload');
    for (let i = 0; i < 30; i++) this.active.push(this.newAccount());
  }

  private newAccount(): string {
    return `e-acct-${String(this.nextAccount++).padStart(4, '0')}`;
  }

  next(): EmbeddedRequest {
    const r = this.random;
    const id = `e${this.seq++}`;
    if (r() < 0.6) {
      const events = Array.from({ length: between(r, 1, 3) }, () => ({ phoneNumber: 6_170_000_000 + this.phones++, contestantNumber: between(r, 1, 6) }));
      return { id, type: 'Vote', events };
    }
    const account = pick(r, this.active);
    return { id, type: 'Deposit', events: [{ account, amount: between(r, 1, 1000) }] };
  }

  /** The request went unanswered: its account may hold the deposit or not; use it no more. */
  retire(account: string): void {
    const i = this.active.indexOf(account);
    if (i >= 0) this.active.splice(i, 1, this.newAccount());
  }
}

