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
interface Transfer {
  transferId: string;
  from: string;
  to: string;
  amount: number;
}
interface TransferRejected extends Transfer {
  reason: 'INSUFFICIENT_FUNDS' | 'SAME_ACCOUNT' | 'NOT_POSITIVE';
}

const transferFields = [
  { name: 'transferId', type: 'string' },
  { name: 'from', type: 'string' },
  { name: 'to', type: 'string' },
  { name: 'amount', type: 'long' },
];

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
    Transfer: record<Transfer>({ type: 'record', name: 'Transfer', namespace: 'bank', fields: transferFields }),
    TransferCompleted: record<Transfer>({ type: 'record', name: 'TransferCompleted', namespace: 'bank', fields: transferFields }),
    TransferRejected: record<TransferRejected>({
      type: 'record',
      name: 'TransferRejected',
      namespace: 'bank',
      fields: [
        ...transferFields,
        { name: 'reason', type: { type: 'enum', name: 'TransferRejectReason', namespace: 'bank', symbols: ['INSUFFICIENT_FUNDS', 'SAME_ACCOUNT', 'NOT_POSITIVE'] } },
      ],
    }),
  },
  tables: {
    balances: table({
      key: 'string',
      value: record<Balance>({ type: 'record', name: 'Balance', namespace: 'bank', fields: [{ name: 'balance', type: 'long' }] }),
    }),
  },
  inputs: [{ topic: 'transactions', events: ['Deposit', 'Withdrawal', 'Transfer'] }],
  outputs: { WithdrawalRejected: 'rejections', TransferCompleted: 'transfer-results', TransferRejected: 'transfer-results' },
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
    // A multi-partition transaction: debits `from` and credits `to` atomically, wherever they live.
    Transfer: {
      partitionKey: (t) => t.from,
      multiPartition: { keys: (t) => [t.from, t.to] },
      emits: ['TransferCompleted', 'TransferRejected'],
      handle(ctx, t) {
        const reject = (reason: TransferRejected['reason']) => ctx.emit('TransferRejected', { ...t, reason });
        if (t.amount <= 0) return reject('NOT_POSITIVE');
        if (t.from === t.to) return reject('SAME_ACCOUNT');
        const from = ctx.tables.balances.get(t.from)?.balance ?? 0;
        if (t.amount > from) return reject('INSUFFICIENT_FUNDS');
        const to = ctx.tables.balances.get(t.to)?.balance ?? 0;
        ctx.tables.balances.put(t.from, { balance: from - t.amount });
        ctx.tables.balances.put(t.to, { balance: to + t.amount });
        ctx.emit('TransferCompleted', t);
      },
    },
  },
  queries: (query) => ({
    // Consistent: one serializable cut of every partition, so no transfer is ever half counted.
    total: query({
      consistent: true,
      partition: (ctx) => ctx.tables.balances.scan().reduce((sum, [, row]) => sum + row.balance, 0),
      merge: (parts) => ({ total: parts.reduce((a, b) => a + b, 0) }),
    }),
  }),
});
