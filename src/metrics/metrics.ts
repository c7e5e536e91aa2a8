import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PartitionRole } from '../replication/index.js';
import type { DeadLetterReason, ExecutorObserver } from '../streams/index.js';

/** Every metric farad exposes, by name. The catalogue in docs/METRICS.md lists the same names. */
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
} as const;

const ROLES: readonly PartitionRole[] = ['restoring', 'standby', 'active', 'closing'];

/** farad's Prometheus metrics, in a registry of their own (never the global one). */
export class FaradMetrics implements ExecutorObserver {
  readonly registry = new Registry();
  private readonly eventsProcessed: Counter<'event_type' | 'partition' | 'outcome'>;
  private readonly handlerDuration: Histogram<'event_type'>;
  private readonly commitDuration: Histogram;
  private readonly batchRecords: Histogram;
  private readonly commitFailures: Counter<'partition'>;
  private readonly deadLetters: Counter<'reason'>;
  private readonly partitionRole: Gauge<'partition' | 'role'>;
  private readonly restoredRecords: Gauge<'partition'>;
  private readonly restoreProgressRatio: Gauge<'partition'>;
  readonly ingested: Counter<'event_type'>;
  readonly ingestRejected: Counter<'reason'>;
  // Label lookups cost more than the increments; children are cached per label set.
  private readonly processedChildren = new Map<string, { inc(): void }>();
  private readonly durationChildren = new Map<string, { observe(v: number): void }>();

  constructor(stateKeys: () => Iterable<{ table: string; partition: number; keys: number }>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.eventsProcessed = new Counter({
      name: METRIC.eventsProcessed,
      help: 'Input events handled, by event type, partition and outcome (ok, failed).',
      labelNames: ['event_type', 'partition', 'outcome'],
      registers,
    });
    this.handlerDuration = new Histogram({
      name: METRIC.handlerDuration,
      help: 'Time spent in one handler call.',
      labelNames: ['event_type'],
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
      help: 'Role of each partition on this instance: 1 for its current role, 0 for the others.',
      labelNames: ['partition', 'role'],
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
    this.ingested = new Counter({
      name: METRIC.ingested,
      help: 'Events accepted by POST /events and appended to their input topic.',
      labelNames: ['event_type'],
      registers,
    });
    this.ingestRejected = new Counter({
      name: METRIC.ingestRejected,
      help: 'POST /events requests refused, by reason (bad_json, unknown_type, invalid, too_large, unauthorized).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['decode_error', 'unknown_schema', 'no_procedure', 'handler_error'] satisfies DeadLetterReason[]) {
      this.deadLetters.inc({ reason }, 0);
    }
  }

  eventHandled(eventType: string, partition: number, outcome: 'ok' | 'failed', seconds: number): void {
    const key = `${eventType}\u0000${partition}\u0000${outcome}`;
    let counter = this.processedChildren.get(key);
    if (!counter) {
      counter = this.eventsProcessed.labels(eventType, String(partition), outcome);
      this.processedChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.durationChildren.get(eventType);
    if (!histogram) {
      histogram = this.handlerDuration.labels(eventType);
      this.durationChildren.set(eventType, histogram);
    }
    histogram.observe(seconds);
  }

  deadLettered(reason: DeadLetterReason): void {
    this.deadLetters.inc({ reason });
  }

  roleChanged(partition: number, _from: PartitionRole, to: PartitionRole): void {
    for (const role of ROLES) this.partitionRole.set({ partition: String(partition), role }, role === to ? 1 : 0);
  }

  batchCommitted(_partition: number, records: number, seconds: number): void {
    this.commitDuration.observe(seconds);
    this.batchRecords.observe(records);
  }

  commitFailed(partition: number): void {
    this.commitFailures.inc({ partition: String(partition) });
  }

  restoreProgress(partition: number, restored: number, total: number): void {
    this.restoredRecords.set({ partition: String(partition) }, restored);
    this.restoreProgressRatio.set({ partition: String(partition) }, total === 0 ? 1 : Math.min(1, restored / total));
  }
}
