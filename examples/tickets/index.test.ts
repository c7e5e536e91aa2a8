/** Holds that expire by timer, tested on the driver's clock. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestDriver } from '../../src/testing/index.js';
import tickets from './index.js';

test('a hold not confirmed in time expires and frees the seat', () => {
  const driver = new TestDriver(tickets);
  driver.send('HoldSeat', { holdId: 'h1', seat: 'A1', ttlMs: 60_000 });
  driver.advanceTime('59s');
  assert.deepEqual(driver.table('seats').get('A1'), { state: 'HELD', holdId: 'h1' });

  driver.advanceTime('1s');
  assert.deepEqual(driver.table('seats').get('A1'), { state: 'FREE', holdId: null });
  assert.deepEqual(driver.emitted('HoldExpired').map((e) => e.value), [{ holdId: 'h1', seat: 'A1' }]);
});

test('a confirmation before expiry sells the seat and cancels the expiry', () => {
  const driver = new TestDriver(tickets);
  driver.send('HoldSeat', { holdId: 'h1', seat: 'A1', ttlMs: 60_000 });
  driver.send('HoldSeat', { holdId: 'h2', seat: 'A1', ttlMs: 60_000 });
  driver.advanceTime('30s');
  driver.send('ConfirmHold', { holdId: 'h1', seat: 'A1' });
  driver.advanceTime('1h');

  assert.deepEqual(driver.table('seats').get('A1'), { state: 'SOLD', holdId: 'h1' });
  assert.deepEqual(
    driver.emitted('ticket-events').map((e) => e.name),
    ['SeatHeld', 'HoldRejected', 'SeatSold'],
  );
  assert.deepEqual(driver.pendingTimers(), []);
});

test('a confirmation timestamped after expiry is rejected, even if it is processed first', () => {
  const driver = new TestDriver(tickets);
  driver.send('HoldSeat', { holdId: 'h1', seat: 'B2', ttlMs: 1_000 });
  driver.send('ConfirmHold', { holdId: 'h1', seat: 'B2' }, { timestamp: driver.now + 1_000 });

  assert.deepEqual(driver.emitted('ConfirmRejected').map((e) => e.value), [{ holdId: 'h1', seat: 'B2', reason: 'NO_SUCH_HOLD' }]);
  driver.advanceTime('1s');
  assert.deepEqual(driver.emitted('HoldExpired').map((e) => e.value), [{ holdId: 'h1', seat: 'B2' }]);
});
