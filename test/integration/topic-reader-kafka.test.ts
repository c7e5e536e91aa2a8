/**
 * Reading a Kafka partition whose records retention has deleted (its first offset is past 0):
 * a read from the beginning, as `farad dlq list` and `GET /topics/<app>-dlq/records` do, ends at
 * once with what is left instead of waiting for offsets that no longer exist.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { KafkaTopicReader } from '../../src/streams/kafka/topic-reader.js';
import { brokers, createTopic, deleteTopics, testKafka, uid } from './helpers.js';

test('a partition emptied by retention reads as empty at once; one with its head deleted reads what is left', { timeout: 60_000 }, async (t) => {
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const topic = `retained-${uid()}`;
  t.after(async () => {
    await deleteTopics(admin, [topic]);
    await admin.disconnect();
  });
  await createTopic(admin, topic, 2);
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, key: `k${i}`, value: `v${i}` })) });
  await producer.disconnect();
  // Partition 0 loses everything, partition 1 its first three records (as retention would).
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '5' }, { partition: 1, offset: '3' }] });

  const reader = await KafkaTopicReader.open(loadConfig({ overrides: { transport: 'kafka', kafka: { brokers: brokers() } } }).kafka, createLogger('warn'));
  t.after(() => reader.close());
  await reader.describe([topic]);
  const read = async (partition: number): Promise<string[]> => {
    const values: string[] = [];
    for await (const chunk of reader.readRange(topic, partition, 0)) for (const r of chunk) values.push(r.value!.toString());
    return values;
  };
  const started = Date.now();
  assert.deepEqual(await read(0), []);
  assert.deepEqual(await read(1), ['v7', 'v9']);
  assert.ok(Date.now() - started < 20_000, `read in ${Date.now() - started} ms`);
});
