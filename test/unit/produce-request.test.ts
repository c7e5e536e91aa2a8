/**
 * farad's Produce request encoder against kafkajs's own (the reference: every byte equal), and
 * its record batches read back by kafkajs's decoder. This file loads none of farad's kafkajs
 * patches, so `require` below reaches kafkajs's original modules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { crc32c } from '../../src/streams/kafka/crc32c.js';
import { encodeProduceRequest, type ProduceTopicData } from '../../src/streams/kafka/produce-request.js';
import { groupMessagesPerPartition } from '../../src/streams/kafka/fast-produce.js';
import { toTopicMessageSlices, SEND_SLICE_BYTES } from '../../src/streams/kafka/records.js';
import { seededRandom } from '../../src/procedures/index.js';

const require = createRequire(import.meta.url);
const kafkajsRequest = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (args: object) => { encode(): Promise<{ buffer: Buffer }> };
const kafkajsCrc = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => object;
const RecordBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: object) => Promise<{
  records: Array<{ key: Buffer | null; value: Buffer | null; timestamp: string; offset: string; headers: Record<string, Buffer | Buffer[]> }>;
  inTransaction: boolean;
  producerId: string;
  producerEpoch: number;
  firstSequence: number;
}>;
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: unknown): unknown };

function topicData(random: () => number): ProduceTopicData[] {
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  return ['votes-out', 'voter-changelog'].map((topic, t) => ({
    topic,
    partitions: [0, 3, 7].map((partition) => ({
      partition,
      firstSequence: t * 1000 + partition,
      messages: Array.from({ length: 1 + Math.floor(random() * 300) }, (_, i) => ({
        key: i % 17 === 0 ? null : bytes(Math.floor(random() * 40)),
        value: i % 13 === 0 ? null : bytes(Math.floor(random() * (i % 5 === 0 ? 3000 : 60))),
        // Same digit count: kafkajs sorts timestamps as strings.
        timestamp: String(1_700_000_000_000 + Math.floor(random() * 100_000)),
        ...(i % 7 === 0 ? { headers: { 'farad.reason': 'handler_error', multi: ['a', Buffer.from('bé')] } } : {}),
      })),
    })),
  }));
}

test('the Produce request is byte for byte what kafkajs encodes, transactional or not', async () => {
  const random = seededRandom(7);
  for (const transactionalId of ['voter-3', null]) {
    const data = topicData(random);
    const producerId = transactionalId ? 4242n : -1n;
    const ours = encodeProduceRequest({ transactionalId, acks: -1, timeout: 30_000, producerId, producerEpoch: transactionalId ? 3 : 0, topicData: data, now: 1_700_000_000_000 });
    const theirs = (
      await kafkajsRequest({ transactionalId, acks: -1, timeout: 30_000, producerId: Long.fromValue(Number(producerId)), producerEpoch: transactionalId ? 3 : 0, topicData: data }).encode()
    ).buffer;
    assert.equal(ours.length, theirs.length);
    assert.ok(ours.equals(theirs), 'bytes differ');
  }
});

test('numeric and missing timestamps; batches read back by kafkajs', async () => {
  const now = 1_700_000_123_456;
  const messages = [
    { key: Buffer.from('k1'), value: Buffer.from('v1'), timestamp: now - 5 },
    { key: 'k2', value: 'v2' },
    { key: null, value: null, timestamp: String(now + 7), headers: { h: 'x' } },
  ];
  const body = encodeProduceRequest({ transactionalId: 't', acks: -1, timeout: 1000, producerId: 9n, producerEpoch: 1, topicData: [{ topic: 'a', partitions: [{ partition: 2, firstSequence: 11, messages }] }], now });
  // Skip: transactional id, acks, timeout, topic count, topic name, partition count, partition, batch size.
  const at = 2 + 1 + 2 + 4 + 4 + 2 + 1 + 4 + 4 + 4;
  const batch = await RecordBatchDecoder(new Decoder(body.subarray(at)));
  assert.equal(batch.inTransaction, true);
  assert.equal(String(batch.producerId), '9');
  assert.equal(batch.producerEpoch, 1);
  assert.equal(batch.firstSequence, 11);
  assert.deepEqual(
    batch.records.map((r) => [r.key?.toString() ?? null, r.value?.toString() ?? null, r.timestamp, r.offset]),
    [
      ['k1', 'v1', String(now - 5), '0'],
      ['k2', 'v2', String(now), '1'],
      [null, null, String(now + 7), '2'],
    ],
  );
  assert.equal(String(batch.records[2]!.headers['h']), 'x');
});

test('a timestamp that is not a whole number of milliseconds is refused', () => {
  assert.throws(
    () => encodeProduceRequest({ transactionalId: null, acks: 1, timeout: 1, producerId: -1n, producerEpoch: 0, topicData: [{ topic: 'a', partitions: [{ partition: 0, messages: [{ value: 'x', timestamp: 'soon' }] }] }], now: 0 }),
    /timestamp soon is not an integer/,
  );
});

test('CRC-32C equals kafkajs\'s at every length and offset', () => {
  const random = seededRandom(3);
  const buf = Buffer.from(Array.from({ length: 5000 }, () => Math.floor(random() * 256)));
  for (const [start, end] of [[0, 0], [0, 1], [0, 7], [0, 8], [3, 19], [1, 4999], [0, 5000]] as const) {
    assert.equal(crc32c(buf, start, end), kafkajsCrc(buf.subarray(start, end)), `${start}..${end}`);
  }
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283); // the check value of CRC-32C
});

test('grouping by partition keeps each partition\'s order and asks the partitioner', () => {
  const messages = Array.from({ length: 50 }, (_, i) => ({ partition: i % 4, n: i }));
  const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata: [{}, {}, {}, {}], messages, partitioner: ({ message }) => message.partition! });
  assert.deepEqual(Object.keys(grouped), ['0', '1', '2', '3']);
  for (const [p, list] of Object.entries(grouped)) assert.deepEqual(list.map((m) => (m as { n: number }).n), messages.filter((m) => m.partition === Number(p)).map((m) => m.n));
  assert.deepEqual(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages, partitioner: () => 0 }), {});
});

test('sends are sliced by bytes, never splitting a record, and by count when asked', () => {
  const value = Buffer.alloc(1000);
  const records = Array.from({ length: 2000 }, (_, i) => ({ topic: i % 2 ? 'a' : 'b', partition: 0, timestamp: 1, key: null, value }));
  const slices = toTopicMessageSlices(records);
  const sizes = slices.map((s) => s.reduce((n, t) => n + t.messages.length, 0));
  assert.equal(sizes.reduce((a, b) => a + b, 0), 2000);
  assert.ok(sizes.every((n) => n * 1024 <= SEND_SLICE_BYTES), `slices ${sizes.join(',')}`);
  assert.deepEqual(toTopicMessageSlices(records, 700).map((s) => s.reduce((n, t) => n + t.messages.length, 0)), [700, 700, 600]);
  const big = [{ topic: 'a', partition: 0, timestamp: 1, key: null, value: Buffer.alloc(SEND_SLICE_BYTES * 2) }];
  assert.equal(toTopicMessageSlices(big).length, 1);
});

test('fetched records decode as kafkajs decodes them, offsets and timestamps past 2^32 included', async () => {
  const { decodeRecord } = await import('../../src/streams/kafka/fast-records.js');
  const kafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as (d: object, ctx: object) => unknown;
  const random = seededRandom(11);
  const data = topicData(random)[0]!.partitions[0]!;
  const messages = [...data.messages, { key: 'k', value: 'v', headers: { dup: ['a', 'b', 'c'], one: 'x' } }];
  const body = encodeProduceRequest({ transactionalId: null, acks: 1, timeout: 1, producerId: -1n, producerEpoch: 0, topicData: [{ topic: 'a', partitions: [{ partition: 0, messages }] }], now: 1_700_000_000_000 });
  // The records follow the batch header: skip request, topic and batch headers.
  const recordsAt = 2 + 2 + 4 + 4 + 2 + 1 + 4 + 4 + 4 + 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
  for (const [firstOffset, timestampType] of [['0', 0], ['4294967290', 0], ['123', 1]] as const) {
    const context = { firstOffset, firstTimestamp: '1700000000000', maxTimestamp: '1700000099999', magicByte: 2, isControlBatch: false, timestampType };
    const ours = new Decoder(body.subarray(recordsAt)) as { offset: number; readVarIntBytes(): Buffer };
    const theirs = new Decoder(body.subarray(recordsAt)) as { offset: number; readVarIntBytes(): Buffer };
    for (let i = 0; i < messages.length; i++) {
      const a = decodeRecord(new Decoder(ours.readVarIntBytes()) as never, context, () => assert.fail('fell back'));
      const b = kafkajsRecord(new Decoder(theirs.readVarIntBytes()), context);
      assert.deepEqual(a, b, `record ${i} at base ${firstOffset}`);
      const value = messages[i]!.value;
      assert.deepEqual((a as { value: Buffer | null }).value, value === null ? null : Buffer.from(value), `record ${i}'s value`);
    }
  }
});
