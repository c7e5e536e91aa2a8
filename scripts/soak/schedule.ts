/**
 * The seeded fault schedule: a pure function of (seed, minutes, options). The same seed gives the
 * same schedule; the run executes it in order on three tracks that run side by side:
 *   cluster   instance faults (kill -9, SIGSTOP/SIGCONT, graceful restart) and broker restarts,
 *             one at a time, each followed by recovery (every instance ready) before the next;
 *   redis     Redis restarts and outages (snapshots only: they overlap the cluster track freely);
 *   embedded  kill -9 during compaction and a full disk, on the single embedded-log instance.
 * `atMs` is the earliest start, from the start of the fault window; a fault starts later when the
 * one before it on its track took longer than planned, and is skipped (reported) when its start
 * would fall after the window. Every kind comes once, in a shuffled order, before any repeats.
 */
import { between, pick, shuffle, streamOf, type Random } from './prng.js';

export const INSTANCES = 3;

export type ClusterFault =
  | { readonly kind: 'kill9'; readonly target: number; readonly downMs: number }
  | { readonly kind: 'pause'; readonly target: number; readonly pauseMs: number }
  | { readonly kind: 'graceful-restart'; readonly target: number; readonly downMs: number }
  | { readonly kind: 'broker-restart'; readonly downMs: number };

export type RedisFault = { readonly kind: 'redis-restart' } | { readonly kind: 'redis-outage'; readonly outageMs: number };

export type EmbeddedFault =
  | { readonly kind: 'compaction-kill'; readonly downMs: number; readonly hunt: 'rewrite' | 'any' }
  | { readonly kind: 'disk-full'; readonly holdMs: number };

export type Fault = ClusterFault | RedisFault | EmbeddedFault;
export type FaultKind = Fault['kind'];
export type Track = 'cluster' | 'redis' | 'embedded';

export interface Planned<F extends Fault = Fault> {
  readonly track: Track;
  /** Number within its track, from 1. */
  readonly n: number;
  readonly atMs: number;
  readonly fault: F;
}

export interface Schedule {
  readonly seed: number;
  readonly windowMs: number;
  readonly cluster: ReadonlyArray<Planned<ClusterFault>>;
  readonly redis: ReadonlyArray<Planned<RedisFault>>;
  readonly embedded: ReadonlyArray<Planned<EmbeddedFault>>;
}

export interface ScheduleOptions {
  readonly seed: number;
  readonly minutes: number;
  /** The instances' Kafka session timeout: a pause lasts longer than it. */
  readonly sessionTimeoutMs: number;
  readonly embedded: boolean;
  readonly serviceFaults: boolean;
  /** Only these kinds; all when absent. */
  readonly faults?: readonly FaultKind[];
}

export const CLUSTER_KINDS = ['kill9', 'pause', 'graceful-restart', 'broker-restart'] as const;
export const REDIS_KINDS = ['redis-restart', 'redis-outage'] as const;
export const EMBEDDED_KINDS = ['compaction-kill', 'disk-full'] as const;
export const ALL_KINDS: readonly FaultKind[] = [...CLUSTER_KINDS, ...REDIS_KINDS, ...EMBEDDED_KINDS];

/** How long the Redis outage lasts: a minute, scaled down for short runs (a sixth of the window, at least 10 s). */
export function redisOutageMs(windowMs: number): number {
  return Math.max(10_000, Math.min(60_000, Math.round(windowMs / 6 / 1000) * 1000));
}

/** Pause between faults of one track: short runs fit every kind; long runs spread them out. */
function gap(random: Random, windowMs: number, track: Track): number {
  const long = windowMs > 10 * 60_000;
  if (track === 'redis') return long ? between(random, 60_000, 180_000) : between(random, 5_000, 15_000);
  return long ? between(random, 15_000, 60_000) : between(random, 3_000, 8_000);
}

/** What a fault takes, recovery included, as the planner estimates it (the run measures the real one). */
export function estimateMs(fault: Fault, sessionTimeoutMs: number): number {
  switch (fault.kind) {
    case 'kill9':
      // The partitions move once the session expires; the restarted instance rejoins.
      return fault.downMs + sessionTimeoutMs + 12_000;
    case 'pause':
      return fault.pauseMs + 12_000;
    case 'graceful-restart':
      return fault.downMs + 12_000;
    case 'broker-restart':
      return fault.downMs + 40_000;
    case 'redis-restart':
      return 3_000;
    case 'redis-outage':
      return fault.outageMs + 2_000;
    case 'compaction-kill':
      return fault.downMs + 10_000;
    case 'disk-full':
      return fault.holdMs + 10_000;
  }
}

function clusterFault(random: Random, kind: (typeof CLUSTER_KINDS)[number], sessionTimeoutMs: number): ClusterFault {
  const target = between(random, 0, INSTANCES - 1);
  switch (kind) {
    case 'kill9':
      return { kind, target, downMs: between(random, 1_000, 8_000) };
    case 'pause':
      return { kind, target, pauseMs: sessionTimeoutMs + between(random, 2_000, 6_000) };
    case 'graceful-restart':
      return { kind, target, downMs: between(random, 0, 3_000) };
    case 'broker-restart':
      return { kind, downMs: between(random, 0, 3_000) };
  }
}

function redisFault(kind: (typeof REDIS_KINDS)[number], windowMs: number): RedisFault {
  return kind === 'redis-restart' ? { kind } : { kind, outageMs: redisOutageMs(windowMs) };
}

function embeddedFault(random: Random, kind: (typeof EMBEDDED_KINDS)[number]): EmbeddedFault {
  return kind === 'compaction-kill'
    ? { kind, downMs: between(random, 200, 3_000), hunt: random() < 0.75 ? 'rewrite' : 'any' }
    : { kind, holdMs: between(random, 6_000, 15_000) };
}

/**
 * One track: every kind once (shuffled), then kinds at random, each at the previous one's planned
 * end plus a gap, while it still ends inside the window (`tailMs` before its end).
 */
function track<K extends FaultKind, F extends Fault>(
  random: Random,
  name: Track,
  kinds: readonly K[],
  make: (kind: K) => F,
  { windowMs, firstAtMs, tailMs, sessionTimeoutMs }: { windowMs: number; firstAtMs: number; tailMs: number; sessionTimeoutMs: number },
): Array<Planned<F>> {
  const out: Array<Planned<F>> = [];
  if (kinds.length === 0) return out;
  let at = firstAtMs;
  const queue = shuffle(random, kinds);
  for (;;) {
    const kind = queue.shift() ?? pick(random, kinds);
    const fault = make(kind);
    const end = at + estimateMs(fault, sessionTimeoutMs);
    if (end > windowMs - tailMs) {
      // A required kind that does not fit may still let a shorter one fit; try each once.
      if (queue.length > 0) continue;
      break;
    }
    out.push({ track: name, n: out.length + 1, atMs: at, fault });
    at = end + gap(random, windowMs, name);
  }
  return out;
}

export function buildSchedule(options: ScheduleOptions): Schedule {
  const { seed, minutes, sessionTimeoutMs } = options;
  const windowMs = Math.round(minutes * 60_000);
  const common = { windowMs, sessionTimeoutMs };
  const wanted = <K extends FaultKind>(kinds: readonly K[]): K[] => kinds.filter((k) => options.faults?.includes(k) ?? true);
  const clusterRandom = streamOf(seed, 'cluster');
  const clusterKinds = wanted(options.serviceFaults ? CLUSTER_KINDS : CLUSTER_KINDS.filter((k) => k !== 'broker-restart'));
  const cluster = track(clusterRandom, 'cluster', clusterKinds, (k) => clusterFault(clusterRandom, k, sessionTimeoutMs), { ...common, firstAtMs: 10_000, tailMs: 0 });
  const redisRandom = streamOf(seed, 'redis');
  const redis = options.serviceFaults
    ? track(redisRandom, 'redis', wanted(REDIS_KINDS), (k) => redisFault(k, windowMs), { ...common, firstAtMs: between(redisRandom, 15_000, 30_000), tailMs: 5_000 })
    : [];
  const embeddedRandom = streamOf(seed, 'embedded');
  const embedded = options.embedded
    ? track(embeddedRandom, 'embedded', wanted(EMBEDDED_KINDS), (k) => embeddedFault(embeddedRandom, k), { ...common, firstAtMs: between(embeddedRandom, 10_000, 20_000), tailMs: 5_000 })
    : [];
  return { seed, windowMs, cluster, redis, embedded };
}

/** Planned faults of every track by kind (for the summary and the tests). */
export function countKinds(schedule: Schedule): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of [...schedule.cluster, ...schedule.redis, ...schedule.embedded]) counts[p.fault.kind] = (counts[p.fault.kind] ?? 0) + 1;
  return counts;
}
