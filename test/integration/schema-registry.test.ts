import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import avro from 'avsc';
import { Kafka, logLevel } from 'kafkajs';
import voter from '../../examples/voter/index.js';
import { defineApp, loadConfig, startService, type Service } from '../../src/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { RegistryServer } from '../support/registry-server.js';

const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(',');
const suffix = randomBytes(4).toString('hex');
const inputTopic = `votes_reg_${suffix}`;
const outputTopic = `results_reg_${suffix}`;
const appName = `voter_reg_${suffix}`;
const kafka = new Kafka({ brokers, clientId: 'registry-test', logLevel: logLevel.NOTHING });
const registry = new RegistryServer();
let service: Service;

const voteV2 = avro.Type.forSchema({
  type: 'record',
  name: 'Vote',
  namespace: 'voter',
  fields: [
    { name: 'phoneNumber', type: 'long' },
    { name: 'contestantNumber', type: 'int' },
    { name: 'channel', type: 'string', default: 'sms' },
  ],
});

before(async () => {
  const url = await registry.start();
  const app = defineApp({
    ...voter.spec,
    name: appName,
    inputs: [{ topic: inputTopic, events: ['Vote'] }],
    outputs: { VoteAccepted: outputTopic, VoteRejected: outputTopic },
  });
  const config = loadConfig({
    env: {},
    overrides: { transport: 'kafka', kafka: { brokers }, schemaRegistry: { url }, http: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' },
  });
  service = await startService(app, config);
});

after(async () => {
  await service?.stop();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [inputTopic, outputTopic, `${appName}-changelog`, `${appName}-dlq`] }).catch(() => undefined);
  await admin.disconnect();
  await registry.stop();
});

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('with a schema registry, farad reads Confluent-framed records of a newer schema and writes Confluent-framed results', async () => {
  // farad registered its event types under record-name subjects at start.
  const acceptedId = registry.subjects.get('voter.VoteAccepted')?.[0];
  const rejectedId = registry.subjects.get('voter.VoteRejected')?.[0];
  assert.ok(acceptedId && rejectedId && registry.subjects.get('voter.Vote'), 'event types registered');

  // A producer on a newer, compatible schema (an added field with a default) registers it and writes with its id.
  const v2Id = registry.register('voter.Vote', JSON.stringify(voteV2.schema()));
  const votes = [
    { phoneNumber: 6175550001, contestantNumber: 1, channel: 'web' },
    { phoneNumber: 6175550001, contestantNumber: 1, channel: 'web' },
    { phoneNumber: 6175550001, contestantNumber: 2, channel: 'sms' }, // over the limit
    { phoneNumber: 2125550002, contestantNumber: 9, channel: 'app' }, // no such contestant
  ];
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: inputTopic,
    acks: -1,
    messages: votes.map((v) => {
      const key = String(v.phoneNumber);
      const header = Buffer.alloc(5);
      header.writeUInt32BE(v2Id, 1);
      return { key, partition: partitionForKey(key, 8), value: Buffer.concat([header, voteV2.toBuffer(v)]) };
    }),
  });
  await producer.disconnect();

  await waitFor('two accepted votes', async () => {
    const rows = (await service.reads.query('leaderboard').catch(() => ({ body: [] }))).body as Array<{ contestantNumber: number; votes: number }>;
    return rows.find((r) => r.contestantNumber === 1)?.votes === 2 ? true : undefined;
  });

  const consumer = kafka.consumer({ groupId: `reader-${suffix}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  const results: Buffer[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: outputTopic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void results.push(message.value!) });
  await waitFor('four results', () => (results.length >= 4 ? true : undefined));
  await consumer.disconnect();

  assert.equal(results.length, 4);
  const ids = results.map((r) => (assert.equal(r[0], 0, 'Confluent magic byte'), r.readUInt32BE(1)));
  assert.deepEqual(ids.sort(), [acceptedId, acceptedId, rejectedId, rejectedId].sort());
  const rejected = avro.Type.forSchema(JSON.parse(registry.schemas.get(rejectedId)!) as avro.Schema);
  const reasons = results.filter((r) => r.readUInt32BE(1) === rejectedId).map((r) => (rejected.fromBuffer(r.subarray(5)) as { reason: string }).reason);
  assert.deepEqual(reasons.sort(), ['INVALID_CONTESTANT', 'OVER_VOTE_LIMIT']);
});
