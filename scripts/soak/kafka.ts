/**
 * The soak's own Kafka access (plain kafkajs, not farad's patched copy, plus kcat as a second,
 * librdkafka-based reader): topics, group offsets, and whole-topic reads that end exactly at the
 * end offsets, keeping each record's producer id and epoch (for the fencing check).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';

export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter(Boolean);

export function soakKafka(clientId = `farad-soak-${randomBytes(3).toString('hex')}`): Kafka {
  return new Kafka({ clientId, brokers: BROKERS, logLevel: logLevel.NOTHING, retry: { retries: 8 } });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function createTopic(admin: Admin, topic: string, numPartitions: number, configEntries: Array<{ name: string; value: string }> = []): Promise<void> {
  await admin.createTopics({ waitForLeaders: false, topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics[0]?.partitions ?? [];
      if (partitions.length === numPartitions && partitions.every((p) => p.leader >= 0)) return;
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic} has no leader for every partition after 30 s`);
    await sleep(100);
  }
}

export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
}

/** Partitions of `topic` whose committed offset in `group` is short of the end: partition -> records left. */
export async function lagOf(admin: Admin, group: string, topic: string): Promise<Map<number, number>> {
  const [ends, [entry]] = await Promise.all([endOffsets(admin, topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
  const committed = new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  const lag = new Map<number, number>();
  for (const [p, end] of ends) {
    const at = committed.get(p) ?? -1;
    if (end > 0 && at < end) lag.set(p, end - Math.max(0, at));
  }
  return lag;
}

export interface RawRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: number;
  readonly producerId?: string;
  readonly epoch?: number;
}

interface BatchContext {
  readonly producerId?: string | number;
  readonly producerEpoch?: number;
}

/**
 * Every record of `topic` from the beginning to the end offsets it has now, read_committed (or
 * read_uncommitted): the read ends exactly there, so a record missing from it is not committed.
 */
export async function readTopic(kafka: Kafka, topic: string, { readUncommitted = false, timeoutMs = 90_000 } = {}): Promise<RawRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `farad-soak-reader-${randomBytes(4).toString('hex')}`;
  try {
    const targets = [...(await endOffsets(admin, topic))].filter(([, end]) => end > 0);
    const records: RawRecord[] = [];
    if (targets.length === 0) return records;
    const position = new Map<number, number>();
    const consumer = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 100, maxBytesPerPartition: 8 * 1024 * 1024 });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== topic) return;
      const next = Number(payload.lastOffset) + 1;
      if (next > (position.get(payload.partition) ?? 0)) position.set(payload.partition, next);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            const context = (m as unknown as { batchContext?: BatchContext }).batchContext;
            const headers: Record<string, string> = {};
            for (const [name, raw] of Object.entries(m.headers ?? {})) {
              const v = Array.isArray(raw) ? raw[0] : raw;
              if (v !== undefined) headers[name] = v.toString();
            }
            records.push({
              topic,
              partition: batch.partition,
              offset: Number(m.offset),
              key: m.key === null ? null : m.key.toString(),
              value: m.value,
              headers,
              timestamp: Number(m.timestamp),
              ...(context?.producerId !== undefined ? { producerId: String(context.producerId) } : {}),
              ...(context?.producerEpoch !== undefined ? { epoch: Number(context.producerEpoch) } : {}),
            });
          }
        },
      });
      const deadline = Date.now() + timeoutMs;
      while (!targets.every(([p, end]) => (position.get(p) ?? 0) >= end)) {
        if (Date.now() > deadline) {
          throw new Error(`reading ${topic} (${readUncommitted ? 'read_uncommitted' : 'read_committed'}) did not reach its end offsets ${JSON.stringify(Object.fromEntries(targets))} within ${timeoutMs} ms (at ${JSON.stringify(Object.fromEntries(position))}): an open transaction?`);
        }
        await sleep(50);
      }
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
    records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    return records;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

/** Committed records per partition as kcat (librdkafka, read_committed) counts them; undefined when kcat is missing. */
export function kcatCounts(topic: string, below?: ReadonlyMap<number, number>): Map<number, number> | undefined {
  const res = spawnSync('kcat', ['-C', '-b', BROKERS.join(','), '-t', topic, '-o', 'beginning', '-e', '-q', '-X', 'isolation.level=read_committed', '-f', '%p %o\n'], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  if (res.status !== 0) throw new Error(`kcat -C ${topic} failed: ${res.stderr || String(res.error)}`);
  const counts = new Map<number, number>();
  for (const line of res.stdout.split('\n')) {
    if (line === '') continue;
    const [p, offset] = line.split(' ').map(Number) as [number, number];
    if (below && offset >= (below.get(p) ?? 0)) continue;
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  return counts;
}
