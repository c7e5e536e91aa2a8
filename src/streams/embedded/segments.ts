/**
 * Segments of the journal: file names, positions, and what each segment holds (for retention
 * and compaction decisions). Pure: no file I/O here.
 *
 * Files in the data directory:
 *  - `journal.log`                 the head segment, appended to (the only file of a data
 *                                  directory written before segments existed)
 *  - `segment-<number>.log`        sealed segments, read-only, oldest = lowest number
 *  - `journal.next`                a new head being created by a roll (see Journal)
 *  - `segment-<number>.log.tmp`    a cleaned segment being written (see Compactor)
 */

export const HEAD_FILE = 'journal.log';
export const NEXT_HEAD_FILE = 'journal.next';
export const TEMP_SUFFIX = '.tmp';
const SEGMENT_NAME = /^segment-(\d{10})\.log$/;

/**
 * A record's position: segment number × 2^32 + byte offset in the segment's file. Positions grow
 * with journal order, so the index can compare and sort them, and a span read never crosses a
 * segment (two segments' positions are at least 2^32 − file size apart).
 */
export const SEGMENT_SPAN = 2 ** 32;
/** Largest segment number a position can carry exactly (2^53 / 2^32). */
export const MAX_SEGMENT_NUMBER = 2 ** 21 - 1;

export function positionOf(segment: number, fileOffset: number): number {
  return segment * SEGMENT_SPAN + fileOffset;
}

export function segmentOfPosition(position: number): number {
  return Math.floor(position / SEGMENT_SPAN);
}

export function fileOffsetOf(position: number): number {
  return position % SEGMENT_SPAN;
}

export function segmentFileName(number: number): string {
  return `segment-${String(number).padStart(10, '0')}.log`;
}

/** The number of a sealed segment's file name; undefined for any other name. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** What one topic has in one segment. */
export interface TopicInSegment {
  /** Bytes of its records (as stored, frame overhead excluded). */
  bytes: number;
  records: number;
  /** Newest record timestamp (time retention). */
  maxTimestamp: number;
  /** Highest offset per partition (-1: none), so unprocessed input is never dropped. */
  readonly maxOffsets: number[];
}

/** What one segment holds, kept up to date as frames are appended and replayed. */
export class SegmentStats {
  /** Bytes of the file (frames, headers, commits). */
  bytes = 0;
  /** Bytes of records of compacted topics that a later record of the same key superseded. */
  deadBytes = 0;
  readonly topics = new Map<number, TopicInSegment>();

  constructor(readonly number: number) {}

  addRecord(topicId: number, partitions: number, partition: number, offset: number, length: number, timestamp: number): void {
    let topic = this.topics.get(topicId);
    if (!topic) {
      topic = { bytes: 0, records: 0, maxTimestamp: -Infinity, maxOffsets: new Array<number>(partitions).fill(-1) };
      this.topics.set(topicId, topic);
    }
    topic.bytes += length;
    topic.records++;
    if (timestamp > topic.maxTimestamp) topic.maxTimestamp = timestamp;
    if (offset > topic.maxOffsets[partition]!) topic.maxOffsets[partition] = offset;
  }

  topicBytes(topicId: number): number {
    return this.topics.get(topicId)?.bytes ?? 0;
  }
}
