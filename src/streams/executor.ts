import { performance } from 'node:perf_hooks';
import { concat, defer, EMPTY, from, ignoreElements, lastValueFrom, mergeMap, Observable, repeat, retry, Subject, takeUntil, takeWhile, timer } from 'rxjs';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { globalViews, queryContext, type CompiledApp } from '../procedures/index.js';
import { RoleMachine, type PartitionRole } from '../replication/index.js';
import { PartitionState, type GlobalTableView } from '../state/index.js';
import { applyChangelogRecord } from '../codec/index.js';
import { BatchProcessor, type ProcessorObserver } from './batch-processor.js';
import type { EventCodec } from '../codec/index.js';
import type { EventLog, PartitionLease } from './event-log.js';

/** Where a partition's state can come from besides the changelog. */
export interface PartitionSeeds {
  /** Hands over this instance's warm standby copy of the partition, if it has one. */
  takeStandby(partition: number): { state: PartitionState; changelogOffset: number } | undefined;
  /** Loads the latest snapshot into `into`; returns the changelog offset it reflects, or undefined. */
  loadSnapshot(partition: number, into: PartitionState): Promise<number | undefined>;
}

/** Writes snapshots of active partitions. */
export interface Snapshotter {
  readonly intervalMs: number;
  save(partition: number, state: PartitionState, changelogOffset: number): Promise<void>;
}

export interface ExecutorOptions {
  /** Longest time a batch stays open before it is committed. */
  readonly commitIntervalMs: number;
  /** Most input records in one batch (one transaction). */
  readonly maxBatchRecords: number;
  /** First retry delay after a failed commit; doubles up to 30 s. */
  readonly retryBackoffMs: number;
  readonly seeds?: PartitionSeeds | undefined;
  readonly snapshots?: Snapshotter | undefined;
}

/** Metrics hooks of the executor beyond those of the batch processor. */
export interface ExecutorObserver extends ProcessorObserver {
  roleChanged(partition: number, from: PartitionRole, to: PartitionRole): void;
  batchCommitted(partition: number, records: number, seconds: number): void;
  commitFailed(partition: number): void;
  restoreProgress(partition: number, restored: number, total: number): void;
  restoreFinished(partition: number, records: number, seconds: number): void;
  failedOver(partition: number): void;
}

/** A partition held by this instance: its state and role. */
export interface HostedPartition {
  readonly partition: number;
  /** Replaced once, when restore takes over a standby copy. */
  state: PartitionState;
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
  private finalSnapshots: Array<() => Promise<void>> = [];
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

  /** Set when the executor stopped on an error it could not recover from (health turns bad). */
  failure: unknown = undefined;

  /** Starts consuming leases; resolves when the executor is stopped. */
  start(): Promise<void> {
    this.running ??= lastValueFrom(
      this.log.leases().pipe(
        takeUntil(this.stop$),
        mergeMap((lease) => this.runLease(lease)),
      ),
      { defaultValue: undefined },
    ).then(
      () => undefined,
      (err: unknown) => {
        this.failure = err;
        throw err;
      },
    );
    return this.running;
  }

  /** Stops taking leases and waits for the partitions' current batches to commit. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stop$.next();
    await this.running;
    this.committed$.complete();
  }

  /** Writes the snapshots partitions left behind when they stopped (call after the transport closed). */
  async flushFinalSnapshots(): Promise<void> {
    const pending = this.finalSnapshots;
    this.finalSnapshots = [];
    await Promise.all(pending.map((take) => take()));
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
    if (!this.app.queries.has(name)) return { found: false };
    const hosted = [...this.hosted.values()].sort((a, b) => a.partition - b.partition);
    const parts = hosted.map((h) => this.queryPartial(name, h.state, params));
    return { found: true, result: this.mergeQuery(name, parts, params) };
  }

  /** One partition's answer to a named query, over a committed state (active or standby). */
  queryPartial(name: string, state: PartitionState, params: Readonly<Record<string, string>>): unknown {
    const query = this.app.queries.get(name);
    if (!query) throw new Error(`no query "${name}"`);
    return query.partition(queryContext(this.app, state, this.globals), params);
  }

  mergeQuery(name: string, parts: unknown[], params: Readonly<Record<string, string>>): unknown {
    const query = this.app.queries.get(name);
    if (!query) throw new Error(`no query "${name}"`);
    return query.merge(parts, params);
  }

  private runLease(lease: PartitionLease): Observable<BatchOutcome> {
    const { partition } = lease;
    const roles = new RoleMachine(partition, 'restoring', (p, from, to) => {
      this.logger.debug({ partition: p, from, to }, 'partition role');
      this.observer?.roleChanged(p, from, to);
    });
    this.observer?.roleChanged(partition, 'closed', 'restoring');
    const hosted: HostedPartition = { partition, state: this.emptyState(partition), roles };
    this.hosted.set(partition, hosted);
    const snapshots = new SnapshotSchedule(this.options.snapshots);

    // A failed restore (broker hiccup, unreadable snapshot) is retried from scratch while the
    // lease lasts; the other partitions keep running meanwhile.
    const restored = defer(() => from(this.restore(lease, hosted))).pipe(
      retry({
        delay: (err: unknown, attempt) => {
          hosted.state = this.emptyState(partition);
          const delayMs = Math.min(this.options.retryBackoffMs * 2 ** (attempt - 1), 30_000);
          this.logger.error({ partition, attempt, delayMs, err: describeError(err) }, 'partition restore failed; retrying');
          return lease.active && !this.stopping ? timer(delayMs) : EMPTY;
        },
      }),
    );
    const run = restored.pipe(
      mergeMap(() => {
        roles.transition('active');
        const processor = new BatchProcessor({
          app: this.app,
          state: hosted.state,
          catalog: this.catalog,
          globals: this.globals,
          partitionsOf: (topic) => this.log.partitionsOf(topic),
          observer: this.observer,
        });
        const batches = defer(() => this.processBatch(lease, processor, snapshots, hosted)).pipe(
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
        // A graceful stop leaves a fresh snapshot behind for cold starts. It is written after the
        // transport has handed the partition over (see flushFinalSnapshots), so it adds no pause.
        const last = defer(async () => {
          if (this.stopping && lease.active) {
            const offset = await lease.changelogEnd();
            this.finalSnapshots.push(() => snapshots.take(offset, hosted.state, this.logger));
          }
        });
        return concat(batches, last.pipe(ignoreElements()));
      }),
    );

    return new Observable<BatchOutcome>((subscriber) => {
      const subscription = run.subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        if (roles.role !== 'closing') roles.transition('closing');
        roles.transition('closed');
        if (this.hosted.get(partition) === hosted) this.hosted.delete(partition);
      };
    });
  }

  private emptyState(partition: number): PartitionState {
    return new PartitionState(partition, this.app.partitions, this.app.tables.values());
  }

  /**
   * Brings a partition up to date: from a warm standby copy if this instance has one, else from
   * the latest snapshot, else from nothing; then applies the changelog from there to its end.
   */
  private async restore(lease: PartitionLease, hosted: HostedPartition): Promise<void> {
    const { partition } = hosted;
    const started = performance.now();
    const total = await lease.changelogEnd();
    let from = 0;
    let source = 'changelog';
    const warm = this.options.seeds?.takeStandby(partition);
    if (warm && warm.changelogOffset <= total) {
      hosted.state = warm.state;
      from = warm.changelogOffset;
      source = 'standby';
      this.observer?.failedOver(partition);
    } else if (this.options.seeds) {
      try {
        const offset = await this.options.seeds.loadSnapshot(partition, hosted.state);
        if (offset !== undefined && offset <= total) {
          from = offset;
          source = 'snapshot';
        } else if (offset !== undefined) {
          this.logger.warn({ partition, snapshotOffset: offset, changelogEnd: total }, 'snapshot is ahead of the changelog (another cluster?); restoring from the changelog alone');
          hosted.state.clear();
        }
      } catch (err) {
        this.logger.warn({ partition, err: describeError(err) }, 'snapshot unusable; restoring from the changelog alone');
        hosted.state.clear();
      }
    }
    const state = hosted.state;
    let restored = 0;
    let lastReport = started;
    for await (const chunk of lease.readChangelog(from)) {
      for (const record of chunk) applyChangelogRecord(state, record.key, record.value);
      restored += chunk.length;
      const now = performance.now();
      if (now - lastReport > 1000) {
        lastReport = now;
        this.observer?.restoreProgress(partition, from + restored, total);
        this.logger.info({ partition, source, restored, remaining: total - from - restored }, 'restoring partition');
      }
    }
    this.observer?.restoreProgress(partition, total, total);
    const seconds = (performance.now() - started) / 1000;
    this.observer?.restoreFinished(partition, restored, seconds);
    if (restored > 0 || source !== 'changelog') this.logger.info({ partition, source, changelogRecords: restored, seconds }, 'partition restored');
  }

  /** Polls and applies records until the batch is full or due, then commits it. */
  private async processBatch(
    lease: PartitionLease,
    processor: BatchProcessor,
    snapshots: SnapshotSchedule,
    hosted: HostedPartition,
  ): Promise<BatchOutcome> {
    const { commitIntervalMs, maxBatchRecords } = this.options;
    let deadline = Infinity;
    let commitStarted = 0;
    // Any failure inside the batch (decoding prerequisites, the commit) undoes all of it and
    // replays its records: the batch is the unit of atomicity.
    try {
      while (processor.pending < maxBatchRecords && lease.active && !this.stopping) {
        const waitMs = processor.pending === 0 ? commitIntervalMs : Math.max(0, deadline - performance.now());
        const records = await lease.poll(maxBatchRecords - processor.pending, waitMs);
        if (records.length === 0) {
          if (processor.pending > 0) break;
          await snapshots.maybeTake(lease, hosted.state, this.logger);
          return { partition: lease.partition, records: 0 };
        }
        if (processor.pending === 0) deadline = performance.now() + commitIntervalMs;
        if (this.catalog.prepare) await this.catalog.prepare(records.map((r) => r.value));
        processor.apply(records);
        if (performance.now() >= deadline) break;
      }
      if (processor.pending === 0) return { partition: lease.partition, records: 0 };
      commitStarted = performance.now();
      await lease.commit(processor.plan());
    } catch (err) {
      processor.abort();
      await lease.rewind();
      throw err;
    }
    const inputCount = processor.pending;
    processor.committed();
    snapshots.changed();
    this.observer?.batchCommitted(lease.partition, inputCount, (performance.now() - commitStarted) / 1000);
    await snapshots.maybeTake(lease, hosted.state, this.logger);
    const outcome = { partition: lease.partition, records: inputCount };
    this.committed$.next(outcome);
    return outcome;
  }
}

/** When a partition's next snapshot is due: every `intervalMs`, only if its state changed. */
class SnapshotSchedule {
  /** True until a snapshot of this run's state exists. */
  private dirty = true;
  private last = performance.now();

  constructor(private readonly snapshotter: Snapshotter | undefined) {}

  changed(): void {
    this.dirty = true;
  }

  async maybeTake(lease: PartitionLease, state: PartitionState, logger: Logger): Promise<void> {
    const interval = this.snapshotter?.intervalMs ?? 0;
    if (interval <= 0 || performance.now() - this.last < interval || !this.dirty) return;
    await this.take(await lease.changelogEnd(), state, logger);
  }

  /** Runs between batches, so the state is exactly the committed state at `changelogOffset`. */
  async take(changelogOffset: number, state: PartitionState, logger: Logger): Promise<void> {
    if (!this.snapshotter || !this.dirty || state.inTransaction) return;
    this.last = performance.now();
    try {
      await this.snapshotter.save(state.partition, state, changelogOffset);
      this.dirty = false;
    } catch (err) {
      logger.warn({ partition: state.partition, err: describeError(err) }, 'snapshot skipped');
    }
  }
}
