/** Deposits for the evolving ledger app (test/e2e/fixtures/evolving-app.ts) and their independent tally. */
import type { Deposit } from '../e2e/fixtures/evolving-app.js';

/**
 * `count` deposits drawn with `random` over `accounts` accounts named acct-`first`, acct-`first+1`, ...
 * (numbers padded to `width` digits), amounts 1..1000.
 */
export function ledgerDeposits(random: () => number, count: number, accounts: number, { first = 0, width }: { first?: number; width: number }): Deposit[] {
  return Array.from({ length: count }, () => ({
    account: `acct-${String(first + Math.floor(random() * accounts)).padStart(width, '0')}`,
    amount: 1 + Math.floor(random() * 1000),
  }));
}

export interface Totals {
  balance: number;
  deposits: number;
}

/** Balance and number of deposits per account, summed here (not by the app). */
export function tally(deposits: readonly Deposit[]): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const { account, amount } of deposits) {
    const t = out.get(account) ?? { balance: 0, deposits: 0 };
    out.set(account, { balance: t.balance + amount, deposits: t.deposits + 1 });
  }
  return out;
}
