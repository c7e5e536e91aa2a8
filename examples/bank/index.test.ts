/** The tutorial app, tested with farad's test driver: no server, no files. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestDriver } from '../../src/testing/index.js';
import bank from './index.js';

test('deposits and withdrawals keep a balance; an overdraft is rejected with an event', () => {
  const driver = new TestDriver(bank);
  driver.send('Deposit', { account: 'alice', amount: 100 });
  driver.send('Withdrawal', { account: 'alice', amount: 30 });
  driver.send('Withdrawal', { account: 'alice', amount: 500 });

  assert.deepEqual(driver.table('balances').get('alice'), { balance: 70 });
  assert.deepEqual(
    driver.emitted('WithdrawalRejected').map((e) => e.value),
    [{ account: 'alice', amount: 500, balance: 70 }],
  );
});

test('a deposit that is not positive goes to the dead-letter topic and leaves no trace', () => {
  const driver = new TestDriver(bank);
  const sent = driver.send('Deposit', { account: 'bob', amount: 0 });

  assert.equal(sent.deadLetter?.reason, 'handler_error');
  assert.match(sent.deadLetter?.error ?? '', /must be positive/);
  assert.equal(driver.table('balances').has('bob'), false);
});

test('transfers move money between partitions atomically; the consistent total never changes', () => {
  const driver = new TestDriver(bank);
  driver.send('Deposit', { account: 'alice', amount: 100 });
  driver.send('Deposit', { account: 'bob', amount: 50 });
  driver.send('Transfer', { transferId: 't1', from: 'alice', to: 'bob', amount: 60 });
  driver.send('Transfer', { transferId: 't2', from: 'alice', to: 'bob', amount: 60 });
  driver.send('Transfer', { transferId: 't3', from: 'bob', to: 'bob', amount: 1 });

  assert.deepEqual(driver.table('balances').get('alice'), { balance: 40 });
  assert.deepEqual(driver.table('balances').get('bob'), { balance: 110 });
  assert.deepEqual(
    driver.emitted('transfer-results').map((e) => [e.name, (e.value as { transferId: string }).transferId]),
    [
      ['TransferCompleted', 't1'],
      ['TransferRejected', 't2'],
      ['TransferRejected', 't3'],
    ],
  );
  assert.deepEqual(driver.query('total'), { total: 150 });
  driver.checkDeterminism();
});
