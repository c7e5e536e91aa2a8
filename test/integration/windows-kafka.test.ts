/**
 * Windows and recorded fire times on Kafka: the clock app's tumbling and hopping windows give one
 * final result per window (late events left out) matching an independent tally, read_committed;
 * each fired timer's changelog tombstone records the fire time the handler saw as ctx.timestamp;
 * and an instance restored from the changelog alone has exactly the tables the first one had.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { FIRED_AT_HEADER } from '../../src/streams/index.js';
import { compileApp } from '../../src/procedures/index.js';
import { SchemaCatalog, decodeChangeKey } from '../../src/codec/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { clockApp, GRACE_MS, PARTITIONS, WINDOW_MS } from '../e2e/fixtures/clock-app.js';
import { scanTableHttp } from '../e2e/helpers.js';
import { baseUrl, deleteGroups, deleteTopics, plainProducer, readTopic, sleep, startKafkaService, testKafka, uid, waitFor } from './helpers.js';
import { windowTally } from '../e2e/fixtures/clock-tally.js';

const name = `clock-${uid()}`;
const app = clockApp(name);
const compiled = compileApp(app);
const catalog = new SchemaCatalog([...compiled.events.values()].map((e) => e.type));
const kafka = testKafka();

after(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await deleteTopics(admin, [...compiled.inputTopics, ...compiled.outputTopics, compiled.changelogTopic, compiled.deadLetterTopic, `${name}-schemas`]);
  await deleteGroups(admin, [name]);
  await admin.disconnect();
});

type Reading = { sensor: string; value: number; ts: number; lateIn?: readonly string[] };
type Result = { window: string; sensor: string; start: number; end: number; count: number; sum: number; closedAt: number };


test('windows on Kafka: final results match a tally, fire times are in the changelog, a restore equals the state before', { timeout: 120_000 }, async () => {
  const producer = await plainProducer(kafka);
  const input = compiled.inputTopics[0]!;
  const send = (readings: readonly Reading[]) =>
    producer.send({
      topic: input,
      messages: readings.map((r) => ({
        key: r.sensor,
        partition: partitionForKey(r.sensor, PARTITIONS),
        timestamp: String(r.ts),
        value: catalog.encode('clock.Reading', { sensor: r.sensor, value: r.value }),
      })),
    });
  const results = async (): Promise<Result[]> =>
    (await readTopic(kafka, `${name}-window-results`)).map((r) => catalog.decode(r.value!).value as Result);

  let service = await startKafkaService(app, { replicas: 0 });
  try {
    await waitFor('ready', async () => (await fetch(`${baseUrl(service)}/readyz`)).status === 200, { timeoutMs: 60_000 });
    const W = WINDOW_MS;
    const B = Math.ceil(Date.now() / W) * W + 2 * W;
    const readings: Reading[] = [];
    for (const sensor of ['a', 'b', 'c', 'd']) for (let i = 1; i <= 4; i++) readings.push({ sensor, value: i, ts: B + i * 53 });
    readings.push({ sensor: 'x', value: 1, ts: B + 1 }, { sensor: 'x', value: 100, ts: B + 3 * W }, { sensor: 'x', value: 7, ts: B + 2, lateIn: ['tumbling', 'hopping'] });
    await send(readings);
    await waitFor('the first windows close', async () => (await results()).filter((r) => r.window === 'tumbling' && r.start === B).length === 5, { timeoutMs: 4 * W + 20_000 });
    const afterClose: Reading = { sensor: 'b', value: 5000, ts: B + 7, lateIn: ['tumbling', 'hopping'] };
    await send([afterClose]);
    readings.push(afterClose);
    const expected = windowTally(readings);
    await waitFor('every window closes', async () => (await results()).length >= expected.size, { timeoutMs: 6 * W + 20_000 });
    await sleep(500);

    const got = await results();
    const seen = new Map<string, { count: number; sum: number }>();
    for (const r of got) {
      const id = `${r.window}/${r.sensor}/${r.start}`;
      assert.ok(!seen.has(id), `one final result per window: ${id} twice`);
      seen.set(id, { count: r.count, sum: r.sum });
      assert.ok(r.closedAt >= r.end + GRACE_MS, `${id} closed before end + grace`);
    }
    assert.deepEqual(Object.fromEntries([...seen].sort()), Object.fromEntries([...expected].sort()));

    // Each window's timer tombstone in the changelog carries the fire time its handler saw.
    const changelog = await readTopic(kafka, compiled.changelogTopic);
    const firedAt = new Map<string, number>();
    for (const record of changelog) {
      if (record.value !== null || !record.headers[FIRED_AT_HEADER]) continue;
      const { table, key } = decodeChangeKey(Buffer.from(record.key!, 'latin1'));
      assert.equal(table, '__timers');
      const [kind, sensor, id] = JSON.parse(String(key)) as [string, string, string];
      firedAt.set(`${kind}/${sensor}/${id}`, Number(record.headers[FIRED_AT_HEADER]));
      assert.equal(record.timestamp, Number(record.headers[FIRED_AT_HEADER]), 'the tombstone is timestamped with the fire time');
    }
    for (const r of got) assert.equal(firedAt.get(`${r.window}/${r.sensor}/${r.start}`), r.closedAt, `fire time of ${r.window}/${r.sensor}/${r.start}`);

    // A new instance restores from the changelog alone (no snapshots): same tables.
    const tables = ['tumbling', 'hopping', 'late'];
    const before = await Promise.all(tables.map((t) => scanTableHttp(baseUrl(service), t)));
    await service.stop();
    service = await startKafkaService(app, { replicas: 0 });
    await waitFor('ready again', async () => (await fetch(`${baseUrl(service)}/readyz`)).status === 200, { timeoutMs: 60_000 });
    const restored = await Promise.all(tables.map((t) => scanTableHttp(baseUrl(service), t)));
    assert.deepEqual(restored, before);
    assert.deepEqual(Object.fromEntries(before[2]!.map((r) => [r.key, (r.value as { count: number }).count])), { b: 1, x: 1 });
  } finally {
    await service.stop();
    await producer.disconnect();
  }
});
