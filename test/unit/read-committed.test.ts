/**
 * farad's read_committed filter in kafkajs's place: records of aborted transactions are dropped
 * however the broker orders its list of aborted transactions, and the filter is installed when
 * farad loads before kafkajs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { withoutAborted } from '../../src/streams/kafka/read-committed.js';

const marker = Buffer.from([0, 0, 0, 0]);
const message = (offset: number, producerId: string, value: string | null, inTransaction = true) => ({
  offset: String(offset),
  key: value === null ? marker : Buffer.from(value),
  batchContext: { producerId, inTransaction },
});

describe('read_committed filter', () => {
  // B writes 0,1 in a transaction; A writes 2; B writes 3; A aborts (4), then B aborts (5); C commits 6 (marker 7).
  const log = [message(0, 'B', 'B1'), message(1, 'B', 'B2'), message(2, 'A', 'A1'), message(3, 'B', 'B3'), message(4, 'A', null), message(5, 'B', null), message(6, 'C', 'C1'), message(7, 'C', null)];
  const keys = (kept: ReturnType<typeof withoutAborted>) => kept.filter((m) => !m.key!.equals(marker)).map((m) => m.key!.toString());

  it('drops every record of aborted transactions when the broker lists them in abort order', () => {
    assert.deepEqual(keys(withoutAborted({ messages: log, abortedTransactions: [{ firstOffset: '2', producerId: 'A' }, { firstOffset: '0', producerId: 'B' }] })), ['C1']);
  });

  it('enters every aborted transaction that began before a record, not one per record', () => {
    // The fetch starts at offset 3 (records 0-2 were read before): B's transaction began earlier.
    assert.deepEqual(keys(withoutAborted({ messages: log.slice(3), abortedTransactions: [{ firstOffset: '0', producerId: 'B' }, { firstOffset: '2', producerId: 'A' }] })), ['C1']);
  });

  it('keeps committed records of a producer before and after its aborted transaction', () => {
    const messages = [message(0, 'P', 'ok1'), message(1, 'P', null), message(2, 'P', 'gone'), message(3, 'P', null), message(4, 'P', 'ok2')];
    assert.deepEqual(keys(withoutAborted({ messages, abortedTransactions: [{ firstOffset: '2', producerId: 'P' }] })), ['ok1', 'ok2']);
  });

  it('is the filter kafkajs uses when farad loads first', () => {
    const script = `
      import { readCommittedFixed, withoutAborted } from './src/streams/kafka/read-committed.ts';
      await import('./src/index.ts');
      const { createRequire } = await import('node:module');
      const require = createRequire(import.meta.url);
      require('kafkajs');
      console.log(readCommittedFixed && require('kafkajs/src/consumer/filterAbortedMessages.js') === withoutAborted);`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(out.trim(), 'true');
  });
});
