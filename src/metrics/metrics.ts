import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PARTITION_ROLES, type PartitionObserver, type PartitionRole } from '../partition/index.js';
import type { SnapshotObserver } from '../replication/index.js';
import type { Logger } from '../log.js';
import type { DeadLetterReason, HandlerFailure } from '../streams/index.js';
import { EventHistogram, type HistogramSeries } from './event-histogram.js';
import { HandlerFailureLog } from './handler-failures.js';

/** Every metric farad exposes, by name. The README's metrics table lists the same names. */
export const METRIC = {
  eventsProcessed: 'farad_events_processed_total',
  handlerDuration: 'farad_handler_duration_seconds',
  commitDuration: 'farad_commit_duration_seconds',
  batchRecords: 'farad_batch_records',
  commitFailures: 'farad_commit_failures_total',
  deadLetters: 'farad_dead_letters_total',
  partitionRole: 'farad_partition_role',
  restoredRecords: 'farad_restore_records',
  restoreProgress: 'farad_restore_progress_ratio',
  stateKeys: 'farad_state_keys',
  ingested: 'farad_ingested_events_total',
  ingestRejected: 'farad_ingest_rejected_total',
  idempotentReplays: 'farad_ingest_idempotent_replays_total',
  consumerLag: 'farad_consumer_lag_records',
  stateBytes: 'farad_state_bytes',
  rebalances: 'farad_rebalances_total',
  failovers: 'farad_failovers_total',
  standbyLag: 'farad_standby_lag_records',
  restoreRate: 'farad_restore_records_per_second',
  snapshots: 'farad_snapshots_total',
  snapshotDuration: 'farad_snapshot_duration_seconds',
  snapshotBytes: 'farad_snapshot_bytes',
  snapshotAge: 'farad_snapshot_age_seconds',
  partitionFailures: 'farad_partition_failures_total',
  logBytes: 'farad_log_bytes',
  timersPending: 'farad_timers_pending',
  timersFired: 'farad_timers_fired_total',
  timerLag: 'farad_timer_lag_seconds',
  lastCommit: 'farad_last_commit_timestamp_seconds',
} as const;

/** farad's Prometheus metrics, in a registry of their own (never the global one). */
export class FaradMetrics implements PartitionObserver, SnapshotObserver {
  readonly registry = new Registry();
  private readonly eventsProcessed: Counter<'event_type' | 'partition' | 'outcome'>;
  private readonly handlerDuration: EventHistogram;
  private readonly commitDuration: Histogram;
  private readonly batchRecords: Histogram;
  private readonly commitFailures: Counter<'partition'>;
  private readonly deadLetters: Counter<'reason'>;
  private readonly partitionRole: Gauge<'partition' | 'role'>;
  private readonly restoredRecords: Gauge<'partition'>;
  private readonly restoreProgressRatio: Gauge<'partition'>;
  readonly ingested: Counter<'event_type'>;
  readonly ingestRejected: Counter<'reason'>;
  readonly idempotentReplays: Counter<'event_type'>;
  readonly rebalances: Counter;
  readonly failovers: Counter<'partition'>;
  private readonly standbyLagRecords: Gauge<'partition'>;
  private readonly partitionFailures: Counter<'partition' | 'code'>;
  readonly restoreRate: Gauge<'partition'>;
  readonly snapshots: Counter<'outcome'>;
  readonly snapshotDuration: Histogram;
  readonly snapshotBytes: Gauge<'partition'>;
  private readonly snapshotTakenAt = new Map<number, number>();
  private readonly committedAt = new Map<number, number>();
  private readonly timersFired: Counter<'timer' | 'partition'>;
  private readonly timerLateness: Histogram<'timer'>;
  // Label lookups cost more than an observation; children are cached per event type.
  private readonly durationChildren = new Map<string, HistogramSeries>();
  /** Failed handlers as rate-limited warn lines (when given a logger). */
  private readonly handlerFailures: HandlerFailureLog | undefined;

  constructor(
    stateKeys: () => Iterable<{ table: string; partition: number; keys: number; bytes: number }>,
    consumerLag: () => Iterable<{ partition: number; lag: number }> = () => [],
    logBytes: () => Iterable<{ topic: string; bytes: number }> = () => [],
    timersPending: () => Iterable<{ partition: number; pending: number }> = () => [],
    /** Where failed handlers are logged (rate-limited per event type); none: not logged. */
    logger?: Logger,
  ) {
    this.handlerFailures = logger && new HandlerFailureLog(logger);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.eventsProcessed = new Counter({
      name: METRIC.eventsProcessed,
      help: 'Input events handled, by event type, partition and outcome (ok, failed).',
      labelNames: ['event_type', 'partition', 'outcome'],
      registers,
    });
    // Observed on every event: farad's own histogram, not prom-client's.
    this.handlerDuration = new EventHistogram({
      name: METRIC.handlerDuration,
      help: 'Time spent in one handler call.',
      labelName: 'event_type',
      buckets: [0.000005, 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
      registers,
    });
    this.commitDuration = new Histogram({
      name: METRIC.commitDuration,
      help: 'Time to commit one partition batch (outputs, changelog, dead letters and offsets, atomically).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.batchRecords = new Histogram({
      name: METRIC.batchRecords,
      help: 'Input records per committed batch.',
      buckets: [1, 10, 50, 100, 500, 1000, 5000, 10000, 50000],
      registers,
    });
    this.commitFailures = new Counter({
      name: METRIC.commitFailures,
      help: 'Batch commits that failed and were rolled back and retried.',
      labelNames: ['partition'],
      registers,
    });
    this.deadLetters = new Counter({
      name: METRIC.deadLetters,
      help: 'Records sent to the dead-letter topic, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.partitionRole = new Gauge({
      name: METRIC.partitionRole,
      help: 'Role of each partition hosted on this instance (standby, fencing, restoring, active, closing, failed): 1 for its current role, 0 for the others.',
      labelNames: ['partition', 'role'],
      registers,
    });
    this.partitionFailures = new Counter({
      name: METRIC.partitionFailures,
      help: 'Partitions that stopped on an error retrying cannot heal (role "failed"; /readyz says why), by error code.',
      labelNames: ['partition', 'code'],
      registers,
    });
    this.restoredRecords = new Gauge({
      name: METRIC.restoredRecords,
      help: 'Changelog records applied by the latest restore of each partition.',
      labelNames: ['partition'],
      registers,
    });
    this.restoreProgressRatio = new Gauge({
      name: METRIC.restoreProgress,
      help: 'Progress of the latest restore of each partition, from 0 to 1.',
      labelNames: ['partition'],
      registers,
    });
    new Gauge({
      name: METRIC.stateKeys,
      help: 'Rows per table and partition.',
      labelNames: ['table', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const { table, partition, keys } of stateKeys()) this.set({ table, partition: String(partition) }, keys);
      },
    });
    new Gauge({
      name: METRIC.stateBytes,
      help: 'Approximate bytes of row data per table and partition (Avro-encoded size, sampled).',
      labelNames: ['table', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const { table, partition, bytes } of stateKeys()) this.set({ table, partition: String(partition) }, bytes);
      },
    });
    new Gauge({
      name: METRIC.consumerLag,
      help: 'Input records of each active partition not yet committed (log end minus committed offset).',
      labelNames: ['partition'],
      registers,
      collect() {
        this.reset();
        for (const { partition, lag } of consumerLag()) this.set({ partition: String(partition) }, lag);
      },
    });
    new Gauge({
      name: METRIC.logBytes,
      help: 'Bytes of records the embedded log keeps on disk per topic (retention and compaction bound it).',
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        for (const { topic, bytes } of logBytes()) this.set({ topic }, bytes);
      },
    });
    this.rebalances = new Counter({
      name: METRIC.rebalances,
      help: 'Consumer group rebalances this instance took part in.',
      registers,
    });
    this.failovers = new Counter({
      name: METRIC.failovers,
      help: 'Partitions this instance took over from a standby copy after another instance left.',
      labelNames: ['partition'],
      registers,
    });
    this.standbyLagRecords = new Gauge({
      name: METRIC.standbyLag,
      help: 'Changelog records a standby partition on this instance is behind the changelog end.',
      labelNames: ['partition'],
      registers,
    });
    this.restoreRate = new Gauge({
      name: METRIC.restoreRate,
      help: 'Changelog records applied per second by the latest restore of each partition.',
      labelNames: ['partition'],
      registers,
    });
    const takenAt = this.snapshotTakenAt;
    this.snapshots = new Counter({
      name: METRIC.snapshots,
      help: 'Snapshot attempts per outcome (ok, failed, skipped when the snapshot store is unavailable).',
      labelNames: ['outcome'],
      registers,
    });
    this.snapshotDuration = new Histogram({
      name: METRIC.snapshotDuration,
      help: 'Time to write one partition snapshot.',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.snapshotBytes = new Gauge({
      name: METRIC.snapshotBytes,
      help: 'Size of the latest snapshot of each partition.',
      labelNames: ['partition'],
      registers,
    });
    new Gauge({
      name: METRIC.snapshotAge,
      help: 'Seconds since the latest successful snapshot of each partition.',
      labelNames: ['partition'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const [partition, at] of takenAt) this.set({ partition: String(partition) }, (now - at) / 1000);
      },
    });
    const committedAt = this.committedAt;
    new Gauge({
      name: METRIC.lastCommit,
      help: 'When the latest batch of each partition hosted here was committed (Unix time, seconds).',
      labelNames: ['partition'],
      registers,
      aggregator: 'max', // workers: the one that hosts the partition
      collect() {
        this.reset();
        for (const [partition, at] of committedAt) this.set({ partition: String(partition) }, at / 1000);
      },
    });
    this.ingested = new Counter({
      name: METRIC.ingested,
      help: 'Events accepted by POST /events and appended to their input topic.',
      labelNames: ['event_type'],
      registers,
    });
    new Gauge({
      name: METRIC.timersPending,
      help: 'Timers (and scheduled-procedure runs) waiting to fire, per active partition.',
      labelNames: ['partition'],
      registers,
      collect() {
        this.reset();
        for (const { partition, pending } of timersPending()) this.set({ partition: String(partition) }, pending);
      },
    });
    this.timersFired = new Counter({
      name: METRIC.timersFired,
      help: 'Timers fired and committed, by timer (timer:<name> or schedule:<name>) and partition.',
      labelNames: ['timer', 'partition'],
      registers,
    });
    this.timerLateness = new Histogram({
      name: METRIC.timerLag,
      help: 'How long after its due time a timer fired (timer lag).',
      labelNames: ['timer'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.ingestRejected = new Counter({
      name: METRIC.ingestRejected,
      help: 'POST /events requests refused, by reason (bad_json, unknown_type, invalid, too_large, unauthorized).',
      labelNames: ['reason'],
      registers,
    });
    this.idempotentReplays = new Counter({
      name: METRIC.idempotentReplays,
      help: 'POST /events requests answered again for a retry with the same Idempotency-Key (nothing appended), by event type.',
      labelNames: ['event_type'],
      registers,
    });
    for (const reason of ['decode_error', 'unknown_schema', 'no_procedure', 'handler_error'] satisfies DeadLetterReason[]) {
      this.deadLetters.inc({ reason }, 0);
    }
    for (const outcome of ['ok', 'failed', 'skipped']) this.snapshots.inc({ outcome }, 0);
  }

  /** The current values of the metrics named (prom-client JSON), without collecting the others. */
  async valuesOf(names: Iterable<string>): Promise<Array<Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number]>> {
    const out = [];
    for (const name of names) {
      const metric = this.registry.getSingleMetric(name);
      if (metric) out.push(await metric.get());
    }
    return out;
  }

  eventsHandled(eventType: string, partition: number, ok: number, failed: number): void {
    if (ok > 0) this.eventsProcessed.inc({ event_type: eventType, partition: String(partition), outcome: 'ok' }, ok);
    if (failed > 0) this.eventsProcessed.inc({ event_type: eventType, partition: String(partition), outcome: 'failed' }, failed);
  }

  handlerLatency(eventType: string, seconds: number): void {
    let histogram = this.durationChildren.get(eventType);
    if (!histogram) {
      histogram = this.handlerDuration.labels(eventType);
      this.durationChildren.set(eventType, histogram);
    }
    histogram.observe(seconds);
  }

  timerFired(label: string, partition: number, lateSeconds: number): void {
    this.timersFired.inc({ timer: label, partition: String(partition) });
    this.timerLateness.observe({ timer: label }, lateSeconds);
  }

  deadLettered(reason: DeadLetterReason): void {
    this.deadLetters.inc({ reason });
  }

  handlerFailed(failure: HandlerFailure): void {
    this.handlerFailures?.failed(failure);
  }

  /** Writes the failed-handler lines a window still holds back (when processing has stopped). */
  flushLogs(): void {
    this.handlerFailures?.flushAll();
  }

  roleChanged(partition: number, _from: PartitionRole | undefined, to: PartitionRole | undefined): void {
    // A partition that left this instance no longer has a snapshot age here.
    if (to === undefined) {
      this.snapshotTakenAt.delete(partition);
      this.committedAt.delete(partition);
    }
    for (const role of PARTITION_ROLES) this.partitionRole.set({ partition: String(partition), role }, role === to ? 1 : 0);
  }

  partitionFailed(partition: number, code: string): void {
    this.partitionFailures.inc({ partition: String(partition), code });
  }

  standbyLag(partition: number, lag: number | undefined): void {
    if (lag === undefined) this.standbyLagRecords.remove({ partition: String(partition) });
    else this.standbyLagRecords.set({ partition: String(partition) }, lag);
  }

  snapshotNotTaken(outcome: 'skipped' | 'failed'): void {
    this.snapshots.inc({ outcome });
  }

  batchCommitted(partition: number, records: number, seconds: number): void {
    this.committedAt.set(partition, Date.now());
    this.commitDuration.observe(seconds);
    this.batchRecords.observe(records);
  }

  commitFailed(partition: number): void {
    this.commitFailures.inc({ partition: String(partition) });
  }

  /** A snapshot of `partition` was written. */
  snapshotTaken(partition: number, bytes: number, seconds: number): void {
    this.snapshots.inc({ outcome: 'ok' });
    this.snapshotDuration.observe(seconds);
    this.snapshotBytes.set({ partition: String(partition) }, bytes);
    this.snapshotTakenAt.set(partition, Date.now());
  }

  failedOver(partition: number): void {
    this.failovers.inc({ partition: String(partition) });
  }

  restoreFinished(partition: number, records: number, seconds: number): void {
    this.restoreRate.set({ partition: String(partition) }, seconds > 0 ? records / seconds : records);
  }

  restoreProgress(partition: number, restored: number, total: number): void {
    this.restoredRecords.set({ partition: String(partition) }, restored);
    this.restoreProgressRatio.set({ partition: String(partition) }, total === 0 ? 1 : Math.min(1, restored / total));
  }
}
