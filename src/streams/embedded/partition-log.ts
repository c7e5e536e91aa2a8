import type { LogRecord } from '../records.js';
import { decodeRecord } from './frames.js';

const TAIL_CACHE = 16_384;
const MAX_SPAN_READ = 8 * 1024 * 1024;

/** Index entries in offset order, as the cleaner hands them over for a rewritten segment range. */
export interface IndexEntries {
  readonly offsets: readonly number[];
  readonly positions: readonly number[];
  readonly lengths: readonly number[];
}

/**
 * The offset index of one topic partition: where each live record sits in the journal, plus the
 * most recent records in memory so consumers that keep up never touch the disk. Offsets may have
 * gaps (compaction) and need not start at 0 (retention); they never change once given.
 */
export class PartitionLog {
  private offsets = new Float64Array(1024);
  private positions = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  /** Live entries are [first, count) of the arrays. */
  private first = 0;
  private count = 0;
  private next = 0;
  private readonly cache: Array<LogRecord | undefined> = new Array<LogRecord | undefined>(TAIL_CACHE);
  /** Compacted topics: the latest offset of every key (key bytes as latin1). */
  readonly latest: Map<string, number> | undefined;
  /** Called when records are appended. */
  readonly waiters = new Set<() => void>();

  constructor(
    readonly topic: string,
    readonly partition: number,
    compacted = false,
  ) {
    this.latest = compacted ? new Map() : undefined;
  }

  /** The next offset to be written. */
  get end(): number {
    return this.next;
  }

  /** The lowest offset still held (the end when none is). */
  get start(): number {
    return this.first < this.count ? this.offsets[this.first]! : this.next;
  }

  /** Records indexed. */
  get size(): number {
    return this.count - this.first;
  }

  /** Moves the next offset forward to `offset` (a segment header's; records before it may be gone). */
  advanceTo(offset: number): void {
    if (offset > this.next) this.next = offset;
  }

  /** Where the record at `offset` sits; undefined when it is not held. */
  entry(offset: number): { position: number; length: number } | undefined {
    const i = this.indexOf(offset);
    if (i >= this.count || this.offsets[i] !== offset) return undefined;
    return { position: this.positions[i]!, length: this.lengths[i]! };
  }

  /** The offset of the record at `position`; undefined when none is indexed there. */
  offsetAt(position: number): number | undefined {
    const i = this.positionIndex(position);
    return i < this.count && this.positions[i] === position ? this.offsets[i] : undefined;
  }

  positionOf(offset: number): number {
    const entry = this.entry(offset);
    if (!entry) throw new RangeError(`${this.topic}/${this.partition}: offset ${offset} is not held`);
    return entry.position;
  }

  /** A copy of the entries whose positions lie in [fromPosition, toPosition), in offset order. */
  entriesBetween(fromPosition: number, toPosition: number): { offsets: Float64Array; positions: Float64Array; lengths: Uint32Array } {
    const lo = this.positionIndex(fromPosition);
    const hi = this.positionIndex(toPosition);
    return { offsets: this.offsets.slice(lo, hi), positions: this.positions.slice(lo, hi), lengths: this.lengths.slice(lo, hi) };
  }

  /** Appends the next record (offset = end); returns its offset. */
  append(position: number, length: number, record: LogRecord | undefined): number {
    return this.appendAt(this.next, position, length, record);
  }

  /** Appends a record with an explicit offset at or after the end (records kept by the cleaner). */
  appendAt(offset: number, position: number, length: number, record: LogRecord | undefined = undefined): number {
    if (offset < this.next) return offset; // a copy of a record already indexed (only while recovering)
    if (this.count === this.offsets.length) this.grow(this.count - this.first + 1);
    this.offsets[this.count] = offset;
    this.positions[this.count] = position;
    this.lengths[this.count] = length;
    this.count++;
    this.next = offset + 1;
    if (record) this.cache[offset % TAIL_CACHE] = record;
    return offset;
  }

  /**
   * Replaces the entries whose positions lie in [fromPosition, toPosition) (one rewritten range
   * of segments) by `entries` (their survivors at new positions). Entries are ordered by position
   * within a partition, so the range is one run of the arrays; the shorter side moves.
   */
  replaceRange(fromPosition: number, toPosition: number, entries: IndexEntries): void {
    const lo = this.positionIndex(fromPosition);
    const hi = this.positionIndex(toPosition);
    const n = entries.offsets.length;
    const delta = hi - lo - n;
    if (delta < 0) throw new RangeError(`${this.topic}/${this.partition}: a rewrite cannot add records`);
    if (lo - this.first <= this.count - hi) {
      // Move the prefix forward by delta.
      this.offsets.copyWithin(this.first + delta, this.first, lo);
      this.positions.copyWithin(this.first + delta, this.first, lo);
      this.lengths.copyWithin(this.first + delta, this.first, lo);
      this.first += delta;
      this.write(lo + delta, entries);
    } else {
      this.write(lo, entries);
      this.offsets.copyWithin(lo + n, hi, this.count);
      this.positions.copyWithin(lo + n, hi, this.count);
      this.lengths.copyWithin(lo + n, hi, this.count);
      this.count -= delta;
    }
    if (this.first === this.count) this.first = this.count = 0;
  }

  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Up to `max` records from `from` on (the first held offset at or after it); older records are read back from the journal. */
  read(from: number, max: number, readBytes: (position: number, length: number) => Buffer): LogRecord[] {
    const out: LogRecord[] = [];
    let i = this.indexOf(from);
    const end = Math.min(this.count, i + max);
    const cacheFrom = this.next - TAIL_CACHE;
    while (i < end) {
      const offset = this.offsets[i]!;
      const cached = offset >= cacheFrom ? this.cache[offset % TAIL_CACHE] : undefined;
      if (cached && cached.offset === offset) {
        out.push(cached);
        i++;
        continue;
      }
      // One read for a run of uncached records (they are interleaved with other partitions').
      let last = i;
      const spanStart = this.positions[i]!;
      while (last + 1 < end && this.positions[last + 1]! + this.lengths[last + 1]! - spanStart <= MAX_SPAN_READ) {
        const o = this.offsets[last + 1]!;
        if (o >= cacheFrom && this.cache[o % TAIL_CACHE]?.offset === o) break;
        last++;
      }
      const span = readBytes(spanStart, this.positions[last]! + this.lengths[last]! - spanStart);
      for (let j = i; j <= last; j++) {
        const at = this.positions[j]! - spanStart;
        const bytes = span.subarray(at, at + this.lengths[j]!);
        out.push({ topic: this.topic, partition: this.partition, offset: this.offsets[j]!, ...decodeRecord(bytes) });
      }
      i = last + 1;
    }
    return out;
  }

  /** Index of the first entry with offset >= `offset`. */
  private indexOf(offset: number): number {
    const first = this.first;
    if (first === this.count || offset <= this.offsets[first]!) return first;
    // Dense runs (no compaction gap before `offset`) resolve in one step.
    const guess = first + (offset - this.offsets[first]!);
    if (guess < this.count && this.offsets[guess] === offset) return guess;
    let lo = first;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offsets[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the first entry with position >= `position`. */
  private positionIndex(position: number): number {
    let lo = this.first;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.positions[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private write(at: number, entries: IndexEntries): void {
    for (let k = 0; k < entries.offsets.length; k++) {
      this.offsets[at + k] = entries.offsets[k]!;
      this.positions[at + k] = entries.positions[k]!;
      this.lengths[at + k] = entries.lengths[k]!;
    }
  }

  /** Makes room for `live` entries (compacting the arrays to start at 0). */
  private grow(live: number): void {
    const size = Math.max(1024, live * 2);
    const n = this.count - this.first;
    if (this.first > 0 && size <= this.offsets.length) {
      this.offsets.copyWithin(0, this.first, this.count);
      this.positions.copyWithin(0, this.first, this.count);
      this.lengths.copyWithin(0, this.first, this.count);
    } else {
      const offsets = new Float64Array(size);
      offsets.set(this.offsets.subarray(this.first, this.count));
      this.offsets = offsets;
      const positions = new Float64Array(size);
      positions.set(this.positions.subarray(this.first, this.count));
      this.positions = positions;
      const lengths = new Uint32Array(size);
      lengths.set(this.lengths.subarray(this.first, this.count));
      this.lengths = lengths;
    }
    this.first = 0;
    this.count = n;
  }
}
