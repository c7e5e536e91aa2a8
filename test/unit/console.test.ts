/**
 * The console's gathering, without I/O: an instance's report from its metrics, the cluster view
 * merged from several reports, and the shipped alert rules evaluated over them in time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { AlertWatch, ALERT_NAMES, clusterViewOf, instanceReportOf, type InstanceReport, type MetricValues } from '../../src/console/index.js';
import { FaradMetrics } from '../../src/metrics/index.js';
import type { PartitionRole } from '../../src/partition/index.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0);

/** A report as `instanceReportOf` makes it, with the figures a test sets. */
function report(instanceId: string, partitions: ReadonlyArray<[number, PartitionRole, Partial<InstanceReport['partitions'][number]>?]>, extra: Partial<InstanceReport> = {}): InstanceReport {
  return {
    instanceId,
    url: `http://${instanceId}:8080`,
    workers: 1,
    startedAt: T0 - 60 * MINUTE,
    at: T0,
    ready: partitions.every(([, role]) => role === 'active' || role === 'standby'),
    partitions: partitions.map(([partition, role, figures]) => ({ partition, role, events: 0, commitFailures: 0, ...figures })),
    events: [],
    ingested: [],
    deadLetters: [],
    timersFired: [],
    commitFailures: [],
    snapshots: { ok: 0, failed: 0, skipped: 0 },
    rebalances: 0,
    ...extra,
  };
}

const FACTS = { app: 'bank', transport: 'kafka' as const, partitions: 4, replicas: 1, servedBy: 'a' };

describe('an instance report', () => {
  test('reads its partitions and counters from the same metrics /metrics exposes', async () => {
    const metrics = new FaradMetrics(
      () => [],
      () => [{ partition: 0, lag: 12 }],
      () => [],
      () => [{ partition: 0, pending: 3 }],
    );
    metrics.roleChanged(0, undefined, 'active');
    metrics.roleChanged(1, undefined, 'standby');
    metrics.standbyLag(1, 40);
    metrics.eventsHandled('bank.Deposit', 0, 5, 1);
    metrics.eventsHandled('bank.Deposit', 0, 2, 0);
    metrics.deadLettered('handler_error');
    metrics.commitFailed(0);
    metrics.batchCommitted(0, 8, 0.001);
    metrics.restoreProgress(0, 50, 100);
    metrics.snapshotTaken(0, 100, 0.01);
    metrics.snapshotNotTaken('skipped');
    metrics.rebalances.inc();
    const values = (await metrics.registry.getMetricsAsJSON()) as MetricValues[];
    const r = instanceReportOf(
      { instanceId: 'a', url: 'http://a', workers: 2, startedAt: T0 },
      { ready: true, partitions: [{ partition: 1, role: 'standby' }, { partition: 0, role: 'active' }] },
      values,
      T0 + 5,
    );
    assert.deepEqual(r.partitions.map((p) => [p.partition, p.role]), [[0, 'active'], [1, 'standby']]);
    const [p0, p1] = r.partitions;
    assert.equal(p0!.lag, 12);
    assert.equal(p0!.events, 8);
    assert.equal(p0!.timersPending, 3);
    assert.equal(p0!.commitFailures, 1);
    assert.equal(p0!.restoreProgress, 0.5);
    assert.ok(p0!.lastCommitAt !== undefined && Math.abs(p0!.lastCommitAt - Date.now()) < 5000, 'the last commit time, in ms');
    assert.ok(p0!.snapshotAgeSeconds !== undefined && p0!.snapshotAgeSeconds < 5);
    assert.equal(p1!.standbyLag, 40);
    assert.equal(p1!.lag, undefined);
    assert.deepEqual(r.events, [
      { eventType: 'bank.Deposit', outcome: 'failed', total: 1 },
      { eventType: 'bank.Deposit', outcome: 'ok', total: 7 },
    ]);
    assert.deepEqual(r.deadLetters.find((d) => d.reason === 'handler_error'), { reason: 'handler_error', total: 1 });
    assert.deepEqual(r.snapshots, { ok: 1, failed: 0, skipped: 1 });
    assert.equal(r.rebalances, 1);
    assert.deepEqual(r.commitFailures, [{ partition: 0, total: 1 }]);
  });
});

describe('the cluster view', () => {
  test('one row per partition: the leased holder owns it, standbys listed, counters summed', () => {
    const a = report('a', [[0, 'active', { lag: 5, events: 10 }], [1, 'active'], [2, 'standby', { standbyLag: 7 }], [3, 'closing']], {
      events: [{ eventType: 'E', outcome: 'ok', total: 10 }],
      deadLetters: [{ reason: 'decode_error', total: 2 }],
    });
    const b = report('b', [[2, 'active', { events: 3 }], [3, 'restoring', { restoreProgress: 0.25 }], [0, 'standby', { standbyLag: 1 }]], {
      events: [{ eventType: 'E', outcome: 'ok', total: 3 }],
      deadLetters: [{ reason: 'decode_error', total: 1 }],
    });
    const view = clusterViewOf(FACTS, [b, a], [{ instanceId: 'c', error: 'timed out' }], [], T0);
    assert.deepEqual(view.instances.map((i) => i.instanceId), ['a', 'b']);
    assert.deepEqual(
      view.partitionRows.map((r) => [r.partition, r.owner, r.role, r.standbys]),
      [
        [0, 'a', 'active', ['b']],
        [1, 'a', 'active', []],
        [2, 'b', 'active', ['a']],
        [3, 'b', 'restoring', []], // the new owner restoring, not the old one closing
      ],
    );
    assert.equal(view.partitionRows[0]!.lag, 5);
    assert.equal(view.partitionRows[0]!.standbyLag, 1);
    assert.equal(view.partitionRows[0]!.eventsTotal, 10);
    assert.equal(view.partitionRows[3]!.restoreProgress, 0.25);
    assert.deepEqual(view.events, [{ eventType: 'E', outcome: 'ok', total: 13 }]);
    assert.deepEqual(view.deadLetters, [{ reason: 'decode_error', total: 3 }]);
    assert.deepEqual(view.unreachable, [{ instanceId: 'c', error: 'timed out' }]);
  });

  test('a partition nobody holds is unowned', () => {
    const view = clusterViewOf(FACTS, [report('a', [[0, 'active']])], [], [], T0);
    assert.deepEqual(view.partitionRows.map((r) => r.role), ['active', 'unowned', 'unowned', 'unowned']);
    assert.equal(view.partitionRows[1]!.owner, undefined);
  });

  test('256 partitions over 10 instances merge in milliseconds', () => {
    const reports = Array.from({ length: 10 }, (_, i) =>
      report(
        `i${i}`,
        Array.from({ length: 256 }, (_, p): [number, PartitionRole] => [p, p % 10 === i ? 'active' : (p + 1) % 10 === i ? 'standby' : 'standby']).filter(([p]) => p % 10 === i || (p + 1) % 10 === i),
      ),
    );
    const started = performance.now();
    const view = clusterViewOf({ ...FACTS, partitions: 256 }, reports, [], [], T0);
    const ms = performance.now() - started;
    assert.equal(view.partitionRows.length, 256);
    assert.ok(view.partitionRows.every((r) => r.role === 'active' && r.standbys.length === 1));
    assert.ok(ms < 200, `merged in ${ms.toFixed(1)} ms`);
  });
});

describe('the alerts', () => {
  test('every rule of the shipped alerts.yaml is evaluated, and no other', () => {
    const file = parse(readFileSync('helm/farad/files/alerts.yaml', 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> };
    const shipped = file.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort();
    assert.deepEqual([...ALERT_NAMES].sort(), shipped);
  });

  test("a partition without an active owner is pending, then firing after the rule's 2 minutes, then gone once owned", () => {
    const watch = new AlertWatch();
    const all = (role: PartitionRole): ReadonlyArray<[number, PartitionRole]> => [0, 1, 2, 3].map((p) => [p, p === 2 ? role : 'active']);
    assert.deepEqual(watch.evaluate([report('a', all('active'))], 4, T0), []);
    const first = watch.evaluate([report('a', all('standby'))], 4, T0 + 1000);
    assert.deepEqual(first.map((a) => [a.name, a.state, a.labels]), [['FaradPartitionWithoutActiveOwner', 'pending', { partition: '2' }]]);
    assert.equal(first[0]!.severity, 'critical');
    const later = watch.evaluate([report('a', all('standby'))], 4, T0 + 1000 + 2 * MINUTE);
    assert.deepEqual(later.map((a) => [a.name, a.state, a.since]), [['FaradPartitionWithoutActiveOwner', 'firing', T0 + 1000]]);
    // Restoring is FaradRestoreTooLong's case, not this one's.
    assert.deepEqual(watch.evaluate([report('a', all('restoring'))], 4, T0 + 3 * MINUTE).map((a) => [a.name, a.state]), [['FaradRestoreTooLong', 'pending']]);
    assert.deepEqual(watch.evaluate([report('a', all('active'))], 4, T0 + 4 * MINUTE), []);
  });

  test('dead letters fire at once when the counter grew in the last 5 minutes, and stop 5 minutes after the last', () => {
    const watch = new AlertWatch();
    const at = (minutes: number, total: number): InstanceReport =>
      report('a', [[0, 'active']], { at: T0 + minutes * MINUTE, deadLetters: [{ reason: 'handler_error', total }, { reason: 'decode_error', total: 0 }] });
    // Watched from its start on: the 2 dead letters since are in the window.
    assert.deepEqual(watch.evaluate([at(0, 2)], 1, T0).map((a) => [a.name, a.state, a.labels]), []);
    for (let m = 1; m <= 6; m++) watch.evaluate([at(m, 2)], 1, T0 + m * MINUTE);
    const firing = watch.evaluate([at(7, 5)], 1, T0 + 7 * MINUTE);
    assert.deepEqual(firing.map((a) => [a.name, a.state, a.labels, a.summary]), [['FaradDeadLetters', 'firing', { reason: 'handler_error' }, 'dead letters (handler_error) in the last 5 minutes: 3']]);
    // The growth happened between minutes 6 and 7: in the window until the sample of minute 7 starts it.
    for (let m = 8; m <= 11; m++) assert.equal(watch.evaluate([at(m, 5)], 1, T0 + m * MINUTE).length, 1, `still in the window at minute ${m}`);
    assert.deepEqual(watch.evaluate([at(12, 5)], 1, T0 + 12 * MINUTE), []);
  });

  test('an instance started inside the window counts its counters from zero', () => {
    const watch = new AlertWatch();
    const young = report('a', [[0, 'active']], { startedAt: T0 - MINUTE, deadLetters: [{ reason: 'decode_error', total: 4 }] });
    assert.deepEqual(watch.evaluate([young], 1, T0).map((a) => [a.name, a.labels]), [['FaradDeadLetters', { reason: 'decode_error' }]]);
  });

  test('two active owners, commits failing, a rebalance storm and a high standby lag', () => {
    const watch = new AlertWatch();
    const a = (minutes: number, failures: number, rebalances: number): InstanceReport =>
      report('a', [[0, 'active'], [1, 'standby', { standbyLag: 200_000 }]], { commitFailures: [{ partition: 0, total: failures }], rebalances, startedAt: T0 });
    const b = report('b', [[0, 'active'], [1, 'active']], { startedAt: T0 - 60 * MINUTE });
    watch.evaluate([a(0, 0, 0), b], 2, T0);
    const alerts = watch.evaluate([a(1, 5, 12), b], 2, T0 + MINUTE);
    assert.deepEqual(alerts.map((x) => [x.name, x.state, x.labels]).sort(), [
      ['FaradCommitsFailing', 'pending', { partition: '0' }],
      ['FaradPartitionMultipleActiveOwners', 'pending', { partition: '0' }],
      ['FaradRebalanceStorm', 'pending', {}],
      ['FaradStandbyLagHigh', 'pending', { partition: '1' }],
    ]);
    const fired = watch.evaluate([a(6, 5, 12), b], 2, T0 + 6 * MINUTE);
    assert.deepEqual(fired.filter((x) => x.state === 'firing').map((x) => x.name).sort(), ['FaradCommitsFailing', 'FaradPartitionMultipleActiveOwners', 'FaradRebalanceStorm']);
  });

  test('consumer lag fires only while it keeps growing over 10 minutes', () => {
    const watch = new AlertWatch();
    const at = (_minutes: number, lag: number): InstanceReport => report('a', [[0, 'active', { lag }]]);
    assert.deepEqual(watch.evaluate([at(0, 20_000)], 1, T0), [], 'not known to grow from one look');
    assert.deepEqual(watch.evaluate([at(1, 30_000)], 1, T0 + MINUTE).map((a) => [a.name, a.state]), [['FaradConsumerLagGrowing', 'pending']]);
    for (let m = 2; m <= 11; m++) watch.evaluate([at(m, 30_000 + m * 1000)], 1, T0 + m * MINUTE);
    assert.deepEqual(watch.evaluate([at(12, 45_000)], 1, T0 + 12 * MINUTE).map((a) => [a.name, a.state]), [['FaradConsumerLagGrowing', 'firing']]);
    assert.deepEqual(watch.evaluate([at(13, 5_000)], 1, T0 + 13 * MINUTE), [], 'below the threshold');
  });

  test('a snapshot older than an hour of a partition that commits', () => {
    const watch = new AlertWatch();
    const r = report('a', [[0, 'active', { snapshotAgeSeconds: 4000, lastCommitAt: T0 - 1000 }], [1, 'active', { snapshotAgeSeconds: 4000, lastCommitAt: T0 - 2 * 60 * MINUTE }]]);
    assert.deepEqual(watch.evaluate([r], 2, T0).map((a) => [a.name, a.labels]), [['FaradSnapshotTooOld', { partition: '0', instance: 'a' }]]);
  });

  test('a restarted instance (same id, new start) does not carry its old counters into increases', () => {
    const watch = new AlertWatch();
    const old = report('a', [[0, 'active']], { startedAt: T0 - 60 * MINUTE, deadLetters: [{ reason: 'decode_error', total: 50 }] });
    watch.evaluate([old], 1, T0);
    watch.evaluate([{ ...old, deadLetters: [{ reason: 'decode_error', total: 50 }] }], 1, T0 + 6 * MINUTE);
    const restarted = report('a', [[0, 'active']], { startedAt: T0 + 7 * MINUTE - 30_000, deadLetters: [{ reason: 'decode_error', total: 0 }] });
    assert.deepEqual(watch.evaluate([restarted], 1, T0 + 7 * MINUTE), []);
  });
});

