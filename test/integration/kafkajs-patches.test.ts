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

test('a new owner reads offsets with every finished transaction in them (OffsetFetch v7, require_stable)', { timeout: 60_000 }, async (t) => {
  const { stableOffsets } = await import('../../src/streams/kafka/kafkajs-patches.js');
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const topic = `stable_offsets_${uid()}`;
  const group = `stable_offsets_group_${uid()}`;
  await createTopic(admin, topic, 2);
  const producer = kafka.producer({ transactionalId: `stable_offsets_${uid()}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(async () => {
    await producer.disconnect();
    await admin.deleteGroups([group]).catch(() => undefined);
    await deleteTopics(admin, [topic]);
    await admin.disconnect();
  });
  const txn = await producer.transaction();
  await txn.send({ topic, messages: [{ key: 'k', value: 'v', partition: 0 }] });
  await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: '5' }, { partition: 1, offset: '7' }] }] });
  // The plain fetch answers the offset from before the pending commit: a new owner starting
  // there would process the old owner's last batch again.
  const plain = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  assert.deepEqual(plain[0]!.partitions.map((p) => p.offset), ['-1', '-1']);
  let answered: Map<string, number> | undefined;
  const stable = stableOffsets(admin, group, [topic], 0).then((offsets) => (answered = offsets));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(answered, undefined, 'no answer while the transactional commit is pending');
  await txn.commit();
  assert.deepEqual([...(await stable)], [[topic, 5]]);
  assert.deepEqual([...(await stableOffsets(admin, group, [topic], 1))], [[topic, 7]], 'one partition asked, its own offset');

  // A commit that stays pending longer than the wait: reported, and the applied offsets answered.
  const open = await producer.transaction();
  await open.send({ topic, messages: [{ key: 'k', value: 'v', partition: 0 }] });
  await open.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: '9' }] }] });
  const waited: number[] = [];
  assert.deepEqual([...(await stableOffsets(admin, group, [topic], 0, (ms) => waited.push(ms), 1500))], [[topic, 5]]);
  assert.equal(waited.length, 1);
  assert.ok(waited[0]! >= 1500, `reported after ${waited[0]} ms`);
  await open.abort();
});
