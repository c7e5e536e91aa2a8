import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { describeError } from '../../errors.js';
import { ioError } from './errors.js';
import { writeFully } from './write-fully.js';
import { encodeRecordsFrame, encodeSegmentHeader, FRAME_HEADER, parseFrame, type SegmentHeader } from './frames.js';
import type { Journal, SealedSegment } from './journal.js';
import type { KeptKey, LogIndex, Topic } from './log-index.js';
import type { PartitionLog } from './partition-log.js';
import { expiredTopics, planCleaning, retentionOf, type RetentionOptions, type TopicView } from './retention.js';
import { fileOffsetOf, positionOf, segmentFileName, segmentOfPosition, SegmentStats, TEMP_SUFFIX } from './segments.js';

/** Work done between two yields to the event loop: processing never waits longer than about this. */
const SLICE_MS = 2;
/** Largest read of survivors at once, in bytes and records. */
const SPAN_BYTES = 1024 * 1024;
const SPAN_RECORDS = 2048;
const OUT_FRAME_BYTES = 256 * 1024;
const WRITE_BUFFER = 1024 * 1024;
const RETRY_AFTER_FAILURE_MS = 5_000;

export interface CompactorOptions {
  readonly journal: Journal;
  readonly index: LogIndex;
  readonly retention: RetentionOptions;
  /** The app's group and its input topics: input is never dropped before this group committed past it. */
  readonly group: string;
  readonly inputTopics: readonly string[];
  readonly logger: Logger;
}

/**
 * The embedded log's cleaner: in the background, deletes sealed segments that hold nothing live
 * and rewrites dirty ones keeping only live records (retention for plain topics, latest value
 * per key for compacted ones). It runs on the event loop in slices of about SLICE_MS with file
 * I/O in between, so appends and group commits go on meanwhile.
 *
 * Crash protocol of a rewrite of segments first..last: write `segment-<first>.log.tmp` (header:
 * covers first..last; then the survivors with their offsets), fsync it, rename it over
 * `segment-<first>.log`, fsync the directory, delete the other covered files. Recovery deletes
 * `.tmp` files (the old segments are intact) and covered files a cleaned header names (the new
 * file is complete). Deletion of dead segments is a plain unlink: any prefix of it is a
 * consistent state, because every later segment's header carries the metadata.
 */
export class Compactor {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private retryAt = 0;
  /** Longest slice of synchronous work so far, in ms (a test and the logs read it). */
  longestSliceMs = 0;

  constructor(private readonly options: CompactorOptions) {}

  start(): void {
    this.timer = setInterval(() => this.trigger(), this.options.retention.checkIntervalMs);
    this.timer.unref();
    this.trigger();
  }

  /** Looks for work now (after a roll, on the timer); a run in progress goes around once more. */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.trigger();
      }
    });
  }

  /** Waits for the current step to finish; no new one starts. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** Resolves when no cleaning is running (tests, tools). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    if (Date.now() < this.retryAt) return;
    try {
      for (let steps = 0; steps < 64 && !this.stopped; steps++) {
        if (!(await this.step())) return;
      }
    } catch (err) {
      this.retryAt = Date.now() + RETRY_AFTER_FAILURE_MS;
      this.options.logger.warn({ err: describeError(err) }, 'embedded log: cleaning failed; retrying later (nothing was lost)');
    }
  }

  /** One cleaning step; false when there was nothing to do. */
  private async step(): Promise<boolean> {
    const { journal, index } = this.options;
    const sealed = journal.sealed();
    if (sealed.length === 0) return false;
    const expired = this.expired();
    const statsOf = (s: SealedSegment): SegmentStats => index.segments.get(s.number) ?? new SegmentStats(s.number);
    const plan = planCleaning(sealed.map(statsOf), expired, this.options.retention.segmentBytes);
    if (!plan) return false;
    if (plan.kind === 'delete') {
      await journal.remove(plan.numbers, () => this.timed(() => index.applyRemoval(plan.numbers)));
      this.options.logger.debug({ segments: plan.numbers }, 'embedded log: deleted segments with nothing live');
      return true;
    }
    const group = sealed.filter((s) => s.number >= plan.first && s.number <= plan.last);
    await this.rewrite(group, expired, plan.first === sealed[0]!.number);
    return true;
  }

  /** Runs a synchronous swap, counting it as a pause of processing. */
  private timed(swap: () => void): void {
    const started = performance.now();
    swap();
    this.longestSliceMs = Math.max(this.longestSliceMs, performance.now() - started);
  }

  private expired(): Map<number, Set<number>> {
    const { index, retention, group, inputTopics } = this.options;
    const topics: TopicView[] = index.topicsById
      .filter((t) => t !== undefined)
      .map((t) => ({
        id: t.id,
        compacted: t.compacted,
        retention: retentionOf(retention, t.name),
        committed: inputTopics.includes(t.name) ? (p: number) => index.committedOffset(group, t.name, p) : undefined,
      }));
    const segments = [...index.segments.values()].sort((a, b) => a.number - b.number);
    return expiredTopics(segments, topics, Date.now());
  }

  /**
   * Rewrites `segments` (consecutive, sealed) into one file holding their live records. What is
   * live comes from the index alone (expired topics are skipped without reading them; a
   * compacted record is live when it is its key's latest), so the work follows the live bytes,
   * not the segments' size. Survivors are copied in journal order. Delete markers go only in a
   * run that starts at the oldest segment: an older record of the key in a segment left alone
   * would otherwise come back to life.
   */
  private async rewrite(segments: readonly SealedSegment[], expired: ReadonlyMap<number, ReadonlySet<number>>, fromOldest: boolean): Promise<void> {
    const { journal, index, retention } = this.options;
    const first = segments[0]!.number;
    const last = segments[segments.length - 1]!.number;
    const started = performance.now();
    const header = this.rewrittenHeader(segments[0]!, last);
    const tempPath = join(journal.dir, segmentFileName(first) + TEMP_SUFFIX);
    const out = new RewriteOutput(first, header);
    const tombstoneBefore = fromOldest ? Date.now() - retention.tombstoneMs : -Infinity;
    const files = new Map<number, FileHandle>();
    let handle: FileHandle | undefined;
    const clock = new SliceClock(this);
    try {
      const sources = await this.survivors(segments, expired, clock);
      handle = await open(tempPath, 'w');
      clock.resumed();
      for (;;) {
        // The next span: survivors in one segment, close together, in journal order.
        const span = nextSpan(sources);
        if (span.length === 0) break;
        const start = span[0]!.position;
        const end = span[span.length - 1]!.position + span[span.length - 1]!.length;
        const number = segmentOfPosition(start);
        let file = files.get(number);
        if (!file) files.set(number, (file = await open(join(journal.dir, segmentFileName(number)), 'r')));
        const bytes = Buffer.allocUnsafe(end - start);
        const { bytesRead } = await file.read(bytes, 0, bytes.length, fileOffsetOf(start));
        if (bytesRead < bytes.length) throw new Error(`segment ${number} ends before byte ${fileOffsetOf(end)}`);
        clock.resumed();
        for (const pick of span) {
          const record = bytes.subarray(pick.position - start, pick.position - start + pick.length);
          const { topic, log } = pick.source;
          const timestamp = record.readDoubleLE(8);
          let key: string | undefined;
          if (topic.compacted) {
            const keyLength = Math.max(record.readInt32LE(16), 0);
            key = record.toString('latin1', 20, 20 + keyLength);
            const tombstone = record.readInt32LE(20 + keyLength) < 0;
            if (tombstone && timestamp < tombstoneBefore) {
              out.droppedTombstones.push({ log, key, offset: pick.offset, length: pick.length });
              continue;
            }
          }
          out.keep(log, topic.id, topic.partitions.length, log.partition, pick.offset, timestamp, record, key);
        }
        if (out.pendingBytes >= WRITE_BUFFER) {
          await out.drain(handle);
          clock.resumed();
        } else await clock.check();
      }
      await out.drain(handle, true);
      await handle.datasync();
      await handle.close();
      handle = undefined;
      const rewrite = out.result(last);
      await journal.replace(first, last, tempPath, parseFrame(header) as SegmentHeader, () => this.timed(() => index.applyRewrite(rewrite)));
    } catch (err) {
      await handle?.close().catch(() => undefined);
      await unlink(tempPath).catch(() => undefined);
      throw ioError(err, journal.dir, `cleaning segments ${first}..${last}`);
    } finally {
      for (const file of files.values()) await file.close().catch(() => undefined);
    }
    const before = segments.reduce((sum, s) => sum + s.bytes, 0);
    this.options.logger.debug(
      { first, last, bytesBefore: before, bytesAfter: out.fileBytes, ms: Math.round(performance.now() - started) },
      'embedded log: rewrote segments',
    );
  }

  /**
   * The header of a file replacing `first..last`: the first segment's next and committed offsets
   * (the state at its start), and every topic known now, so that records of topics created
   * within the run can be read without the topic frames (later headers carry those too).
   */
  private rewrittenHeader(first: SealedSegment, last: number): Buffer {
    const base = first.header;
    return encodeSegmentHeader({
      number: first.number,
      coversThrough: last,
      topics: this.options.index.topicsById
        .filter((t) => t !== undefined)
        .map((t) => ({
          id: t.id,
          name: t.name,
          partitions: t.partitions.length,
          compacted: t.compacted,
          next: base?.topics.find((h) => h.id === t.id)?.next ?? new Array<number>(t.partitions.length).fill(0),
        })),
      commits: base?.commits ?? [],
    });
  }

  /** Per partition, the index entries of the run that survive: unexpired topics' records, compacted topics' latest ones. */
  private async survivors(segments: readonly SealedSegment[], expired: ReadonlyMap<number, ReadonlySet<number>>, clock: SliceClock): Promise<Source[]> {
    const from = positionOf(segments[0]!.number, 0);
    const to = positionOf(segments[segments.length - 1]!.number + 1, 0);
    const sources: Source[] = [];
    for (const topic of this.options.index.topicsById) {
      if (!topic) continue;
      const goneIn = (segment: number): boolean => !topic.compacted && (expired.get(segment)?.has(topic.id) ?? false);
      if (segments.every((s) => goneIn(s.number))) continue;
      for (const log of topic.partitions) {
        const entries = log.entriesBetween(from, to);
        if (entries.offsets.length === 0) continue;
        let latest: Set<number> | undefined;
        if (topic.compacted) {
          latest = new Set<number>();
          for (const offset of log.latest!.values()) {
            latest.add(offset);
            if (latest.size % 4096 === 0) await clock.check();
          }
        }
        const keep: number[] = [];
        for (let i = 0; i < entries.offsets.length; i++) {
          if (latest ? latest.has(entries.offsets[i]!) : !goneIn(segmentOfPosition(entries.positions[i]!))) keep.push(i);
        }
        if (keep.length > 0) sources.push({ topic, log, entries, keep, next: 0 });
        await clock.check();
      }
    }
    return sources;
  }
}

/** Survivors of one partition, consumed in position order. */
interface Source {
  readonly topic: Topic;
  readonly log: PartitionLog;
  readonly entries: { readonly offsets: Float64Array; readonly positions: Float64Array; readonly lengths: Uint32Array };
  /** Indexes into `entries` of the survivors. */
  readonly keep: readonly number[];
  next: number;
}

interface Pick {
  readonly source: Source;
  readonly offset: number;
  readonly position: number;
  readonly length: number;
}

/** The next survivors in journal order (merged across partitions) that one read can fetch. */
function nextSpan(sources: readonly Source[]): Pick[] {
  const span: Pick[] = [];
  for (;;) {
    let best: Source | undefined;
    let bestPosition = Infinity;
    for (const source of sources) {
      if (source.next >= source.keep.length) continue;
      const position = source.entries.positions[source.keep[source.next]!]!;
      if (position < bestPosition) {
        bestPosition = position;
        best = source;
      }
    }
    if (!best) return span;
    const i = best.keep[best.next]!;
    const pick: Pick = { source: best, offset: best.entries.offsets[i]!, position: bestPosition, length: best.entries.lengths[i]! };
    if (span.length > 0) {
      const start = span[0]!.position;
      const sameSegment = segmentOfPosition(start) === segmentOfPosition(pick.position);
      if (!sameSegment || pick.position + pick.length - start > SPAN_BYTES || span.length >= SPAN_RECORDS) return span;
    }
    best.next++;
    span.push(pick);
  }
}

/**
 * Measures the cleaner's synchronous runs and gives the event loop a turn once one is longer
 * than SLICE_MS (processing waits at most about that long for it).
 */
class SliceClock {
  private since = performance.now();

  constructor(private readonly owner: { longestSliceMs: number }) {}

  /** The event loop just had a turn (after an await on I/O). */
  resumed(): void {
    this.since = performance.now();
  }

  async check(): Promise<void> {
    const busy = performance.now() - this.since;
    this.owner.longestSliceMs = Math.max(this.owner.longestSliceMs, busy);
    if (busy > SLICE_MS) {
      await yieldToLoop();
      this.since = performance.now();
    }
  }
}

/** The rewritten file being built: frames to write, and the index entries of the survivors. */
class RewriteOutput {
  private readonly chunks: Buffer[] = [];
  private records: Array<{ offset: number; bytes: Buffer; log: PartitionLog }> = [];
  private recordBytes = 0;
  /** Bytes of the file so far (written and pending). */
  fileBytes = 0;
  pendingBytes = 0;
  private written = 0;
  readonly stats: SegmentStats;
  private readonly entries = new Map<PartitionLog, { offsets: number[]; positions: number[]; lengths: number[] }>();
  readonly kept: KeptKey[] = [];
  readonly droppedTombstones: KeptKey[] = [];

  constructor(
    private readonly number: number,
    header: Buffer,
  ) {
    this.stats = new SegmentStats(number);
    this.push(header);
  }

  keep(log: PartitionLog, topicId: number, partitions: number, partition: number, offset: number, timestamp: number, bytes: Buffer, key: string | undefined): void {
    this.records.push({ offset, bytes, log });
    this.recordBytes += bytes.length + 8;
    this.stats.addRecord(topicId, partitions, partition, offset, bytes.length, timestamp);
    if (key !== undefined) this.kept.push({ log, key, offset, length: bytes.length });
    if (this.recordBytes >= OUT_FRAME_BYTES) this.sealRecords();
  }

  async drain(handle: FileHandle, final = false): Promise<void> {
    if (final) this.sealRecords();
    if (this.chunks.length === 0) return;
    const chunks = this.chunks.splice(0);
    await writeFully(handle, chunks, this.written);
    for (const c of chunks) this.written += c.length;
    this.pendingBytes = 0;
  }

  result(last: number): Parameters<LogIndex['applyRewrite']>[0] {
    return { first: this.number, last, entries: this.entries, stats: this.stats, kept: this.kept, droppedTombstones: this.droppedTombstones };
  }

  /** Closes the records frame being filled; its records get their positions in the new file. */
  private sealRecords(): void {
    if (this.records.length === 0) return;
    const frame = encodeRecordsFrame(this.records);
    let at = this.fileBytes + FRAME_HEADER + 1 + 4;
    for (const r of this.records) {
      at += 8;
      let e = this.entries.get(r.log);
      if (!e) this.entries.set(r.log, (e = { offsets: [], positions: [], lengths: [] }));
      e.offsets.push(r.offset);
      e.positions.push(positionOf(this.number, at));
      e.lengths.push(r.bytes.length);
      at += r.bytes.length;
    }
    this.records = [];
    this.recordBytes = 0;
    this.push(frame);
  }

  private push(frame: Buffer): void {
    this.chunks.push(frame);
    this.fileBytes += frame.length;
    this.pendingBytes += frame.length;
    this.stats.bytes += frame.length;
  }
}
