/**
 * kafkajs 2.2.4 drops records of aborted transactions only when the broker lists those
 * transactions sorted by first offset, and it steps into at most one of them per record. Brokers
 * list them in abort order, so on a partition written by several transactional producers (farad's
 * `<app>-mp`, or an input written by other transactional apps) a read_committed consumer can be
 * handed records of aborted transactions: applied, they would break exactly-once. The Java client
 * sorts the list and enters every transaction that started at or before each record; this module
 * puts that filter in kafkajs's place. It must run before kafkajs is loaded (it is the first import
 * of this folder's modules that use kafkajs); `readCommittedFixed` says whether it could.
 */
import { createRequire } from 'node:module';
import { replaceModule } from './module-cache.js';

const require = createRequire(import.meta.url);

interface Message {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly batchContext: { readonly producerId: string; readonly inTransaction: boolean };
}
interface AbortedTransaction {
  readonly firstOffset: string;
  readonly producerId: string;
}

const ABORT_MARKER_KEY = Buffer.from([0, 0, 0, 0]);

/** Records of `messages` not written by an aborted transaction (abort markers kept: kafkajs drops control records after). */
export function withoutAborted({ messages, abortedTransactions }: { messages: readonly Message[]; abortedTransactions?: readonly AbortedTransaction[] }): Message[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return [...messages];
  const pending = [...abortedTransactions].sort((a, b) => (BigInt(a.firstOffset) < BigInt(b.firstOffset) ? -1 : 1));
  const aborting = new Set<string>();
  let next = 0;
  return messages.filter((message) => {
    const offset = BigInt(message.offset);
    while (next < pending.length && offset >= BigInt(pending[next]!.firstOffset)) aborting.add(String(pending[next++]!.producerId));
    const { producerId, inTransaction } = message.batchContext;
    if (message.key !== null && Buffer.from(message.key).equals(ABORT_MARKER_KEY)) {
      aborting.delete(String(producerId));
      return true;
    }
    return !(inTransaction && aborting.has(String(producerId)));
  });
}

function install(): boolean {
  const filterPath = require.resolve('kafkajs/src/consumer/filterAbortedMessages.js');
  const batchPath = require.resolve('kafkajs/src/consumer/batch.js');
  // kafkajs's Batch takes the filter when it loads: too late once it has.
  if (require.cache[batchPath]) return require.cache[filterPath]?.exports === withoutAborted;
  replaceModule(filterPath, withoutAborted);
  return true;
}

export const readCommittedFixed = install();
