import { defineApp, record, table, type RecordSchema } from '../../src/index.js';

interface Deposit {
  account: string;
  amount: number;
}
interface Withdrawal {
  account: string;
  amount: number;
}
interface Rejected {
  account: string;
  amount: number;
  balance: number;
}
interface Balance {
  balance: number;
}

const money = (name: string): RecordSchema => ({
  type: 'record',
  name,
  namespace: 'bank',
  fields: [
    { name: 'account', type: 'string' },
    { name: 'amount', type: 'long' },
  ],
});

export default defineApp({
  name: 'bank',
  partitions: 4,
  events: {
    Deposit: record<Deposit>(money('Deposit')),
    Withdrawal: record<Withdrawal>(money('Withdrawal')),
    WithdrawalRejected: record<Rejected>({
      type: 'record',
      name: 'WithdrawalRejected',
      namespace: 'bank',
      fields: [
        { name: 'account', type: 'string' },
        { name: 'amount', type: 'long' },
        { name: 'balance', type: 'long' },
      ],
    }),
  },
  tables: {
    balances: table({
      key: 'string',
      value: record<Balance>({ type: 'record', name: 'Balance', namespace: 'bank', fields: [{ name: 'balance', type: 'long' }] }),
    }),
  },
  inputs: [{ topic: 'transactions', events: ['Deposit', 'Withdrawal'] }],
  outputs: { WithdrawalRejected: 'rejections' },
  procedures: {
    Deposit: {
      partitionKey: (d) => d.account,
      handle(ctx, d) {
        if (d.amount <= 0) throw new Error(`deposit of ${d.amount}: amounts must be positive`);
        const balance = ctx.tables.balances.get(d.account)?.balance ?? 0;
        ctx.tables.balances.put(d.account, { balance: balance + d.amount });
      },
    },
    Withdrawal: {
      partitionKey: (w) => w.account,
      emits: ['WithdrawalRejected'],
      handle(ctx, w) {
        const balance = ctx.tables.balances.get(w.account)?.balance ?? 0;
        if (w.amount > balance) {
          ctx.emit('WithdrawalRejected', { account: w.account, amount: w.amount, balance });
          return;
        }
        ctx.tables.balances.put(w.account, { balance: balance - w.amount });
      },
    },
  },
  queries: (query) => ({
    total: query({
      partition: (ctx) => ctx.tables.balances.scan().reduce((sum, [, row]) => sum + row.balance, 0),
      merge: (parts) => ({ total: parts.reduce((a, b) => a + b, 0) }),
    }),
  }),
});
