/**
 * Targets and the BENCHMARKS.md page: machine, results table, targets met or missed, profile
 * summaries of missed targets, scenario details. A block between NOTES_START and NOTES_END in
 * an existing page (hand-written analysis) is kept when the page is regenerated.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { fmt, type Result, type ScenarioReport } from './lib.js';
import { allocationMarkdown, summarise, summaryMarkdown } from './profile.js';

export const NOTES_START = '<!-- notes:start (kept when bench/run.ts rewrites this file) -->';
export const NOTES_END = '<!-- notes:end -->';

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  kernel: string;
  memoryGb: number;
  loadStart: number[];
  loadEnd?: number[];
}

export function machine(): Machine {
  let nproc = availableParallelism();
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    // keep availableParallelism
  }
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.split(':').slice(1).join(':').trim();
  } catch {
    // not Linux
  }
  return { nproc, cpuModel, node: process.version, kernel: release(), memoryGb: Math.round(totalmem() / 2 ** 30), loadStart: loadavg() };
}

export interface Target {
  scenario: string;
  text: string;
  measured: string;
  met: boolean | undefined;
  /** Shown for context; not one of the design's targets (never counted as missed). */
  info?: boolean;
}

/** The design's targets, checked against this run's numbers (undefined: not measured). */
export function targets(results: Map<string, Result>, reports: Map<string, ScenarioReport>, sessionTimeoutMs: number): Target[] {
  const out: Target[] = [];
  const get = (s: string) => results.get(s);
  const engine = get('engine-only');
  if (engine) {
    const perCore = reports.get('engine-only')?.metrics?.['perCore'];
    out.push({
      scenario: 'engine-only',
      text: '≥ 500,000 votes/s per core',
      measured: perCore === undefined ? 'n/a' : `${fmt(perCore)} votes per CPU-second (${fmt(engine.eventsPerSec)} votes/s wall)`,
      met: perCore === undefined ? undefined : perCore >= 500_000,
    });
    out.push({ scenario: 'engine-only', text: '≥ 0.5 of the plain loop', measured: `${fmt(engine.ratio, 3)}`, met: engine.ratio === null ? undefined : engine.ratio >= 0.5 });
  }
  for (const k of ['kafka-eos-k0', 'kafka-eos-k1']) {
    const r = get(k);
    if (r) out.push({ scenario: k, text: 'EOS ≥ 0.8 of kafka-raw-pipe', measured: fmt(r.ratio, 3), met: r.ratio === null ? undefined : r.ratio >= 0.8 });
  }
  const k0 = get('kafka-eos-k0');
  const k1 = get('kafka-eos-k1');
  if (k0?.eventsPerSec && k1?.eventsPerSec) {
    const cost = 1 - k1.eventsPerSec / k0.eventsPerSec;
    out.push({ scenario: 'kafka-eos-k1', text: 'k=1 costs ≤ 15% (1 − k1/k0)', measured: `${(cost * 100).toFixed(1)}%`, met: cost <= 0.15 });
    const control = reports.get('kafka-eos-k1')?.metrics?.['controlRate'];
    if (control) {
      const equal = 1 - k1.eventsPerSec / control;
      out.push({
        scenario: 'kafka-eos-k1',
        text: 'same, at equal instance count (1 − k1 / two instances with replicas 0; not in the design, shown for context)',
        measured: `${(equal * 100).toFixed(1)}%`,
        met: undefined,
        info: true,
      });
    }
  }
  if (k0) {
    const cpu = reports.get('kafka-eos-k0')?.metrics?.['cpuMicrosPerEvent'];
    if (cpu !== undefined) out.push({ scenario: 'kafka-eos-k0', text: '≤ 7 µs of farad CPU per vote (end to end, exactly-once)', measured: `${fmt(cpu, 1)} µs`, met: cpu <= 7 });
    const peer = get('kafka-streams-eos');
    const peerCpu = reports.get('kafka-streams-eos')?.metrics?.['cpuMicrosPerEvent'];
    if (peer?.eventsPerSec && k0.eventsPerSec) {
      const r = k0.eventsPerSec / peer.eventsPerSec;
      out.push({ scenario: 'kafka-eos-k0', text: 'farad / Kafka Streams, votes/s (same run) ≥ 1', measured: `${fmt(r, 3)} (${fmt(k0.eventsPerSec)} / ${fmt(peer.eventsPerSec)})`, met: r >= 1 });
    }
    if (cpu !== undefined && peerCpu !== undefined) {
      const r = cpu / peerCpu;
      out.push({ scenario: 'kafka-eos-k0', text: 'farad / Kafka Streams, CPU-seconds per vote ≤ 1', measured: `${fmt(r, 3)} (${fmt(cpu, 1)} / ${fmt(peerCpu, 1)} µs)`, met: r <= 1 });
    }
  }
  const latency = get('latency');
  if (latency) out.push({ scenario: 'latency', text: 'p99 ≤ 150 ms', measured: `${fmt(latency.p99Ms, 1)} ms`, met: latency.p99Ms === null ? undefined : latency.p99Ms <= 150 });
  const peerLatency = get('kafka-streams-latency');
  if (latency?.p99Ms && peerLatency?.p99Ms) {
    const r = latency.p99Ms / peerLatency.p99Ms;
    out.push({ scenario: 'latency', text: 'farad / Kafka Streams, p99 at the same rate ≤ 1', measured: `${fmt(r, 3)} (${fmt(latency.p99Ms, 1)} / ${fmt(peerLatency.p99Ms, 1)} ms)`, met: r <= 1 });
  }
  const snapshot = get('restore-snapshot');
  if (snapshot) {
    out.push({
      scenario: 'restore-snapshot',
      text: '≥ 1,000,000 records/s from a snapshot',
      measured: `${fmt(snapshot.eventsPerSec)} records/s`,
      met: snapshot.eventsPerSec === null ? undefined : snapshot.eventsPerSec >= 1_000_000,
    });
  }
  const kill = get('failover-kill');
  if (kill) {
    const limit = sessionTimeoutMs + 2000;
    out.push({ scenario: 'failover-kill', text: `pause ≤ session timeout + 2 s (${fmt(limit)} ms)`, measured: `${fmt(kill.p99Ms)} ms`, met: kill.p99Ms === null ? undefined : kill.p99Ms <= limit });
  }
  const graceful = get('handover-graceful');
  if (graceful) out.push({ scenario: 'handover-graceful', text: 'pause ≤ 1 s', measured: `${fmt(graceful.p99Ms)} ms`, met: graceful.p99Ms === null ? undefined : graceful.p99Ms <= 1000 });
  const gathering = get('console-256x10');
  if (gathering) out.push({ scenario: 'console-256x10', text: 'one console update of 256 partitions × 10 instances, p99 ≤ 250 ms', measured: `${fmt(gathering.p99Ms, 1)} ms`, met: gathering.p99Ms === null ? undefined : gathering.p99Ms <= 250 });
  const open = get('console-open');
  // Two runs on a shared 2-core machine differ by a few percent on their own.
  if (open) out.push({ scenario: 'console-open', text: 'the console open costs ≤ 10% of throughput (≥ 0.9 of kafka-eos-k0)', measured: fmt(open.ratio, 3), met: open.ratio === null ? undefined : open.ratio >= 0.9 });
  const memory = get('memory');
  if (memory) out.push({ scenario: 'memory', text: '≤ 2x a plain Map per key', measured: `${fmt(memory.ratio, 2)}x`, met: memory.ratio === null ? undefined : memory.ratio <= 2 });
  return out;
}

export interface PageInput {
  machine: Machine;
  command: string;
  startedAt: Date;
  durationSeconds: number;
  order: readonly string[];
  sizes: Map<string, string>;
  results: Map<string, Result>;
  reports: Map<string, ScenarioReport>;
  errors: Map<string, string>;
  targets: Target[];
  /** Profiles of scenarios that missed a target, by scenario. */
  profiles: Map<string, Array<{ title: string; file: string; heapFile?: string }>>;
  brokers: string;
  redisUrl: string;
  quick: boolean;
}

/** Hand-written notes kept from an existing page. */
export function keptNotes(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(NOTES_START);
  const end = text.indexOf(NOTES_END);
  if (start < 0 || end < start) return undefined;
  return text.slice(start + NOTES_START.length, end).trim();
}

const FIELD_MAP = [
  '| scenario | `eventsPerSec` | `p50Ms` / `p99Ms` | `baseline` → `baselineEventsPerSec` | `ratio` |',
  '|---|---|---|---|---|',
  '| engine-only | votes/s, wall clock | – | `plain-map-loop` votes/s | farad / plain loop |',
  '| kafka-raw-pipe | votes/s | – | – (it is the baseline) | – |',
  '| kafka-eos-k0, kafka-eos-k1 | votes/s | – | `kafka-raw-pipe` votes/s | farad / raw pipe |',
  '| kafka-streams-eos | votes/s of Kafka Streams (the peer), timed like kafka-eos-k0 | – | `kafka-eos-k0` votes/s | Kafka Streams / farad |',
  '| kafka-streams-latency | votes/s offered (the latency rate) | produce → read_committed result of Kafka Streams, ms | – | – |',
  '| latency | votes/s offered (½ of kafka-eos-k0) | produce → read_committed result, ms | – | – |',
  '| restore-snapshot | records/s | – | `redis-get-plain-map` records/s | farad / plain decode |',
  '| restore-changelog | records/s | – | – | – |',
  '| failover-kill, handover-graceful | null | pause in ms: median / longest over the partitions | – | – |',
  '| mp-transfers | multi-partition transfers/s (embedded) | – | `single-partition-deposits` deposits/s | farad MP / SP |',
  '| mp-1pct-share | events/s with 1% transfers (embedded) | – | `single-partition-deposits` events/s | what a 1% MP share leaves of SP throughput |',
  '| console-256x10 | console gatherings/s (at p50) | one gathering of 256 partitions × 10 instances | – | – |',
  '| console-open | votes/s with the console open | – | `kafka-eos-k0` votes/s | with / without the console |',
  '| memory | **heap bytes per key** (farad) | – | `plain-map` **bytes per key** | farad / Map (lower is better) |',
];

export function page(input: PageInput, notes: string | undefined): string {
  const { machine: m } = input;
  const lines: string[] = [];
  lines.push('# farad benchmarks', '');
  lines.push(
    `Generated by \`${input.command}\` on ${input.startedAt.toISOString().replace('T', ' ').slice(0, 19)} UTC in ${Math.round(input.durationSeconds)} s${input.quick ? ' — **quick smoke run, sizes are tiny: the numbers mean nothing**' : ''}.`,
    '',
  );
  lines.push('## Machine', '');
  lines.push(
    `- ${m.nproc} cores (\`nproc\`), ${m.cpuModel}, ${m.memoryGb} GiB RAM, Linux ${m.kernel}`,
    `- Node ${m.node}; Kafka ${input.brokers} (single KRaft broker on this machine), Redis ${input.redisUrl.replace(/\/\/[^@]*@/, '//***@')}`,
    `- load average at start ${m.loadStart.map((l) => l.toFixed(2)).join(' / ')}${m.loadEnd ? `, at end ${m.loadEnd.map((l) => l.toFixed(2)).join(' / ')}` : ''} (1/5/15 min) — broker, Redis and farad share the same ${m.nproc} cores`,
    '',
  );

  lines.push('## Results', '');
  lines.push('| scenario | size | events/s | p50 ms | p99 ms | baseline | baseline/s | ratio |', '|---|---:|---:|---:|---:|---|---:|---:|');
  for (const scenario of input.order) {
    const r = input.results.get(scenario);
    if (!r) {
      const err = input.errors.get(scenario);
      if (err) lines.push(`| ${scenario} | ${input.sizes.get(scenario) ?? ''} | **failed** | | | | | |`);
      continue;
    }
    const digits = scenario === 'memory' ? 1 : 0;
    lines.push(
      `| ${scenario} | ${input.sizes.get(scenario) ?? ''} | ${fmt(r.eventsPerSec, digits)} | ${fmt(r.p50Ms, r.p50Ms !== null && r.p50Ms < 1000 ? 1 : 0)} | ${fmt(r.p99Ms, r.p99Ms !== null && r.p99Ms < 1000 ? 1 : 0)} | ${r.baseline ?? '–'} | ${fmt(r.baselineEventsPerSec, digits)} | ${fmt(r.ratio, 3)} |`,
    );
  }
  lines.push('', 'Field meanings (also of the JSON written with `--out`):', '', ...FIELD_MAP, '');

  lines.push('## Targets', '');
  lines.push('| scenario | target | measured | |', '|---|---|---|---|');
  for (const t of input.targets) lines.push(`| ${t.scenario} | ${t.text} | ${t.measured} | ${t.info ? 'context' : t.met === undefined ? 'not measured' : t.met ? 'met' : '**MISSED**'} |`);
  const missed = input.targets.filter((t) => t.met === false);
  lines.push('');
  if (missed.length === 0) lines.push('Every measured target was met.', '');
  else lines.push(`**Missed in this run:** ${missed.map((t) => `${t.scenario} (${t.text}: ${t.measured})`).join('; ')}.`, '');

  if (input.profiles.size > 0) {
    lines.push('## Where the time goes (CPU profiles of scenarios that missed a target)', '');
    lines.push('Taken in a separate, profiled run of the scenario (profiling slows it down; the numbers above come from the unprofiled run). Self time per function, idle excluded.', '');
    for (const [scenario, profiles] of input.profiles) {
      lines.push(`### ${scenario}`, '');
      for (const p of profiles) {
        try {
          lines.push(...summaryMarkdown(p.title, summarise(p.file)));
          if (p.heapFile && existsSync(p.heapFile)) lines.push(...allocationMarkdown(p.heapFile));
        } catch (err) {
          lines.push(`${p.title}: no profile (${(err as Error).message})`, '');
        }
      }
    }
  }

  lines.push('## Analysis and what would close the gaps', '', NOTES_START, notes ?? '_(no notes yet)_', NOTES_END, '');

  lines.push('## Scenarios', '');
  const shown = new Set<ScenarioReport>();
  for (const scenario of input.order) {
    const report = input.reports.get(scenario);
    const err = input.errors.get(scenario);
    if (report && shown.has(report)) continue;
    if (!report && !err) continue;
    const together = report ? input.order.filter((s) => input.reports.get(s) === report) : [scenario];
    if (report) shown.add(report);
    lines.push(`### ${together.join(', ')}`, '');
    if (err) lines.push(`**Failed:** ${err}`, '');
    for (const d of report?.details ?? []) lines.push(`- ${d}`);
    for (const s of together) for (const d of report?.rowDetails?.[s] ?? []) lines.push(`- ${s}: ${d}`);
    lines.push('');
  }
  lines.push('## Running it', '');
  lines.push(
    '```sh',
    'npm run bench                                  # every scenario, default sizes; writes BENCHMARKS.md',
    'npm run bench -- --out results.json            # also the JSON array of results',
    'npm run bench -- --only engine-only,memory     # some scenarios (the page then goes to a temp file unless --md)',
    'npm run bench -- --size engine-only=500000     # a scenario\'s size (see --help for what size means per scenario)',
    'npm run bench -- --quick                       # tiny smoke run of everything',
    '```',
    '',
    'Kafka and Redis come from `KAFKA_BROKERS` (default 127.0.0.1:9092) and `REDIS_URL` (default redis://127.0.0.1:6379); when they do not answer, the bench runs `scripts/services-up.sh`. Every run uses its own topics, groups and app names and deletes its topics afterwards.',
    '',
  );
  return lines.join('\n');
}
