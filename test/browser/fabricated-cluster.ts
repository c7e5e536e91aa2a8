/**
 * A made-up ClusterView of a large cluster (partitions spread over instances, one standby each),
 * to measure the page's rendering without running that cluster. `tick` advances it by one poll.
 */
import type { ClusterView, InstanceSummary, PartitionRow } from '../../src/console/web/api.js';

export interface FabricatedCluster {
  readonly partitions: number;
  readonly instances: number;
}

/**
 * The view at poll `tick` (2 s apart). `changing` partitions handle events between polls (their
 * totals grow); the others stay exactly as they were, down to every age the page shows.
 */
export function fabricatedView({ partitions, instances }: FabricatedCluster, tick: number, changing: number): ClusterView {
  const at = 1_800_000_000_000 + tick * 2000;
  const ids = Array.from({ length: instances }, (_, i) => `instance-${String(i).padStart(2, '0')}`);
  const ownerOf = (p: number) => ids[p % instances]!;
  const standbyOf = (p: number) => ids[(p + 1) % instances]!;
  const partitionRows: PartitionRow[] = Array.from({ length: partitions }, (_, p) => {
    const busy = p < changing;
    return {
      partition: p,
      owner: ownerOf(p),
      role: 'active',
      standbys: [standbyOf(p)],
      holders: [
        { instanceId: ownerOf(p), role: 'active' },
        { instanceId: standbyOf(p), role: 'standby' },
      ],
      lag: busy ? tick % 7 : 0,
      standbyLag: 0,
      eventsTotal: busy ? 1000 + tick * 150 : 1000,
      restoreProgress: 1,
      restoreRate: 0,
      // Busy ones committed a moment ago each poll; idle ones keep the same age (it moves with `at`).
      lastCommitAt: busy ? at - 100 : at - 60_000,
      snapshotAgeSeconds: 120,
      timersPending: 0,
      commitFailures: 0,
    };
  });
  const summaries: InstanceSummary[] = ids.map((instanceId, i) => ({
    instanceId,
    url: `http://10.0.0.${i + 1}:8080`,
    ready: true,
    workers: 4,
    startedAt: at - 3_600_000,
    active: partitionRows.filter((r) => r.owner === instanceId).map((r) => r.partition),
    standby: partitionRows.filter((r) => r.standbys.includes(instanceId)).map((r) => r.partition),
    rebalances: 3,
  }));
  const handled = partitionRows.reduce((sum, r) => sum + r.eventsTotal, 0);
  return {
    app: 'bigcluster',
    transport: 'kafka',
    partitions,
    replicas: 1,
    at,
    servedBy: ids[0]!,
    instances: summaries,
    unreachable: [],
    partitionRows,
    events: [
      { eventType: 'shop.Order', outcome: 'ok', total: handled },
      { eventType: 'shop.Order', outcome: 'failed', total: 3 },
    ],
    ingested: [{ eventType: 'shop.Order', total: handled }],
    deadLetters: [{ reason: 'handler_error', total: 3 }],
    timers: { pending: 12, fired: [{ timer: 'shop.Expiry', total: 40 }] },
    snapshots: { ok: 512, failed: 0, skipped: 0 },
    alerts: [],
  };
}
