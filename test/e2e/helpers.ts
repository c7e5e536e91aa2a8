/**
 * Shared helpers of the end-to-end tests: temp data dirs, bounded polling, HTTP, child
 * processes, reading topics back from the embedded log, and an independent Voter model.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { createLogger, EmbeddedLog, loadConfig, startService, type App, type Config, type ConfigInput, type LogRecord, type Service } from '../../src/index.js';
import { compileApp } from '../../src/procedures/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { SchemaCatalog } from '../../src/codec/index.js';
import { freePort, sleep, waitForWith } from '../support/wait.js';

/** The repository root (where `src/cli/main.ts` lives). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const silentLogger = createLogger('silent');

// ---- temp dirs, waiting ------------------------------------------------------------------------

/** A fresh temp directory, removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'farad-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export { sleep, freePort };
/** Polls until the probe answers (20 s, every 25 ms, unless told otherwise). */
export const waitFor = waitForWith({ timeoutMs: 20_000, intervalMs: 25 });

// ---- services ----------------------------------------------------------------------------------

/** Config for an in-process test service: given data dir, free port on 127.0.0.1, no logs. */
export function testConfig(dataDir: string, overrides: ConfigInput = {}, env: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({
    env,
    overrides: {
      ...overrides,
      dataDir,
      logLevel: 'silent',
      http: { port: 0, host: '127.0.0.1', ...overrides.http },
    },
  });
}

/** Starts `app` in-process on `dataDir`; stopped when the test ends (stop is idempotent). */
export async function startTestService(
  t: TestContext,
  app: App,
  dataDir: string,
  overrides: ConfigInput = {},
  env: NodeJS.ProcessEnv = {},
): Promise<{ service: Service; base: string; log: EmbeddedLog }> {
  const service = await startService(app, testConfig(dataDir, overrides, env), { logger: silentLogger });
  t.after(() => service.stop());
  const log = service.log;
  if (!(log instanceof EmbeddedLog)) throw new Error('expected the embedded log');
  return { service, base: `http://127.0.0.1:${service.address.port}`, log };
}

/** True once every input record of the app has been processed and committed. */
export function inputsDone(service: Service, log: EmbeddedLog): boolean {
  for (const topic of service.app.inputTopics) {
    for (let p = 0; p < service.app.partitions; p++) {
      if (log.committedOffset(service.app.name, topic, p) !== log.endOffset(topic, p)) return false;
    }
  }
  return true;
}

/** Waits until every input record is committed and the service reports ready. */
export async function waitProcessed(service: Service, log: EmbeddedLog, base: string, timeoutMs = 30_000): Promise<void> {
  await waitFor('all input offsets committed and /readyz 200', async () => {
    if (!inputsDone(service, log)) return false;
    return (await fetch(`${base}/readyz`)).status === 200;
  }, { timeoutMs });
}

// ---- HTTP --------------------------------------------------------------------------------------

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** fetch + read the body (parsed as JSON when it is JSON). */
export async function http<T = unknown>(url: string, init: RequestInit = {}): Promise<HttpAnswer<T>> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json')) body = text === '' ? undefined : JSON.parse(text);
  return { status: response.status, headers: response.headers, body: body as T, text };
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer<Record<string, unknown>>> {
  return http(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Every row of a table through `GET /tables/:table`, following `next`. */
export async function scanTableHttp(
  base: string,
  table: string,
  limit = 1000,
  headers: Record<string, string> = {},
): Promise<Array<{ key: string | number; partition?: number; value: unknown }>> {
  const rows: Array<{ key: string | number; partition?: number; value: unknown }> = [];
  let after: string | number | null = null;
  for (let page = 0; page < 100_000; page++) {
    const query: string = `limit=${limit}` + (after === null ? '' : `&after=${encodeURIComponent(String(after))}`);
    const answer = await http<{ items: typeof rows; next: string | number | null }>(`${base}/tables/${table}?${query}`, { headers });
    if (answer.status !== 200) throw new Error(`GET /tables/${table}?${query}: ${answer.status} ${answer.text}`);
    rows.push(...answer.body.items);
    if (answer.body.next === null) return rows;
    after = answer.body.next;
  }
  throw new Error('table scan did not end');
}

/** The value of a Prometheus sample (sum over samples whose labels include `labels`). */
export function metricValue(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map<string, string>();
    for (const m of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(m[1]!, m[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum = (sum ?? 0) + Number(match[4]);
  }
  return sum;
}

// ---- reading the log ---------------------------------------------------------------------------

/** Every record of one topic partition, in offset order. */
export function readPartition(log: EmbeddedLog, topic: string, partition: number): LogRecord[] {
  const out: LogRecord[] = [];
  const end = log.endOffset(topic, partition);
  while (out.length < end) {
    const chunk = log.read(topic, partition, out.length, 10_000);
    if (chunk.length === 0) throw new Error(`${topic}/${partition}: read stopped at ${out.length} of ${end}`);
    out.push(...chunk);
  }
  return out;
}

/** Every record of a topic, partition by partition (index = partition). */
export function readTopic(log: EmbeddedLog, topic: string, partitions: number): LogRecord[][] {
  return Array.from({ length: partitions }, (_, p) => (log.hasTopic(topic) ? readPartition(log, topic, p) : []));
}

/** Opens a data dir (no service may hold it) just to read it; closed again when `use` returns. */
export async function withLog<T>(dataDir: string, app: App, use: (log: EmbeddedLog) => T | Promise<T>): Promise<T> {
  const compiled = compileApp(app);
  const log = await EmbeddedLog.open({
    dataDir,
    logger: silentLogger,
    group: compiled.name,
    inputTopics: compiled.inputTopics,
    changelogTopic: compiled.changelogTopic,
    partitions: compiled.partitions,
  });
  try {
    return await use(log);
  } finally {
    await log.close();
  }
}

/** A schema catalog of an app's event types, to decode what is on its topics. */
export function catalogOf(app: App): SchemaCatalog {
  return new SchemaCatalog([...compileApp(app).events.values()].map((e) => e.type));
}

/** Byte-exact view of records, for comparing two logs. */
export function recordBytes(records: readonly LogRecord[]): Array<{ offset: number; timestamp: number; key: string | null; value: string | null; headers: Record<string, string> }> {
  return records.map((r) => ({
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key === null ? null : r.key.toString('hex'),
    value: r.value === null ? null : r.value.toString('hex'),
    headers: { ...r.headers },
  }));
}

// ---- child processes ---------------------------------------------------------------------------

export interface Child {
  readonly process: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (or 128+n for a signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Environment without any FARAD_* variable of the test runner's own environment. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FARAD_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs the farad CLI from source: `node --import tsx src/cli/main.ts ...args`; killed when the test ends. */
export function spawnCli(t: TestContext, args: readonly string[], env: Record<string, string> = {}, stdin?: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const child: Child = {
    process: proc,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (child.stdout += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (child.stderr += s));
  if (stdin !== undefined) proc.stdin!.end(stdin);
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await child.exited;
    }
  });
  return child;
}

/** Waits for a child to exit, at most `timeoutMs` (then kills it and fails). */
export async function exitOf(child: Child, timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.process.kill('SIGKILL');
      reject(new Error(`child did not exit within ${timeoutMs} ms; stderr:\n${child.stderr}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the CLI to completion. */
export async function runCli(
  t: TestContext,
  args: readonly string[],
  env: Record<string, string> = {},
  stdin?: string,
  timeoutMs = 30_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawnCli(t, args, env, stdin);
  const exit = await exitOf(child, timeoutMs);
  return { ...exit, stdout: child.stdout, stderr: child.stderr };
}

// ---- an independent model of Voter ---------------------------------------------------------------

export interface VoteIn {
  phoneNumber: number;
  contestantNumber: number;
}

export type VoteOutcome =
  | { type: 'voter.VoteAccepted'; phoneNumber: number; contestantNumber: number; state: string }
  | { type: 'voter.VoteRejected'; phoneNumber: number; contestantNumber: number; reason: 'INVALID_CONTESTANT' | 'OVER_VOTE_LIMIT' };

/** VoltDB Voter's six contestants (written out here, not imported from the app). */
export const CONTESTANT_NAMES: ReadonlyArray<readonly [number, string]> = [
  [1, 'Edwina Burnam'],
  [2, 'Tabatha Gehling'],
  [3, 'Kelly Clauss'],
  [4, 'Jessie Alloway'],
  [5, 'Alana Bregman'],
  [6, 'Jessie Eichman'],
];

/** The few area codes the test phones use, with their states; 999 is not a US area code. */
export const TEST_AREA_CODES: ReadonlyArray<readonly [number, string]> = [
  [201, 'NJ'],
  [212, 'NY'],
  [415, 'CA'],
  [512, 'TX'],
  [617, 'MA'],
  [999, 'XX'],
];

export interface Tally {
  /** Outcome of each vote, in the order given. */
  outcomes: VoteOutcome[];
  /** Accepted votes per phone (phones with none are absent). */
  acceptedByPhone: Map<number, number>;
  /** The leaderboard as GET /queries/leaderboard must show it. */
  leaderboard: Array<{ contestantNumber: number; name: string; votes: number }>;
  accepted: number;
}

/**
 * The Voter rules, written independently of the app: votes are applied in the given order; a
 * vote for a contestant outside 1..6 is rejected INVALID_CONTESTANT; a phone's vote beyond
 * `maxVotesPerPhone` accepted ones is rejected OVER_VOTE_LIMIT; else it counts.
 */
export function tallyVotes(votes: readonly VoteIn[], maxVotesPerPhone: number): Tally {
  const names = new Map(CONTESTANT_NAMES);
  const states = new Map(TEST_AREA_CODES);
  const acceptedByPhone = new Map<number, number>();
  const totals = new Map<number, number>(CONTESTANT_NAMES.map(([n]) => [n, 0]));
  const outcomes: VoteOutcome[] = [];
  let accepted = 0;
  for (const { phoneNumber, contestantNumber } of votes) {
    if (!names.has(contestantNumber)) {
      outcomes.push({ type: 'voter.VoteRejected', phoneNumber, contestantNumber, reason: 'INVALID_CONTESTANT' });
      continue;
    }
    const already = acceptedByPhone.get(phoneNumber) ?? 0;
    if (already >= maxVotesPerPhone) {
      outcomes.push({ type: 'voter.VoteRejected', phoneNumber, contestantNumber, reason: 'OVER_VOTE_LIMIT' });
      continue;
    }
    acceptedByPhone.set(phoneNumber, already + 1);
    totals.set(contestantNumber, totals.get(contestantNumber)! + 1);
    accepted++;
    const state = states.get(Math.floor(phoneNumber / 10_000_000)) ?? 'XX';
    outcomes.push({ type: 'voter.VoteAccepted', phoneNumber, contestantNumber, state });
  }
  const leaderboard = CONTESTANT_NAMES.map(([contestantNumber, name]) => ({ contestantNumber, name, votes: totals.get(contestantNumber)! }));
  leaderboard.sort((a, b) => b.votes - a.votes || a.contestantNumber - b.contestantNumber);
  return { outcomes, acceptedByPhone, leaderboard, accepted };
}

/** Small deterministic PRNG (xorshift32), separate from farad's own. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * Deterministic votes: `phones` distinct phone numbers (so with more votes than phones many
 * phones vote repeatedly and some exceed the limit), about `invalidShare` of the votes for
 * contestants 7..9, the rest skewed towards low contestant numbers.
 */
export function generateVotes(count: number, { phones, invalidShare, seed }: { phones: number; invalidShare: number; seed: number }): VoteIn[] {
  const random = prng(seed);
  const pool = new Set<number>();
  while (pool.size < phones) {
    const [area] = TEST_AREA_CODES[Math.floor(random() * TEST_AREA_CODES.length)]!;
    pool.add(area * 10_000_000 + Math.floor(random() * 10_000_000));
  }
  const numbers = [...pool];
  const votes: VoteIn[] = [];
  for (let i = 0; i < count; i++) {
    // Squaring skews towards the front of the pool: a few phones vote a lot.
    const phoneNumber = numbers[Math.floor(random() * random() * numbers.length)]!;
    const contestantNumber = random() < invalidShare ? 7 + Math.floor(random() * 3) : 1 + Math.floor(random() * random() * 6);
    votes.push({ phoneNumber, contestantNumber });
  }
  return votes;
}

/** A phone number in each partition, area code 998 (never produced by generateVotes). */
export function markerPhones(partitions: number, salt = 0): number[] {
  const out: number[] = [];
  for (let p = 0; p < partitions; p++) {
    for (let n = 9_980_000_000 + salt * 100_000; ; n++) {
      if (partitionForKey(String(n), partitions) === p) {
        out.push(n);
        break;
      }
    }
  }
  return out;
}

/** Decodes a topic's records with the catalog: `{ type, ...value }`. */
export function decodeAll(catalog: SchemaCatalog, records: readonly LogRecord[]): Array<Record<string, unknown> & { type: string }> {
  return records.map((r) => {
    const decoded = catalog.decode(r.value!);
    return { type: decoded.name, ...(decoded.value as Record<string, unknown>) };
  });
}
