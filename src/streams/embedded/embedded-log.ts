import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import type { Logger } from 'pino';
import { AppDefinitionError, LeaseRevokedError, TransportError } from '../../errors.js';
import type { ChangelogFollower, ChangelogSink, CommitResult, EventLog, MembershipPolicy, PartitionLease, TopicPartitionOffset, TopicSpec } from '../event-log.js';
import type { CommitPlan, LogRecord, OutRecord } from '../records.js';
import { Compactor } from './compactor.js';
import { DiskFullError } from './errors.js';
import { encodeBatchFrame, encodeTopicFrame } from './frames.js';
import { Journal } from './journal.js';
import { DataDirLock } from './lock.js';
import { LogIndex, type Topic } from './log-index.js';
import type { PartitionLog } from './partition-log.js';
import type { RetentionOptions } from './retention.js';

/** Segment size when no retention is given (tools that open a data directory to read or append). */
const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
/** At most one disk-full error log line per this long (every refused write would log otherwise). */
const DISK_FULL_LOG_EVERY_MS = 10_000;

export interface EmbeddedLogOptions {
  /** Directory of the journal and lock file. */
  readonly dataDir: string;
  readonly logger: Logger;
  /** Consumer group whose offsets the leases commit (the app's name). */
  readonly group: string;
  /** Input topics the leases read, all with `partitions` partitions. */
  readonly inputTopics: readonly string[];
  readonly changelogTopic: string;
  readonly partitions: number;
  /**
   * Retention, compaction and segment size. Unset (tools that read or append to a data
   * directory): segments roll at 8 MiB and nothing is cleaned; the next `farad run` cleans.
   */
  readonly retention?: RetentionOptions | undefined;
}

/**
 * farad's single-node log: topics, partitions, offsets and atomic multi-topic commits in one
 * process, persisted as a journal of segments under the data directory. A commit (outputs +
 * changelog + dead letters + input offsets) is one journal frame, so after a crash it is there
 * entirely or not at all. Every partition is leased to this process. With retention, a
 * background cleaner keeps the directory bounded (compactor.ts).
 */
export class EmbeddedLog implements EventLog {
  private readonly index = new LogIndex();
  private readonly leasesOut: EmbeddedLease[] = [];
  private closed = false;
  private compactor: Compactor | undefined;
  private diskFullLoggedAt = 0;

  private constructor(
    private readonly options: EmbeddedLogOptions,
    private readonly lock: DataDirLock,
    private journal: Journal | undefined = undefined,
  ) {}

  static async open(options: EmbeddedLogOptions): Promise<EmbeddedLog> {
    mkdirSync(options.dataDir, { recursive: true });
    const lock = DataDirLock.acquire(join(options.dataDir, 'LOCK'));
    const log = new EmbeddedLog(options, lock);
    const index = log.index;
    const started = Date.now();
    try {
      let frames = 0;
      log.journal = await Journal.open(
        options.dataDir,
        {
          segment: (number, header, headerBytes) => {
            index.beginSegment(number, header, headerBytes);
            log.compactor?.trigger(); // a roll: a segment was sealed
          },
          frame: (frame, position) => {
            index.applyFrame(frame, position);
            frames++;
          },
          truncated: (valid, dropped) =>
            options.logger.warn({ validBytes: valid, droppedBytes: dropped }, 'embedded log: cut off a torn tail left by a crash'),
          header: (number) => index.header(number),
          rollFailed: (err) => log.reportWriteError(err),
        },
        { segmentBytes: options.retention?.segmentBytes ?? DEFAULT_SEGMENT_BYTES },
      );
      options.logger.debug(
        { frames, bytes: log.journal.bytes, segments: log.journal.sealed().length + 1, ms: Date.now() - started },
        'embedded log opened',
      );
    } catch (err) {
      lock.release();
      throw err;
    }
    if (options.retention) {
      log.compactor = new Compactor({
        journal: log.journal,
        index,
        retention: options.retention,
        group: options.group,
        inputTopics: options.inputTopics,
        logger: options.logger,
      });
      log.compactor.start();
    }
    return log;
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    for (const spec of specs) {
      const existing = this.index.topics.get(spec.name);
      if (existing) {
        if (existing.partitions.length !== spec.partitions) {
          throw new AppDefinitionError(
            `topic "${spec.name}" has ${existing.partitions.length} partitions but the app needs ${spec.partitions}; ` +
              `use a new data directory (FARAD_DATA_DIR) or keep the app's partitions at ${existing.partitions.length}`,
            { topic: spec.name },
          );
        }
        continue;
      }
      await this.writeFrame(encodeTopicFrame(spec.name, spec.partitions, spec.compacted ?? false), (frame, position) => this.index.applyFrame(frame, position));
    }
  }

  partitionsOf(topic: string): number {
    return this.topic(topic).partitions.length;
  }

  /** Durably appends records; resolves once they are on disk and readable, with each written partition's end just after them. */
  async append(records: readonly OutRecord[]): Promise<readonly TopicPartitionOffset[]> {
    if (records.length === 0) return [];
    for (const r of records) this.checkPartition(r.topic, r.partition);
    const frame = encodeBatchFrame(records, (t) => this.topic(t).id, [], this.options.group);
    let written: TopicPartitionOffset[] = [];
    await this.writeFrame(frame, (_, position) => {
      this.applyBatch(frame, position, records);
      // Frames are applied one at a time, in order: each partition's end is now just past this frame's records.
      written = writtenPartitions(records).map(({ topic, partition }) => ({ topic, partition, offset: this.endOffset(topic, partition) }));
    });
    return written;
  }

  /** Reads up to `max` records of a topic partition from `fromOffset`. */
  read(topic: string, partition: number, fromOffset: number, max: number): LogRecord[] {
    return this.partitionLog(topic, partition).read(fromOffset, max, this.readFromJournal);
  }

  endOffset(topic: string, partition: number): number {
    return this.partitionLog(topic, partition).end;
  }

  committedOffset(group: string, topic: string, partition: number): number {
    return this.index.committedOffset(group, topic, partition);
  }

  async committedOffsets(partition: number): Promise<ReadonlyMap<string, number>> {
    return new Map(this.options.inputTopics.map((topic) => [topic, this.committedOffset(this.options.group, topic, partition)]));
  }

  /** The lowest offset of a topic partition still held (retention and compaction remove records before it). */
  startOffset(topic: string, partition: number): number {
    return this.partitionLog(topic, partition).start;
  }

  hasTopic(topic: string): boolean {
    return this.index.topics.has(topic);
  }

  async *readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    const end = this.endOffset(topic, partition);
    for (let offset = fromOffset; offset < end; ) {
      const chunk = this.read(topic, partition, offset, 10_000).filter((r) => r.offset < end);
      if (chunk.length === 0) break;
      offset = chunk[chunk.length - 1]!.offset + 1; // compaction leaves gaps
      yield chunk;
    }
  }

  /** Bytes of records on disk per topic (the `farad_log_bytes` gauge). */
  diskUsage(): Array<{ topic: string; bytes: number }> {
    return this.index.bytesByTopic();
  }

  /** Bytes of all journal files (segments, headers, commits). */
  get diskBytes(): number {
    return this.journal?.bytes ?? 0;
  }

  /** Runs retention and compaction now and waits until nothing is left to do (tools, tests). */
  async clean(): Promise<void> {
    if (!this.compactor) return;
    await this.compactor.idle();
    this.compactor.trigger();
    await this.compactor.idle();
  }

  /** Longest synchronous slice the cleaner has run so far, in ms: how long it held up processing at most. */
  get longestCleaningPauseMs(): number {
    return this.compactor?.longestSliceMs ?? 0;
  }

  consumerLag(): Array<{ partition: number; lag: number }> {
    return Array.from({ length: this.options.partitions }, (_, partition) => ({
      partition,
      lag: this.options.inputTopics.reduce(
        (sum, topic) => sum + this.endOffset(topic, partition) - this.committedOffset(this.options.group, topic, partition),
        0,
      ),
    }));
  }

  /** A group of one: this process is granted every partition, and no standby goes anywhere. */
  leases(membership: MembershipPolicy): Observable<PartitionLease> {
    return new Observable<PartitionLease>((subscriber) => {
      const self = 'embedded';
      const all = Array.from({ length: this.options.partitions }, (_, p) => p);
      const granted = membership.assign([{ memberId: self, report: membership.report() }]).get(self) ?? all;
      for (const p of granted) {
        const lease = new EmbeddedLease(this, p, this.options);
        this.leasesOut.push(lease);
        subscriber.next(lease);
      }
      membership.settled([{ memberId: self, report: membership.report(), partitions: granted }], self);
      // Embedded leases last until the log closes.
    });
  }

  changelogFollower(): ChangelogFollower {
    return new EmbeddedChangelogFollower(this, this.options.changelogTopic);
  }

  followerOf(topic: string): ChangelogFollower {
    return new EmbeddedChangelogFollower(this, topic);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lease of this.leasesOut) lease.revoke();
    await this.compactor?.stop();
    await this.journal?.close();
    this.lock.release();
  }

  // ---- used by leases ----------------------------------------------------------------------

  /** Wakes `wake` when any of the topics' partition `partition` gets records. */
  watch(topics: readonly string[], partition: number, wake: () => void): () => void {
    const logs = topics.map((t) => this.partitionLog(t, partition));
    for (const log of logs) log.waiters.add(wake);
    return () => {
      for (const log of logs) log.waiters.delete(wake);
    };
  }

  partitionLog(topic: string, partition: number): PartitionLog {
    const log = this.topic(topic).partitions[partition];
    if (!log) throw new TransportError(`topic "${topic}" has no partition ${partition}`, { topic, partition });
    return log;
  }

  readFromJournal = (position: number, length: number): Buffer => this.journal!.read(position, length);

  async commitPlan(plan: CommitPlan): Promise<CommitResult> {
    if (this.closed) throw new TransportError('embedded log is closed', { partition: plan.partition });
    for (const r of plan.records) this.checkPartition(r.topic, r.partition);
    const frame = encodeBatchFrame(plan.records, (t) => this.topic(t).id, plan.offsets, this.options.group);
    // The frame carries the offsets too: applying it moves them.
    await this.writeFrame(frame, (_, position) => this.applyBatch(frame, position, plan.records));
    const wroteChangelog = plan.records.some((r) => r.topic === this.options.changelogTopic && r.partition === plan.partition);
    return { changelogNext: wroteChangelog ? this.endOffset(this.options.changelogTopic, plan.partition) : undefined };
  }

  // ---- journal application -----------------------------------------------------------------

  private async writeFrame(frame: Buffer, onDurable: (frame: Buffer, position: number) => void): Promise<void> {
    if (!this.journal || this.closed) throw new TransportError('embedded log is closed');
    try {
      await this.journal.write(frame, (position) => onDurable(frame, position));
    } catch (err) {
      this.reportWriteError(err);
      throw err;
    }
  }

  /** A full disk is said loudly (once in a while): the operator has to act. */
  private reportWriteError(err: unknown): void {
    if (!(err instanceof DiskFullError)) return;
    const now = Date.now();
    if (now - this.diskFullLoggedAt < DISK_FULL_LOG_EVERY_MS) return;
    this.diskFullLoggedAt = now;
    this.options.logger.error({ code: err.code, dataDir: err.dataDir }, err.message);
  }

  /** Indexes a batch just written, keeping the records in the tail cache, and wakes readers. */
  private applyBatch(frame: Buffer, position: number, records: readonly OutRecord[]): void {
    for (const log of this.index.applyFrame(frame, position, records)) log.notify();
  }

  private topic(name: string): Topic {
    const topic = this.index.topics.get(name);
    if (!topic) throw new TransportError(`unknown topic "${name}"`, { topic: name });
    return topic;
  }

  private checkPartition(topic: string, partition: number): void {
    const count = this.topic(topic).partitions.length;
    if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
      throw new TransportError(`topic "${topic}" has ${count} partitions; partition ${partition} does not exist`, { topic, partition });
    }
  }
}

/** The embedded log's lease of one partition: reads all input topics' partition p in log order. */
class EmbeddedLease implements PartitionLease {
  private cursors = new Map<string, number>();
  private live = true;
  private wakeWaiter: (() => void) | undefined;
  private onRevoke: () => void = () => undefined;
  readonly revoked = new Promise<void>((resolve) => (this.onRevoke = resolve));

  constructor(
    private readonly log: EmbeddedLog,
    readonly partition: number,
    private readonly options: EmbeddedLogOptions,
  ) {
    this.resetCursors();
  }

  get active(): boolean {
    return this.live;
  }

  revoke(): void {
    this.live = false;
    this.wakeWaiter?.();
    this.onRevoke();
  }

  /** One process holds the data directory's lock: there is no one else to fence. */
  async fence(): Promise<void> {
    if (!this.live) throw new LeaseRevokedError(`lease of partition ${this.partition} has ended`, { partition: this.partition });
  }

  /** The journal commits offsets with the changelog in one write: the copy's agree with its own. */
  async resume(startAt: ReadonlyMap<string, number>): Promise<void> {
    this.resetCursors();
    for (const [topic, offset] of startAt) {
      const committed = this.cursors.get(topic);
      if (committed !== undefined) this.cursors.set(topic, Math.max(committed, offset));
    }
  }

  async confirmOwnership(): Promise<boolean> {
    return this.live;
  }

  async changelogEnd(): Promise<number> {
    return this.log.endOffset(this.options.changelogTopic, this.partition);
  }

  readChangelog(fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    return this.log.readRange(this.options.changelogTopic, this.partition, fromOffset);
  }

  async poll(maxRecords: number, maxWaitMs: number, topics: readonly string[] = this.options.inputTopics): Promise<readonly LogRecord[]> {
    let records = this.take(maxRecords, topics);
    if (records.length > 0 || !this.live || maxWaitMs <= 0) return records;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, maxWaitMs);
      const unwatch = this.log.watch(topics, this.partition, done);
      this.wakeWaiter = done;
      function done(): void {
        clearTimeout(timer);
        unwatch();
        resolve();
      }
    });
    this.wakeWaiter = undefined;
    records = this.live ? this.take(maxRecords, topics) : [];
    return records;
  }

  unpoll(records: readonly LogRecord[]): void {
    for (const record of records) {
      const cursor = this.cursors.get(record.topic);
      if (cursor !== undefined && record.offset < cursor) this.cursors.set(record.topic, record.offset);
    }
  }

  inputIdle(): boolean {
    for (const topic of this.options.inputTopics) {
      const cursor = this.cursors.get(topic);
      if (cursor === undefined || cursor < this.log.partitionLog(topic, this.partition).end) return false;
    }
    return true;
  }

  async commit(plan: CommitPlan): Promise<CommitResult> {
    if (!this.live) throw new LeaseRevokedError(`lease of partition ${this.partition} has ended`, { partition: this.partition });
    return this.log.commitPlan(plan);
  }

  async rewind(): Promise<void> {
    this.resetCursors();
  }

  private resetCursors(): void {
    for (const topic of this.options.inputTopics) {
      this.cursors.set(topic, this.log.committedOffset(this.options.group, topic, this.partition));
    }
  }

  /** Takes up to `max` available records, merged across `topics` in journal order. */
  private take(max: number, topics: readonly string[]): LogRecord[] {
    if (topics.length === 1) {
      const topic = topics[0]!;
      const from = this.cursors.get(topic)!;
      const records = this.log.read(topic, this.partition, from, max);
      if (records.length > 0) this.cursors.set(topic, records[records.length - 1]!.offset + 1);
      return records;
    }
    const candidates: Array<{ record: LogRecord; position: number }> = [];
    for (const topic of topics) {
      const log = this.log.partitionLog(topic, this.partition);
      const from = this.cursors.get(topic)!;
      for (const record of log.read(from, max, this.log.readFromJournal)) candidates.push({ record, position: log.positionOf(record.offset) });
    }
    candidates.sort((a, b) => a.position - b.position);
    const taken = candidates.slice(0, max).map((c) => c.record);
    for (const record of taken) this.cursors.set(record.topic, record.offset + 1);
    return taken;
  }
}

/**
 * Standby copies on the embedded log (tools and tests: a single node keeps none): follows
 * changelog partitions as they grow.
 */
class EmbeddedChangelogFollower implements ChangelogFollower {
  private stops: Array<() => void> = [];

  constructor(
    private readonly log: EmbeddedLog,
    private readonly topic: string,
  ) {}

  async follow(from: ReadonlyMap<number, number>, sink: ChangelogSink): Promise<void> {
    await this.stop();
    for (const [partition, start] of from) {
      let next = start;
      const drain = (): void => {
        for (;;) {
          const records = this.log.read(this.topic, partition, next, 10_000);
          if (records.length === 0) break;
          sink.records(partition, records);
          next = records[records.length - 1]!.offset + 1;
        }
        sink.position(partition, next, this.log.endOffset(this.topic, partition));
      };
      this.stops.push(this.log.watch([this.topic], partition, drain));
      drain();
    }
  }

  async stop(): Promise<void> {
    for (const stop of this.stops) stop();
    this.stops = [];
  }
}

/** Each topic partition `records` write to, once. */
function writtenPartitions(records: readonly OutRecord[]): Array<{ topic: string; partition: number }> {
  const byTopic = new Map<string, Set<number>>();
  for (const { topic, partition } of records) {
    let partitions = byTopic.get(topic);
    if (!partitions) byTopic.set(topic, (partitions = new Set()));
    partitions.add(partition);
  }
  return [...byTopic].flatMap(([topic, partitions]) => [...partitions].map((partition) => ({ topic, partition })));
}
