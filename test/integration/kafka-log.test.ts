// The Kafka transport's own look-ups against a real broker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/index.js';
import { KafkaLog } from '../../src/streams/kafka/index.js';
import { createTopic, deleteTopics, kafkaConfig, plainProducer, testKafka, uid } from './helpers.js';

test('offsets of topics created a moment ago: transient broker errors are retried, not thrown', { timeout: 90_000 }, async (t) => {
  // KRaft answers NOT_LEADER_OR_FOLLOWER for a moment after a topic is created (about one time in
  // twenty here), and kafkajs's admin.fetchTopicOffsets gives up on it at once; a farad that hit
  // it while restoring a fresh changelog stopped processing altogether.
  const config = kafkaConfig();
  const suffix = uid();
  const topics = Array.from({ length: 30 }, (_, i) => `fresh_${suffix}_${i}`);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const log = await KafkaLog.open({
    connection: config.kafka,
    logger: createLogger('silent'),
    group: `fresh_${suffix}`,
    partitions: 8,
    inputTopics: [topics[0]!],
    changelogTopic: topics[1]!,
    sessionTimeoutMs: config.sessionTimeoutMs,
    heartbeatIntervalMs: config.kafkaGroup.heartbeatIntervalMs,
    rebalanceTimeoutMs: config.kafkaGroup.rebalanceTimeoutMs,
    replicationFactor: 1,
    maxQueuedRecords: config.kafka.maxQueuedRecords,
    transactionTimeoutMs: config.kafka.transactionTimeoutMs,
  });
  t.after(async () => {
    await log.close();
    await deleteTopics(admin, topics);
    await admin.disconnect();
  });

  for (const topic of topics) {
    await createTopic(admin, topic, 8, [{ name: 'cleanup.policy', value: 'compact' }]);
    assert.equal(await log.endOffset(topic, 7), 0, `end offset of ${topic}`);
  }
  assert.deepEqual([...(await log.committedOffsets(3))], [[topics[0], 0]], 'no committed offset yet: the start of the log');

  const producer = await plainProducer(kafka);
  try {
    await producer.send({ topic: topics[1]!, messages: [{ key: 'k', value: 'v', partition: 5 }] });
  } finally {
    await producer.disconnect();
  }
  assert.equal(await log.endOffset(topics[1]!, 5), 1);
});
