/**
 * Bounded embedded log: retention, compaction and restart time that follows live state.
 *
 * 1. Full size, through the service: FARAD_RETENTION_BYTES=8388608, 1,000 keys written
 *    2,000,000 times (Ingest path, paced at the processing rate as a producer would be): the data
 *    directory stays under 50 MB all along, the app is ready in under 2 s after a restart, and
 *    its table holds the latest value of every key.
 * 2. On the log itself, with 64 KiB segments: which records retention and compaction keep, that
 *    offsets and metadata survive, and that a reopen sees the same.
 * 3. A full disk: a refused roll keeps the log writable; a start on a full disk is one clear line.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test, type TestContext } from 'node:test';
import { createLogger, defineApp, EmbeddedLog, record, table, type App, type LogRecord } from '../../src/index.js';
import type { RetentionOptions } from '../../src/streams/index.js';
import { freePort, http, metricValue, runCli, scanTableHttp, sleep, startTestService, tempDir, waitFor, waitProcessed } from './helpers.js';

const KEYS = 1_000;
const EVENTS = 2_000_000;
const CHUNK = 10_000;
/** The producer waits while this many input records are not yet processed (a producer paced by the app). */
const MAX_LAG = 100_000;
const DIR_LIMIT = 50_000_000;

interface Put {
  key: string;
  n: number;
}
interface Latest {
  n: number;
}

const kv: App = defineApp({
  name: 'kv',
  partitions: 8,
  events: {
    Put: record<Put>({
      type: 'record',
      name: 'Put',
      namespace: 'kv',
      fields: [
        { name: 'key', type: 'string' },
        { name: 'n', type: 'long' },
      ],
    }),
  },
  tables: {
    latest: table({ key: 'string', value: record<Latest>({ type: 'record', name: 'Latest', namespace: 'kv', fields: [{ name: 'n', type: 'long' }] }) }),
  },
  inputs: [{ topic: 'puts', events: ['Put'] }],
  procedures: {
    Put: {
      partitionKey: (put) => put.key,
      handle(ctx, put) {
        ctx.tables.latest.put(put.key, { n: put.n });
      },
    },
  },
});

/** Bytes in the data dir now; a file renamed or deleted between listing and stat (a compaction) counts 0. */
function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + (statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0), 0);
}

test('bounded: 1,000 keys written 2,000,000 times stay under 50 MB on disk and restart ready in under 2 s', { timeout: 300_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t, 'farad-bounded-');
  const env = { FARAD_RETENTION_BYTES: '8388608' };
  const started = performance.now();
  const { service, base, log } = await startTestService(t, kv, dataDir, {}, env);
  let maxDir = 0;
  const sampler = setInterval(() => (maxDir = Math.max(maxDir, dirBytes(dataDir))), 50);
  t.after(() => clearInterval(sampler));

  const event = service.ingest.inputEvent('kv.Put');
  for (let sent = 0; sent < EVENTS; sent += CHUNK) {
    while (log.consumerLag().reduce((sum, p) => sum + p.lag, 0) > MAX_LAG) await sleep(5);
    const records = [];
    for (let i = sent; i < Math.min(EVENTS, sent + CHUNK); i++) records.push(service.ingest.record(event, { key: `k${i % KEYS}`, n: i }));
    await service.ingest.send(event, records);
  }
  await waitProcessed(service, log, base, 120_000);
  const loadSeconds = (performance.now() - started) / 1000;
  await log.clean();
  maxDir = Math.max(maxDir, dirBytes(dataDir));
  const metrics = (await http<string>(`${base}/metrics`)).text;
  const putsBytes = metricValue(metrics, 'farad_log_bytes', { topic: 'puts' });
  const changelogBytes = metricValue(metrics, 'farad_log_bytes', { topic: service.app.changelogTopic });
  assert.ok(putsBytes !== undefined && putsBytes > 0, 'farad_log_bytes{topic="puts"} is exposed');
  assert.ok(changelogBytes !== undefined && changelogBytes > 0, 'farad_log_bytes of the changelog is exposed');
  const pauseMs = log.longestCleaningPauseMs;
  const inputStart = Array.from({ length: 8 }, (_, p) => log.startOffset('puts', p)).reduce((a, b) => a + b, 0);
  await service.stop();
  clearInterval(sampler);
  const atRest = dirBytes(dataDir);

  // Restart: ready when every partition restored.
  const restartAt = performance.now();
  const restarted = await startTestService(t, kv, dataDir, {}, env);
  await waitFor('/readyz 200 after the restart', async () => (await fetch(`${restarted.base}/readyz`)).status === 200, { timeoutMs: 30_000, intervalMs: 5 });
  const readyMs = performance.now() - restartAt;

  const rows = await scanTableHttp(restarted.base, 'latest', 1000);
  assert.equal(rows.length, KEYS);
  for (const row of rows) {
    const k = Number(String(row.key).slice(1));
    assert.deepEqual(row.value, { n: EVENTS - KEYS + k }, `key ${String(row.key)}`);
  }
  t.diagnostic(
    `${EVENTS.toLocaleString('en-US')} events in ${loadSeconds.toFixed(1)} s; data dir at most ${(maxDir / 1e6).toFixed(1)} MB, ${(atRest / 1e6).toFixed(1)} MB at rest ` +
      `(puts ${((putsBytes ?? 0) / 1e6).toFixed(1)} MB, changelog ${((changelogBytes ?? 0) / 1e6).toFixed(2)} MB; ${inputStart.toLocaleString('en-US')} input records deleted); ` +
      `ready ${readyMs.toFixed(0)} ms after restart; longest cleaning slice ${pauseMs.toFixed(1)} ms`,
  );
  assert.ok(maxDir < DIR_LIMIT, `data dir reached ${maxDir} bytes`);
  assert.ok(inputStart > EVENTS / 2, 'processed input was deleted by retention');
  assert.ok(readyMs < 2_000, `ready ${readyMs.toFixed(0)} ms after the restart`);
  assert.ok(pauseMs < 25, `the cleaner held the event loop for ${pauseMs.toFixed(1)} ms`);
});

// ---- the log itself --------------------------------------------------------------------------

const SMALL: RetentionOptions = {
  bytes: 65_536,
  ms: 1e12,
  topics: { keep: { bytes: 1e12 } },
  tombstoneMs: 60_000,
  segmentBytes: 65_536,
  checkIntervalMs: 3_600_000,
};

function openSmall(dataDir: string, retention: RetentionOptions | undefined = SMALL): Promise<EmbeddedLog> {
  return EmbeddedLog.open({ dataDir, logger: createLogger('silent'), group: 'g', inputTopics: ['in'], changelogTopic: 'cl', partitions: 1, retention });
}

function readAll(log: EmbeddedLog, topic: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (let from = 0; ; ) {
    const chunk = log.read(topic, 0, from, 10_000);
    if (chunk.length === 0) return out;
    out.push(...chunk);
    from = chunk[chunk.length - 1]!.offset + 1;
  }
}

const kb = (i: number): Buffer => Buffer.alloc(1000, i % 256);

const view = (records: readonly LogRecord[]): Array<[number, string | null, string | null]> =>
  records.map((r) => [r.offset, r.key?.toString() ?? null, digest(r.value)]);

/** A short stand-in for a value in assertion messages: its length and first byte. */
const digest = (value: Buffer | null | undefined): string | null => (value ? `${value.length}:${value[0]}` : null);

test('retention: processed input and old outputs go, unprocessed input and offsets stay, across a reopen', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t, 'farad-retention-');
  const log = await openSmall(dataDir);
  await log.ensureTopics([
    { name: 'in', partitions: 1 },
    { name: 'out', partitions: 1 },
    { name: 'keep', partitions: 1 },
    { name: 'cl', partitions: 1, compacted: true },
  ]);
  const ROUNDS = 400;
  for (let i = 0; i < ROUNDS; i++) {
    await log.append([
      { topic: 'in', partition: 0, timestamp: Date.now(), key: null, value: kb(i) },
      { topic: 'keep', partition: 0, timestamp: Date.now(), key: null, value: kb(i) },
    ]);
    await log.commitPlan({
      partition: 0,
      records: [{ topic: 'out', partition: 0, timestamp: Date.now(), key: null, value: kb(i) }],
      offsets: [{ topic: 'in', partition: 0, offset: Math.min(i, 300) }],
      inputCount: 1,
    });
  }
  const bytesBefore = 3 * ROUNDS * 1000; // record values written
  await log.clean();
  const bytesAfter = log.diskBytes;

  // Input: nothing at or after the committed offset (300) goes; processed input beyond retention does.
  assert.equal(log.committedOffset('g', 'in', 0), 300);
  const start = log.startOffset('in', 0);
  assert.ok(start > 0 && start <= 300, `input starts at ${start}`);
  const inputs = readAll(log, 'in');
  assert.deepEqual(inputs.map((r) => r.offset), Array.from({ length: ROUNDS - start }, (_, i) => start + i));
  inputs.forEach((r) => assert.deepEqual(r.value, kb(r.offset), `input ${r.offset} intact at its offset`));
  // Outputs: at least the newest 64 KiB; older ones go.
  const outputs = readAll(log, 'out');
  assert.ok(outputs.length >= 63 && outputs.length < ROUNDS, `${outputs.length} outputs kept`);
  assert.equal(outputs[outputs.length - 1]!.offset, ROUNDS - 1);
  outputs.forEach((r) => assert.deepEqual(r.value, kb(r.offset)));
  // A topic with its own retention keeps everything.
  assert.equal(readAll(log, 'keep').length, ROUNDS);
  assert.ok(bytesAfter < bytesBefore * 0.75, `cleaning kept the journal small: ${bytesBefore} bytes of values written, ${bytesAfter} bytes on disk`);
  const usage = new Map(log.diskUsage().map((u) => [u.topic, u.bytes]));
  assert.ok(usage.get('keep')! > 2 * usage.get('out')!, `farad_log_bytes follows retention: ${JSON.stringify([...usage])}`);
  const before = { inputs: view(inputs), outputs: view(outputs), keep: view(readAll(log, 'keep')) };
  await log.close();

  // Reopen: replay reads the live segments only and rebuilds the same index and metadata.
  const reopened = await openSmall(dataDir, undefined);
  t.after(() => reopened.close());
  for (const topic of ['in', 'out', 'keep', 'cl']) assert.ok(reopened.hasTopic(topic), `topic ${topic} survived`);
  assert.equal(reopened.committedOffset('g', 'in', 0), 300);
  assert.deepEqual({ inputs: view(readAll(reopened, 'in')), outputs: view(readAll(reopened, 'out')), keep: view(readAll(reopened, 'keep')) }, before);
  assert.equal(reopened.endOffset('out', 0), ROUNDS);
  await reopened.append([{ topic: 'out', partition: 0, timestamp: Date.now(), key: null, value: kb(1) }]);
  assert.equal(reopened.endOffset('out', 0), ROUNDS + 1, 'appends go on at the old end');
  t.diagnostic(`${bytesBefore} bytes of values written, journal ${bytesAfter} bytes`);
});

test('compaction: the latest record per key at its offset, old delete markers dropped, fresh ones kept', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t, 'farad-compaction-');
  const log = await openSmall(dataDir);
  await log.ensureTopics([
    { name: 'cl', partitions: 1, compacted: true },
    { name: 'pad', partitions: 1 },
  ]);
  const ROUNDS = 400;
  const written: Array<[number, string, string | null]> = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Keys k0..k9 until round 340, then only k0..k2; k3 is deleted long ago (its marker may go), k4 just now (its marker stays).
    const key = i < 340 ? `k${i % 10}` : `k${i % 3}`;
    const tombstone = i === 333 || i === 334;
    const value = tombstone ? null : kb(i);
    await log.commitPlan({
      partition: 0,
      records: [{ topic: 'cl', partition: 0, timestamp: i === 333 ? Date.now() - 120_000 : Date.now(), key: Buffer.from(key), value }],
      offsets: [],
      inputCount: 0,
    });
    written.push([i, key, digest(value)]);
  }
  // Push the changelog out of the head segment (the head is never cleaned), with padding that expires.
  for (let i = 0; i < 240; i++) await log.append([{ topic: 'pad', partition: 0, timestamp: Date.now(), key: null, value: kb(i) }]);
  await log.clean();

  const latest = new Map<string, [number, string, string | null]>();
  for (const w of written) latest.set(w[1], w);
  latest.delete('k3');
  const expected = [...latest.values()].sort((a, b) => a[0] - b[0]);
  const changelog = view(readAll(log, 'cl'));
  assert.deepEqual(changelog, expected);
  assert.equal(log.endOffset('cl', 0), ROUNDS, 'the end offset stays');
  await log.close();

  const reopened = await openSmall(dataDir, undefined);
  t.after(() => reopened.close());
  assert.deepEqual(view(readAll(reopened, 'cl')), expected);
  assert.equal(reopened.endOffset('cl', 0), ROUNDS);
  t.diagnostic(`changelog of ${ROUNDS} writes holds ${changelog.length} records`);
});

test('disk full: a roll that fails keeps the log writable and loses nothing', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t, 'farad-full-');
  const log = await openSmall(dataDir, { ...SMALL, bytes: 1e12 });
  t.after(() => log.close());
  await log.ensureTopics([{ name: 'in', partitions: 1 }]);
  // The next roll writes its new head into /dev/full: ENOSPC.
  symlinkSync('/dev/full', join(dataDir, 'journal.next'));
  for (let i = 0; i < 100; i++) await log.append([{ topic: 'in', partition: 0, timestamp: Date.now(), key: null, value: Buffer.alloc(1000, i) }]);
  assert.ok(!readdirSync(dataDir).some((n) => n.startsWith('segment-')), 'no segment could be sealed');
  await sleep(1_100); // the roll is retried a second later
  for (let i = 100; i < 200; i++) await log.append([{ topic: 'in', partition: 0, timestamp: Date.now(), key: null, value: Buffer.alloc(1000, i) }]);
  assert.ok(readdirSync(dataDir).some((n) => n.startsWith('segment-')), 'the roll went through once there was room');
  const records = readAll(log, 'in');
  assert.equal(records.length, 200);
  records.forEach((r, i) => assert.deepEqual(r.value, Buffer.alloc(1000, i)));
});

test('disk full at start: one line naming the data directory and what to do, exit status 2', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t, 'farad-full-start-');
  symlinkSync('/dev/full', join(dataDir, 'journal.log'));
  const port = await freePort();
  const result = await runCli(t, ['run', '--app', 'examples/voter'], { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1' });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /disk holding the data directory .* is full/);
  assert.ok(result.stderr.includes(dataDir), result.stderr);
  assert.match(result.stderr, /FARAD_RETENTION_BYTES/);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
});
