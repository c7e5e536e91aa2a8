/**
 * What one instance tells the console about itself: its partitions and counters, read from its
 * own metrics (the same values `/metrics` exposes, so the console and Prometheus agree).
 */
import type { PartitionRole, PartitionStatus } from '../partition/index.js';
import { METRIC } from '../metrics/index.js';

/** One value of a metric as prom-client's `getMetricsAsJSON` gives it. */
export interface MetricSample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number | undefined>>;
}

/** A metric as prom-client's `getMetricsAsJSON` gives it (counters and gauges are read). */
export interface MetricValues {
  readonly name: string;
  readonly values: readonly MetricSample[];
}

/** One partition hosted on the instance. */
export interface HostedPartition {
  readonly partition: number;
  readonly role: PartitionRole;
  readonly reason?: string;
  readonly lag?: number;
  readonly standbyLag?: number;
  readonly events: number;
  readonly restoreProgress?: number;
  readonly restoreRate?: number;
  readonly lastCommitAt?: number;
  readonly snapshotAgeSeconds?: number;
  readonly timersPending?: number;
  readonly commitFailures: number;
}

/** `GET /console/api/instance`: one instance (all its workers) as the console gathers it. */
export interface InstanceReport {
  readonly instanceId: string;
  readonly url?: string;
  readonly workers: number;
  /** When the instance started (ms since the epoch): its counters count from there. */
  readonly startedAt: number;
  /** When this report was made (ms since the epoch). */
  readonly at: number;
  readonly ready: boolean;
  readonly failure?: string;
  readonly partitions: readonly HostedPartition[];
  readonly events: readonly { readonly eventType: string; readonly outcome: 'ok' | 'failed'; readonly total: number }[];
  readonly ingested: readonly { readonly eventType: string; readonly total: number }[];
  readonly deadLetters: readonly { readonly reason: string; readonly total: number }[];
  readonly timersFired: readonly { readonly timer: string; readonly total: number }[];
  /** Commit failures per partition, also of partitions no longer hosted here (alerts count them). */
  readonly commitFailures: readonly { readonly partition: number; readonly total: number }[];
  readonly snapshots: { readonly ok: number; readonly failed: number; readonly skipped: number };
  readonly rebalances: number;
}

export interface InstanceIdentity {
  readonly instanceId: string;
  readonly url?: string | undefined;
  readonly workers: number;
  readonly startedAt: number;
}

/** The report of an instance from its health and its metrics' values at `at`. */
export function instanceReportOf(
  identity: InstanceIdentity,
  health: { readonly ready: boolean; readonly failure?: string | undefined; readonly partitions: readonly PartitionStatus[] },
  metrics: readonly MetricValues[],
  at: number,
): InstanceReport {
  const byName = new Map(metrics.map((m) => [m.name, m.values]));
  const values = (name: string): readonly MetricSample[] => byName.get(name) ?? [];
  const perPartition = (name: string): Map<number, number> => {
    const out = new Map<number, number>();
    for (const { labels, value } of values(name)) {
      const partition = Number(labels['partition']);
      if (Number.isInteger(partition)) out.set(partition, (out.get(partition) ?? 0) + value);
    }
    return out;
  };
  const lag = perPartition(METRIC.consumerLag);
  const standbyLag = perPartition(METRIC.standbyLag);
  const restoreProgress = perPartition(METRIC.restoreProgress);
  const restoreRate = perPartition(METRIC.restoreRate);
  const lastCommit = perPartition(METRIC.lastCommit);
  const snapshotAge = perPartition(METRIC.snapshotAge);
  const timersPending = perPartition(METRIC.timersPending);
  const commitFailures = perPartition(METRIC.commitFailures);
  const events = perPartition(METRIC.eventsProcessed);

  const partitions = [...health.partitions]
    .sort((a, b) => a.partition - b.partition)
    .map(({ partition, role, reason }): HostedPartition => ({
      partition,
      role,
      ...(reason !== undefined ? { reason } : {}),
      ...optional('lag', lag.get(partition)),
      ...optional('standbyLag', standbyLag.get(partition)),
      events: events.get(partition) ?? 0,
      ...optional('restoreProgress', restoreProgress.get(partition)),
      ...optional('restoreRate', restoreRate.get(partition)),
      ...optional('lastCommitAt', seconds(lastCommit.get(partition))),
      ...optional('snapshotAgeSeconds', snapshotAge.get(partition)),
      ...optional('timersPending', timersPending.get(partition)),
      commitFailures: commitFailures.get(partition) ?? 0,
    }));

  return {
    instanceId: identity.instanceId,
    ...(identity.url !== undefined ? { url: identity.url } : {}),
    workers: identity.workers,
    startedAt: identity.startedAt,
    at,
    ready: health.ready,
    ...(health.failure !== undefined ? { failure: health.failure } : {}),
    partitions,
    events: totalsBy(values(METRIC.eventsProcessed), 'event_type', 'outcome').map(([eventType, outcome, total]) => ({
      eventType,
      outcome: outcome === 'failed' ? 'failed' : 'ok',
      total,
    })),
    ingested: totalsBy(values(METRIC.ingested), 'event_type').map(([eventType, , total]) => ({ eventType, total })),
    deadLetters: totalsBy(values(METRIC.deadLetters), 'reason').map(([reason, , total]) => ({ reason, total })),
    timersFired: totalsBy(values(METRIC.timersFired), 'timer').map(([timer, , total]) => ({ timer, total })),
    commitFailures: [...commitFailures].sort(([a], [b]) => a - b).map(([partition, total]) => ({ partition, total })),
    snapshots: {
      ok: total(values(METRIC.snapshots), { outcome: 'ok' }),
      failed: total(values(METRIC.snapshots), { outcome: 'failed' }),
      skipped: total(values(METRIC.snapshots), { outcome: 'skipped' }),
    },
    rebalances: total(values(METRIC.rebalances)),
  };
}

/** The metrics a report reads (an instance sends only these to the one gathering). */
export const REPORTED_METRICS: ReadonlySet<string> = new Set([
  METRIC.consumerLag,
  METRIC.standbyLag,
  METRIC.restoreProgress,
  METRIC.restoreRate,
  METRIC.lastCommit,
  METRIC.snapshotAge,
  METRIC.timersPending,
  METRIC.commitFailures,
  METRIC.eventsProcessed,
  METRIC.ingested,
  METRIC.deadLetters,
  METRIC.timersFired,
  METRIC.snapshots,
  METRIC.rebalances,
]);

function optional<K extends string>(key: K, value: number | undefined): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

function seconds(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value * 1000);
}

/** Sums of `values` grouped by one label (and a second one, if named), sorted by them: [first, second, sum]. */
function totalsBy(values: readonly MetricSample[], first: string, second?: string): Array<[string, string, number]> {
  const sums = new Map<string, [string, string, number]>();
  for (const { labels, value } of values) {
    const a = String(labels[first] ?? '');
    const b = second === undefined ? '' : String(labels[second] ?? '');
    const id = `${a}\u0000${b}`;
    const entry = sums.get(id);
    if (entry) entry[2] += value;
    else sums.set(id, [a, b, value]);
  }
  return [...sums].sort(([x], [y]) => x.localeCompare(y)).map(([, entry]) => entry);
}

function total(values: readonly MetricSample[], match: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const { labels, value } of values) if (Object.entries(match).every(([k, v]) => labels[k] === v)) sum += value;
  return sum;
}
