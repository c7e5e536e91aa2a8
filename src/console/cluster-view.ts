/**
 * The app across its instances, as the console shows it: every partition's owner, standbys and
 * figures, and the counters summed. Pure: made from the instances' reports.
 */
import type { PartitionRole } from '../partition/index.js';
import type { Alert, ClusterView, InstanceSummary, PartitionHolder, PartitionRow } from './web/api.js';
import type { HostedPartition, InstanceReport } from './instance-report.js';

export interface AppFacts {
  readonly app: string;
  readonly transport: 'kafka' | 'embedded';
  readonly partitions: number;
  readonly replicas: number;
  readonly servedBy: string;
}

export interface Unreachable {
  readonly instanceId: string;
  readonly url?: string;
  readonly error: string;
}

/** Roles held under the partition's lease: the instance that has one of them owns it. */
const LEASED: ReadonlySet<PartitionRole> = new Set(['active', 'fencing', 'restoring', 'closing', 'failed']);
/** Which of several leased holders counts as the owner (a stale `closing` one loses to the new `active`). */
const OWNER_RANK: Readonly<Record<PartitionRole, number>> = { active: 0, restoring: 1, fencing: 2, failed: 3, closing: 4, standby: 5 };

export function clusterViewOf(facts: AppFacts, reports: readonly InstanceReport[], unreachable: readonly Unreachable[], alerts: readonly Alert[], at: number): ClusterView {
  const sorted = [...reports].sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  const byPartition = new Map<number, Held[]>();
  for (const r of sorted) {
    for (const p of r.partitions) {
      const list = byPartition.get(p.partition);
      if (list) list.push({ instanceId: r.instanceId, p });
      else byPartition.set(p.partition, [{ instanceId: r.instanceId, p }]);
    }
  }
  return {
    app: facts.app,
    transport: facts.transport,
    partitions: facts.partitions,
    replicas: facts.replicas,
    at,
    servedBy: facts.servedBy,
    instances: sorted.map(summaryOf),
    unreachable,
    partitionRows: Array.from({ length: facts.partitions }, (_, p) => rowOf(p, byPartition.get(p) ?? [])),
    events: summed(sorted.flatMap((r) => r.events), (e) => `${e.eventType}\u0000${e.outcome}`).map(([e, total]) => ({ eventType: e.eventType, outcome: e.outcome, total })),
    ingested: summed(sorted.flatMap((r) => r.ingested), (e) => e.eventType).map(([e, total]) => ({ eventType: e.eventType, total })),
    deadLetters: summed(sorted.flatMap((r) => r.deadLetters), (d) => d.reason).map(([d, total]) => ({ reason: d.reason, total })),
    timers: {
      pending: sorted.reduce((sum, r) => sum + r.partitions.reduce((s, p) => s + (p.role === 'active' ? (p.timersPending ?? 0) : 0), 0), 0),
      fired: summed(sorted.flatMap((r) => r.timersFired), (t) => t.timer).map(([t, total]) => ({ timer: t.timer, total })),
    },
    snapshots: {
      ok: sorted.reduce((s, r) => s + r.snapshots.ok, 0),
      failed: sorted.reduce((s, r) => s + r.snapshots.failed, 0),
      skipped: sorted.reduce((s, r) => s + r.snapshots.skipped, 0),
    },
    alerts,
  };
}

function summaryOf(report: InstanceReport): InstanceSummary {
  return {
    instanceId: report.instanceId,
    ...(report.url !== undefined ? { url: report.url } : {}),
    ready: report.ready,
    ...(report.failure !== undefined ? { failure: report.failure } : {}),
    workers: report.workers,
    startedAt: report.startedAt,
    active: report.partitions.filter((p) => p.role === 'active').map((p) => p.partition),
    standby: report.partitions.filter((p) => p.role === 'standby').map((p) => p.partition),
    rebalances: report.rebalances,
  };
}

/** A partition as one instance holds it. */
interface Held {
  readonly instanceId: string;
  readonly p: HostedPartition;
}

function rowOf(partition: number, held: readonly Held[]): PartitionRow {
  const holders: PartitionHolder[] = held.map(({ instanceId, p }) => ({ instanceId, role: p.role, ...(p.reason !== undefined ? { reason: p.reason } : {}) }));
  const owner = held.filter(({ p }) => LEASED.has(p.role)).sort((a, b) => OWNER_RANK[a.p.role] - OWNER_RANK[b.p.role])[0];
  const standbys = held.filter(({ p }) => p.role === 'standby');
  const standbyLags = standbys.flatMap(({ p }) => (p.standbyLag === undefined ? [] : [p.standbyLag]));
  const o = owner?.p;
  return {
    partition,
    ...(owner ? { owner: owner.instanceId } : {}),
    role: o?.role ?? 'unowned',
    standbys: standbys.map((s) => s.instanceId),
    holders,
    ...(o?.lag !== undefined ? { lag: o.lag } : {}),
    ...(standbyLags.length > 0 ? { standbyLag: Math.max(...standbyLags) } : {}),
    eventsTotal: held.reduce((sum, { p }) => sum + p.events, 0),
    ...(o?.restoreProgress !== undefined ? { restoreProgress: o.restoreProgress } : {}),
    ...(o?.restoreRate !== undefined ? { restoreRate: o.restoreRate } : {}),
    ...(o?.lastCommitAt !== undefined ? { lastCommitAt: o.lastCommitAt } : {}),
    ...(o?.snapshotAgeSeconds !== undefined ? { snapshotAgeSeconds: o.snapshotAgeSeconds } : {}),
    ...(o?.timersPending !== undefined ? { timersPending: o.timersPending } : {}),
    commitFailures: held.reduce((sum, { p }) => sum + p.commitFailures, 0),
  };
}

/** Items with the same key summed (`total`), in key order. */
function summed<T extends { readonly total: number }>(items: readonly T[], keyOf: (item: T) => string): Array<[T, number]> {
  const sums = new Map<string, [T, number]>();
  for (const item of items) {
    const key = keyOf(item);
    const entry = sums.get(key);
    if (entry) entry[1] += item.total;
    else sums.set(key, [item, item.total]);
  }
  return [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([, v]) => v);
}
