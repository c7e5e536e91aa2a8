/**
 * `npm run bench`: farad side by side with its own ceilings, in one run. See BENCHMARKS.md and
 * `npm run bench -- --help`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { engineOnly } from './engine.js';
import { failover } from './failover.js';
import { console256x10 } from './console.js';
import { consoleOpen, eos, KafkaBench, latency, rawPipe } from './kafka.js';
import { killAllChildren, progress, reachable, removeDir, ROOT, tempDir, uid, type BenchContext, type Result, type ScenarioReport } from './lib.js';
import { memory } from './memory.js';
import { keptNotes, machine, page, targets } from './report.js';
import { kafkaStreamsEos, kafkaStreamsLatency } from './kstreams.js';
import { restoreChangelog, restoreSnapshot } from './restore.js';
import { mpTransfers } from './transfers.js';

const SCENARIOS = [
  'engine-only',
  'memory',
  'restore-snapshot',
  'restore-changelog',
  'kafka-raw-pipe',
  'kafka-eos-k0',
  'kafka-eos-k1',
  'kafka-streams-eos',
  'latency',
  'kafka-streams-latency',
  'failover-kill',
  'handover-graceful',
  'mp-transfers',
  'mp-1pct-share',
  'console-256x10',
  'console-open',
] as const;
type Scenario = (typeof SCENARIOS)[number];

/** Default and --quick size per scenario, and what the size means. */
const SIZES: Record<Scenario, { full: number; quick: number; unit: string }> = {
  'engine-only': { full: 1_000_000, quick: 30_000, unit: 'votes' },
  memory: { full: 1_000_000, quick: 50_000, unit: 'keys' },
  'restore-snapshot': { full: 1_000_000, quick: 50_000, unit: 'keys' },
  'restore-changelog': { full: 1_000_000, quick: 50_000, unit: 'keys' },
  'kafka-raw-pipe': { full: 500_000, quick: 30_000, unit: 'votes' },
  'kafka-eos-k0': { full: 500_000, quick: 30_000, unit: 'votes' },
  'kafka-eos-k1': { full: 500_000, quick: 100_000, unit: 'votes' },
  'kafka-streams-eos': { full: 500_000, quick: 30_000, unit: 'votes' },
  latency: { full: 20, quick: 4, unit: 's measured' },
  'kafka-streams-latency': { full: 20, quick: 4, unit: 's measured' },
  'failover-kill': { full: 2_000, quick: 500, unit: 'votes/s load' },
  'handover-graceful': { full: 2_000, quick: 500, unit: 'votes/s load' },
  'mp-transfers': { full: 20_000, quick: 2_000, unit: 'transfers' },
  'mp-1pct-share': { full: 200_000, quick: 20_000, unit: 'events (1% transfers)' },
  'console-256x10': { full: 200, quick: 20, unit: 'gatherings' },
  'console-open': { full: 500_000, quick: 30_000, unit: 'votes' },
};

const SESSION_TIMEOUT_MS = 6_000;

const HELP = `usage: npm run bench -- [options]

  --only <s,...>         scenarios to run (default: all): ${SCENARIOS.join(', ')}
  --size <s>=<n>         size of a scenario (repeatable):
${SCENARIOS.map((s) => `                           ${s.padEnd(18)} ${SIZES[s].unit} (default ${SIZES[s].full.toLocaleString('en-US')}, --quick ${SIZES[s].quick.toLocaleString('en-US')})`).join('\n')}
                         (failover-kill and handover-graceful are one run: the failover size counts)
  --quick                tiny sizes: a smoke run of the harness
  --out <file>           also write the results as a JSON array of
                         {scenario, eventsPerSec, p50Ms, p99Ms, baseline, baselineEventsPerSec, ratio}
  --md <file>            where the results page goes (default BENCHMARKS.md for a full default run,
                         else a file in the temp directory, so a partial or quick run keeps BENCHMARKS.md)
  --latency-rate <n>     votes/s of the latency scenario (default: half of kafka-eos-k0's rate
                         measured in this run, or 5000 when kafka-eos-k0 is not run)
  --profile <mode>       auto (default): re-run each scenario that missed a target under a CPU profiler
                         and summarise it; all: profile the measured runs themselves (slower numbers);
                         off: no profiles
  --profile-dir <dir>    keep the .cpuprofile files there (default: a temp directory, removed)
  -h, --help

Env: KAFKA_BROKERS (default 127.0.0.1:9092), REDIS_URL (default redis://127.0.0.1:6379);
     FARAD_BENCH_CHILD_LOG_LEVEL (log level of farad children; default info for kafka-eos and
     failover, whose logs the report uses, warn otherwise),
     FARAD_BENCH_CHILD_LOG_DIR (keep every child's last output there).
Progress goes to stderr.`;

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    size: { type: 'string', multiple: true },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    md: { type: 'string' },
    'latency-rate': { type: 'string' },
    profile: { type: 'string', default: 'auto' },
    'profile-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  process.stdout.write(HELP + '\n');
  process.exit(0);
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${HELP}\n`);
  process.exit(2);
}

const only = new Set<Scenario>();
for (const name of (args.only ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
  if (!(SCENARIOS as readonly string[]).includes(name)) fail(`unknown scenario "${name}"`);
  only.add(name as Scenario);
}
const sizes = new Map<string, number>();
for (const item of args.size ?? []) {
  const m = /^([a-z0-9-]+)=(\d+(?:\.\d+)?)(k|m)?$/i.exec(item.trim());
  if (!m || !(SCENARIOS as readonly string[]).includes(m[1]!)) fail(`--size takes <scenario>=<n>, got "${item}"`);
  const n = Number(m[2]) * (m[3]?.toLowerCase() === 'k' ? 1e3 : m[3]?.toLowerCase() === 'm' ? 1e6 : 1);
  if (!(n > 0)) fail(`--size ${item}: the size must be positive`);
  sizes.set(m[1]!, Math.round(n));
}
if (!['auto', 'all', 'off'].includes(args.profile!)) fail('--profile is auto, all or off');
const latencyRateOption = args['latency-rate'] === undefined ? undefined : Number(args['latency-rate']);
if (latencyRateOption !== undefined && !(latencyRateOption > 0)) fail('--latency-rate must be a positive number');
if (!global.gc && only.has('memory')) fail('the memory scenario needs --expose-gc: run it with `npm run bench`');

const quick = args.quick!;
const fullDefaultRun = !quick && args.only === undefined && sizes.size === 0;
const mdFile = resolve(args.md ?? (fullDefaultRun ? join(ROOT, 'BENCHMARKS.md') : join(tmpdir(), `farad-bench-${process.pid}.md`)));
const runId = uid(3);
const tmp = tempDir('farad-bench-');
const profileRoot = args['profile-dir'] ? resolve(args['profile-dir']) : join(tmp, 'profiles');
mkdirSync(profileRoot, { recursive: true });

process.once('SIGINT', () => {
  killAllChildren();
  removeDir(tmp);
  process.stderr.write('bench: interrupted\n');
  process.exit(130);
});

// ---- services --------------------------------------------------------------------------------

let brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(',').map((b) => b.trim()).filter(Boolean);
let redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const needsKafka = [...only].some((s) => s.startsWith('kafka') || s === 'latency' || s.includes('failover') || s.includes('handover') || s === 'console-open');
const needsRedis = only.has('restore-snapshot');

function hostPort(address: string, defaultPort: number): [string, number] {
  const url = /^\w+:\/\//.test(address) ? new URL(address) : new URL(`tcp://${address}`);
  return [url.hostname.replace(/^\[|\]$/g, ''), Number(url.port || defaultPort)];
}

async function servicesUp(): Promise<void> {
  const kafkaOk = !needsKafka || (await reachable(...hostPort(brokers[0]!, 9092)));
  const redisOk = !needsRedis || (await reachable(...hostPort(redisUrl, 6379)));
  if (kafkaOk && redisOk) return;
  progress(`${kafkaOk ? '' : `Kafka at ${brokers[0]} `}${redisOk ? '' : `Redis at ${redisUrl} `}not reachable: running scripts/services-up.sh`);
  const out = execFileSync('bash', [join(ROOT, 'scripts/services-up.sh'), 'kafka', 'redis'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  for (const line of out.split('\n')) {
    const [k, v] = line.split('=', 2);
    if (k === 'KAFKA_BROKERS' && v) brokers = v.split(',');
    if (k === 'REDIS_URL' && v) redisUrl = v;
  }
}

// ---- the run ---------------------------------------------------------------------------------

const results = new Map<string, Result>();
const reports = new Map<string, ScenarioReport>();
const errors = new Map<string, string>();
const sizeLabels = new Map<string, string>();

function context(profileDir: string | undefined, shrink = 1): BenchContext {
  return {
    quick,
    brokers,
    redisUrl,
    runId,
    tmp,
    results,
    profileDir,
    size(scenario, fallback, quickSize) {
      const known = SIZES[scenario as Scenario] as (typeof SIZES)[Scenario] | undefined;
      const n = sizes.get(scenario) ?? (quick ? (known?.quick ?? quickSize) : (known?.full ?? fallback));
      return Math.max(1, Math.round(n * shrink));
    },
  };
}

function sizeOf(s: Scenario): number {
  return sizes.get(s) ?? (quick ? SIZES[s].quick : SIZES[s].full);
}

async function runScenario(names: Scenario[], work: () => Promise<ScenarioReport>): Promise<void> {
  const selected = names.filter((s) => only.has(s));
  if (selected.length === 0) return;
  progress(`== ${selected.join(', ')}`);
  for (const s of selected) sizeLabels.set(s, `${sizeOf(s).toLocaleString('en-US')} ${SIZES[s].unit}`);
  try {
    const report = await work();
    for (const row of report.rows) {
      if (!only.has(row.scenario as Scenario)) continue;
      results.set(row.scenario, row);
      reports.set(row.scenario, report);
    }
  } catch (err) {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    progress(`${selected.join(', ')} FAILED: ${message}`);
    for (const s of selected) errors.set(s, message.split('\n').slice(0, 12).join(' ⏎ '));
  } finally {
    killAllChildren();
  }
}

const startedAt = new Date();
const t0 = Date.now();
const info = machine();
progress(`run ${runId}: ${[...only].join(', ')}${quick ? ' (quick)' : ''}; ${info.nproc} cores, load ${info.loadStart.map((l) => l.toFixed(2)).join(' ')}`);
await servicesUp();

const profileAll = args.profile === 'all';
const profileDirFor = (s: string) => (profileAll ? join(profileRoot, s) : undefined);
for (const s of SCENARIOS) if (profileAll) mkdirSync(join(profileRoot, s), { recursive: true });

await runScenario(['engine-only'], () => engineOnly(context(profileDirFor('engine-only'))));
await runScenario(['memory'], () => memory(context(undefined)));
await runScenario(['restore-snapshot'], () => restoreSnapshot(context(profileDirFor('restore-snapshot'))));
await runScenario(['restore-changelog'], () => restoreChangelog(context(profileDirFor('restore-changelog'))));
await runScenario(['mp-transfers', 'mp-1pct-share'], () => mpTransfers(context(undefined), sizeOf('mp-transfers'), sizeOf('mp-1pct-share')));
await runScenario(['console-256x10'], () => console256x10(context(undefined)));

let bench: KafkaBench | undefined;
const kafkaBench = async () => (bench ??= await KafkaBench.open(context(undefined)));
try {
  await runScenario(['kafka-raw-pipe'], async () => rawPipe(context(undefined), await kafkaBench(), sizeOf('kafka-raw-pipe')));
  await runScenario(['kafka-eos-k0'], async () => eos(context(profileDirFor('kafka-eos-k0')), await kafkaBench(), sizeOf('kafka-eos-k0'), 0));
  await runScenario(['console-open'], async () => consoleOpen(context(undefined), await kafkaBench(), sizeOf('console-open')));
  await runScenario(['kafka-eos-k1'], async () => eos(context(profileDirFor('kafka-eos-k1')), await kafkaBench(), sizeOf('kafka-eos-k1'), 1));
  // The peer warms its JVM first (JIT compilation would otherwise be a third of its window).
  await runScenario(['kafka-streams-eos'], async () => kafkaStreamsEos(context(undefined), await kafkaBench(), sizeOf('kafka-streams-eos'), { warmupVotes: quick ? 0 : 300_000 }));
  const k0 = results.get('kafka-eos-k0')?.eventsPerSec;
  const [latencyRate, latencySource] =
    latencyRateOption !== undefined
      ? [latencyRateOption, '--latency-rate']
      : k0
        ? [Math.round(k0 / 2), 'half of kafka-eos-k0 in this run']
        : [quick ? 1000 : 5000, 'fixed: kafka-eos-k0 was not run'];
  await runScenario(['latency'], async () => latency(context(profileDirFor('latency')), await kafkaBench(), sizeOf('latency'), latencyRate, latencySource));
  await runScenario(['kafka-streams-latency'], async () => kafkaStreamsLatency(context(undefined), await kafkaBench(), latencyRate, sizeOf('kafka-streams-latency'), latencySource));
  await runScenario(['failover-kill', 'handover-graceful'], async () =>
    failover(context(undefined), await kafkaBench(), only.has('failover-kill') ? sizeOf('failover-kill') : sizeOf('handover-graceful')),
  );

  // ---- profiles of missed targets --------------------------------------------------------------
  const checked = targets(results, reports, SESSION_TIMEOUT_MS);
  const profiles = new Map<string, Array<{ title: string; file: string; heapFile?: string }>>();
  const missedScenarios = new Set(checked.filter((t) => t.met === false).map((t) => t.scenario));
  for (const [scenario, report] of reports) if (missedScenarios.has(scenario) && report.profiles) profiles.set(scenario, report.profiles);
  if (args.profile === 'auto') {
    for (const scenario of missedScenarios) {
      if (profiles.has(scenario)) continue;
      const dir = join(profileRoot, scenario);
      mkdirSync(dir, { recursive: true });
      progress(`== profiling ${scenario} (missed a target)`);
      try {
        let report: ScenarioReport | undefined;
        if (scenario === 'engine-only') report = await engineOnly(context(dir, 0.5));
        else if (scenario === 'restore-snapshot') report = await restoreSnapshot(context(dir));
        else if (scenario === 'restore-changelog') report = await restoreChangelog(context(dir));
        else if (scenario === 'kafka-eos-k0' || scenario === 'kafka-eos-k1') {
          report = await eos(context(dir), await kafkaBench(), Math.round(sizeOf(scenario) / 2), scenario === 'kafka-eos-k0' ? 0 : 1, false);
        } else if (scenario === 'latency') {
          const rate = results.get('latency')?.eventsPerSec ?? 5000;
          report = await latency(context(dir), await kafkaBench(), Math.max(4, Math.round(sizeOf('latency') / 2)), rate, 'same rate as the measured run', false);
        } else {
          progress(`${scenario}: no CPU profile (the pause is waiting on timeouts and the group protocol, not CPU)`);
        }
        if (report?.profiles) profiles.set(scenario, report.profiles);
      } catch (err) {
        progress(`profiling ${scenario} failed: ${(err as Error).message}`);
      } finally {
        killAllChildren();
      }
    }
  }

  // ---- output ---------------------------------------------------------------------------------
  info.loadEnd = loadavg();
  const rows = SCENARIOS.filter((s) => only.has(s)).map(
    (s) => results.get(s) ?? { scenario: s, eventsPerSec: null, p50Ms: null, p99Ms: null, baseline: null, baselineEventsPerSec: null, ratio: null },
  );
  const command = ['npm run bench', ...(process.argv.slice(2).length ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  const markdown = page(
    {
      machine: info,
      command,
      startedAt,
      durationSeconds: (Date.now() - t0) / 1000,
      order: SCENARIOS,
      sizes: sizeLabels,
      results,
      reports,
      errors,
      targets: checked,
      profiles,
      brokers: brokers.join(','),
      redisUrl,
      quick,
    },
    keptNotes(mdFile) ?? keptNotes(join(ROOT, 'BENCHMARKS.md')),
  );
  writeFileSync(mdFile, markdown);
  progress(`wrote ${mdFile}`);
  if (args.out) {
    writeFileSync(resolve(args.out), JSON.stringify(rows, null, 2) + '\n');
    progress(`wrote ${resolve(args.out)}`);
  }
  process.stdout.write(markdown.slice(markdown.indexOf('## Results'), markdown.indexOf('## Targets')));
  const missed = checked.filter((t) => t.met === false);
  process.stdout.write(
    checked.map((t) => `${t.info ? 'info  ' : t.met === undefined ? 'n/a   ' : t.met ? 'met   ' : 'MISSED'}  ${t.scenario}: ${t.text} — ${t.measured}`).join('\n') + '\n',
  );
  progress(`done in ${Math.round((Date.now() - t0) / 1000)} s; ${missed.length} target(s) missed, ${errors.size} scenario(s) failed`);
  process.exitCode = errors.size > 0 ? 1 : 0;
} finally {
  killAllChildren();
  await bench?.close().catch(() => undefined);
  removeDir(tmp); // the profiles are in it unless --profile-dir put them elsewhere
}
