/**
 * Seeing what happened, and replaying dead letters, on the embedded log:
 *
 * 1. `farad tail` of outputs, dead letters and changelog while farad runs and after it stopped
 *    shows exactly what the journal files hold (read back here with avsc, not farad's codecs);
 *    `GET /topics/:topic/records` pages walk every record once and answer the same JSON;
 *    `--follow` prints a record produced later; a failing handler is logged once per window with
 *    the count of the failures it held back.
 * 2. After a fix (the app's `allowNegative` setting), `farad dlq replay` through the running farad
 *    applies every dead letter exactly once (the tables say so); a second replay replays nothing;
 *    timers are listed and skipped.
 * 3. A replay killed (kill -9) midway and run again replays each dead letter exactly once, counted
 *    in the input topic and in the replay log independently.
 * 4. The read-only reader sees what a live log holds while it appends, rolls and compacts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import avsc from 'avsc';
import { createLogger, EmbeddedLog, type App, type LogRecord } from '../../src/index.js';
import { HANDLER_FAILED_LOG } from '../../src/metrics/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { EmbeddedLogReader, REPLAY_HEADERS, type RecordLine } from '../../src/streams/index.js';
import { exitOf, freePort, http, ROOT, runCli, sleep, spawnCli, tempDir, waitFor, withLog, type Child } from './helpers.js';

const PARTITIONS = 3;
const TOKEN = 'tail-dlq-secret';

const SCHEMAS: Record<'Op' | 'Applied' | 'Total', avsc.Schema> = {
  Op: { type: 'record', name: 'Op', namespace: 'fix', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] },
  Applied: { type: 'record', name: 'Applied', namespace: 'fix', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }, { name: 'total', type: 'long' }] },
  Total: { type: 'record', name: 'Total', namespace: 'fix', fields: [{ name: 'total', type: 'long' }] },
};

/**
 * The app under test, as a file of its own (the CLI loads it): a negative amount throws unless
 * the `allowNegative` setting says it is fine now (the fix); an amount of 13 sets a timer whose
 * handler always throws (a dead-lettered timer).
 */
function writeApp(dir: string): string {
  const file = join(dir, 'fix-app.mts');
  writeFileSync(
    file,
    `import { defineApp, record, table } from ${JSON.stringify(join(ROOT, 'src/index.ts'))};
interface Op { id: string; amount: number }
interface Applied { id: string; amount: number; total: number }
export default defineApp({
  name: 'fix',
  partitions: ${PARTITIONS},
  settings: { allowNegative: false },
  events: {
    Op: record<Op>(${JSON.stringify(SCHEMAS.Op)}),
    Applied: record<Applied>(${JSON.stringify(SCHEMAS.Applied)}),
  },
  tables: { totals: table({ key: 'string', value: record<{ total: number }>(${JSON.stringify(SCHEMAS.Total)}) }) },
  inputs: [{ topic: 'fix-ops', events: ['Op'] }],
  outputs: { Applied: 'fix-applied' },
  timers: {
    doom: {
      payload: record<{ why: string }>({ type: 'record', name: 'Doom', namespace: 'fix', fields: [{ name: 'why', type: 'string' }] }),
      handle(ctx, timer) {
        throw new Error('doom of ' + timer.key);
      },
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

/** `count` ops over 9 accounts: every fifth negative (dead-lettered until the fix), two of amount 13 (a failing timer each). */
function makeOps(count: number, salt = 0): Op[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `acct-${(i + salt) % 9}`,
    amount: i % 5 === 2 ? -(i + 1) : i === 13 || i === 26 ? 13 : i + 1,
  }));
}

interface Farad {
  readonly child: Child;
  readonly base: string;
  readonly env: Record<string, string>;
}

async function startFarad(t: TestContext, appFile: string, dataDir: string, extra: Record<string, string> = {}): Promise<Farad> {
  const port = await freePort();
  const env = { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn', FARAD_HTTP_TOKEN: TOKEN, ...extra };
  const child = spawnCli(t, ['run', '--app', appFile], env);
  const base = `http://127.0.0.1:${port}`;
  await waitFor('farad to be ready', async () => {
    if (child.process.exitCode !== null) throw new Error(`farad exited ${child.process.exitCode}: ${child.stderr}`);
    return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  return { child, base, env };
}

async function stopFarad(farad: Farad): Promise<void> {
  farad.child.process.kill('SIGTERM');
  const exit = await exitOf(farad.child, 20_000);
  assert.equal(exit.code, 0, farad.child.stderr);
}

const auth = { authorization: `Bearer ${TOKEN}` };

async function post(base: string, ops: readonly Op[]): Promise<void> {
  const answer = await http(`${base}/events/fix.Op`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(ops) });
  assert.equal(answer.status, 202, answer.text);
}

interface Page {
  items: RecordLine[];
  next: number | string | null;
  position: number | string;
}

/** Every record of a topic through `GET /topics/:topic/records`, following `next`. */
async function pageAll(base: string, topic: string, query: string, limit: number): Promise<{ items: RecordLine[]; pages: number }> {
  const items: RecordLine[] = [];
  let from: string | undefined;
  for (let pages = 1; pages < 1000; pages++) {
    const url = `${base}/topics/${topic}/records?limit=${limit}${query}${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
    const answer = await http<Page>(url, { headers: auth });
    assert.equal(answer.status, 200, `${url}: ${answer.text}`);
    assert.ok(answer.body.items.length <= limit);
    items.push(...answer.body.items);
    if (answer.body.next === null) return { items, pages };
    from = String(answer.body.next);
  }
  throw new Error('paging did not end');
}

async function tailLines(t: TestContext, env: Record<string, string>, args: readonly string[]): Promise<RecordLine[]> {
  const result = await runCli(t, ['tail', ...args], env);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RecordLine);
}

const byPosition = (a: { partition: number; offset: number }, b: { partition: number; offset: number }): number => a.partition - b.partition || a.offset - b.offset;
const types = {
  Op: avsc.Type.forSchema(SCHEMAS.Op),
  Applied: avsc.Type.forSchema(SCHEMAS.Applied),
  Total: avsc.Type.forSchema(SCHEMAS.Total),
  // farad's own rows of the input offsets each batch consumed (the __input_offsets table).
  InputOffset: avsc.Type.forSchema({ type: 'record', name: 'FaradInputOffset', fields: [{ name: 'next', type: 'long' }] }),
};

/** What a record of the files must look like as a tail line: decoded here with avsc alone. */
function expectedLine(record: LogRecord): Record<string, unknown> {
  const base = { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp, key: record.key?.toString('utf8') ?? null, headers: record.headers };
  const body = (type: avsc.Type): unknown => JSON.parse(JSON.stringify(type.fromBuffer(record.value!.subarray(10)))) as unknown;
  if (record.topic === 'fix-applied') return { ...base, eventType: 'fix.Applied', value: body(types.Applied) };
  if (record.topic === 'fix-dlq') {
    const h = record.headers;
    const timer = h['farad.dlq.timer.due-at'] !== undefined;
    return {
      ...base,
      ...(timer ? { value: JSON.parse(record.value!.toString()) as unknown } : { eventType: 'fix.Op', value: body(types.Op) }),
      deadLetter: {
        reason: h['farad.dlq.reason'],
        error: h['farad.dlq.error'],
        eventType: h['farad.dlq.event-type'],
        source: timer ? null : { topic: h['farad.dlq.source.topic'], partition: Number(h['farad.dlq.source.partition']), offset: Number(h['farad.dlq.source.offset']) },
        ...(timer ? { timer: { dueAt: Number(h['farad.dlq.timer.due-at']), firedAt: Number(h['farad.dlq.timer.fired-at']) } } : {}),
      },
    };
  }
  // The changelog: key ["table", key]; rows of `totals` and input offsets checked whole, timer rows by presence.
  const [table, rowKey] = JSON.parse(record.key!.toString()) as [string, string];
  if (record.value === null) return { ...base, table, rowKey, value: null, tombstone: true };
  return { ...base, table, rowKey, value: table === 'totals' ? body(types.Total) : table === '__input_offsets' ? body(types.InputOffset) : '(a timer row)' };
}

function comparable(line: RecordLine): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(line)) as Record<string, unknown>;
  if (copy['table'] === '__timers' && copy['value'] !== null) copy['value'] = '(a timer row)';
  return copy;
}

/** Every record of the topic in the journal files (the data dir must be free). */
async function filesOf(dataDir: string, app: App, topic: string): Promise<LogRecord[]> {
  return withLog(dataDir, app, (log) => {
    const out: LogRecord[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const end = log.endOffset(topic, p);
      for (let from = 0; from < end; ) {
        const chunk = log.read(topic, p, from, 10_000);
        if (chunk.length === 0) break;
        out.push(...chunk);
        from = chunk[chunk.length - 1]!.offset + 1;
      }
    }
    return out;
  });
}

async function loadFixApp(file: string): Promise<App> {
  return ((await import(pathToFileURL(file).href)) as { default: App }).default;
}

function handlerLines(stderr: string, eventType: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['msg'] === HANDLER_FAILED_LOG && l['eventType'] === eventType);
}

test('tail and GET /topics/:topic/records show what the files hold; --follow; one log line per window for a failing handler', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const appFile = writeApp(dir);
  const app = await loadFixApp(appFile);
  const dataDir = join(dir, 'data');
  const farad = await startFarad(t, appFile, dataDir);
  const ops = makeOps(60);
  const negatives = ops.filter((op) => op.amount < 0).length;
  await post(farad.base, ops);
  await waitFor('every op processed', async () => {
    const [dlq, applied] = await Promise.all([pageAll(farad.base, 'fix-dlq', '', 1000), pageAll(farad.base, 'fix-applied', '', 1000)]);
    return dlq.items.length === negatives + 2 && applied.items.length === ops.length - negatives;
  });

  const cli = { FARAD_DATA_DIR: dataDir, FARAD_LOG_LEVEL: 'warn' };
  const appArgs = ['--app', appFile];
  // While farad holds the data directory.
  const running = {
    applied: await tailLines(t, cli, ['fix-applied', ...appArgs]),
    dlq: await tailLines(t, cli, ['fix-dlq', ...appArgs]),
    changelog: await tailLines(t, cli, ['fix-changelog', ...appArgs]),
  };
  assert.equal(running.applied.length, ops.length - negatives);
  assert.equal(running.dlq.length, negatives + 2);
  assert.ok(running.changelog.some((l) => l.table === 'totals'));
  assert.deepEqual([...running.applied].sort(byPosition), running.applied, 'partition by partition, in offset order');
  const limited = await tailLines(t, cli, ['fix-applied', ...appArgs, '--partition', '1', '--from', '2', '--limit', '3']);
  assert.deepEqual(limited, running.applied.filter((l) => l.partition === 1 && l.offset >= 2).slice(0, 3));

  // HTTP: pages over every partition, and per partition, walk every record once; same JSON as tail.
  const everything = await pageAll(farad.base, 'fix-applied', '', 7);
  assert.ok(everything.pages >= Math.ceil(running.applied.length / 7));
  assert.deepEqual(everything.items, running.applied);
  for (let p = 0; p < PARTITIONS; p++) {
    const one = await pageAll(farad.base, 'fix-applied', `&partition=${p}`, 5);
    assert.deepEqual(one.items, running.applied.filter((l) => l.partition === p), `partition ${p}`);
  }
  assert.deepEqual((await pageAll(farad.base, 'fix-dlq', '', 4)).items, running.dlq);
  const refused = async (url: string, headers: Record<string, string> = auth) => http<{ error: string; message: string }>(`${farad.base}${url}`, { headers });
  assert.equal((await refused('/topics/fix-applied/records', {})).status, 401);
  const notServed = await refused('/topics/fix-changelog/records');
  assert.equal(notServed.status, 404);
  assert.match(notServed.body.message, /"fix-applied", "fix-dlq"/);
  assert.equal((await refused('/topics/nope/records')).status, 404);
  for (const bad of ['?partition=3', '?partition=x', '?partition=0&from=abc', '?from=5', '?limit=0', '?limit=1001']) {
    const answer = await refused(`/topics/fix-applied/records${bad}`);
    assert.equal(answer.status, 400, `${bad}: ${answer.status} ${JSON.stringify(answer.body)}`);
  }

  // --follow prints a record produced after it started, then stops on SIGINT.
  const target = 2;
  const id = Array.from({ length: 100 }, (_, i) => `late-${i}`).find((k) => partitionForKey(k, PARTITIONS) === target)!;
  const end = (await http<Page>(`${farad.base}/topics/fix-applied/records?partition=${target}&from=end`, { headers: auth })).body.position;
  const follower = spawnCli(t, ['tail', 'fix-applied', ...appArgs, '--follow', '--partition', String(target), '--from', String(end)], cli);
  await sleep(500);
  await post(farad.base, [{ id, amount: 7 }]);
  await waitFor('the follower to print the new record', () => follower.stdout.includes(`"${id}"`), { timeoutMs: 15_000 });
  follower.process.kill('SIGINT');
  assert.equal((await exitOf(follower, 10_000)).code, 0, follower.stderr);
  const followed = follower.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RecordLine);
  assert.equal(followed.length, 1);
  assert.deepEqual([followed[0]!.partition, followed[0]!.offset, followed[0]!.value], [target, end, { id, amount: 7, total: 7 }]);

  // The failing handler: one line at once, then (when its window ends) the latest with the count held back.
  await waitFor('the window of failed handler lines to end', () => handlerLines(farad.child.stderr, 'fix.Op').length >= 2, { timeoutMs: 20_000, intervalMs: 200 });
  await sleep(300);
  const lines = handlerLines(farad.child.stderr, 'fix.Op');
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.deepEqual(lines.map((l) => l['suppressed']), [0, negatives - 2]);
  for (const line of lines) {
    assert.equal(line['level'], 40, 'warn');
    assert.equal(typeof line['partition'], 'number');
    assert.equal(typeof line['offset'], 'number');
    const error = line['error'] as { message: string; stack: string };
    assert.match(error.message, /^negative amount -\d+ of acct-\d$/);
    assert.match(error.stack, /negative amount[^\n]*\n\s+at /);
  }
  assert.deepEqual(handlerLines(farad.child.stderr, 'timer:doom').map((l) => l['suppressed']).slice(0, 1), [0]);
  await stopFarad(farad);

  // After it stopped: the same lines (plus the followed record), and exactly what the files hold.
  const stopped = {
    applied: await tailLines(t, cli, ['fix-applied', ...appArgs]),
    dlq: await tailLines(t, cli, ['fix-dlq', ...appArgs]),
    changelog: await tailLines(t, cli, ['fix-changelog', ...appArgs]),
  };
  assert.deepEqual(stopped.applied.filter((l) => l.key !== id), running.applied);
  assert.deepEqual(stopped.dlq, running.dlq);
  for (const [topic, lines] of [['fix-applied', stopped.applied], ['fix-dlq', stopped.dlq], ['fix-changelog', stopped.changelog]] as const) {
    const files = (await filesOf(dataDir, app, topic)).sort(byPosition);
    assert.equal(lines.length, files.length, topic);
    assert.deepEqual(lines.map(comparable), files.map(expectedLine), topic);
  }
});

/** The expected total of every account once every op was applied exactly once. */
function totals(ops: readonly Op[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const op of ops) out.set(op.id, (out.get(op.id) ?? 0) + op.amount);
  return out;
}

async function checkTotals(base: string, ops: readonly Op[]): Promise<void> {
  for (const [id, total] of totals(ops)) {
    const row = await http<{ value: { total: number } }>(`${base}/tables/totals/${id}`, { headers: auth });
    assert.equal(row.status, 200, `${id}: ${row.text}`);
    assert.equal(row.body.value.total, total, id);
  }
}

/** Re-injected records on the input topic, per dead letter; and replay log entries, per key. */
async function replayCounts(t: TestContext, env: Record<string, string>, appFile: string): Promise<{ injected: Map<string, number>; logged: Map<string, number> }> {
  const injected = new Map<string, number>();
  for (const line of await tailLines(t, env, ['fix-ops', '--app', appFile])) {
    const p = line.headers[REPLAY_HEADERS.dlqPartition];
    if (p === undefined) continue;
    const id = `${p}:${line.headers[REPLAY_HEADERS.dlqOffset]}`;
    injected.set(id, (injected.get(id) ?? 0) + 1);
  }
  const logged = new Map<string, number>();
  for (const line of await tailLines(t, env, ['fix-dlq-replays', '--app', appFile])) logged.set(String(line.key), (logged.get(String(line.key)) ?? 0) + 1);
  return { injected, logged };
}

test('dlq replay after a fix, through the running farad: every dead letter applied once; again: nothing; timers skipped', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const appFile = writeApp(dir);
  const dataDir = join(dir, 'data');
  const ops = makeOps(40, 4);
  const negatives = ops.filter((op) => op.amount < 0).length;
  const broken = await startFarad(t, appFile, dataDir);
  await post(broken.base, ops);
  await waitFor('the dead letters', async () => (await pageAll(broken.base, 'fix-dlq', '', 1000)).items.length === negatives + 2);
  const cli = { FARAD_DATA_DIR: dataDir, FARAD_LOG_LEVEL: 'warn', FARAD_HTTP_PORT: broken.env.FARAD_HTTP_PORT!, FARAD_HTTP_TOKEN: TOKEN };

  const list = await runCli(t, ['dlq', 'list', '--app', appFile], cli);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^fix-dlq: ${negatives + 2} dead letters: ${negatives} to replay, 0 replayed, 2 not replayable`));
  assert.match(list.stdout, new RegExp(`handler_error\\s+fix\\.Op\\s+${negatives}\\s+${negatives}\\s+0\\s+0`));
  assert.match(list.stdout, /handler_error\s+timer:doom\s+2\s+0\s+0\s+2/);
  assert.match(list.stdout, /not replayable: a timer \(timer:doom/);
  const onlyHandler = await runCli(t, ['dlq', 'list', '--app', appFile, '--reason', 'decode_error'], cli);
  assert.match(onlyHandler.stdout, /^fix-dlq: 0 dead letters \(reason decode_error\)/);
  const dry = await runCli(t, ['dlq', 'replay', '--app', appFile, '--dry-run'], cli);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`would replay ${negatives} dead letters`));
  assert.deepEqual(await tailLines(t, cli, ['fix-dlq-replays', '--app', appFile]), [], 'a dry run writes nothing');

  // The fix: negative amounts are fine now.
  await stopFarad(broken);
  const fixed = await startFarad(t, appFile, dataDir, { FARAD_SETTINGS_ALLOW_NEGATIVE: 'true' });
  const env = { ...cli, FARAD_HTTP_PORT: fixed.env.FARAD_HTTP_PORT! };
  const replay = await runCli(t, ['dlq', 'replay', '--app', appFile, '--batch-size', '3'], env);
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, new RegExp(`replayed ${negatives} dead letters of fix-dlq through http://127\\.0\\.0\\.1:\\d+ \\(0 replayed before, 2 not replayable`));
  assert.match(replay.stderr, new RegExp(`replayed ${negatives}/${negatives} dead letters`));
  await waitFor('the replayed ops to be applied', async () => (await pageAll(fixed.base, 'fix-applied', '', 1000)).items.length === ops.length);
  await checkTotals(fixed.base, ops);

  // Another app's farad on that port refuses to replay its own dead letters for this one.
  const wrongApp = await fetch(`${fixed.base}/dlq/replay`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ app: 'bank' }) });
  assert.equal(wrongApp.status, 400);
  assert.match(((await wrongApp.json()) as { message: string }).message, /runs app "fix", not "bank"/);

  const again = await runCli(t, ['dlq', 'replay', '--app', appFile], env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`replayed 0 dead letters of fix-dlq through .* \\(${negatives} replayed before, 2 not replayable`));
  const counts = await replayCounts(t, env, appFile);
  assert.equal(counts.injected.size, negatives);
  assert.ok([...counts.injected.values()].every((n) => n === 1));
  assert.deepEqual([...counts.logged.keys()].sort(), [...counts.injected.keys()].sort());
  assert.ok([...counts.logged.values()].every((n) => n === 1));
  await sleep(300);
  assert.equal((await pageAll(fixed.base, 'fix-applied', '', 1000)).items.length, ops.length, 'nothing applied twice');
  await checkTotals(fixed.base, ops);
  const after = await runCli(t, ['dlq', 'list', '--app', appFile], env);
  assert.match(after.stdout, new RegExp(`^fix-dlq: ${negatives + 2} dead letters: 0 to replay, ${negatives} replayed, 2 not replayable`));
  await stopFarad(fixed);
});

test('a replay killed (kill -9) midway and run again replays each dead letter exactly once', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const appFile = writeApp(dir);
  const dataDir = join(dir, 'data');
  const ops: Op[] = Array.from({ length: 600 }, (_, i) => ({ id: `acct-${i % 25}`, amount: -(i + 1) }));
  const broken = await startFarad(t, appFile, dataDir);
  await post(broken.base, ops);
  await waitFor('600 dead letters', async () => (await pageAll(broken.base, 'fix-dlq', '', 1000)).items.length === ops.length);
  await stopFarad(broken);

  // No farad holds the data directory: the replay writes the journal itself, one frame per dead letter.
  const env = { FARAD_DATA_DIR: dataDir, FARAD_LOG_LEVEL: 'warn' };
  const replay = spawnCli(t, ['dlq', 'replay', '--app', appFile, '--batch-size', '1'], env);
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (/replayed [1-9]\d*\/600/.test(replay.stderr)) {
        replay.process.kill('SIGKILL');
        resolve();
      }
    };
    replay.process.stderr!.on('data', check);
    void replay.exited.then(() => resolve());
  });
  const killed = await exitOf(replay, 10_000);
  assert.equal(killed.signal, 'SIGKILL', `the replay finished before it could be killed: ${replay.stderr}`);
  const midway = await replayCounts(t, env, appFile);
  assert.ok(midway.logged.size > 0 && midway.logged.size < ops.length, `killed midway: ${midway.logged.size} of ${ops.length}`);
  assert.deepEqual([...midway.injected.keys()].sort(), [...midway.logged.keys()].sort(), 'each frame holds both or neither');

  const rest = await runCli(t, ['dlq', 'replay', '--app', appFile, '--batch-size', '50'], env, undefined, 60_000);
  assert.equal(rest.code, 0, rest.stderr);
  assert.match(rest.stdout, new RegExp(`replayed ${ops.length - midway.logged.size} dead letters \\(${midway.logged.size} replayed before, 0 not replayable\\)`));
  const final = await replayCounts(t, env, appFile);
  assert.equal(final.injected.size, ops.length);
  assert.ok([...final.injected.values()].every((n) => n === 1), 'each dead letter re-injected once');
  assert.equal(final.logged.size, ops.length);
  assert.ok([...final.logged.values()].every((n) => n === 1), 'each dead letter logged once');

  // Once fixed, farad applies each of them once.
  const fixed = await startFarad(t, appFile, dataDir, { FARAD_SETTINGS_ALLOW_NEGATIVE: 'true' });
  await waitFor('every replayed op applied', async () => (await pageAll(fixed.base, 'fix-applied', '', 1000)).items.length === ops.length, { timeoutMs: 30_000 });
  await checkTotals(fixed.base, ops);
  await stopFarad(fixed);
});

test('the read-only reader sees what a live log holds while it appends, rolls and compacts', { timeout: 60_000 }, async (t) => {
  const dataDir = tempDir(t);
  const log = await EmbeddedLog.open({
    dataDir,
    logger: createLogger('silent'),
    group: 'g',
    inputTopics: [],
    changelogTopic: 'kv-changelog',
    partitions: 2,
    retention: { bytes: 1_000_000_000, ms: 1e12, topics: {}, tombstoneMs: 1e12, segmentBytes: 16 * 1024, checkIntervalMs: 50 },
  });
  t.after(() => log.close());
  await log.ensureTopics([{ name: 'events', partitions: 2 }, { name: 'kv-changelog', partitions: 2, compacted: true }]);
  const reader = await EmbeddedLogReader.open(dataDir);
  t.after(() => reader.close());
  const written = new Map<string, number>();
  const view = (records: readonly LogRecord[]): Array<[number, string, string, number]> => records.map((r) => [r.offset, r.key!.toString(), r.value!.toString('hex'), r.timestamp]);
  /** The latest value per key (what compaction keeps). */
  const latest = (records: readonly LogRecord[]): Map<string, string> => new Map(records.map((r) => [r.key!.toString(), r.value!.toString()]));
  for (let round = 0; round < 120; round++) {
    const records = [];
    for (let i = 0; i < 20; i++) {
      const p = i % 2;
      records.push({ topic: 'events', partition: p, timestamp: Date.now(), key: Buffer.from(`e${round}-${i}`), value: Buffer.alloc(64, round % 256) });
      records.push({ topic: 'kv-changelog', partition: p, timestamp: Date.now(), key: Buffer.from(`k${i % 5}`), value: Buffer.from(`v${round}`) });
    }
    await log.append(records);
    for (const r of records) written.set(`${r.topic}/${r.partition}`, (written.get(`${r.topic}/${r.partition}`) ?? 0) + 1);
    if (round % 3 === 0) {
      await reader.refresh();
      // Everything the reader has is what the log has at those offsets.
      for (let p = 0; p < 2; p++) {
        const end = reader.endOffset('events', p);
        assert.ok(end > 0);
        assert.deepEqual(view(reader.read('events', p, 0, 1_000_000)), view(log.read('events', p, 0, 1_000_000).filter((r) => r.offset < end)), `events/${p} round ${round}`);
      }
    }
  }
  await log.clean();
  assert.ok(log.diskBytes > 0);
  await reader.refresh();
  const fresh = await EmbeddedLogReader.open(dataDir);
  t.after(() => fresh.close());
  for (let p = 0; p < 2; p++) {
    assert.equal(reader.endOffset('events', p), written.get(`events/${p}`));
    assert.deepEqual(view(reader.read('events', p, 0, 1_000_000)), view(log.read('events', p, 0, 1_000_000)));
    assert.deepEqual(view(fresh.read('events', p, 0, 1_000_000)), view(log.read('events', p, 0, 1_000_000)));
    // The changelog after compaction: the same latest row per key, at the same offsets.
    assert.deepEqual(latest(reader.read('kv-changelog', p, 0, 1_000_000)), latest(log.read('kv-changelog', p, 0, 1_000_000)));
    assert.deepEqual(view(fresh.read('kv-changelog', p, 0, 1_000_000)), view(log.read('kv-changelog', p, 0, 1_000_000)));
  }
});
