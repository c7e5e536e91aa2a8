/**
 * Shared pieces of `npm run bench`: result rows, progress on stderr, timing helpers, the Kafka
 * admin helpers the scenarios need, and farad child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { freePort, sleep, waitForWith } from '../test/support/wait.js';

export { freePort, sleep };

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** One row of the results: the JSON written by `--out` has exactly these fields. */
export interface Result {
  scenario: string;
  eventsPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Name of the scenario or measurement this row is compared with. */
  baseline: string | null;
  baselineEventsPerSec: number | null;
  ratio: number | null;
}

/** What a scenario hands back besides its result rows: details for BENCHMARKS.md. */
export interface ScenarioReport {
  rows: Result[];
  /** Free-form lines shown under the scenario in BENCHMARKS.md (what was measured, how). */
  details: string[];
  /** Lines for one row only, when a report has several rows. */
  rowDetails?: Record<string, string[]>;
  /** Numbers the targets are checked against besides the rows (e.g. votes per CPU-second). */
  metrics?: Record<string, number>;
  /** CPU profiles taken while measuring. */
  profiles?: Array<{ title: string; file: string; heapFile?: string }>;
}

export interface BenchContext {
  readonly quick: boolean;
  readonly brokers: string[];
  readonly redisUrl: string;
  /** Unique per run: names topics, groups and app copies. */
  readonly runId: string;
  /** Size option of a scenario (its meaning is scenario-specific). */
  size(scenario: string, fallback: number, quick: number): number;
  /** Results measured earlier in this run, by scenario. */
  readonly results: Map<string, Result>;
  /** Directory for profiles, when the scenario is profiled; undefined otherwise. */
  readonly profileDir: string | undefined;
  /** Temporary directory of this run (removed at the end). */
  readonly tmp: string;
}

// ---- progress -------------------------------------------------------------------------------

const started = Date.now();

/** A progress line on stderr, prefixed with the elapsed time of the run. */
export function progress(message: string): void {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${s}s] ${message}\n`);
}

/** Reports "label: done/total" at most every `everyMs`. */
export function progressEvery(label: string, everyMs = 2000): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - last < everyMs && done < total) return;
    last = now;
    progress(`${label}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`);
  };
}

// ---- small helpers ------------------------------------------------------------------------------


export function uid(bytes = 4): string {
  return randomBytes(bytes).toString('hex');
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls until the probe answers (60 s, every 100 ms, unless told otherwise). */
export const waitFor = waitForWith({ timeoutMs: 60_000, intervalMs: 100 });

/** The q-quantile (0..1) of unsorted samples, nearest-rank. */
export function quantile(samples: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(samples).sort();
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** CPU seconds (user + system) a process has used so far, from /proc; NaN where there is none. */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const own = cpuSecondsOf(pid);
  // farad's worker processes are children of the process the bench started.
  return Number.isNaN(own) ? own : descendantsOf(pid).reduce((sum, child) => sum + (cpuSecondsOf(child) || 0), own);
}

function cpuSecondsOf(pid: number): number {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS : NaN;
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces): ppid is [1], utime and stime [11] and [12]. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Every live process below `pid`. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number(statFields(Number(entry))?.[1]);
    if (Number.isInteger(parent)) children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) for (const child of children.get(queue.shift()!) ?? []) out.push(child), queue.push(child);
  return out;
}
/** Linux's USER_HZ: 100 on every architecture Node runs on. */
const CLOCK_TICKS = 100;

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function ratio(value: number | null, baseline: number | null, digits = 3): number | null {
  if (value === null || baseline === null || baseline === 0 || !Number.isFinite(value) || !Number.isFinite(baseline)) return null;
  return round(value / baseline, digits);
}

export function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}


/** True when something accepts TCP connections at host:port. */
export function reachable(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    import('node:net').then(({ connect }) => {
      const socket = connect({ host, port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(timeoutMs, () => done(false));
      socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
    }, () => resolve(false));
  });
}

// ---- kafka -------------------------------------------------------------------------------------

export function benchKafka(brokers: string[], clientId = `farad-bench-${uid()}`): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
}

export async function createTopic(admin: Admin, topic: string, numPartitions: number): Promise<void> {
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, replicationFactor: 1 }] });
}

/** Deletes those of the topics that exist; never fails. */
export async function deleteTopics(admin: Admin, topics: readonly string[]): Promise<void> {
  try {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((t) => existing.has(t));
    if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: 15_000 });
  } catch (err) {
    progress(`warning: could not delete topics ${topics.join(', ')}: ${(err as Error).message}`);
  }
}

export async function deleteGroups(admin: Admin, groups: readonly string[]): Promise<void> {
  for (const group of groups) {
    try {
      await admin.deleteGroups([group]);
    } catch {
      // a group with members left (a killed instance not yet expired) stays; harmless
    }
  }
}

/** Sum over partitions of the group's committed offsets on `topic` (a partition without one counts 0). */
export async function committedSum(admin: Admin, group: string, topic: string): Promise<number> {
  const [entry] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  let sum = 0;
  for (const p of entry?.partitions ?? []) sum += Math.max(0, Number(p.offset));
  return sum;
}

/** Sum of high watermarks of a topic. */
export async function endSum(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, o) => sum + Number(o.high), 0);
}

// ---- child processes ---------------------------------------------------------------------------

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

const children = new Set<Child>();

/** Starts `node [nodeArgs] --import tsx [preload] script args`, capturing output (last 200 kB). */
export function spawnNode(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string | undefined>,
  nodeArgs: string[] = [],
  preload: string[] = [],
): Child {
  const fullEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined && v !== '') fullEnv[k] = v;
  return spawnProcess(name, process.execPath, [...nodeArgs, '--import', 'tsx', ...preload.flatMap((p) => ['--import', p]), script, ...args], fullEnv);
}

/** Starts any command as a `Child` (stdout lines, the last 200 kB of output); killAllChildren stops it. */
export function spawnProcess(name: string, command: string, args: string[], env: Record<string, string> = process.env as Record<string, string>): Child {
  const proc = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const listeners = new Set<(line: string) => void>();
  let pending = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-200_000);
    pending += text;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      for (const l of listeners) l(line);
    }
  });
  proc.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-200_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      children.delete(child);
      // Debugging aid: FARAD_BENCH_CHILD_LOG_DIR keeps the last output of every child.
      const dir = process.env['FARAD_BENCH_CHILD_LOG_DIR'];
      if (dir) writeFileSync(join(dir, `${name.replace(/[^\w.-]+/g, '_')}-${proc.pid}.log`), output);
      resolve({ code, signal });
    });
    // A command that cannot start (not installed) exits with no code.
    proc.once('error', (err) => {
      output += `\n${name}: ${err.message}`;
      children.delete(child);
      resolve({ code: null, signal: null });
    });
  });
  const child: Child = {
    name,
    process: proc,
    output: () => output,
    exited,
    running: () => proc.exitCode === null && proc.signalCode === null,
    line(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; output:\n${output.slice(-3000)}`));
        }, timeoutMs);
        const listener = (line: string) => {
          if (!pattern.test(line)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(line);
        };
        listeners.add(listener);
        void exited.then(() => {
          if (!listeners.has(listener)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          reject(new Error(`${name} exited before printing ${pattern}; output:\n${output.slice(-3000)}`));
        });
      });
    },
  };
  children.add(child);
  return child;
}

/** SIGTERM (then SIGKILL after `timeoutMs`) and wait for the exit. */
export async function terminate(child: Child, timeoutMs = 30_000): Promise<void> {
  if (child.running()) child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
  try {
    await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

export async function kill9(child: Child): Promise<void> {
  if (child.running()) child.process.kill('SIGKILL');
  await child.exited;
}

/** Kills every child this process started and that still runs (on errors and interrupts). */
export function killAllChildren(): void {
  for (const child of children) if (child.running()) child.process.kill('SIGKILL');
}

// ---- farad children ----------------------------------------------------------------------------

export const BENCH_APP = join(ROOT, 'bench/voter-app.ts');
export const FARAD_CLI = join(ROOT, 'src/cli/main.ts');

export interface FaradInstance extends Child {
  readonly id: string;
  readonly base: string;
  /** Where the profile of the measured window goes, when profiled. */
  readonly profileFile: string | undefined;
}

/** Starts (first call) or stops and writes (second call) the CPU profiles of profiled instances. */
export async function toggleProfiles(instances: readonly FaradInstance[], phase: 'start' | 'stop'): Promise<void> {
  const profiled = instances.filter((i) => i.profileFile && i.running());
  await Promise.all(
    profiled.map((i) => {
      const done = i.line(phase === 'start' ? /^profiler started/ : /^profiler stopped/, 30_000);
      i.process.kill('SIGUSR2');
      for (const pid of descendantsOf(i.process.pid!)) process.kill(pid, 'SIGUSR2'); // workers
      return done.catch((err: unknown) => progress(`warning: ${i.name}: ${(err as Error).message.split('\n')[0]}`));
    }),
  );
}

export interface InstanceOptions {
  readonly brokers: string[];
  readonly suffix: string;
  readonly input: string;
  readonly replicas: number;
  readonly env?: Record<string, string | undefined>;
  /** Directory for a CPU profile of the measured window (see bench/child-profiler.ts); unset = none. */
  readonly cpuProfDir?: string | undefined;
}

/** `farad run --app bench/voter-app.ts` on Kafka as a child, on a free port. */
export async function spawnFarad(id: string, options: InstanceOptions): Promise<FaradInstance> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const profileFile = options.cpuProfDir ? join(options.cpuProfDir, `farad-${id}.cpuprofile`) : undefined;
  const child = spawnNode(
    `farad ${id}`,
    FARAD_CLI,
    ['run', '--app', BENCH_APP],
    {
      FARAD_TRANSPORT: 'kafka',
      FARAD_KAFKA_BROKERS: options.brokers.join(','),
      FARAD_INSTANCE_ID: id,
      FARAD_HTTP_PORT: String(port),
      FARAD_HTTP_HOST: '127.0.0.1',
      FARAD_ADVERTISED_URL: base,
      FARAD_REPLICAS: String(options.replicas),
      FARAD_LOG_LEVEL: process.env['FARAD_BENCH_CHILD_LOG_LEVEL'] ?? 'warn',
      FARAD_REDIS_URL: undefined,
      FARAD_BENCH_SUFFIX: options.suffix,
      FARAD_BENCH_INPUT: options.input,
      FARAD_BENCH_PROFILE_FILE: profileFile,
      ...options.env,
    },
    [],
    profileFile ? [join(ROOT, 'bench/child-profiler.ts')] : [],
  );
  return Object.assign(child, { id, base, profileFile });
}

export interface Readiness {
  ready: boolean;
  active: number[];
  standby: number[];
}

/** GET /readyz of an instance: ready flag and active partitions; undefined when it does not answer. */
export async function readiness(instance: FaradInstance): Promise<Readiness | undefined> {
  try {
    const res = await fetch(`${instance.base}/readyz`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { status: string; partitions: Array<{ partition: number; role: string }> };
    return {
      ready: res.status === 200,
      active: body.partitions.filter((p) => p.role === 'active').map((p) => p.partition),
      standby: body.partitions.filter((p) => p.role !== 'active').map((p) => p.partition),
    };
  } catch {
    return undefined;
  }
}

/** Waits until the instances are ready and together hold every partition exactly once, actively. */
export async function waitForPlacement(instances: readonly FaradInstance[], partitions: number, timeoutMs = 120_000): Promise<Map<string, number[]>> {
  return waitFor(
    'every partition active on exactly one instance',
    async () => {
      const placed = new Map<string, number[]>();
      const seen = new Set<number>();
      for (const instance of instances) {
        if (!instance.running()) throw new Error(`${instance.name} exited:\n${instance.output().slice(-3000)}`);
        const r = await readiness(instance);
        if (!r?.ready) return false;
        for (const p of r.active) {
          if (seen.has(p)) return false;
          seen.add(p);
        }
        placed.set(instance.id, r.active);
      }
      return seen.size === partitions ? placed : false;
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/** One sample of a Prometheus gauge/counter family from an instance's /metrics, per label set. */
export async function metricValues(instance: FaradInstance, name: string): Promise<Array<{ labels: string; value: number }>> {
  try {
    const res = await fetch(`${instance.base}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const out: Array<{ labels: string; value: number }> = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^(\w+)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m && m[1] === name) out.push({ labels: m[2] ?? '', value: Number(m[3]) });
    }
    return out;
  } catch {
    return [];
  }
}
