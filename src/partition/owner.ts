import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { decodeChangeKey, isMovedRow, type EventCodec, type RowCodec } from '../codec/index.js';
import type { ProcessingOptions } from '../config/index.js';
import { describeError, FaradError, IllegalTransitionError, isRetriable, LeaseRevokedError, ProducerFencedError, UnknownRowSchemaError } from '../errors.js';
import { inputOffsetsOf, type CompiledApp } from '../procedures/index.js';
import type { Snapshots } from '../replication/index.js';
import type { GlobalTableView, PartitionState, RowChange } from '../state/index.js';
import { BatchProcessor, type CommitPlan, type LogRecord, type OutRecord, type PartitionLease, type ProcessorObserver } from '../streams/index.js';
import { MultiPartitionProtocol } from '../transactions/index.js';
import { InputProgress } from './input-progress.js';
import { ALLOWED_MOVES, isAllowedMove } from './lifecycle.js';
import { emptyState, restorePartition, type PartitionCopy } from './restore.js';
import { SnapshotSchedule } from './snapshot-schedule.js';
import type { PartitionRole, PartitionStatus } from './status.js';

/** Metrics hooks of a partition's life beyond those of the batch processor. */
export interface PartitionObserver extends ProcessorObserver {
  /** `from`/`to` undefined: the partition was not / is no longer hosted here. */
  roleChanged(partition: number, from: PartitionRole | undefined, to: PartitionRole | undefined): void;
  batchCommitted(partition: number, records: number, seconds: number): void;
  commitFailed(partition: number): void;
  restoreProgress(partition: number, restored: number, total: number): void;
  restoreFinished(partition: number, records: number, seconds: number): void;
  failedOver(partition: number): void;
  partitionFailed(partition: number, code: string): void;
  /** Changelog records a standby copy is behind; undefined when the partition is no standby here. */
  standbyLag(partition: number, lag: number | undefined): void;
}

/** Batching and retry settings: config's `processing` slice, one definition. */
export type { ProcessingOptions };

/** What every owner of an instance shares. */
export interface OwnerContext {
  readonly app: CompiledApp;
  readonly codec: EventCodec;
  /** Table rows to and from the changelog, with schema evolution. */
  readonly rows: RowCodec;
  /** Re-reads the table schema registry (rows named a schema registered after this instance started). */
  readonly refreshSchemas?: (() => Promise<void>) | undefined;
  readonly globals: Record<string, GlobalTableView>;
  readonly processing: ProcessingOptions;
  /** Partition count of an output topic. */
  readonly partitionsOf: (topic: string) => number;
  readonly snapshots?: Snapshots | undefined;
  readonly logger: Logger;
  readonly observer?: PartitionObserver | undefined;
  /** Settles when the instance stops: owners finish their batch and close. */
  readonly stopped: Promise<void>;
  readonly isStopping: () => boolean;
  /** Called after every committed batch (demo, tests). */
  readonly onCommitted?: ((partition: number, records: number) => void) | undefined;
}

type Copy = PartitionCopy;

/** The owner's state: the role and what that role holds. */
type OwnerState =
  | { readonly role: 'standby' }
  | { readonly role: 'fencing'; readonly lease: PartitionLease }
  | { readonly role: 'restoring'; readonly lease: PartitionLease }
  | { readonly role: 'active'; readonly lease: PartitionLease; readonly progress: InputProgress }
  | { readonly role: 'failed'; readonly lease: PartitionLease; readonly error: unknown }
  | { readonly role: 'closing' };

const MAX_BACKOFF_MS = 30_000;

/**
 * The one owner of a partition hosted on this instance, active or standby. Its state changes
 * only through `transition()`, which refuses illegal moves; the takeover sequence (fence, then
 * catch up the changelog, then resume input) lives in `own()` and nowhere else.
 */
export class PartitionOwner {
  private current: OwnerState;
  private copy: Copy | undefined;
  /** Set while a standby copy is stopped at a row it could not apply (until it follows again). */
  private stalled = false;
  /** Changelog keys of rows filed under a former or dropped table name, moved at the next takeover. */
  private readonly moved = new Map<string, Buffer>();
  /** Snapshots owed by a graceful stop, written once the transport has handed the partition over. */
  private finalSnapshot: (() => Promise<void>) | undefined;

  private constructor(
    readonly partition: number,
    private readonly ctx: OwnerContext,
    initial: OwnerState,
    copy: Copy | undefined,
  ) {
    this.current = initial;
    this.copy = copy;
    ctx.logger.debug({ partition, to: initial.role }, 'partition role');
    ctx.observer?.roleChanged(partition, undefined, initial.role);
  }

  /** An owner that will take a lease (no copy of the partition here yet). */
  static forLease(partition: number, ctx: OwnerContext, lease: PartitionLease): PartitionOwner {
    return new PartitionOwner(partition, ctx, { role: 'fencing', lease }, undefined);
  }

  /** A warm standby copy, seeded from the latest snapshot when there is one. */
  static async standby(partition: number, ctx: OwnerContext): Promise<PartitionOwner> {
    const state = emptyState(ctx.app, partition);
    const moved: Buffer[] = [];
    let offset = 0;
    try {
      offset = (await ctx.snapshots?.loadInto(partition, state, undefined, (key) => moved.push(key))) ?? 0;
    } catch (err) {
      state.clear();
      moved.length = 0;
      ctx.logger.warn({ partition, err: describeError(err) }, 'standby: snapshot unusable; following the changelog from the start');
    }
    const owner = new PartitionOwner(partition, ctx, { role: 'standby' }, { state, offset, end: offset });
    for (const key of moved) owner.moved.set(key.toString('latin1'), key);
    return owner;
  }

  get role(): PartitionRole {
    return this.current.role;
  }

  status(): PartitionStatus {
    const s = this.current;
    if (s.role !== 'failed') return { partition: this.partition, role: s.role };
    return { partition: this.partition, role: 'failed', reason: describeError(s.error), code: s.error instanceof FaradError ? s.error.code : 'internal' };
  }

  /** How far the input is committed while the partition is active here (reads wait on it for a write). */
  inputProgress(): InputProgress | undefined {
    return this.current.role === 'active' ? this.current.progress : undefined;
  }

  /** Committed state for reads: fresh when active, stale (a warm copy) when standby. */
  readable(): PartitionState | undefined {
    return this.role === 'active' || this.role === 'standby' ? this.copy?.state : undefined;
  }

  /** State for gauges (rows per table), whatever the role. */
  state(): PartitionState | undefined {
    return this.copy?.state;
  }

  /** The changelog offset a standby copy has reached (the assignor sends failover to the warmest). */
  warmOffset(): number | undefined {
    return this.role === 'standby' ? this.copy?.offset : undefined;
  }

  standbyLag(): number | undefined {
    return this.role === 'standby' && this.copy ? Math.max(0, this.copy.end - this.copy.offset) : undefined;
  }

  /** Changelog records for a standby copy (ignored in any other role: the lease's reads take over). */
  followed(records: readonly LogRecord[]): void {
    const copy = this.copy;
    if (this.role !== 'standby' || !copy || this.stalled) return;
    for (const record of records) {
      if (record.offset < copy.offset) continue;
      let fate;
      try {
        fate = this.ctx.rows.apply(copy.state, record.key, record.value);
      } catch (err) {
        // The copy stops at this row: applying later ones would leave a hole.
        this.stalled = true;
        throw err;
      }
      if (isMovedRow(fate) && record.key) {
        if (record.value === null) this.moved.delete(record.key.toString('latin1'));
        else this.moved.set(record.key.toString('latin1'), record.key);
      }
      copy.offset = record.offset + 1;
    }
  }

  /** The follower restarts from this copy's offset: rows are applied again. */
  resumeFollowing(): void {
    this.stalled = false;
  }

  /** Where the standby follower stands (it moves past transaction markers too). */
  followedTo(nextOffset: number, endOffset: number): void {
    const copy = this.copy;
    if (this.role !== 'standby' || !copy || this.stalled) return;
    copy.offset = Math.max(copy.offset, nextOffset);
    copy.end = Math.max(copy.end, endOffset);
  }

  /**
   * Owns the partition for as long as the lease lasts: fence, catch up, resume, then process
   * batches. Transient failures back off and run the sequence again; a fenced owner that still
   * holds the partition takes it back at once; a failure retrying cannot heal leaves the
   * partition `failed` until the lease ends. Ends in `closing`.
   */
  async own(lease: PartitionLease): Promise<void> {
    let attempt = 0;
    this.wasStandby = this.role === 'standby';
    if (this.role !== 'fencing') this.transition({ role: 'fencing', lease });
    while (lease.active && !this.ctx.isStopping()) {
      try {
        await this.takeOver(lease);
        attempt = 0;
        await this.process(lease);
        break;
      } catch (err) {
        if (!lease.active || err instanceof LeaseRevokedError || this.ctx.isStopping()) break;
        if (err instanceof ProducerFencedError) {
          // Someone else fenced this producer. If the settled group still gives the partition
          // here, that was a stale owner: take it back now rather than leave it ownerless.
          this.ctx.logger.warn({ partition: this.partition, err: describeError(err) }, 'producer fenced; checking who owns the partition');
          if (!(await lease.confirmOwnership().catch(() => false))) break;
          this.ctx.logger.warn({ partition: this.partition }, 'still the owner after being fenced: taking the partition back');
          this.transition({ role: 'fencing', lease });
          continue;
        }
        if (!isRetriable(err)) {
          this.transition({ role: 'failed', lease, error: err });
          this.ctx.observer?.partitionFailed(this.partition, err instanceof FaradError ? err.code : 'internal');
          this.ctx.logger.error({ partition: this.partition, err: describeError(err) }, 'partition failed; retrying cannot heal this (see /readyz)');
          await Promise.race([lease.revoked, this.ctx.stopped]);
          break;
        }
        if (err instanceof UnknownRowSchemaError) await this.ctx.refreshSchemas?.().catch(() => undefined);
        attempt++;
        const delayMs = Math.min(this.ctx.processing.retryBackoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
        this.ctx.logger.warn({ partition: this.partition, role: this.role, attempt, delayMs, err: describeError(err) }, 'partition takeover failed; retrying');
        await Promise.race([sleep(delayMs), lease.revoked, this.ctx.stopped]);
        if (this.role !== 'fencing') this.transition({ role: 'fencing', lease });
      }
    }
    const copy = this.copy;
    if (this.ctx.isStopping() && lease.active && this.role === 'active' && copy && this.ctx.snapshots) {
      // A graceful stop leaves a fresh snapshot for cold starts, written after the transport
      // has handed the partition over so it adds no pause.
      const schedule = new SnapshotSchedule(this.ctx.snapshots, this.ctx.logger);
      const offset = copy.offset;
      this.finalSnapshot = () => schedule.take(copy.state, offset);
    }
    this.transition({ role: 'closing' });
  }

  /** Keeps the partition, which moved to another instance, as a warm standby copy. */
  keepAsStandby(): void {
    if (!this.copy) this.copy = { state: emptyState(this.ctx.app, this.partition), offset: 0, end: 0 };
    this.transition({ role: 'standby' });
  }

  /** The partition leaves this instance (or the instance stops). */
  close(): void {
    if (this.role !== 'closing') this.transition({ role: 'closing' });
    this.ctx.logger.debug({ partition: this.partition, from: 'closing', to: 'gone' }, 'partition role');
    this.ctx.observer?.roleChanged(this.partition, 'closing', undefined);
  }

  async writeFinalSnapshot(): Promise<void> {
    const take = this.finalSnapshot;
    this.finalSnapshot = undefined;
    await take?.();
  }

  /** The one place the owner's state changes; refuses illegal moves and reports legal ones. */
  private transition(next: OwnerState): void {
    const from = this.current.role;
    if (!isAllowedMove(from, next.role)) {
      throw new IllegalTransitionError(
        `partition ${this.partition}: cannot go from ${from} to ${next.role} (allowed from ${from}: ${ALLOWED_MOVES[from].join(', ') || 'none'})`,
        { partition: this.partition },
      );
    }
    // Leaving `active` (even to take the partition back) ends its reads' waits: they look again.
    if (this.current.role === 'active' && this.current !== next) this.current.progress.end();
    this.current = next;
    this.ctx.logger.debug({ partition: this.partition, from, to: next.role }, 'partition role');
    if (from !== next.role) this.ctx.observer?.roleChanged(this.partition, from, next.role);
  }

  /** Fence, then catch up the changelog, then resume input: the order exactly-once rests on. */
  private async takeOver(lease: PartitionLease): Promise<void> {
    if (!lease.active) throw new LeaseRevokedError(`lease of partition ${this.partition} ended`, { partition: this.partition });
    // Catching up before fencing would let a zombie commit in between, and this owner would
    // resume with state that misses it.
    await lease.fence();
    this.transition({ role: 'restoring', lease });
    await this.catchUp(lease);
    await this.moveRows(lease);
    if (!lease.active) throw new LeaseRevokedError(`lease of partition ${this.partition} ended while it restored`, { partition: this.partition });
    const startAt = inputOffsetsOf(this.copy!.state);
    await lease.resume(startAt);
    const progress = new InputProgress();
    // The restored state covers these offsets: reads waiting for them need not ask the log.
    progress.commitEnded([...startAt].map(([topic, offset]) => ({ topic, offset })));
    this.transition({ role: 'active', lease, progress });
  }

  /** Brings the copy to the changelog's end (see restorePartition), with progress in metrics. */
  private async catchUp(lease: PartitionLease): Promise<void> {
    const { partition, ctx } = this;
    const restored = await restorePartition({
      app: ctx.app,
      partition,
      end: await lease.changelogEnd(),
      readChangelog: (fromOffset) => lease.readChangelog(fromOffset),
      rows: ctx.rows,
      copy: this.copy,
      snapshots: ctx.snapshots,
      logger: ctx.logger,
      onProgress: (done, total) => ctx.observer?.restoreProgress(partition, done, total),
    });
    this.copy = restored.copy;
    for (const key of restored.moved) this.moved.set(key.toString('latin1'), key);
    if (restored.source === 'own copy' && this.wasStandby) ctx.observer?.failedOver(partition);
    ctx.observer?.restoreFinished(partition, restored.records, restored.seconds);
    if (restored.records > 0 || restored.source !== 'changelog') {
      ctx.logger.info({ partition, source: restored.source, changelogRecords: restored.records, seconds: restored.seconds }, 'partition restored');
    }
  }

  /**
   * After a table rename or drop: rewrites rows filed under a former name under the current one
   * and deletes the old rows from the changelog (a tombstone each), in one commit before input
   * resumes, so log compaction can never bring an old row back.
   */
  private async moveRows(lease: PartitionLease): Promise<void> {
    const copy = this.copy;
    if (this.moved.size === 0 || !copy) return;
    const { app, rows } = this.ctx;
    const changes: RowChange[] = [];
    const tombstones: OutRecord[] = [];
    for (const key of this.moved.values()) {
      tombstones.push({ topic: app.changelogTopic, partition: this.partition, timestamp: Date.now(), key, value: null });
      const row = decodeChangeKey(key);
      const table = rows.tableFor(row.table);
      if (table === undefined) continue;
      const value = copy.state.readCommitted(table, row.key);
      if (value !== undefined) changes.push({ table, key: row.key, value });
    }
    // Tombstones come first: a later restore meets each old-name row, then its tombstone, then
    // the row under the new name. (An instance of the old version meets the new name too, and
    // stops following with a clear error; its copy is dropped.)
    const records: OutRecord[] = [
      ...tombstones,
      ...rows.encodeChanges(changes).map((change) => ({
        topic: app.changelogTopic,
        partition: this.partition,
        timestamp: Date.now(),
        key: change.key,
        value: change.value,
      })),
    ];
    const result = await lease.commit({ partition: this.partition, records, offsets: [], inputCount: 0 });
    if (result.changelogNext !== undefined) copy.offset = Math.max(copy.offset, result.changelogNext);
    this.ctx.logger.info({ partition: this.partition, rows: this.moved.size }, 'moved rows off former and dropped table names');
    this.moved.clear();
  }

  /** True between a standby copy receiving its lease and the end of that takeover. */
  private wasStandby = false;
  /** Fire times only move forward on this owner, even if the wall clock steps back. */
  private lastFiredAt = 0;
  /**
   * Commits failed in a row, across re-fencing (a failed Kafka transaction replaces the producer):
   * the retry backoff keeps growing while the same batch keeps failing.
   */
  private failedCommits = 0;

  /** Processes and commits batches until the lease ends or the instance stops. */
  private async process(lease: PartitionLease): Promise<void> {
    const copy = this.copy!;
    this.wasStandby = false;
    const processor = new BatchProcessor({
      app: this.ctx.app,
      state: copy.state,
      catalog: this.ctx.codec,
      rows: this.ctx.rows,
      globals: this.ctx.globals,
      partitionsOf: this.ctx.partitionsOf,
      observer: this.ctx.observer,
      protocol: (host) => new MultiPartitionProtocol(host),
    });
    const schedule = new SnapshotSchedule(this.ctx.snapshots, this.ctx.logger);
    while (lease.active && !this.ctx.isStopping()) {
      try {
        const batch = await this.batch(lease, processor, copy);
        if (batch.committed) {
          this.failedCommits = 0;
          schedule.changed();
        }
        if (batch.inputs > 0) this.ctx.onCommitted?.(this.partition, batch.inputs);
        if (schedule.due()) await schedule.take(copy.state, copy.offset);
      } catch (err) {
        if (err instanceof ProducerFencedError || !isRetriable(err) || !lease.active) throw err;
        // The batch was undone and its records will be replayed: retry after a pause.
        this.ctx.observer?.commitFailed(this.partition);
        this.failedCommits++;
        const delayMs = Math.min(this.ctx.processing.retryBackoffMs * 2 ** (this.failedCommits - 1), MAX_BACKOFF_MS);
        this.ctx.logger.warn({ partition: this.partition, attempt: this.failedCommits, delayMs, err: describeError(err) }, 'batch commit failed; rolled back, retrying');
        await Promise.race([sleep(delayMs), lease.revoked, this.ctx.stopped]);
      }
    }
  }

  /**
   * Polls and applies records until the batch is full or due, fires the timers due by then, and
   * commits it. An idle partition still wakes for its next timer.
   */
  private async batch(lease: PartitionLease, processor: BatchProcessor, copy: Copy): Promise<{ inputs: number; committed: boolean }> {
    const { commitIntervalMs, commitLingerMs, maxBatchRecords } = this.ctx.processing;
    let opened = 0;
    let deadline = Infinity;
    let commitStarted = 0;
    let plan: CommitPlan | undefined;
    const progress = this.inputProgress();
    // Any failure inside the batch undoes all of it and replays its records: the batch is the
    // unit of atomicity.
    try {
      while (processor.pending < maxBatchRecords && lease.active && !this.ctx.isStopping()) {
        // An open batch takes what is queued; once the input is drained it commits as soon as it
        // is commitLingerMs old, taking what arrives until then. Latency follows the load: a
        // trickle commits within milliseconds, a backlog fills batches up to the size or time bound.
        const waitMs = processor.pending === 0 ? this.idleWait(processor, lease, commitIntervalMs) : Math.max(0, Math.min(deadline, opened + commitLingerMs) - performance.now());
        const records = await lease.poll(maxBatchRecords - processor.pending, waitMs, processor.pollTopics());
        if (records.length === 0) break;
        if (processor.pending === 0) {
          opened = performance.now();
          deadline = opened + commitIntervalMs;
        }
        if (this.ctx.codec.prepare) await this.ctx.codec.prepare(records.map((r) => r.value));
        const applied = processor.apply(records);
        // A multi-partition round now holds the partition: the rest waits for its decision.
        if (applied < records.length) lease.unpoll(records.slice(applied));
        // Protocol messages commit at once: other partitions wait for them.
        if (processor.urgent || performance.now() >= deadline) break;
      }
      // Timers fire after the batch's input, at a time recorded with the batch; not while a
      // multi-partition round holds the partition (it read rows a timer could change).
      if (!processor.held) {
        const firedAt = Math.max(Date.now(), this.lastFiredAt);
        const dueBy = processor.fireHorizon(firedAt, lease.inputIdle());
        if (processor.fireDue(firedAt, maxBatchRecords, dueBy) > 0) this.lastFiredAt = firedAt;
      }
      if (!processor.hasWork) return { inputs: 0, committed: false };
      commitStarted = performance.now();
      plan = processor.plan();
      progress?.commitStarted();
      const result = await lease.commit(plan);
      if (result.changelogNext !== undefined) copy.offset = Math.max(copy.offset, result.changelogNext);
    } catch (err) {
      processor.abort();
      progress?.commitFailed();
      await lease.rewind();
      throw err;
    }
    const inputs = processor.pending;
    processor.committed();
    // Reads waiting for this input may now see it.
    progress?.commitEnded(plan.offsets);
    this.ctx.observer?.batchCommitted(this.partition, inputs, (performance.now() - commitStarted) / 1000);
    return { inputs, committed: true };
  }

  /**
   * How long an empty batch waits for input: until the commit interval ends or the next timer is
   * due. A due timer waiting for input still being read waits for that input (it wakes the poll).
   */
  private idleWait(processor: BatchProcessor, lease: PartitionLease, commitIntervalMs: number): number {
    const due = processor.held ? undefined : processor.nextDueAt();
    if (due === undefined) return commitIntervalMs;
    const wait = due - Date.now();
    if (wait <= 0 && !lease.inputIdle()) return Math.min(commitIntervalMs, 50);
    return Math.max(0, Math.min(commitIntervalMs, wait));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
