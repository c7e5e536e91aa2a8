import { TransportError } from '../../errors.js';
import type { LogRecord, OutRecord } from '../records.js';
import { encodeSegmentHeader, KIND_SEGMENT, KIND_TOPIC, parseFrame, type SegmentHeader } from './frames.js';
import { PartitionLog, type IndexEntries } from './partition-log.js';
import { positionOf, segmentOfPosition, SegmentStats } from './segments.js';

export interface Topic {
  readonly id: number;
  readonly name: string;
  readonly partitions: PartitionLog[];
  readonly compacted: boolean;
}

interface Commit {
  readonly group: string;
  readonly topicId: number;
  readonly partition: number;
  offset: number;
}

/** A survivor of a rewrite, for the bookkeeping done when the rewritten file is installed. */
export interface KeptKey {
  readonly log: PartitionLog;
  readonly key: string;
  readonly offset: number;
  readonly length: number;
}

/** What the cleaner hands over when a rewritten file replaces segments first..last. */
export interface Rewrite {
  readonly first: number;
  readonly last: number;
  /** Survivors per partition log, in offset order, at their new positions. */
  readonly entries: ReadonlyMap<PartitionLog, IndexEntries>;
  readonly stats: SegmentStats;
  /** Records of compacted topics that survived (their keys, to count what was superseded meanwhile). */
  readonly kept: readonly KeptKey[];
  /** Delete markers dropped for good: their keys leave the latest-offset map unless rewritten meanwhile. */
  readonly droppedTombstones: readonly KeptKey[];
}

/**
 * The in-memory view of the journal: topics (ids as the frames name them), every partition's
 * offset index, committed offsets, and what each segment holds. Fed by replay at open and by
 * every durable write; changed by the cleaner only through applyRewrite / applyRemoval.
 */
export class LogIndex {
  readonly topics = new Map<string, Topic>();
  readonly topicsById: Topic[] = [];
  readonly segments = new Map<number, SegmentStats>();
  private readonly commits = new Map<string, Commit>();

  /** A segment begins: fresh stats, and the metadata its header carries. */
  beginSegment(number: number, header: SegmentHeader | undefined, headerBytes: number): void {
    const stats = new SegmentStats(number);
    stats.bytes = headerBytes;
    this.segments.set(number, stats);
    if (!header) return;
    for (const t of header.topics) {
      const topic = this.defineTopic(t.name, t.partitions, t.compacted, t.id);
      t.next.forEach((next, p) => topic.partitions[p]?.advanceTo(next));
    }
    for (const c of header.commits) {
      const topic = this.topicsById[c.topicId];
      // Headers are the state at a segment's start: never behind what was replayed before them.
      if (topic && c.offset > this.committedOffset(c.group, topic.name, c.partition)) this.setCommitted(c.group, c.topicId, c.partition, c.offset);
    }
  }

  /**
   * Indexes a frame at `position` (replayed, or just made durable). `records` are the frame's
   * records as written, kept in the partitions' tail caches. Returns the partitions that grew.
   */
  applyFrame(frame: Buffer, position: number, records?: readonly OutRecord[]): Set<PartitionLog> {
    const touched = new Set<PartitionLog>();
    const segment = segmentOfPosition(position);
    const stats = this.segments.get(segment);
    if (!stats) throw new TransportError(`journal frame at ${position} lies in unknown segment ${segment}`);
    stats.bytes += frame.length;
    const parsed = parseFrame(frame);
    if (parsed.kind === KIND_TOPIC) {
      this.defineTopic(parsed.name, parsed.partitions, parsed.compacted);
      return touched;
    }
    if (parsed.kind === KIND_SEGMENT) return touched; // only ever first in a file (handled by beginSegment)
    parsed.records.forEach((slot, i) => {
      const topic = this.topicsById[slot.topicId];
      const log = topic?.partitions[slot.partition];
      if (!topic || !log) throw new TransportError(`journal names unknown topic ${slot.topicId}/${slot.partition}`);
      const offset = slot.offset ?? log.end;
      const at = position + slot.start;
      if (log.latest && slot.keyLength >= 0) this.supersede(log, frame.toString('latin1', slot.keyAt, slot.keyAt + slot.keyLength), offset);
      const r = records?.[i];
      const cached: LogRecord | undefined = r && {
        topic: r.topic,
        partition: r.partition,
        offset,
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers: r.headers ?? {},
      };
      log.appendAt(offset, at, slot.length, cached);
      stats.addRecord(slot.topicId, topic.partitions.length, slot.partition, offset, slot.length, slot.timestamp);
      touched.add(log);
    });
    for (const c of parsed.commits) if (this.topicsById[c.topicId]) this.setCommitted(c.group, c.topicId, c.partition, c.offset);
    return touched;
  }

  /** The header of a segment starting now: every topic, next offset and committed offset. */
  header(number: number): Buffer {
    return encodeSegmentHeader({
      number,
      coversThrough: number,
      topics: this.topicsById.filter((t) => t !== undefined).map((t) => ({ id: t.id, name: t.name, partitions: t.partitions.length, compacted: t.compacted, next: t.partitions.map((l) => l.end) })),
      commits: [...this.commits.values()],
    });
  }

  committedOffset(group: string, topic: string, partition: number): number {
    const id = this.topics.get(topic)?.id;
    return id === undefined ? 0 : (this.commits.get(commitKey(group, id, partition))?.offset ?? 0);
  }

  setCommitted(group: string, topicId: number, partition: number, offset: number): void {
    const key = commitKey(group, topicId, partition);
    const commit = this.commits.get(key);
    if (commit) commit.offset = offset;
    else this.commits.set(key, { group, topicId, partition, offset });
  }

  /** Bytes of records per topic across the live segments. */
  bytesByTopic(): Array<{ topic: string; bytes: number }> {
    return this.topicsById.filter((t) => t !== undefined).map((t) => {
      let bytes = 0;
      for (const stats of this.segments.values()) bytes += stats.topicBytes(t.id);
      return { topic: t.name, bytes };
    });
  }

  /** The cleaner installed a file in place of segments first..last (called synchronously with the file swap). */
  applyRewrite(rewrite: Rewrite): void {
    const from = positionOf(rewrite.first, 0);
    const to = positionOf(rewrite.last + 1, 0);
    const none: IndexEntries = { offsets: [], positions: [], lengths: [] };
    for (const topic of this.topicsById) for (const log of topic?.partitions ?? []) log.replaceRange(from, to, rewrite.entries.get(log) ?? none);
    for (const number of [...this.segments.keys()]) if (number >= rewrite.first && number <= rewrite.last) this.segments.delete(number);
    // Records superseded while the cleaner copied them are dead already.
    for (const k of rewrite.kept) if (k.log.latest?.get(k.key) !== k.offset) rewrite.stats.deadBytes += k.length;
    for (const t of rewrite.droppedTombstones) if (t.log.latest?.get(t.key) === t.offset) t.log.latest.delete(t.key);
    this.segments.set(rewrite.first, rewrite.stats);
  }

  /** The cleaner deleted segments that held nothing live. */
  applyRemoval(numbers: readonly number[]): void {
    const none: IndexEntries = { offsets: [], positions: [], lengths: [] };
    for (const number of numbers) {
      for (const topic of this.topicsById) for (const log of topic?.partitions ?? []) log.replaceRange(positionOf(number, 0), positionOf(number + 1, 0), none);
      this.segments.delete(number);
    }
  }

  private defineTopic(name: string, partitions: number, compacted: boolean, id = this.topicsById.length): Topic {
    const existing = this.topics.get(name);
    if (existing) return existing;
    const topic: Topic = { id, name, partitions: Array.from({ length: partitions }, (_, p) => new PartitionLog(name, p, compacted)), compacted };
    this.topics.set(name, topic);
    this.topicsById[id] = topic;
    return topic;
  }

  /** Counts the record `key` had until `offset` as dead in its segment. */
  private supersede(log: PartitionLog, key: string, offset: number): void {
    const latest = log.latest!;
    const previous = latest.get(key);
    if (previous !== undefined && previous < offset) {
      const entry = log.entry(previous);
      if (entry) {
        const stats = this.segments.get(segmentOfPosition(entry.position));
        if (stats) stats.deadBytes += entry.length;
      }
    }
    if (previous === undefined || previous < offset) latest.set(key, offset);
  }
}

function commitKey(group: string, topicId: number, partition: number): string {
  return `${group}\u0000${topicId}\u0000${partition}`;
}
