// Backpressure on the Kafka transport: with a slow handler and a large backlog, farad must not
// pull the whole backlog into memory (kafka.maxQueuedRecords pauses a partition's fetching), and
// it must still process all of it exactly once. The per-partition queues are internal, so this is
// checked through the process's live memory (after a forced GC) while it works through a ~21 MB
// backlog.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import avsc from 'avsc';
import { defineApp, record, table, type Service } from '../../src/index.js';
import { fingerprint } from '../../src/codec/index.js';
import {
  allConsumed,
  baseUrl,
  createTopic,
  deleteGroups,
  deleteTopics,
  getJson,
  plainProducer,
  readTopic,
  sleep,
  startKafkaService,
  testKafka,
  uid,
  waitFor,
} from './helpers.js';

interface Blob {
  id: string;
  seq: number;
  padding: Buffer;
}
interface Ack {
  id: string;
  seq: number;
}

const RECORDS = 20_000;
const PADDING = 1_024;
const IDS = 400;
const HANDLER_MS = 0.2;
const MAX_QUEUED = 200;
/** Live heap + off-heap growth allowed while the ~21 MB backlog is worked through. */
const MAX_GROWTH_BYTES = 150 * 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function liveBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

function slowApp(name: string, input: string, output: string) {
  return defineApp({
    name,
    partitions: 8,
    events: {
      Blob: record<Blob>({
        type: 'record',
        name: 'Blob',
        namespace: 'bptest',
        fields: [{ name: 'id', type: 'string' }, { name: 'seq', type: 'int' }, { name: 'padding', type: 'bytes' }],
      }),
      Ack: record<Ack>({ type: 'record', name: 'Ack', namespace: 'bptest', fields: [{ name: 'id', type: 'string' }, { name: 'seq', type: 'int' }] }),
    },
    tables: {
      seen: table({ key: 'string', value: record<{ count: number; lastSeq: number }>({ type: 'record', name: 'Seen', namespace: 'bptest', fields: [{ name: 'count', type: 'int' }, { name: 'lastSeq', type: 'int' }] }) }),
    },
    inputs: [{ topic: input, events: ['Blob'] }],
    outputs: { Ack: output },
    procedures: {
      Blob: {
        partitionKey: (blob) => blob.id,
        emits: ['Ack'],
        handle(ctx, blob) {
          const until = performance.now() + HANDLER_MS;
          while (performance.now() < until) {
            // a slow handler
          }
          const seen = ctx.tables.seen.get(blob.id);
          ctx.tables.seen.put(blob.id, { count: (seen?.count ?? 0) + 1, lastSeq: blob.seq });
          ctx.emit('Ack', { id: blob.id, seq: blob.seq });
        },
      },
    },
  });
}

test('backpressure: a slow handler over a 20k-record backlog keeps memory bounded and processes everything once', { timeout: 90_000 }, async (t) => {
  const suffix = uid();
  const name = `backpressure_${suffix}`;
  const input = `blobs_${suffix}`;
  const output = `acks_${suffix}`;
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  let service: Service | undefined;
  t.after(async () => {
    await service?.stop().catch(() => undefined);
    await deleteTopics(admin, [input, output, `${name}-changelog`, `${name}-dlq`]);
    await deleteGroups(admin, [name]);
    await admin.disconnect();
  });
  await createTopic(admin, input, 8);

  const app = slowApp(name, input, output);
  const blobType = avsc.Type.forSchema(app.spec.events.Blob!.schema);
  const header = Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint(blobType)]);
  const padding = Buffer.alloc(PADDING, 0x5a);

  // Pre-load the backlog.
  const loadStarted = Date.now();
  const producer = await plainProducer(kafka);
  try {
    for (let i = 0; i < RECORDS; i += 500) {
      const messages = [];
      for (let j = i; j < Math.min(RECORDS, i + 500); j++) {
        const id = `id-${j % IDS}`;
        messages.push({ key: id, value: Buffer.concat([header, blobType.toBuffer({ id, seq: Math.floor(j / IDS), padding })]) });
      }
      await producer.send({ topic: input, acks: -1, messages });
    }
  } finally {
    await producer.disconnect();
  }
  t.diagnostic(`pre-loaded ${RECORDS} records of ${PADDING + 30} bytes in ${Date.now() - loadStarted} ms`);

  const baseline = liveBytes();
  const started = Date.now();
  service = await startKafkaService(app, { kafka: { maxQueuedRecords: MAX_QUEUED } });
  const base = baseUrl(service);
  let peak = baseline;
  let samples = 0;
  let done = false;
  const sampling = (async () => {
    while (!done) {
      peak = Math.max(peak, liveBytes());
      samples++;
      await sleep(200);
    }
  })();
  try {
    await waitFor('the whole backlog to be committed', () => allConsumed(admin, name, input), { timeoutMs: 60_000, intervalMs: 250 });
  } finally {
    done = true;
    await sampling;
  }
  const seconds = (Date.now() - started) / 1000;
  const growth = peak - baseline;
  t.diagnostic(`processed ${RECORDS} in ${seconds.toFixed(1)} s; live memory peak growth ${(growth / 1048576).toFixed(1)} MB over ${samples} samples`);
  assert.ok(seconds >= (RECORDS * HANDLER_MS) / 1000, 'the handler was as slow as intended');
  assert.ok(growth < MAX_GROWTH_BYTES, `live memory grew by ${(growth / 1048576).toFixed(1)} MB (limit ${MAX_GROWTH_BYTES / 1048576} MB)`);

  // Exactly once: one Ack per record, and every id counted each of its records once.
  const acks = await readTopic(kafka, output);
  const ackType = avsc.Type.forSchema(app.spec.events.Ack!.schema);
  const seen = new Set<string>();
  for (const r of acks) {
    const ack = ackType.fromBuffer(r.value!.subarray(10)) as Ack;
    const id = `${ack.id}#${ack.seq}`;
    assert.ok(!seen.has(id), `duplicate ack ${id}`);
    seen.add(id);
  }
  assert.equal(acks.length, RECORDS);
  for (const id of ['id-0', 'id-17', `id-${IDS - 1}`]) {
    const { body } = await getJson(`${base}/tables/seen/${id}`);
    assert.deepEqual((body as { value: unknown }).value, { count: RECORDS / IDS, lastSeq: RECORDS / IDS - 1 });
  }
});
