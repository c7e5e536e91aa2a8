// farad's fixes to kafkajs (src/streams/kafka/kafkajs-patches.ts) against a real broker.
import '../../src/streams/kafka/kafkajs-patches.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTopic, deleteTopics, testKafka, uid } from './helpers.js';

test('transactions look their coordinators up once, not before every request', { timeout: 60_000 }, async (t) => {
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const topic = `txn_coord_${uid()}`;
  await createTopic(admin, topic, 2);
  const producer = kafka.producer({ transactionalId: `txn_coord_${uid()}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(async () => {
    await producer.disconnect();
    await deleteTopics(admin, [topic]);
    await admin.disconnect();
  });
  const requests = new Map<string, number>();
  producer.on(producer.events.REQUEST, (e: { payload: { apiName: string } }) => requests.set(e.payload.apiName, (requests.get(e.payload.apiName) ?? 0) + 1));
  const transactions = 10;
  for (let i = 0; i < transactions; i++) {
    const txn = await producer.transaction();
    await txn.send({ topic, messages: [{ key: String(i), value: 'v', partition: i % 2 }] });
    await txn.sendOffsets({ consumerGroupId: `txn_coord_group_${uid()}`, topics: [{ topic, partitions: [{ partition: 0, offset: String(i) }] }] });
    await txn.commit();
  }
  // kafkajs alone asks four times per transaction (transaction coordinator ×3, group coordinator ×1).
  assert.ok((requests.get('GroupCoordinator') ?? 0) <= transactions + 1, `FindCoordinator requests: ${requests.get('GroupCoordinator')} for ${transactions} transactions`);
  assert.equal(requests.get('EndTxn'), transactions);
  // Every transaction committed: a read_committed consumer sees all of them.
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.equal(offsets.reduce((sum, o) => sum + Number(o.high), 0) >= transactions, true);
});
