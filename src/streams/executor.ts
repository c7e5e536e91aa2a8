import { performance } from 'node:perf_hooks';
import { defer, EMPTY, from, lastValueFrom, mergeMap, Observable, repeat, retry, Subject, takeUntil, takeWhile, timer } from 'rxjs';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { globalViews, queryContext, type CompiledApp } from '../procedures/index.js';
import { RoleMachine, type PartitionRole } from '../replication/index.js';
import { applyChangelogRecord, PartitionState, type GlobalTableView } from '../state/index.js';
import { BatchProcessor, type ProcessorObserver } from './batch-processor.js';
import type { EventCodec } from './codec/index.js';
import type { EventLog, PartitionLease } from './event-log.js';

export interface ExecutorOptions {
  /** Longest time a batch stays open before it is committed. */
  readonly commitIntervalMs: number;
  /** Most input records in one batch (one transaction). */
  readonly maxBatchRecords: number;
  /** First retry delay after a failed commit; doubles up to 30 s. */
  readonly retryBackoffMs: number;
}

/** Metrics hooks of the executor beyond those of the batch processor. */
export interface ExecutorObserver extends ProcessorObserver {
  roleChanged(partition: number, from: PartitionRole, to: PartitionRole): void;
  batchCommitted(partition: number, records: number, seconds: number): void;
  commitFailed(partition: number): void;
  restoreProgress(partition: number, restored: number, total: number): void;
  restoreFinished(partition: number, records: number, seconds: number): void;
}

/** A partition held by this instance: its state and role. */
export interface HostedPartition {
  readonly partition: number;
  readonly state: PartitionState;
  readonly roles: RoleMachine;
}

export interface BatchOutcome {
  readonly partition: number;
  readonly records: number;
}

/**
 * Runs the app: for every lease the transport grants, restores the partition from its changelog,
 * then processes and commits batches, one at a time per partition (serial, log order) and
 * concurrently across partitions. Transport-agnostic: the embedded log and Kafka plug in as
 * `EventLog`s.
 */
export class Executor {
  private readonly hosted = new Map<number, HostedPartition>();
  private readonly globals: Record<string, GlobalTableView>;
  private readonly stop$ = new Subject<void>();
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Committed batches, for observers that want them (demo, tests). */
  readonly committed$ = new Subject<BatchOutcome>();

  constructor(
    private readonly app: CompiledApp,
    private readonly log: EventLog,
    private readonly catalog: EventCodec,
    private readonly options: ExecutorOptions,
    private readonly logger: Logger,
    private readonly observer?: ExecutorObserver,
  ) {
    this.globals = globalViews(app);
  }

  /** Starts consuming leases; resolves when the executor is stopped. */
  start(): Promise<void> {
    this.running ??= lastValueFrom(
      this.log.leases().pipe(
        takeUntil(this.stop$),
        mergeMap((lease) => this.runLease(lease)),
      ),
      { defaultValue: undefined },
    ).then(() => undefined);
    return this.running;
  }

  /** Stops taking leases and waits for the partitions' current batches to commit. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stop$.next();
    await this.running;
    this.committed$.complete();
  }

  partition(partition: number): HostedPartition | undefined {
    return this.hosted.get(partition);
  }

  partitions(): IterableIterator<HostedPartition> {
    return this.hosted.values();
  }

  /** True when every partition this instance hosts is active. */
  get ready(): boolean {
    if (this.hosted.size === 0) return false;
    for (const hosted of this.hosted.values()) if (hosted.roles.role !== 'active') return false;
    return true;
  }

  /** Runs a named query on every partition's committed state and merges the answers. */
  runQuery(name: string, params: Readonly<Record<string, string>>): { found: false } | { found: true; result: unknown } {
    const query = this.app.queries.get(name);
    if (!query) return { found: false };
    const parts: unknown[] = [];
    for (const hosted of [...this.hosted.values()].sort((a, b) => a.partition - b.partition)) {
      parts.push(query.partition(queryContext(this.app, hosted.state, this.globals), params));
    }
    return { found: true, result: query.merge(parts, params) };
  }

  private runLease(lease: PartitionLease): Observable<BatchOutcome> {
    const { partition } = lease;
    const state = new PartitionState(partition, this.app.partitions, this.app.tables.values());
    const roles = new RoleMachine(partition, 'restoring', (p, from, to) => {
      this.logger.debug({ partition: p, from, to }, 'partition role');
      this.observer?.roleChanged(p, from, to);
    });
    this.observer?.roleChanged(partition, 'closed', 'restoring');
    const hosted: HostedPartition = { partition, state, roles };
    this.hosted.set(partition, hosted);
    const processor = new BatchProcessor({
      app: this.app,
      state,
      catalog: this.catalog,
      globals: this.globals,
      partitionsOf: (topic) => this.log.partitionsOf(topic),
      observer: this.observer,
    });

    const batches = defer(() => this.processBatch(lease, processor)).pipe(
      retry({
        resetOnSuccess: true,
        delay: (err: unknown, attempt) => {
          this.observer?.commitFailed(partition);
          const delayMs = Math.min(this.options.retryBackoffMs * 2 ** (attempt - 1), 30_000);
          this.logger.warn({ partition, attempt, delayMs, err: describeError(err) }, 'batch commit failed; rolled back, retrying');
          return lease.active ? timer(delayMs) : EMPTY;
        },
      }),
      repeat(),
      takeWhile(() => lease.active && !this.stopping),
    );

    return defer(() => from(this.restore(lease, state))).pipe(
      mergeMap(() => {
        roles.transition('active');
        return batches;
      }),
      (source) =>
        new Observable<BatchOutcome>((subscriber) => {
          const subscription = source.subscribe(subscriber);
          return () => {
            subscription.unsubscribe();
            if (roles.role !== 'closing') roles.transition('closing');
            roles.transition('closed');
            this.hosted.delete(partition);
          };
        }),
    );
  }

  private async restore(lease: PartitionLease, state: PartitionState): Promise<void> {
    const started = performance.now();
    const total = await lease.changelogEnd();
    let restored = 0;
    let lastReport = started;
    for await (const chunk of lease.readChangelog(0)) {
      for (const record of chunk) applyChangelogRecord(state, record.key, record.value);
      restored += chunk.length;
      const now = performance.now();
      if (now - lastReport > 1000) {
        lastReport = now;
        this.observer?.restoreProgress(state.partition, restored, total);
        this.logger.info({ partition: state.partition, restored, total }, 'restoring partition');
      }
    }
    this.observer?.restoreProgress(state.partition, restored, total);
    const seconds = (performance.now() - started) / 1000;
    this.observer?.restoreFinished(state.partition, restored, seconds);
    if (restored > 0) this.logger.info({ partition: state.partition, restored, seconds }, 'partition restored');
  }

  /** Polls and applies records until the batch is full or due, then commits it. */
  private async processBatch(lease: PartitionLease, processor: BatchProcessor): Promise<BatchOutcome> {
    const { commitIntervalMs, maxBatchRecords } = this.options;
    let deadline = Infinity;
    while (processor.pending < maxBatchRecords && lease.active && !this.stopping) {
      const waitMs = processor.pending === 0 ? commitIntervalMs : Math.max(0, deadline - performance.now());
      const records = await lease.poll(maxBatchRecords - processor.pending, waitMs);
      if (records.length === 0) {
        if (processor.pending > 0) break;
        return { partition: lease.partition, records: 0 };
      }
      if (processor.pending === 0) deadline = performance.now() + commitIntervalMs;
      if (this.catalog.prepare) await this.catalog.prepare(records.map((r) => r.value));
      processor.apply(records);
      if (performance.now() >= deadline) break;
    }
    if (processor.pending === 0) return { partition: lease.partition, records: 0 };
    const plan = processor.plan();
    const started = performance.now();
    try {
      await lease.commit(plan);
    } catch (err) {
      processor.abort();
      await lease.rewind();
      throw err;
    }
    processor.committed();
    this.observer?.batchCommitted(lease.partition, plan.inputCount, (performance.now() - started) / 1000);
    const outcome = { partition: lease.partition, records: plan.inputCount };
    this.committed$.next(outcome);
    return outcome;
  }
}
