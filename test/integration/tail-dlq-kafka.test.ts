/**
 * Seeing what happened and replaying dead letters on Kafka:
 *
 * 1. `farad tail` of outputs, dead letters and changelog shows what an independent read_committed
 *    kafkajs consumer sees; `--follow` prints a record produced later; `GET /topics/:topic/records`
 *    pages walk every record once and answer the same JSON.
 * 2. After a fix (the app's `allowNegative` setting), `farad dlq replay` (Kafka transactions under
 *    `<app>-dlq-replay`) has every dead letter applied exactly once; a second replay replays
 *    nothing; timers are skipped.
 * 3. A replay killed (kill -9) midway and run again, and a replay fenced by a second one started
 *    beside it, still replay each dead letter exactly once: counted on the input topic and in the
 *    replay log independently (read_committed).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import avsc from 'avsc';
import type { Admin } from 'kafkajs';
import type { App, Service } from '../../src/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { REPLAY_HEADERS, type RecordLine } from '../../src/streams/index.js';
import { exitOf, runCli, spawnCli, tempDir } from '../e2e/helpers.js';
import { baseUrl, brokers, deleteGroups, deleteTopics, readTopic, ROOT, sleep, startKafkaService, testKafka, uid, waitFor, type ReadRecord } from './helpers.js';

const PARTITIONS = 3;
const SCHEMAS: Record<'Op' | 'Applied' | 'Total', avsc.Schema> = {
  Op: { type: 'record', name: 'Op', namespace: 'kfix', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] },
  Applied: { type: 'record', name: 'Applied', namespace: 'kfix', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }, { name: 'total', type: 'long' }] },
  Total: { type: 'record', name: 'Total', namespace: 'kfix', fields: [{ name: 'total', type: 'long' }] },
};
const TYPES = {
  Op: avsc.Type.forSchema(SCHEMAS.Op),
  Applied: avsc.Type.forSchema(SCHEMAS.Applied),
  Total: avsc.Type.forSchema(SCHEMAS.Total),
  // farad's own rows of the input offsets each batch consumed (the __input_offsets table).
  InputOffset: avsc.Type.forSchema({ type: 'record', name: 'FaradInputOffset', fields: [{ name: 'next', type: 'long' }] }),
};

interface Names {
  readonly app: string;
  readonly input: string;
  readonly output: string;
  readonly dlq: string;
  readonly changelog: string;
  readonly replays: string;
  readonly schemas: string;
}

function namesOf(suffix: string): Names {
  const app = `kfix_${suffix}`;
  return { app, input: `kfix-ops_${suffix}`, output: `kfix-applied_${suffix}`, dlq: `${app}-dlq`, changelog: `${app}-changelog`, replays: `${app}-dlq-replays`, schemas: `${app}-schemas` };
}

/** The app as a file of its own (the CLI loads it): negative amounts throw until `allowNegative`; 13 sets a timer that always throws. */
function writeApp(dir: string, names: Names): string {
  const file = join(dir, 'kfix-app.mts');
  writeFileSync(
    file,
    `import { defineApp, record, table } from ${JSON.stringify(join(ROOT, 'src/index.ts'))};
interface Op { id: string; amount: number }
interface Applied { id: string; amount: number; total: number }
export default defineApp({
  name: ${JSON.stringify(names.app)},
  partitions: ${PARTITIONS},
  settings: { allowNegative: false },
  events: { Op: record<Op>(${JSON.stringify(SCHEMAS.Op)}), Applied: record<Applied>(${JSON.stringify(SCHEMAS.Applied)}) },
  tables: { totals: table({ key: 'string', value: record<{ total: number }>(${JSON.stringify(SCHEMAS.Total)}) }) },
  inputs: [{ topic: ${JSON.stringify(names.input)}, events: ['Op'] }],
  outputs: { Applied: ${JSON.stringify(names.output)} },
  timers: {
    doom: {
      payload: record<{ why: string }>({ type: 'record', name: 'Doom', namespace: 'kfix', fields: [{ name: 'why', type: 'string' }] }),
      handle(ctx, timer) { throw new Error('doom of ' + timer.key); },
    },
  },
  procedures: {
    Op: {
      partitionKey: (op) => op.id,
      emits: ['Applied'],
      handle(ctx, op) {
        if (op.amount < 0 && !ctx.settings.allowNegative) throw new Error('negative amount ' + op.amount + ' of ' + op.id);
        if (op.amount === 13) ctx.timers.set('doom', op.id, { at: ctx.timestamp, payload: { why: 'thirteen' } });
        const total = (ctx.tables.totals.get(op.id)?.total ?? 0) + op.amount;
        ctx.tables.totals.put(op.id, { total });
        ctx.emit('Applied', { ...op, total });
      },
    },
  },
});
`,
  );
  return file;
}

interface Op {
  id: string;
  amount: number;
}

async function setUp(t: TestContext): Promise<{ names: Names; appFile: string; app: App; admin: Admin; cli: Record<string, string> }> {
  const names = namesOf(uid());
  const dir = tempDir(t, 'farad-kfix-');
  const appFile = writeApp(dir, names);
  const app = ((await import(pathToFileURL(appFile).href)) as { default: App }).default;
  const admin = testKafka().admin();
  await admin.connect();
  t.after(async () => {
    await deleteTopics(admin, Object.values(names).filter((n) => n !== names.app));
    await deleteGroups(admin, [names.app]);
    await admin.disconnect();
  });
  return { names, appFile, app, admin, cli: { FARAD_TRANSPORT: 'kafka', FARAD_KAFKA_BROKERS: brokers().join(','), FARAD_LOG_LEVEL: 'warn' } };
}

async function start(t: TestContext, app: App, fixed: boolean): Promise<Service> {
  const service = await startKafkaService(app, { workers: 1, settings: fixed ? { allowNegative: true } : {} });
  t.after(() => service.stop());
  await waitFor('all partitions ready', async () => (await fetch(`${baseUrl(service)}/readyz`)).status === 200, { timeoutMs: 60_000 });
  return service;
}

async function post(service: Service, ops: readonly Op[]): Promise<void> {
  for (let i = 0; i < ops.length; i += 500) {
    const answer = await fetch(`${baseUrl(service)}/events/kfix.Op`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ops.slice(i, i + 500)) });
    assert.equal(answer.status, 202, await answer.text());
  }
}

/** Every five ops one negative (dead-lettered until the fix), and two of 13 (a failing timer each). */
function makeOps(count: number): Op[] {
  return Array.from({ length: count }, (_, i) => ({ id: `acct-${i % 7}`, amount: i % 5 === 2 ? -(i + 1) : i === 13 || i === 26 ? 13 : i + 1 }));
}

async function tailLines(t: TestContext, env: Record<string, string>, args: readonly string[]): Promise<RecordLine[]> {
  const result = await runCli(t, ['tail', ...args], env, undefined, 60_000);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RecordLine);
}

const byPosition = (a: { partition: number; offset: number }, b: { partition: number; offset: number }): number => a.partition - b.partition || a.offset - b.offset;
const json = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

/** What a record read by the test's own consumer must look like as a tail line (decoded with avsc alone). */
function expectedLine(names: Names, r: ReadRecord): Record<string, unknown> {
  const base = { topic: '', partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key, headers: r.headers };
  const body = (type: avsc.Type): unknown => json(type.fromBuffer(r.value!.subarray(10)));
  if (r.headers['farad.dlq.reason'] !== undefined) {
    const h = r.headers;
    const timer = h['farad.dlq.timer.due-at'] !== undefined;
    return {
      ...base,
      topic: names.dlq,
      ...(timer ? { value: JSON.parse(r.value!.toString()) as unknown } : { eventType: 'kfix.Op', value: body(TYPES.Op) }),
      deadLetter: {
        reason: h['farad.dlq.reason'],
        error: h['farad.dlq.error'],
        eventType: h['farad.dlq.event-type'],
        source: timer ? null : { topic: h['farad.dlq.source.topic'], partition: Number(h['farad.dlq.source.partition']), offset: Number(h['farad.dlq.source.offset']) },
        ...(timer ? { timer: { dueAt: Number(h['farad.dlq.timer.due-at']), firedAt: Number(h['farad.dlq.timer.fired-at']) } } : {}),
      },
    };
  }
  if (r.key?.startsWith('[')) {
    const [table, rowKey] = JSON.parse(r.key) as [string, string];
    if (r.value === null) return { ...base, topic: names.changelog, table, rowKey, value: null, tombstone: true };
    return { ...base, topic: names.changelog, table, rowKey, value: table === 'totals' ? body(TYPES.Total) : table === '__input_offsets' ? body(TYPES.InputOffset) : '(a timer row)' };
  }
  return { ...base, topic: names.output, eventType: 'kfix.Applied', value: body(TYPES.Applied) };
}

function comparable(line: RecordLine): Record<string, unknown> {
  const copy = json(line) as Record<string, unknown>;
  if (copy['table'] === '__timers' && copy['value'] !== null) copy['value'] = '(a timer row)';
  return copy;
}

interface Page {
  items: RecordLine[];
  next: number | string | null;
}

async function pageAll(base: string, topic: string, query: string, limit: number): Promise<RecordLine[]> {
  const items: RecordLine[] = [];
  let from: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const url = `${base}/topics/${topic}/records?limit=${limit}${query}${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
    const answer = await fetch(url);
    const body = (await answer.json()) as Page;
    assert.equal(answer.status, 200, `${url}: ${JSON.stringify(body)}`);
    items.push(...body.items);
    if (body.next === null) return items;
    from = String(body.next);
  }
  throw new Error('paging did not end');
}

async function checkTotals(service: Service, ops: readonly Op[]): Promise<void> {
  const expected = new Map<string, number>();
  for (const op of ops) expected.set(op.id, (expected.get(op.id) ?? 0) + op.amount);
  await waitFor('every account total to count every op once', async () => {
    for (const [id, total] of expected) {
      const row = await fetch(`${baseUrl(service)}/tables/totals/${id}`);
      if (row.status !== 200 || ((await row.json()) as { value: { total: number } }).value.total !== total) return false;
    }
    return true;
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

/** Re-injected records per dead letter (input topic headers) and replay log entries per key, read_committed by the test's own consumer. */
async function replayCounts(names: Names): Promise<{ injected: Map<string, number>; logged: Map<string, number> }> {
  const kafka = testKafka();
  const injected = new Map<string, number>();
  for (const r of await readTopic(kafka, names.input)) {
    const p = r.headers[REPLAY_HEADERS.dlqPartition];
    if (p === undefined) continue;
    const id = `${p}:${r.headers[REPLAY_HEADERS.dlqOffset]}`;
    injected.set(id, (injected.get(id) ?? 0) + 1);
  }
  const logged = new Map<string, number>();
  for (const r of await readTopic(kafka, names.replays)) logged.set(r.key!, (logged.get(r.key!) ?? 0) + 1);
  return { injected, logged };
}

test('tail on Kafka matches a read_committed consumer; --follow; HTTP pages; replay after a fix applies each dead letter once', { timeout: 240_000 }, async (t) => {
  const { names, appFile, app, cli } = await setUp(t);
  const broken = await start(t, app, false);
  const ops = makeOps(45);
  const negatives = ops.filter((op) => op.amount < 0).length;
  await post(broken, ops);
  const base = baseUrl(broken);
  await waitFor('every op processed', async () => (await pageAll(base, names.dlq, '', 1000)).length === negatives + 2 && (await pageAll(base, names.output, '', 1000)).length === ops.length - negatives, { timeoutMs: 60_000, intervalMs: 500 });

  const appArgs = ['--app', appFile];
  const kafka = testKafka();
  for (const topic of [names.output, names.dlq, names.changelog]) {
    const lines = await tailLines(t, cli, [topic, ...appArgs]);
    const theirs = (await readTopic(kafka, topic)).sort(byPosition);
    assert.ok(theirs.length > 0, topic);
    assert.deepEqual([...lines].sort(byPosition).map(comparable), theirs.map((r) => expectedLine(names, r)), topic);
    // HTTP pages of outputs and dead letters: the same JSON, each record once.
    if (topic !== names.changelog) {
      assert.deepEqual((await pageAll(base, topic, '', 4)).map(json), lines.map(json), `${topic} over HTTP`);
      for (let p = 0; p < PARTITIONS; p++) assert.deepEqual((await pageAll(base, topic, `&partition=${p}`, 3)).map(json), lines.filter((l) => l.partition === p).map(json));
    }
  }
  assert.equal((await fetch(`${base}/topics/${names.changelog}/records`)).status, 404);

  // --follow from the end of one partition prints what is produced later.
  const target = 1;
  const id = Array.from({ length: 100 }, (_, i) => `late-${i}`).find((k) => partitionForKey(k, PARTITIONS) === target)!;
  const end = ((await (await fetch(`${base}/topics/${names.output}/records?partition=${target}&from=end`)).json()) as { position: number }).position;
  const follower = spawnCli(t, ['tail', names.output, ...appArgs, '--follow', '--partition', String(target), '--from', String(end)], cli);
  await sleep(1000);
  await post(broken, [{ id, amount: 5 }]);
  await waitFor('the follower to print the new record', () => follower.stdout.includes(`"${id}"`), { timeoutMs: 30_000 });
  follower.process.kill('SIGINT');
  assert.equal((await exitOf(follower, 20_000)).code, 0, follower.stderr);
  const followed = follower.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RecordLine);
  assert.deepEqual(followed.map((l) => [l.partition, l.offset, l.value]), [[target, end, { id, amount: 5, total: 5 }]]);
  ops.push({ id, amount: 5 });

  // The fix, then the replay.
  await broken.stop();
  const fixed = await start(t, app, true);
  const replay = await runCli(t, ['dlq', 'replay', ...appArgs, '--batch-size', '4'], cli, undefined, 60_000);
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, /skipped \d+:\d+ \(handler_error, timer:doom\): a timer/);
  assert.match(replay.stdout, new RegExp(`replayed ${negatives} dead letters \\(0 replayed before, 2 not replayable\\)`));
  assert.match(replay.stderr, new RegExp(`replayed ${negatives}/${negatives} dead letters`));
  await checkTotals(fixed, ops);
  const again = await runCli(t, ['dlq', 'replay', ...appArgs], cli, undefined, 60_000);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`replayed 0 dead letters \\(${negatives} replayed before, 2 not replayable\\)`));
  const counts = await replayCounts(names);
  assert.equal(counts.injected.size, negatives);
  assert.ok([...counts.injected.values()].every((n) => n === 1));
  assert.deepEqual([...counts.logged.keys()].sort(), [...counts.injected.keys()].sort());
  assert.ok([...counts.logged.values()].every((n) => n === 1));
  await checkTotals(fixed, ops);
  const list = await runCli(t, ['dlq', 'list', ...appArgs], cli, undefined, 60_000);
  assert.match(list.stdout, new RegExp(`^${names.dlq}: ${negatives + 2} dead letters: 0 to replay, ${negatives} replayed, 2 not replayable`));
  await fixed.stop(); // before the topics are deleted
});

test('on Kafka a replay killed midway, and one fenced by a second replay, still replay each dead letter exactly once', { timeout: 300_000 }, async (t) => {
  const { names, appFile, app, cli } = await setUp(t);
  const broken = await start(t, app, false);
  const ops: Op[] = Array.from({ length: 600 }, (_, i) => ({ id: `acct-${i % 11}`, amount: -(i + 1) }));
  await post(broken, ops);
  await waitFor('every op dead-lettered', async () => (await pageAll(baseUrl(broken), names.dlq, '', 1000)).length === ops.length, { timeoutMs: 60_000, intervalMs: 500 });
  await broken.stop();
  const appArgs = ['--app', appFile, '--batch-size', '1'];

  // kill -9 after the first committed transaction.
  const killed = spawnCli(t, ['dlq', 'replay', ...appArgs], cli);
  await waitFor('the first replayed dead letter', () => /replayed [1-9]\d*\/600/.test(killed.stderr) || killed.process.exitCode !== null, { timeoutMs: 60_000, intervalMs: 5 });
  killed.process.kill('SIGKILL');
  assert.equal((await exitOf(killed, 10_000)).signal, 'SIGKILL', `finished before it could be killed: ${killed.stderr}`);
  const midway = await replayCounts(names);
  assert.ok(midway.logged.size > 0 && midway.logged.size < ops.length, `killed midway: ${midway.logged.size}`);
  assert.deepEqual([...midway.injected.keys()].sort(), [...midway.logged.keys()].sort(), 'each transaction holds both or neither');

  // A replay fenced by a second one started beside it: it stops; the second finishes the job.
  const first = spawnCli(t, ['dlq', 'replay', ...appArgs], cli);
  await waitFor('the first replay to commit', () => /replayed [1-9]\d*\//.test(first.stderr) || first.process.exitCode !== null, { timeoutMs: 60_000, intervalMs: 5 });
  const second = await runCli(t, ['dlq', 'replay', '--app', appFile, '--batch-size', '20'], cli, undefined, 120_000);
  const fenced = await exitOf(first, 60_000);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(fenced.code, 2, `the first replay was fenced: ${first.stderr}`);
  assert.match(first.stderr, /took the transactional id "kfix_\w+-dlq-replay" over/);
  const final = await replayCounts(names);
  assert.equal(final.injected.size, ops.length);
  assert.ok([...final.injected.values()].every((n) => n === 1), 'each dead letter re-injected once');
  assert.equal(final.logged.size, ops.length);
  assert.ok([...final.logged.values()].every((n) => n === 1), 'each dead letter logged once');

  const fixed = await start(t, app, true);
  await checkTotals(fixed, ops);
  await fixed.stop(); // before the topics are deleted
});
