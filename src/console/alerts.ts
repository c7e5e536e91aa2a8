/**
 * The shipped alert rules (helm/farad/files/alerts.yaml), evaluated over the console's gathered
 * reports instead of Prometheus' series: same conditions, same thresholds, same `for:`. Time
 * windows (`increase(...[5m])`, `for: 10m`) are measured over the reports this watch has seen,
 * so an alert is `pending` until the console has watched its condition hold for the rule's
 * `for:`. Counters count from each instance's start, so an increase over a window the instance
 * lived entirely is known without history. Pure: the caller passes the time.
 */
import type { Alert } from './web/api.js';
import type { InstanceReport } from './instance-report.js';

const MINUTE = 60_000;

/** One condition that holds now, with the labels that tell it apart. */
interface Firing {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Rule {
  readonly name: string;
  readonly severity: 'critical' | 'warning';
  readonly forMs: number;
  readonly summary: (labels: Readonly<Record<string, string>>, value: number) => string;
  readonly holds: (now: Reports) => Firing[];
}

/** Counters and gauges of one instance kept for windows: only the few values rules look back at. */
interface Sample {
  readonly at: number;
  readonly startedAt: number;
  readonly deadLetters: ReadonlyMap<string, number>;
  readonly commitFailures: ReadonlyMap<number, number>;
  readonly rebalances: number;
  readonly snapshotsNotTaken: { readonly failed: number; readonly skipped: number };
  /** Input lag of partitions over the lag threshold only. */
  readonly bigLag: ReadonlyMap<number, number>;
}

/** The reports of now, with the history to take increases over windows. */
class Reports {
  constructor(
    readonly at: number,
    readonly partitions: number,
    readonly reports: readonly InstanceReport[],
    private readonly history: ReadonlyMap<string, readonly Sample[]>,
  ) {}

  /**
   * How much a counter of every instance grew over the last `windowMs`: now minus its value at
   * the window's start (0 when the instance started inside the window; the oldest value seen
   * when the console has not watched that long, which can only understate it).
   */
  increase(windowMs: number, read: (s: Sample) => number): number {
    let sum = 0;
    for (const samples of this.history.values()) {
      const last = samples[samples.length - 1];
      if (!last || last.at !== this.at) continue; // an instance not reached now
      const from = this.at - windowMs;
      if (last.startedAt >= from) {
        sum += read(last);
        continue;
      }
      const before = findLast(samples, (s) => s.at <= from) ?? samples[0]!;
      sum += Math.max(0, read(last) - read(before));
    }
    return sum;
  }

  /** Each instance's sample from about `windowMs` ago (the oldest within the window it has), and its newest. */
  *spans(windowMs: number): Generator<{ readonly first: Sample; readonly last: Sample }> {
    for (const samples of this.history.values()) {
      const last = samples[samples.length - 1];
      if (!last || last.at !== this.at) continue;
      const first = samples.find((s) => s.at >= this.at - windowMs) ?? last;
      yield { first, last };
    }
  }
}

const LAG_THRESHOLD = 10_000;
const STANDBY_LAG_THRESHOLD = 100_000;

const RULES: readonly Rule[] = [
  {
    name: 'FaradPartitionWithoutActiveOwner',
    severity: 'critical',
    forMs: 2 * MINUTE,
    summary: (l) => `partition ${l['partition']} has no active owner`,
    holds: (now) => {
      if (now.reports.length === 0) return [];
      const active = new Set<number>();
      const restoring = new Set<number>();
      for (const r of now.reports) {
        for (const p of r.partitions) {
          if (p.role === 'active') active.add(p.partition);
          if (p.role === 'restoring') restoring.add(p.partition);
        }
      }
      return range(now.partitions)
        .filter((p) => !active.has(p) && !restoring.has(p))
        .map((p) => ({ labels: { partition: String(p) }, value: 0 }));
    },
  },
  {
    name: 'FaradPartitionRolesAbsent',
    severity: 'critical',
    forMs: 5 * MINUTE,
    summary: () => 'no instance reports an active partition',
    holds: (now) => (now.reports.some((r) => r.partitions.some((p) => p.role === 'active')) ? [] : [{ labels: {}, value: 1 }]),
  },
  {
    name: 'FaradPartitionMultipleActiveOwners',
    severity: 'warning',
    forMs: 5 * MINUTE,
    summary: (l, v) => `partition ${l['partition']} is active on ${v} instances`,
    holds: (now) => {
      const count = new Map<number, number>();
      for (const r of now.reports) for (const p of r.partitions) if (p.role === 'active') count.set(p.partition, (count.get(p.partition) ?? 0) + 1);
      return [...count].filter(([, n]) => n > 1).map(([p, n]) => ({ labels: { partition: String(p) }, value: n }));
    },
  },
  {
    name: 'FaradRestoreTooLong',
    severity: 'warning',
    forMs: 10 * MINUTE,
    summary: (l) => `partition ${l['partition']} has been restoring for over 10 minutes on ${l['instance']}`,
    holds: (now) =>
      now.reports.flatMap((r) => r.partitions.filter((p) => p.role === 'restoring').map((p) => ({ labels: { partition: String(p.partition), instance: r.instanceId }, value: 1 }))),
  },
  {
    name: 'FaradConsumerLagGrowing',
    severity: 'warning',
    forMs: 10 * MINUTE,
    summary: (l, v) => `partition ${l['partition']} is ${v} input records behind and the lag keeps growing`,
    holds: (now) => {
      const out: Firing[] = [];
      for (const { first, last } of now.spans(10 * MINUTE)) {
        for (const [partition, lag] of last.bigLag) {
          // deriv > 0: the lag grew since the window's start (unknown until the console watched a while).
          const then = first.bigLag.get(partition) ?? (first.at < last.at ? 0 : lag);
          if (lag > then) out.push({ labels: { partition: String(partition) }, value: lag });
        }
      }
      return out;
    },
  },
  {
    name: 'FaradDeadLetters',
    severity: 'warning',
    forMs: 0,
    summary: (l, v) => `dead letters (${l['reason']}) in the last 5 minutes: ${v}`,
    holds: (now) => {
      const reasons = new Set(now.reports.flatMap((r) => r.deadLetters.map((d) => d.reason)));
      return [...reasons]
        .map((reason) => ({ labels: { reason }, value: now.increase(5 * MINUTE, (s) => s.deadLetters.get(reason) ?? 0) }))
        .filter((f) => f.value > 0);
    },
  },
  {
    name: 'FaradCommitsFailing',
    severity: 'warning',
    forMs: 5 * MINUTE,
    summary: (l, v) => `commits of partition ${l['partition']} rolled back in 10 minutes: ${v}`,
    holds: (now) => {
      const partitions = new Set(now.reports.flatMap((r) => r.commitFailures.map((c) => c.partition)));
      return [...partitions]
        .map((p) => ({ labels: { partition: String(p) }, value: now.increase(10 * MINUTE, (s) => s.commitFailures.get(p) ?? 0) }))
        .filter((f) => f.value > 3);
    },
  },
  {
    name: 'FaradStandbyLagHigh',
    severity: 'warning',
    forMs: 10 * MINUTE,
    summary: (l, v) => `a standby of partition ${l['partition']} is ${v} changelog records behind`,
    holds: (now) => {
      const worst = new Map<number, number>();
      for (const r of now.reports) for (const p of r.partitions) if (p.standbyLag !== undefined) worst.set(p.partition, Math.max(worst.get(p.partition) ?? 0, p.standbyLag));
      return [...worst].filter(([, lag]) => lag > STANDBY_LAG_THRESHOLD).map(([p, lag]) => ({ labels: { partition: String(p) }, value: lag }));
    },
  },
  {
    name: 'FaradRebalanceStorm',
    severity: 'warning',
    forMs: 5 * MINUTE,
    summary: (_l, v) => `rebalances in 15 minutes: ${v}`,
    holds: (now) => {
      const value = now.increase(15 * MINUTE, (s) => s.rebalances);
      return value > 10 ? [{ labels: {}, value }] : [];
    },
  },
  {
    name: 'FaradSnapshotsFailing',
    severity: 'warning',
    forMs: 15 * MINUTE,
    summary: (l) => `snapshots ${l['outcome']}`,
    holds: (now) =>
      (['failed', 'skipped'] as const)
        .map((outcome) => ({ labels: { outcome }, value: now.increase(15 * MINUTE, (s) => s.snapshotsNotTaken[outcome]) }))
        .filter((f) => f.value > 0),
  },
  {
    name: 'FaradSnapshotTooOld',
    severity: 'warning',
    forMs: 15 * MINUTE,
    summary: (l) => `partition ${l['partition']} has no snapshot newer than an hour`,
    // Active here and processing: a batch committed in the last hour (the rule asks for events handled in it).
    holds: (now) =>
      now.reports.flatMap((r) =>
        r.partitions
          .filter((p) => p.role === 'active' && (p.snapshotAgeSeconds ?? 0) > 3600 && p.lastCommitAt !== undefined && p.lastCommitAt > now.at - 60 * MINUTE)
          .map((p) => ({ labels: { partition: String(p.partition), instance: r.instanceId }, value: p.snapshotAgeSeconds ?? 0 })),
      ),
  },
];

/** The names of the rules evaluated, as in alerts.yaml. */
export const ALERT_NAMES: readonly string[] = RULES.map((r) => r.name);

/** Keeps what the alert windows need and tells, at each gathering, which alerts would fire. */
export class AlertWatch {
  private readonly history = new Map<string, Sample[]>();
  /** Since when each condition (rule and labels) has held. */
  private readonly holding = new Map<string, number>();

  /**
   * @param keepMs how far back samples are kept (the longest window, 15 minutes)
   * @param everyMs at most one sample per instance per this interval is kept
   */
  constructor(
    private readonly keepMs = 16 * MINUTE,
    private readonly everyMs = 10_000,
  ) {}

  /** The alerts of the reports gathered at `at` (`partitions`: the app's count). */
  evaluate(reports: readonly InstanceReport[], partitions: number, at: number): Alert[] {
    this.remember(reports, at);
    const now = new Reports(at, partitions, reports, this.history);
    const alerts: Alert[] = [];
    const seen = new Set<string>();
    for (const rule of RULES) {
      for (const { labels, value } of rule.holds(now)) {
        const key = `${rule.name}${JSON.stringify(labels)}`;
        seen.add(key);
        const since = this.holding.get(key) ?? at;
        this.holding.set(key, since);
        alerts.push({ name: rule.name, severity: rule.severity, state: at - since >= rule.forMs ? 'firing' : 'pending', since, summary: rule.summary(labels, value), labels });
      }
    }
    for (const key of [...this.holding.keys()]) if (!seen.has(key)) this.holding.delete(key);
    return alerts.sort((a, b) => severityRank(a) - severityRank(b) || a.since - b.since || a.name.localeCompare(b.name));
  }

  private remember(reports: readonly InstanceReport[], at: number): void {
    const reached = new Set<string>();
    for (const r of reports) {
      reached.add(r.instanceId);
      const sample = sampleOf(r, at);
      let samples = this.history.get(r.instanceId);
      // A restarted instance (same id) counts from zero again: its old samples are of another process.
      if (samples && samples[0]!.startedAt !== r.startedAt) samples = undefined;
      if (!samples) {
        this.history.set(r.instanceId, [sample]);
        continue;
      }
      const last = samples[samples.length - 1]!;
      // The newest sample always stands for now; older ones are thinned to one per `everyMs`.
      const previous = samples[samples.length - 2];
      if (previous && last.at - previous.at < this.everyMs) samples[samples.length - 1] = sample;
      else samples.push(sample);
      while (samples.length > 1 && samples[0]!.at < at - this.keepMs) samples.shift();
    }
    for (const id of [...this.history.keys()]) {
      const samples = this.history.get(id)!;
      if (!reached.has(id) && samples[samples.length - 1]!.at < at - this.keepMs) this.history.delete(id);
    }
  }
}

function sampleOf(r: InstanceReport, at: number): Sample {
  return {
    at,
    startedAt: r.startedAt,
    deadLetters: new Map(r.deadLetters.map((d) => [d.reason, d.total])),
    commitFailures: new Map(r.commitFailures.filter((c) => c.total > 0).map((c) => [c.partition, c.total])),
    rebalances: r.rebalances,
    snapshotsNotTaken: { failed: r.snapshots.failed, skipped: r.snapshots.skipped },
    bigLag: new Map(r.partitions.filter((p) => (p.lag ?? 0) > LAG_THRESHOLD).map((p) => [p.partition, p.lag!])),
  };
}

function severityRank(a: Alert): number {
  return (a.state === 'firing' ? 0 : 2) + (a.severity === 'critical' ? 0 : 1);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function findLast<T>(items: readonly T[], test: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i]!)) return items[i];
  return undefined;
}
