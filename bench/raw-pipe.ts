/**
 * The ceiling of the Kafka scenarios: a plain kafkajs consume → transactional produce pipe doing
 * Voter's per-record work (bench/plain-voter.ts: decode, rule on a Map, encode the result), with
 * the same structure as farad on Kafka — one transactional producer per input partition, every
 * partition consumed concurrently, one transaction per fetched batch (at most 10,000 records, like
 * farad's maxBatchRecords) carrying the results and the input offsets (sendOffsets). No
 * changelog, no dead letters, no metrics.
 *
 * Child process: env RAW_BROKERS, RAW_INPUT, RAW_OUTPUT, RAW_GROUP, RAW_PARTITIONS. Prints
 * `joined` once it has its assignment; SIGTERM disconnects and exits.
 */
import { Kafka, logLevel, Partitioners, type Consumer, type Message, type Producer } from 'kafkajs';
import { PlainVoter } from './plain-voter.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const brokers = env('RAW_BROKERS').split(',');
const input = env('RAW_INPUT');
const output = env('RAW_OUTPUT');
const group = env('RAW_GROUP');
const partitions = Number(env('RAW_PARTITIONS'));
/** Most input records per transaction: farad's default maxBatchRecords. */
const MAX_BATCH = 10_000;

// kafkajs' own warnings and errors go to stderr (the bench keeps the tail for failure reports).
const kafka = new Kafka({ clientId: `${group}-raw`, brokers, logLevel: logLevel.WARN });
const voter = new PlainVoter(partitions);
const producers: Producer[] = [];
for (let p = 0; p < partitions; p++) {
  const producer = kafka.producer({
    transactionalId: `${group}-${p}`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  // Like farad's fence: InitProducerId now, not on the first batch.
  const txn = await producer.transaction();
  await txn.abort();
  producers.push(producer);
}

/** What the pipe did, printed as one `stats {...}` line on SIGTERM. */
const stats = { batches: 0, records: 0, failed: 0, handleMs: 0, sendMs: 0, offsetsMs: 0, commitMs: 0 };

/** Commits one batch's results and offsets; a failed transaction is aborted and tried again. */
async function commit(partition: number, messages: Message[], nextOffset: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const txn = await producers[partition]!.transaction();
    try {
      const t0 = performance.now();
      await txn.send({ topic: output, messages, acks: -1 });
      const t1 = performance.now();
      await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic: input, partitions: [{ partition, offset: nextOffset }] }] });
      const t2 = performance.now();
      await txn.commit();
      stats.sendMs += t1 - t0;
      stats.offsetsMs += t2 - t1;
      stats.commitMs += performance.now() - t2;
      return;
    } catch (err) {
      stats.failed++;
      process.stderr.write(`partition ${partition}: transaction failed (attempt ${attempt}): ${(err as Error).message}\n`);
      await txn.abort().catch(() => undefined);
      if (attempt >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}

let consumer: Consumer | undefined;
let stopping = false;

/** Runs the consumer; one that kafkajs gives up on (crash without restart) is replaced. */
async function startConsumer(): Promise<void> {
  const current = kafka.consumer({ groupId: group, readUncommitted: false, maxWaitTimeInMs: 100, sessionTimeout: 10_000 });
  consumer = current;
  current.on(current.events.GROUP_JOIN, () => process.stdout.write('joined\n'));
  current.on(current.events.CRASH, ({ payload }) => {
    process.stderr.write(`consumer crashed: ${payload.error.message} (restart: ${payload.restart})\n`);
    if (!payload.restart && !stopping) {
      void current.disconnect().catch(() => undefined).then(() => setTimeout(() => void startConsumer(), 1000));
    }
  });
  await current.connect();
  await current.subscribe({ topics: [input], fromBeginning: true });
  await current.run({
    autoCommit: false,
    partitionsConsumedConcurrently: partitions,
    eachBatch: async ({ batch, heartbeat }) => {
      // A fetched batch may hold a partition's whole backlog; like farad (maxBatchRecords), one
      // transaction takes at most MAX_BATCH records. The state is applied once per delivered
      // record (a batch redelivered after a crash is applied again: fine for a throughput
      // ceiling, not for exactly-once state).
      for (let start = 0; start < batch.messages.length; start += MAX_BATCH) {
        const chunk = batch.messages.slice(start, start + MAX_BATCH);
        const t0 = performance.now();
        const messages = chunk.map((m) => {
          const out = voter.handle(m.value!, m.key);
          return { key: out.key, value: out.value, partition: out.partition, timestamp: m.timestamp };
        });
        stats.handleMs += performance.now() - t0;
        stats.batches++;
        stats.records += messages.length;
        await commit(batch.partition, messages, String(Number(chunk.at(-1)!.offset) + 1));
        await heartbeat();
      }
    },
  });
}

await startConsumer();

process.once('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
  void (async () => {
    await consumer?.disconnect().catch(() => undefined);
    for (const producer of producers) await producer.disconnect().catch(() => undefined);
    process.exit(0);
  })();
});
