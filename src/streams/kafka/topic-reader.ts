import { readCommittedFixed } from './kafkajs-patches.js';
import { randomUUID } from 'node:crypto';
import { Partitioners, type Admin, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { describeError, ProducerFencedError, TransportError } from '../../errors.js';
import type { TopicSpec } from '../event-log.js';
import type { LogRecord, OutRecord } from '../records.js';
import { selfAssigner } from './assigner.js';
import { readPartitionToEnd } from './changelog-reader.js';
import { CONSUMER_RETRY, createKafka, type KafkaConnection } from './client.js';
import { fromKafka, toTopicMessageSlices } from './records.js';
import { ensureKafkaTopics } from './topics.js';
import { retryTransient, watermarksOf } from './retry-transient.js';

const MAX_BUFFERED_CHUNKS = 16;

/**
 * Reads any topic of a Kafka cluster as a read_committed consumer, without the app's group
 * (operator tools: `farad tail`, `farad dlq`): ranges up to the end offsets, or following a
 * topic's partitions as they grow. kafkajs has no `assign()`, so each read joins a private group
 * of its own in which it assigns itself the partitions (nothing is committed there).
 */
export class KafkaTopicReader {
  private readonly counts = new Map<string, number>();

  private constructor(
    readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly logger: Logger,
  ) {}

  static async open(connection: KafkaConnection, logger: Logger): Promise<KafkaTopicReader> {
    if (!readCommittedFixed) logger.warn('kafkajs was loaded before farad: its read_committed filter may hand over records of aborted transactions');
    const kafka = createKafka(connection, logger);
    const admin = kafka.admin();
    try {
      await admin.connect();
    } catch (err) {
      throw new TransportError(
        `cannot connect to Kafka at ${connection.brokers.join(',')}: ${describeError(err)}; check kafka.brokers (FARAD_KAFKA_BROKERS) and the TLS/SASL settings`,
        {},
        { cause: err },
      );
    }
    return new KafkaTopicReader(kafka, admin, logger);
  }

  /** Learns which of `topics` exist, and their partition counts. */
  async describe(topics: readonly string[]): Promise<void> {
    const existing = new Set(await retryTransient(() => this.admin.listTopics()));
    const present = topics.filter((t) => existing.has(t));
    if (present.length === 0) return;
    const metadata = await retryTransient(() => this.admin.fetchTopicMetadata({ topics: present }));
    for (const t of metadata.topics) this.counts.set(t.name, t.partitions.length);
  }

  /** Creates missing topics as farad creates the app's (see topics.ts), and learns their partition counts. */
  async ensureTopics(specs: readonly TopicSpec[], replicationFactor: number): Promise<void> {
    const counts = await ensureKafkaTopics(this.admin, specs, replicationFactor, this.logger);
    for (const [topic, count] of counts) this.counts.set(topic, count);
  }

  hasTopic(topic: string): boolean {
    return this.counts.has(topic);
  }

  partitionsOf(topic: string): number {
    const count = this.counts.get(topic);
    if (count === undefined) throw new TransportError(`topic "${topic}" does not exist on Kafka (yet)`, { topic });
    return count;
  }

  async startOffset(topic: string, partition: number): Promise<number> {
    return (await watermarksOf(this.admin, topic, partition)).low;
  }

  /** The last stable offset: what a read_committed read reaches. */
  async endOffset(topic: string, partition: number): Promise<number> {
    return (await watermarksOf(this.admin, topic, partition)).high;
  }

  async *readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    yield* readPartitionToEnd(this.kafka, this.admin, topic, partition, fromOffset, this.logger);
  }

  /**
   * Records of `topic`'s partitions from the given offsets on, as they are committed, until
   * `signal` aborts (then the consumer leaves). Chunks are in offset order per partition.
   */
  async *follow(topic: string, from: ReadonlyMap<number, number>, signal: AbortSignal): AsyncGenerator<readonly LogRecord[]> {
    const partitions = [...from.keys()].sort((a, b) => a - b);
    if (partitions.length === 0 || signal.aborted) return;
    const consumer = this.kafka.consumer({
      retry: CONSUMER_RETRY,
      groupId: `farad-tail-${topic}-${randomUUID()}`,
      partitionAssigners: [selfAssigner(() => ({ [topic]: partitions }))],
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 4 * 1024 * 1024,
    });
    const next = new Map(from);
    const chunks: Array<readonly LogRecord[]> = [];
    let failure: unknown;
    let wake: (() => void) | undefined;
    let drained: (() => void) | undefined;
    const notify = (): void => {
      wake?.();
      wake = undefined;
    };
    const onAbort = (): void => {
      notify();
      drained?.();
    };
    signal.addEventListener('abort', onAbort);
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [partition, offset] of from) consumer.seek({ topic, partition, offset: String(offset) });
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (event.payload.restart) return;
      failure = event.payload.error;
      notify();
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, heartbeat }) => {
          const records: LogRecord[] = [];
          let expected = next.get(batch.partition) ?? 0;
          for (const message of batch.messages) {
            const offset = Number(message.offset);
            if (offset < expected) continue; // before the start, or delivered again
            records.push(fromKafka(topic, batch.partition, message));
            expected = offset + 1;
          }
          next.set(batch.partition, expected);
          if (records.length > 0) {
            chunks.push(records);
            notify();
          }
          while (chunks.length > MAX_BUFFERED_CHUNKS && !signal.aborted) {
            await new Promise<void>((resolve) => (drained = resolve));
            await heartbeat();
          }
        },
      });
      while (!signal.aborted) {
        const chunk = chunks.shift();
        if (chunk) {
          drained?.();
          yield chunk;
          continue;
        }
        if (failure) throw failure;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 500);
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      drained?.();
      await consumer.disconnect().catch((err: unknown) => this.logger.warn({ err: describeError(err), topic }, 'topic reader did not disconnect cleanly'));
    }
  }

  async close(): Promise<void> {
    await this.admin.disconnect().catch(() => undefined);
  }
}

/** INVALID_PRODUCER_EPOCH (47) and PRODUCER_FENCED (90): another producer took the transactional id. */
const FENCED_CODES = new Set([47, 90]);

function isFenced(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause ?? (e as { originalError?: unknown }).originalError) {
    if (FENCED_CODES.has((e as { code?: number }).code ?? -1)) return true;
  }
  return false;
}

/**
 * A transactional producer with a fixed transactional id, for operator writes that must be
 * atomic and one at a time (`farad dlq replay`): opening it fences any other producer of that id
 * (its open transaction is aborted, and it can commit nothing more); each `commit` is one
 * transaction.
 */
export class KafkaTransactionalWriter {
  private constructor(
    private readonly producer: Producer,
    private readonly transactionalId: string,
  ) {}

  /** Connects and takes the transactional id over (InitProducerId): a writer holding it before is fenced. */
  static async open(kafka: Kafka, transactionalId: string, transactionTimeoutMs: number): Promise<KafkaTransactionalWriter> {
    // Every record names its partition, which the default partitioner honours.
    const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: transactionTimeoutMs, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      // kafkajs defers InitProducerId to the first transaction; force it now.
      const txn = await producer.transaction();
      await txn.abort();
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      throw new TransportError(`could not take the transactional id "${transactionalId}" over: ${describeError(err)}`, {}, { cause: err });
    }
    return new KafkaTransactionalWriter(producer, transactionalId);
  }

  /** Writes `records` in one transaction: all of them become visible to read_committed readers, or none. */
  async commit(records: readonly OutRecord[]): Promise<void> {
    const txn = await this.producer.transaction();
    try {
      for (const topicMessages of toTopicMessageSlices(records)) await txn.sendBatch({ topicMessages, acks: -1 });
      await txn.commit();
    } catch (err) {
      await txn.abort().catch(() => undefined);
      if (isFenced(err)) {
        throw new ProducerFencedError(
          `another writer took the transactional id "${this.transactionalId}" over (a second run of the same command?); this one stops, and its last transaction was not committed`,
          {},
          { cause: err },
        );
      }
      throw new TransportError(`Kafka transaction of "${this.transactionalId}" failed: ${describeError(err)}`, {}, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
  }
}

