import type { LogRecord } from '../records.js';
import { decodeRecord } from './frames.js';

const TAIL_CACHE = 16_384;
const MAX_SPAN_READ = 8 * 1024 * 1024;

/**
 * The offset index of one topic partition: where each record sits in the journal, plus the most
 * recent records in memory so consumers that keep up never touch the disk.
 */
export class PartitionLog {
  private positions = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private count = 0;
  private readonly cache: Array<LogRecord | undefined> = new Array<LogRecord | undefined>(TAIL_CACHE);
  /** Called when records are appended. */
  readonly waiters = new Set<() => void>();

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  /** The next offset to be written. */
  get end(): number {
    return this.count;
  }

  positionOf(offset: number): number {
    return this.positions[offset]!;
  }

  append(position: number, length: number, record: LogRecord | undefined): void {
    if (this.count === this.positions.length) {
      const positions = new Float64Array(this.count * 2);
      positions.set(this.positions);
      this.positions = positions;
      const lengths = new Uint32Array(this.count * 2);
      lengths.set(this.lengths);
      this.lengths = lengths;
    }
    this.positions[this.count] = position;
    this.lengths[this.count] = length;
    this.cache[this.count % TAIL_CACHE] = record;
    this.count++;
  }

  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Up to `max` records from `from`; older records are read back from the journal. */
  read(from: number, max: number, readBytes: (position: number, length: number) => Buffer): LogRecord[] {
    const end = Math.min(this.count, from + max);
    const out: LogRecord[] = [];
    let offset = from;
    while (offset < end) {
      const cached = offset >= this.count - TAIL_CACHE ? this.cache[offset % TAIL_CACHE] : undefined;
      if (cached) {
        out.push(cached);
        offset++;
        continue;
      }
      // One read for a run of uncached records (they are interleaved with other partitions').
      let last = offset;
      const spanStart = this.positions[offset]!;
      while (last + 1 < end && this.positions[last + 1]! + this.lengths[last + 1]! - spanStart <= MAX_SPAN_READ) {
        if (last + 1 >= this.count - TAIL_CACHE && this.cache[(last + 1) % TAIL_CACHE]) break;
        last++;
      }
      const span = readBytes(spanStart, this.positions[last]! + this.lengths[last]! - spanStart);
      for (let o = offset; o <= last; o++) {
        const at = this.positions[o]! - spanStart;
        const bytes = span.subarray(at, at + this.lengths[o]!);
        out.push({ topic: this.topic, partition: this.partition, offset: o, ...decodeRecord(bytes) });
      }
      offset = last + 1;
    }
    return out;
  }
}
