import { randomUUID } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { LogRecord } from '../records.js';
import { selfAssigner } from './assigner.js';
import { CONSUMER_RETRY } from './client.js';
import { fromKafka } from './records.js';
import { watermarksOf } from './retry-transient.js';

const MAX_BUFFERED_CHUNKS = 16;

/**
 * Reads one partition from `fromOffset` up to `endOffset` (exclusive) as a read_committed
 * consumer: aborted records are skipped and transaction markers count as read, so the read ends
 * exactly at the end offset. kafkajs has no `assign()`, so the reader joins a private group of
 * its own in which it assigns itself the partition.
 */
export async function* readPartition(
  kafka: Kafka,
  topic: string,
  partition: number,
  fromOffset: number,
  endOffset: number,
  logger: Logger,
): AsyncGenerator<readonly LogRecord[]> {
  if (fromOffset >= endOffset) return;
  const consumer = kafka.consumer({
    retry: CONSUMER_RETRY,
    groupId: `farad-reader-${topic}-${partition}-${randomUUID()}`,
    partitionAssigners: [selfAssigner(() => ({ [topic]: [partition] }))],
    readUncommitted: false,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 4 * 1024 * 1024,
  });
  const chunks: Array<readonly LogRecord[]> = [];
  let position = fromOffset;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let drained: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const advance = (lastOffset: string | null | undefined): void => {
    if (lastOffset === null || lastOffset === undefined) return;
    position = Math.max(position, Number(lastOffset) + 1);
    notify();
  };

  consumer.on(consumer.events.GROUP_JOIN, () => consumer.seek({ topic, partition, offset: String(fromOffset) }));
  // Batches of only markers or aborted records never reach eachBatch; this still moves the position.
  consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
    if (event.payload.topic === topic && event.payload.partition === partition) advance(event.payload.lastOffset);
  });
  consumer.on(consumer.events.CRASH, (event) => {
    failure = event.payload.error;
    notify();
  });

  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        const records = batch.messages
          .filter((m) => Number(m.offset) >= fromOffset && Number(m.offset) < endOffset)
          .map((m) => fromKafka(topic, partition, m));
        if (records.length > 0) {
          chunks.push(records);
          notify();
        }
        while (chunks.length > MAX_BUFFERED_CHUNKS) {
          await new Promise<void>((resolve) => (drained = resolve));
          await heartbeat();
        }
      },
    });
    for (;;) {
      const chunk = chunks.shift();
      if (chunk) {
        drained?.();
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (position >= endOffset) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 500);
      });
    }
  } finally {
    drained?.();
    await consumer.disconnect().catch((err: unknown) => logger.warn({ err, topic, partition }, 'changelog reader did not disconnect cleanly'));
  }
}

/**
 * Reads a partition from `fromOffset` to its end as of now. Starts no earlier than its first
 * record still held: retention may have deleted everything before it (a fetch from there comes
 * back empty and would never reach the end).
 */
export async function* readPartitionToEnd(kafka: Kafka, admin: Admin, topic: string, partition: number, fromOffset: number, logger: Logger): AsyncGenerator<readonly LogRecord[]> {
  const { low, high } = await watermarksOf(admin, topic, partition);
  yield* readPartition(kafka, topic, partition, Math.max(fromOffset, low), high, logger);
}
