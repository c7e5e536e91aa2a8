// A transaction that the broker refuses rolls back cleanly, with no test hooks in farad: the
// output topic is created with max.message.bytes=100 and the handler emits ~500-byte events, so
// every commit that carries one fails (MESSAGE_TOO_LARGE) and is aborted. Nothing of the failed
// batches may become visible (outputs, changelog, input offsets, state); once the limit is raised
// every event appears exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import avsc from 'avsc';
import kafkajs from 'kafkajs';
import { defineApp, record, table, type Service } from '../../src/index.js';
import { fingerprint } from '../../src/codec/index.js';
import {
  allConsumed,
  baseUrl,
  collectFor,
  createTopic,
  deleteGroups,
  deleteTopics,
  getJson,
  groupOffsets,
  metricValue,
  plainProducer,
  readTopic,
  startKafkaService,
  testKafka,
  uid,
  waitFor,
} from './helpers.js';

interface Item {
  id: string;
  size: number;
}
interface Echo {
  id: string;
  seq: number;
  payload: string;
}

function txApp(name: string, input: string, output: string) {
  return defineApp({
    name,
    partitions: 4,
    events: {
      Item: record<Item>({ type: 'record', name: 'Item', namespace: 'txtest', fields: [{ name: 'id', type: 'string' }, { name: 'size', type: 'int' }] }),
      Echo: record<Echo>({
        type: 'record',
        name: 'Echo',
        namespace: 'txtest',
        fields: [{ name: 'id', type: 'string' }, { name: 'seq', type: 'int' }, { name: 'payload', type: 'string' }],
      }),
    },
    tables: {
      counts: table({ key: 'string', value: record<{ count: number }>({ type: 'record', name: 'Count', namespace: 'txtest', fields: [{ name: 'count', type: 'int' }] }) }),
    },
    inputs: [{ topic: input, events: ['Item'] }],
    outputs: { Echo: output },
    procedures: {
      Item: {
        partitionKey: (item) => item.id,
        emits: ['Echo'],
        handle(ctx, item) {
          const count = (ctx.tables.counts.get(item.id)?.count ?? 0) + 1;
          ctx.tables.counts.put(item.id, { count });
          if (item.size > 0) ctx.emit('Echo', { id: item.id, seq: count, payload: 'x'.repeat(item.size) });
        },
      },
    },
  });
}

const IDS = Array.from({ length: 10 }, (_, i) => `id-${i}`);
const PHASE1_PER_ID = 4;
const PHASE2_PER_ID = 2;

test('a transaction the broker refuses is rolled back: no outputs, changelog, offsets or state; then exactly once', { timeout: 90_000 }, async (t) => {
  const suffix = uid();
  const name = `txfail_${suffix}`;
  const input = `items_${suffix}`;
  const output = `echo_${suffix}`;
  const changelog = `${name}-changelog`;
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  let service: Service | undefined;
  t.after(async () => {
    await service?.stop().catch(() => undefined);
    await deleteTopics(admin, [input, output, changelog, `${name}-dlq`]);
    await deleteGroups(admin, [name]);
    await admin.disconnect();
  });

  await createTopic(admin, input, 4);
  await createTopic(admin, output, 4, [{ name: 'max.message.bytes', value: '100' }]);
  const app = txApp(name, input, output);
  const itemType = avsc.Type.forSchema(app.spec.events.Item!.schema);
  const encode = (item: Item): Buffer => Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint(itemType), itemType.toBuffer(item)]);

  service = await startKafkaService(app, { retryBackoffMs: 50 });
  const base = baseUrl(service);
  await waitFor('all partitions ready', async () => (await fetch(`${base}/readyz`)).status === 200);
  const producer = await plainProducer(kafka);
  const send = (size: number, perId: number) =>
    producer.send({
      topic: input,
      acks: -1,
      messages: IDS.flatMap((id) => Array.from({ length: perId }, () => ({ key: id, value: encode({ id, size }) }))),
    });

  try {
    // Phase 1: no outputs, so these batches commit (state + changelog + offsets).
    await send(0, PHASE1_PER_ID);
    await waitFor('phase 1 to be committed', () => allConsumed(admin, name, input));
    const committedOffsets = await groupOffsets(admin, name, input);
    const changelogAfter1 = await readTopic(kafka, changelog);
    assert.ok(changelogAfter1.length > 0);
    for (const id of IDS) {
      const { body } = await getJson(`${base}/tables/counts/${id}`);
      assert.deepEqual((body as { value: unknown }).value, { count: PHASE1_PER_ID });
    }
    assert.equal(await metricValue(base, 'farad_commit_failures_total'), 0);

    // Phase 2: every batch now emits a 500-byte Echo, over the output topic's limit.
    await send(500, PHASE2_PER_ID);
    await waitFor('commits to fail', async () => ((await metricValue(base, 'farad_commit_failures_total')) >= 5 ? true : undefined), { timeoutMs: 30_000 });

    // Committed state is what phase 1 left, the group's offsets did not move.
    for (const id of IDS) {
      const { body } = await getJson(`${base}/tables/counts/${id}`);
      assert.deepEqual((body as { value: unknown }).value, { count: PHASE1_PER_ID }, `state of ${id} during failing commits: ${JSON.stringify(body)}`);
    }
    assert.deepEqual(await groupOffsets(admin, name, input), committedOffsets, 'committed input offsets unchanged');
    assert.equal(await allConsumed(admin, name, input), false);

    // read_committed sees no output and no changelog record of the failed batches; the changelog
    // records they did write (read_uncommitted) were aborted.
    const [outputSeen, changelogSeen, changelogRaw] = await Promise.all([
      collectFor(kafka, output, 2_000),
      collectFor(kafka, changelog, 2_000),
      collectFor(kafka, changelog, 2_000, { readUncommitted: true }),
    ]);
    assert.equal(outputSeen.length, 0, 'no committed output');
    assert.deepEqual(
      changelogSeen.map((r) => `${r.partition}/${r.offset}`).sort(),
      changelogAfter1.map((r) => `${r.partition}/${r.offset}`).sort(),
      'the committed changelog is phase 1 only',
    );
    assert.ok(changelogRaw.length > changelogAfter1.length, `failed transactions wrote (aborted) changelog records: ${changelogRaw.length} > ${changelogAfter1.length}`);
    const failures = await metricValue(base, 'farad_commit_failures_total');
    t.diagnostic(`${failures} failed commits; ${changelogRaw.length - changelogAfter1.length} aborted changelog records`);

    // Raise the limit: the retried batches commit, each event exactly once.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: output, configEntries: [{ name: 'max.message.bytes', value: '1048588' }] }],
    });
    const fixedAt = Date.now();
    await waitFor('phase 2 to be committed', () => allConsumed(admin, name, input), { timeoutMs: 45_000, intervalMs: 200 });
    t.diagnostic(`recovered ${Date.now() - fixedAt} ms after raising max.message.bytes`);
  } finally {
    await producer.disconnect();
  }

  const echoes = await readTopic(kafka, output);
  const echoType = avsc.Type.forSchema(app.spec.events.Echo!.schema);
  const seen = echoes.map((r) => {
    const echo = echoType.fromBuffer(r.value!.subarray(10)) as Echo;
    assert.equal(echo.payload.length, 500);
    assert.equal(r.key, echo.id);
    return `${echo.id}#${echo.seq}`;
  });
  const expected = IDS.flatMap((id) => Array.from({ length: PHASE2_PER_ID }, (_, i) => `${id}#${PHASE1_PER_ID + 1 + i}`));
  assert.deepEqual(seen.sort(), expected.sort(), 'every phase-2 event emitted exactly once, with the state it saw');
  for (const id of IDS) {
    const { body } = await getJson(`${base}/tables/counts/${id}`);
    assert.deepEqual((body as { value: unknown }).value, { count: PHASE1_PER_ID + PHASE2_PER_ID });
  }
  assert.equal(await metricValue(base, 'farad_dead_letters_total'), 0);
});
