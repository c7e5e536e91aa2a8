import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import type { Logger } from 'pino';
import { AppDefinitionError, LeaseRevokedError, TransportError } from '../../errors.js';
import type { ChangelogFollower, ChangelogSink, CommitResult, EventLog, MembershipPolicy, PartitionLease, TopicSpec } from '../event-log.js';
import type { CommitPlan, LogRecord, OutRecord } from '../records.js';
import { encodeBatchFrame, encodeTopicFrame, KIND_TOPIC, parseFrame } from './frames.js';
import { Journal } from './journal.js';
import { DataDirLock } from './lock.js';
import { PartitionLog } from './partition-log.js';

interface Topic {
  readonly id: number;
  readonly name: string;
  readonly partitions: PartitionLog[];
  readonly compacted: boolean;
}

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
}

/**
 * farad's single-node log: topics, partitions, offsets and atomic multi-topic commits in one
 * process, persisted as a journal under the data directory. A commit (outputs + changelog +
 * dead letters + input offsets) is one journal frame, so after a crash it is there entirely or
 * not at all. Every partition is leased to this process.
 */
export class EmbeddedLog implements EventLog {
  private readonly topics = new Map<string, Topic>();
  private readonly topicsById: Topic[] = [];
  private readonly committed = new Map<string, number>();
  private readonly leasesOut: EmbeddedLease[] = [];
  private closed = false;

  private constructor(
    private readonly options: EmbeddedLogOptions,
    private readonly lock: DataDirLock,
    private journal: Journal | undefined = undefined,
  ) {}

  static async open(options: EmbeddedLogOptions): Promise<EmbeddedLog> {
    mkdirSync(options.dataDir, { recursive: true });
    const lock = DataDirLock.acquire(join(options.dataDir, 'LOCK'));
    const log = new EmbeddedLog(options, lock);
    try {
      let frames = 0;
      log.journal = await Journal.open(
        join(options.dataDir, 'journal.log'),
        (frame, position) => {
          log.applyFrame(frame, position);
          frames++;
        },
        (valid, dropped) =>
          options.logger.warn({ validBytes: valid, droppedBytes: dropped }, 'embedded log: cut off a torn tail left by a crash'),
      );
      options.logger.debug({ frames, bytes: log.journal.bytes }, 'embedded log opened');
    } catch (err) {
      lock.release();
      throw err;
    }
    return log;
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    for (const spec of specs) {
      const existing = this.topics.get(spec.name);
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
      await this.writeFrame(encodeTopicFrame(spec.name, spec.partitions, spec.compacted ?? false), (frame) => this.applyFrame(frame, 0));
    }
  }

  partitionsOf(topic: string): number {
    return this.topic(topic).partitions.length;
  }

  /** Durably appends records; resolves once they are on disk and readable. */
  async append(records: readonly OutRecord[]): Promise<void> {
    if (records.length === 0) return;
    for (const r of records) this.checkPartition(r.topic, r.partition);
    const frame = encodeBatchFrame(records, (t) => this.topic(t).id, [], this.options.group);
    await this.writeFrame(frame, (_, position) => this.applyBatch(frame, position, records));
  }

  /** Reads up to `max` records of a topic partition from `fromOffset`. */
  read(topic: string, partition: number, fromOffset: number, max: number): LogRecord[] {
    return this.partitionLog(topic, partition).read(fromOffset, max, this.readFromJournal);
  }

  endOffset(topic: string, partition: number): number {
    return this.partitionLog(topic, partition).end;
  }

  committedOffset(group: string, topic: string, partition: number): number {
    return this.committed.get(offsetKey(group, topic, partition)) ?? 0;
  }

  hasTopic(topic: string): boolean {
    return this.topics.has(topic);
  }

  async *readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    const end = this.endOffset(topic, partition);
    for (let offset = fromOffset; offset < end; ) {
      const chunk = this.read(topic, partition, offset, Math.min(10_000, end - offset));
      if (chunk.length === 0) break;
      offset += chunk.length;
      yield chunk;
    }
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lease of this.leasesOut) lease.revoke();
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
    await this.writeFrame(frame, (_, position) => {
      this.applyBatch(frame, position, plan.records);
      for (const c of plan.offsets) this.committed.set(offsetKey(this.options.group, c.topic, c.partition), c.offset);
    });
    const wroteChangelog = plan.records.some((r) => r.topic === this.options.changelogTopic && r.partition === plan.partition);
    return { changelogNext: wroteChangelog ? this.endOffset(this.options.changelogTopic, plan.partition) : undefined };
  }

  // ---- journal application -----------------------------------------------------------------

  private writeFrame(frame: Buffer, onDurable: (frame: Buffer, position: number) => void): Promise<void> {
    if (!this.journal || this.closed) return Promise.reject(new TransportError('embedded log is closed'));
    return this.journal.write(frame, (position) => onDurable(frame, position));
  }

  /** Applies a replayed frame. */
  private applyFrame(frame: Buffer, position: number): void {
    const parsed = parseFrame(frame);
    if (parsed.kind === KIND_TOPIC) {
      if (this.topics.has(parsed.name)) return;
      const topic: Topic = {
        id: this.topicsById.length,
        name: parsed.name,
        partitions: Array.from({ length: parsed.partitions }, (_, p) => new PartitionLog(parsed.name, p)),
        compacted: parsed.compacted,
      };
      this.topics.set(topic.name, topic);
      this.topicsById.push(topic);
      return;
    }
    for (const slot of parsed.records) {
      const topic = this.topicsById[slot.topicId];
      const log = topic?.partitions[slot.partition];
      if (!topic || !log) throw new TransportError(`journal names unknown topic ${slot.topicId}/${slot.partition}`);
      log.append(position + slot.start, slot.length, undefined);
    }
    for (const c of parsed.commits) {
      const topic = this.topicsById[c.topicId];
      if (topic) this.committed.set(offsetKey(c.group, topic.name, c.partition), c.offset);
    }
  }

  /** Indexes a batch just written, keeping the records in the tail cache. */
  private applyBatch(frame: Buffer, position: number, records: readonly OutRecord[]): void {
    const parsed = parseFrame(frame);
    if (parsed.kind !== 2) return;
    const touched = new Set<PartitionLog>();
    parsed.records.forEach((slot, i) => {
      const r = records[i]!;
      const log = this.topicsById[slot.topicId]!.partitions[slot.partition]!;
      log.append(position + slot.start, slot.length, {
        topic: r.topic,
        partition: r.partition,
        offset: log.end,
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers: r.headers ?? {},
      });
      touched.add(log);
    });
    for (const log of touched) log.notify();
  }

  private topic(name: string): Topic {
    const topic = this.topics.get(name);
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

function offsetKey(group: string, topic: string, partition: number): string {
  return `${group}\u0000${topic}\u0000${partition}`;
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

  async resume(): Promise<void> {
    this.resetCursors();
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

  async poll(maxRecords: number, maxWaitMs: number): Promise<readonly LogRecord[]> {
    let records = this.take(maxRecords);
    if (records.length > 0 || !this.live || maxWaitMs <= 0) return records;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, maxWaitMs);
      const unwatch = this.log.watch(this.options.inputTopics, this.partition, done);
      this.wakeWaiter = done;
      function done(): void {
        clearTimeout(timer);
        unwatch();
        resolve();
      }
    });
    this.wakeWaiter = undefined;
    records = this.live ? this.take(maxRecords) : [];
    return records;
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

  /** Takes up to `max` available records, merged across input topics in journal order. */
  private take(max: number): LogRecord[] {
    const topics = this.options.inputTopics;
    if (topics.length === 1) {
      const topic = topics[0]!;
      const from = this.cursors.get(topic)!;
      const records = this.log.read(topic, this.partition, from, max);
      this.cursors.set(topic, from + records.length);
      return records;
    }
    const candidates: Array<{ record: LogRecord; position: number }> = [];
    for (const topic of topics) {
      const log = this.log.partitionLog(topic, this.partition);
      const from = this.cursors.get(topic)!;
      log.read(from, max, this.log.readFromJournal).forEach((record, i) => candidates.push({ record, position: log.positionOf(from + i) }));
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
