/**
 * farad/testing's TestDriver: the production engine in-process. Checked here against independent
 * tallies: results, dead letters and rollbacks, timers on the driver's clock, schedules,
 * multi-partition transfers (money conserved), restore from the changelog and the determinism
 * check that catches a handler reading Math.random().
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import bank from '../../examples/bank/index.js';
import tickets from '../../examples/tickets/index.js';
import voter from '../../examples/voter/index.js';
import { defineApp, record, table, type App } from '../../src/index.js';
import { DeterminismError, TestDriver } from '../../src/testing/index.js';
import { QueryParamsError, SchemaValidationError, UnknownEventTypeError } from '../../src/errors.js';

describe('TestDriver', () => {
  it('runs procedures as transactions: state, emitted events, dead letters with the reason, rollback', () => {
    const driver = new TestDriver(bank);
    driver.send('Deposit', { account: 'alice', amount: 100 });
    driver.send('bank.Withdrawal', { account: 'alice', amount: 30 });
    const rejected = driver.send('Withdrawal', { account: 'alice', amount: 500 });
    const bad = driver.send('Deposit', { account: 'alice', amount: -5 });

    assert.deepEqual(driver.table('balances').get('alice'), { balance: 70 });
    assert.equal(rejected.deadLetter, undefined);
    assert.deepEqual(
      driver.emitted('WithdrawalRejected').map((e) => e.value),
      [{ account: 'alice', amount: 500, balance: 70 }],
    );
    assert.equal(driver.emitted('rejections')[0]!.key, 'alice');
    assert.equal(bad.deadLetter?.reason, 'handler_error');
    assert.match(bad.deadLetter!.error, /amounts must be positive/);
    assert.deepEqual(bad.deadLetter!.value, { account: 'alice', amount: -5 });
    assert.equal(bad.deadLetter!.sourceOffset, bad.offset);
    assert.equal(driver.deadLetters().length, 1);
    // The throwing handler left no trace.
    assert.deepEqual(driver.table('balances').get('alice'), { balance: 70 });
  });

  it('refuses what a producer could not send: unknown types, values that do not fit, non-input events', () => {
    const driver = new TestDriver(bank);
    assert.throws(() => driver.send('Nope' as 'Deposit', { account: 'a', amount: 1 }), UnknownEventTypeError);
    assert.throws(() => driver.send('Deposit', { account: 'a', amount: 'x' } as never), (err: unknown) => err instanceof SchemaValidationError && /amount/.test(err.message));
    assert.throws(() => driver.send('WithdrawalRejected', { account: 'a', amount: 1, balance: 0 }), /not read from any input topic/);
    assert.throws(() => driver.sendJson('Deposit', { account: 'a', amount: 1, extra: true }), SchemaValidationError);
    driver.sendJson('bank.Deposit', { account: 'a', amount: '12' });
    assert.deepEqual(driver.table('balances').get('a'), { balance: 12 });
  });

  it('dead-letters bytes that do not decode, with the reason', () => {
    const driver = new TestDriver(bank);
    const sent = driver.sendRecord({ topic: 'transactions', key: 'x', value: Buffer.from('not avro') });
    assert.equal(sent.deadLetter?.reason, 'decode_error');
    assert.equal(sent.deadLetter?.value, null);
  });

  it('runs multi-partition transfers atomically and answers consistent queries: money is conserved', () => {
    const driver = new TestDriver(bank);
    const accounts = Array.from({ length: 20 }, (_, i) => `acct-${i}`);
    const tally = new Map<string, number>();
    for (const account of accounts) {
      driver.send('Deposit', { account, amount: 100 });
      tally.set(account, 100);
    }
    let completed = 0;
    for (let i = 0; i < 60; i++) {
      const from = accounts[(i * 7) % 20]!;
      const to = accounts[(i * 11 + 3) % 20]!;
      const amount = 10 + ((i * 13) % 90);
      driver.send('Transfer', { transferId: `t${i}`, from, to, amount });
      const ok = from !== to && tally.get(from)! >= amount;
      if (ok) {
        tally.set(from, tally.get(from)! - amount);
        tally.set(to, tally.get(to)! + amount);
        completed++;
      }
    }
    assert.equal(driver.emitted('TransferCompleted').length, completed);
    assert.equal(driver.emitted('TransferRejected').length, 60 - completed);
    for (const [account, balance] of tally) assert.equal(driver.table('balances').get(account)?.balance, balance, account);
    assert.deepEqual(driver.query('total'), { total: 2000 });
    assert.equal(driver.table('balances').size, 20);
    assert.deepEqual(
      driver.table('balances').scan({ limit: 3 }).map(([k]) => k),
      [...accounts].sort().slice(0, 3),
    );
  });

  it('fires timers at their due time on the driver clock, never before', () => {
    const driver = new TestDriver(tickets, { startTime: '2026-03-01T10:00:00Z' });
    const start = driver.now;
    driver.send('HoldSeat', { holdId: 'h1', seat: 'A1', ttlMs: 60_000 });
    driver.send('HoldSeat', { holdId: 'h2', seat: 'A2', ttlMs: 120_000 });
    assert.deepEqual(driver.pendingTimers().map((t) => [t.name, t.key, t.dueAt - start, t.payload]), [
      ['holdExpiry', 'A1', 60_000, { holdId: 'h1' }],
      ['holdExpiry', 'A2', 120_000, { holdId: 'h2' }],
    ]);
    driver.advanceTime(59_999);
    assert.equal(driver.emitted('HoldExpired').length, 0);
    driver.send('ConfirmHold', { holdId: 'h2', seat: 'A2' });
    driver.advanceTime('1m');
    assert.deepEqual(driver.emitted('HoldExpired').map((e) => [e.value, e.timestamp - start]), [[{ holdId: 'h1', seat: 'A1' }, 60_000]]);
    assert.deepEqual(driver.table('seats').get('A1'), { state: 'FREE', holdId: null });
    assert.deepEqual(driver.table('seats').get('A2'), { state: 'SOLD', holdId: 'h2' });
    assert.equal(driver.pendingTimers().length, 0);
    assert.equal(driver.now - start, 119_999);
    assert.throws(() => driver.advanceTo(start), /does not go back/);
  });

  it('runs scheduled procedures on their slots, across a restart, each slot once', () => {
    interface Tick {
      n: number;
    }
    const app = defineApp({
      name: 'ticking',
      partitions: 2,
      events: {
        Poke: record<{ id: string }>({ type: 'record', name: 'Poke', namespace: 't', fields: [{ name: 'id', type: 'string' }] }),
        Ticked: record<{ slot: number; partition: number }>({
          type: 'record',
          name: 'Ticked',
          namespace: 't',
          fields: [
            { name: 'slot', type: 'long' },
            { name: 'partition', type: 'int' },
          ],
        }),
      },
      tables: { ticks: table({ key: 'string', value: record<Tick>({ type: 'record', name: 'Tick', namespace: 't', fields: [{ name: 'n', type: 'long' }] }) }) },
      inputs: [{ topic: 'pokes', events: ['Poke'] }],
      outputs: { Ticked: 'ticks' },
      procedures: { Poke: { partitionKey: (p) => p.id, handle: () => undefined } },
      schedules: {
        everyMinute: {
          every: '1m',
          runOn: 'app',
          emits: ['Ticked'],
          handle(ctx, run) {
            ctx.emit('Ticked', { slot: run.scheduledFor, partition: ctx.partition }, { key: 'app' });
          },
        },
      },
    });
    const driver = new TestDriver(app, { startTime: Date.UTC(2026, 0, 1, 0, 0, 30) });
    driver.advanceTime('3m');
    driver.restart();
    driver.advanceTime('2m');
    const slots = driver.emitted('Ticked').map((e) => (e.value as { slot: number }).slot);
    const minute = 60_000;
    const first = Date.UTC(2026, 0, 1, 0, 1);
    assert.deepEqual(slots, [0, 1, 2, 3, 4].map((i) => first + i * minute));
    assert.ok(driver.emitted('Ticked').every((e) => (e.value as { partition: number }).partition === 0));
    driver.checkDeterminism();
  });

  it('restores every partition from its changelog to the state it had (restart)', () => {
    const driver = new TestDriver(voter, { maxBatchRecords: 7 });
    for (let i = 0; i < 500; i++) driver.send('Vote', { phoneNumber: 2_025_550_000 + (i % 150), contestantNumber: 1 + (i % 7) });
    const before = driver.query('leaderboard');
    driver.restart();
    assert.deepEqual(driver.query('leaderboard'), before);
    driver.send('Vote', { phoneNumber: 2_025_559_999, contestantNumber: 1 });
    driver.checkDeterminism();
  });

  it('checkDeterminism catches a handler that reads Math.random()', () => {
    const app: App = defineApp({
      name: 'dice',
      partitions: 1,
      events: { Roll: record<{ id: string }>({ type: 'record', name: 'Roll', namespace: 'd', fields: [{ name: 'id', type: 'string' }] }) },
      tables: { rolls: table({ key: 'string', value: record<{ n: number }>({ type: 'record', name: 'N', namespace: 'd', fields: [{ name: 'n', type: 'double' }] }) }) },
      inputs: [{ topic: 'rolls', events: ['Roll'] }],
      procedures: {
        Roll: {
          partitionKey: (r) => r.id,
          handle(ctx, r) {
            ctx.tables.rolls.put(r.id, { n: Math.random() });
          },
        },
      },
    });
    const driver = new TestDriver(app);
    driver.send('Roll', { id: 'a' });
    assert.throws(() => driver.checkDeterminism(), (err: unknown) => err instanceof DeterminismError && /changelog|rolls/.test(err.message) && /Math\.random/.test(err.message));
  });

  it('app settings override the declared defaults', () => {
    const strict = new TestDriver(voter, { settings: { maxVotesPerPhone: 1 } });
    strict.send('Vote', { phoneNumber: 2_025_550_001, contestantNumber: 1 });
    strict.send('Vote', { phoneNumber: 2_025_550_001, contestantNumber: 2 });
    assert.deepEqual(
      strict.emitted().map((e) => e.name),
      ['VoteAccepted', 'VoteRejected'],
    );
  });

  it('a query that refuses its parameters throws QueryParamsError, asked plainly or consistently', () => {
    const app = defineApp({
      name: 'sums',
      partitions: 3,
      events: { Add: record<{ k: string; n: number }>({ type: 'record', name: 'Add', namespace: 's', fields: [{ name: 'k', type: 'string' }, { name: 'n', type: 'long' }] }) },
      tables: { sums: table({ key: 'string', value: record<{ n: number }>({ type: 'record', name: 'Sum', namespace: 's', fields: [{ name: 'n', type: 'long' }] }) }) },
      inputs: [{ topic: 'adds', events: ['Add'] }],
      procedures: {
        Add: {
          partitionKey: (a) => a.k,
          handle(ctx, a) {
            ctx.tables.sums.put(a.k, { n: (ctx.tables.sums.get(a.k)?.n ?? 0) + a.n });
          },
        },
      },
      queries: (query) => ({
        atLeast: query({
          consistent: true,
          partition(ctx, params) {
            const min = Number(params.min);
            if (!Number.isInteger(min)) throw new QueryParamsError(`min must be an integer, got ${JSON.stringify(params.min)}`, 'min');
            return ctx.tables.sums.scan().filter(([, row]) => row.n >= min).map(([k]) => k);
          },
          merge: (parts) => parts.flat().sort(),
        }),
      }),
    });
    const driver = new TestDriver(app);
    driver.sendMany('Add', [{ k: 'a', n: 5 }, { k: 'b', n: 1 }, { k: 'a', n: 1 }, { k: 'c', n: 9 }]);
    assert.deepEqual(driver.query('atLeast', { min: '6' }), ['a', 'c']);
    assert.throws(() => driver.query('atLeast', { min: 'x' }), (err: unknown) => err instanceof QueryParamsError && /min must be an integer/.test(err.message));
  });
});
