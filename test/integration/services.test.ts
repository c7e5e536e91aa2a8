// Smoke test of the real servers the integration tests run against (see
// scripts/services-up.sh): a transactional Kafka round trip and a Redis SET/GET.
// Needs KAFKA_BROKERS and REDIS_URL (scripts/test.mjs sets them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Redis } from 'ioredis';

function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set; run the tests with \`npm test\` or scripts/services-up.sh first`);
  }
  return value;
}

const RECEIVE_TIMEOUT_MS = 30_000;

test('kafka: transactional producer -> read_committed consumer', { timeout: 90_000 }, async () => {
  const brokers = requireEnv('KAFKA_BROKERS').split(',').map((b) => b.trim());
  const suffix = randomUUID();
  const topic = `farad-smoke-${suffix}`;
  const kafka = new Kafka({ clientId: `farad-smoke-${suffix}`, brokers, logLevel: logLevel.NOTHING });

  const admin = kafka.admin();
  const producer = kafka.producer({
    transactionalId: `farad-smoke-tx-${suffix}`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const consumer = kafka.consumer({
    groupId: `farad-smoke-group-${suffix}`,
    readUncommitted: false, // isolation.level = read_committed
    maxWaitTimeInMs: 250, // disconnect() waits for the in-flight fetch; keep it short
  });

  try {
    await admin.connect();
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    assert.equal(created, true, `topic ${topic} already existed`);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(meta.topics[0]?.partitions.length, 3);

    await producer.connect();

    // An aborted transaction first: read_committed must skip these records. Same keys
    // as some committed records below, so they land in the same partitions at lower
    // offsets and are passed over before those committed records are delivered.
    const aborted = await producer.transaction();
    await aborted.send({
      topic,
      messages: [0, 1, 2].map((i) => ({ key: `k${i}`, value: `aborted-${i}` })),
    });
    await aborted.abort();

    const expected = Array.from({ length: 10 }, (_, i) => `committed-${i}`);
    const tx = await producer.transaction();
    await tx.send({
      topic,
      messages: expected.map((value, i) => ({ key: `k${i}`, value })),
    });
    await tx.commit();

    const received: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        received.push(message.value?.toString() ?? '<null>');
      },
    });

    const deadline = Date.now() + RECEIVE_TIMEOUT_MS;
    while (received.length < expected.length && Date.now() < deadline) {
      await sleep(100);
    }
    assert.deepEqual(
      [...received].sort(),
      [...expected].sort(),
      `expected the 10 committed messages within ${RECEIVE_TIMEOUT_MS} ms, got ${received.length}: ${received.join(', ')}`,
    );
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
});

test('redis: SET/GET', { timeout: 30_000 }, async () => {
  const redis = new Redis(requireEnv('REDIS_URL'), {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null, // fail fast instead of reconnecting forever
  });
  try {
    await redis.connect();
    const key = `farad:smoke:${randomUUID()}`;
    const value = `v-${randomUUID()}`;
    assert.equal(await redis.set(key, value, 'EX', 60), 'OK');
    assert.equal(await redis.get(key), value);
    assert.equal(await redis.del(key), 1);
  } finally {
    redis.disconnect();
  }
});
