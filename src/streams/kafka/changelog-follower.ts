import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { describeError } from '../../errors.js';
import type { ChangelogFollower, ChangelogSink } from '../event-log.js';
import { selfAssigner } from './assigner.js';
import { CONSUMER_RETRY } from './client.js';
import { fromKafka } from './records.js';

/**
 * Tails changelog partitions as a read_committed consumer in a private group (standby copies).
 * Positions move past transaction markers too, so a copy's offset is exactly where a restore
 * must continue.
 */
export class KafkaChangelogFollower implements ChangelogFollower {
  private consumer: Consumer | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly logger: Logger,
  ) {}

  async follow(from: ReadonlyMap<number, number>, sink: ChangelogSink): Promise<void> {
    await this.stop();
    if (from.size === 0) return;
    const partitions = [...from.keys()].sort((a, b) => a - b);
    const consumer = this.kafka.consumer({
      retry: CONSUMER_RETRY,
      groupId: `farad-standby-${this.topic}-${randomUUID()}`,
      partitionAssigners: [selfAssigner(() => ({ [this.topic]: partitions }))],
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 4 * 1024 * 1024,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [partition, offset] of from) consumer.seek({ topic: this.topic, partition, offset: String(offset) });
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== this.topic || payload.lastOffset === null) return;
      sink.position(payload.partition, Number(payload.lastOffset) + 1, Number(payload.highWatermark));
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => this.logger.warn({ err: describeError(payload.error) }, 'standby changelog reader crashed; kafkajs restarts it'));
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.messages.length === 0) return;
        sink.records(batch.partition, batch.messages.map((m) => fromKafka(batch.topic, batch.partition, m)));
      },
    });
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
  }
}
