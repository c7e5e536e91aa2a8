import { CorruptDataError } from '../../errors.js';
import type { OffsetCommit, OutRecord } from '../records.js';
import { crc32 } from './crc32.js';

/**
 * Journal frame: u32 payload length | u32 CRC-32 of the payload | payload. A frame is written
 * whole or, after a crash, detected as torn by its length or checksum and cut off on replay.
 *
 * Payload kinds:
 *  1 topic:   u16 name length | name | u32 partitions | u8 compacted
 *  2 batch:   u32 record count | records | u32 offset-commit count | offset commits
 *  3 segment: the first frame of every segment file (see SegmentHeader): f64 segment number
 *             | f64 covers-through | u32 topic count | (u32 id | u16 len | name | u32 partitions
 *             | u8 compacted | f64 next offset per partition)* | u32 commit count | commits
 *  4 records: u32 record count | (f64 offset | record)*  (records kept by the cleaner: explicit
 *             offsets, because the records around them are gone)
 * record:  u32 topic id | u32 partition | f64 timestamp | i32 key length (-1 null) | key
 *          | i32 value length (-1 null) | value | u16 header count | (u16 len | k | u32 len | v)*
 * commit:  u16 group length | group | u32 topic id | u32 partition | f64 next offset
 */
export const FRAME_HEADER = 8;
export const KIND_TOPIC = 1;
export const KIND_BATCH = 2;
export const KIND_SEGMENT = 3;
export const KIND_RECORDS = 4;

export interface TopicFrame {
  readonly kind: typeof KIND_TOPIC;
  readonly name: string;
  readonly partitions: number;
  readonly compacted: boolean;
}

/** Where each record of a batch frame sits in the frame, for the offset index. */
export interface RecordSlot {
  readonly topicId: number;
  readonly partition: number;
  /** Byte offset of the record within the frame. */
  readonly start: number;
  readonly length: number;
  /** Explicit offset (records frames); undefined: the partition's next offset (batch frames). */
  readonly offset: number | undefined;
  readonly timestamp: number;
  /** Byte offset of the key within the frame, and its length (-1: null key). */
  readonly keyAt: number;
  readonly keyLength: number;
  /** Null value: a delete marker on a compacted topic. */
  readonly tombstone: boolean;
}

export interface OffsetCommitEntry {
  readonly group: string;
  readonly topicId: number;
  readonly partition: number;
  readonly offset: number;
}

export interface BatchFrame {
  readonly kind: typeof KIND_BATCH | typeof KIND_RECORDS;
  readonly records: readonly RecordSlot[];
  readonly commits: readonly OffsetCommitEntry[];
}

/** A topic as a segment header declares it: its id, and every partition's next offset at the segment's start. */
export interface HeaderTopic {
  readonly id: number;
  readonly name: string;
  readonly partitions: number;
  readonly compacted: boolean;
  readonly next: readonly number[];
}

/**
 * The first frame of a segment file: the log's metadata as of the segment's start (topics with
 * their ids, next offsets, committed offsets), so that the segments before it can be deleted.
 * `coversThrough` > `number` marks a file the cleaner wrote in place of segments
 * `number..coversThrough`; recovery deletes those that are still there.
 */
export interface SegmentHeader {
  readonly kind: typeof KIND_SEGMENT;
  readonly number: number;
  readonly coversThrough: number;
  readonly topics: readonly HeaderTopic[];
  readonly commits: readonly OffsetCommitEntry[];
}

/** Growable byte writer. */
class Writer {
  buf: Buffer;
  pos = FRAME_HEADER;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(size, 64));
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.pos);
    this.pos += 1;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.pos);
    this.pos += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  str16(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u16(b.length);
    this.bytes(b);
  }
  nullable(b: Buffer | null): void {
    if (b === null) this.i32(-1);
    else {
      this.i32(b.length);
      this.bytes(b);
    }
  }
  /** Seals the frame: fills in length and checksum. */
  finish(): Buffer {
    const frame = this.buf.subarray(0, this.pos);
    frame.writeUInt32LE(this.pos - FRAME_HEADER, 0);
    frame.writeUInt32LE(crc32(frame, FRAME_HEADER, this.pos), 4);
    return frame;
  }
}

export function encodeTopicFrame(name: string, partitions: number, compacted: boolean): Buffer {
  const w = new Writer(64 + name.length * 3);
  w.u8(KIND_TOPIC);
  w.str16(name);
  w.u32(partitions);
  w.u8(compacted ? 1 : 0);
  return w.finish();
}

export function encodeBatchFrame(
  records: readonly OutRecord[],
  topicId: (topic: string) => number,
  commits: readonly OffsetCommit[],
  group: string,
): Buffer {
  let size = 16;
  for (const r of records) size += 32 + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  const w = new Writer(size);
  w.u8(KIND_BATCH);
  w.u32(records.length);
  for (const r of records) {
    w.u32(topicId(r.topic));
    w.u32(r.partition);
    w.f64(r.timestamp);
    w.nullable(r.key);
    w.nullable(r.value);
    const headers = r.headers ? Object.entries(r.headers) : [];
    w.u16(headers.length);
    for (const [k, v] of headers) {
      w.str16(k);
      const vb = Buffer.from(v, 'utf8');
      w.u32(vb.length);
      w.bytes(vb);
    }
  }
  w.u32(commits.length);
  for (const c of commits) {
    w.str16(group);
    w.u32(topicId(c.topic));
    w.u32(c.partition);
    w.f64(c.offset);
  }
  return w.finish();
}

export function encodeSegmentHeader(header: Omit<SegmentHeader, 'kind'>): Buffer {
  const w = new Writer(256);
  w.u8(KIND_SEGMENT);
  w.f64(header.number);
  w.f64(header.coversThrough);
  w.u32(header.topics.length);
  for (const t of header.topics) {
    w.u32(t.id);
    w.str16(t.name);
    w.u32(t.partitions);
    w.u8(t.compacted ? 1 : 0);
    for (let p = 0; p < t.partitions; p++) w.f64(t.next[p] ?? 0);
  }
  w.u32(header.commits.length);
  for (const c of header.commits) {
    w.str16(c.group);
    w.u32(c.topicId);
    w.u32(c.partition);
    w.f64(c.offset);
  }
  return w.finish();
}

/** A records frame of records copied verbatim (as located by their slots) with their offsets. */
export function encodeRecordsFrame(records: ReadonlyArray<{ readonly offset: number; readonly bytes: Buffer }>): Buffer {
  let size = 16;
  for (const r of records) size += 8 + r.bytes.length;
  const w = new Writer(size);
  w.u8(KIND_RECORDS);
  w.u32(records.length);
  for (const r of records) {
    w.f64(r.offset);
    w.bytes(r.bytes);
  }
  return w.finish();
}

/** Verifies a frame at `pos` in `buf`; returns its total length, or undefined if torn/corrupt. */
export function checkFrame(buf: Buffer, pos: number): number | undefined {
  if (pos + FRAME_HEADER > buf.length) return undefined;
  const length = buf.readUInt32LE(pos);
  const end = pos + FRAME_HEADER + length;
  if (length === 0 || end > buf.length) return undefined;
  if (crc32(buf, pos + FRAME_HEADER, end) !== buf.readUInt32LE(pos + 4)) return undefined;
  return FRAME_HEADER + length;
}

/** Parses a verified frame. Record slots point into `frame`. */
export function parseFrame(frame: Buffer): TopicFrame | BatchFrame | SegmentHeader {
  let pos = FRAME_HEADER;
  const kind = frame.readUInt8(pos++);
  const str16 = (): string => {
    const n = frame.readUInt16LE(pos);
    const s = frame.toString('utf8', pos + 2, pos + 2 + n);
    pos += 2 + n;
    return s;
  };
  if (kind === KIND_TOPIC) {
    const name = str16();
    const partitions = frame.readUInt32LE(pos);
    const compacted = frame.readUInt8(pos + 4) === 1;
    return { kind, name, partitions, compacted };
  }
  if (kind === KIND_SEGMENT) {
    const number = frame.readDoubleLE(pos);
    const coversThrough = frame.readDoubleLE(pos + 8);
    const topicCount = frame.readUInt32LE(pos + 16);
    pos += 20;
    const topics: HeaderTopic[] = [];
    for (let i = 0; i < topicCount; i++) {
      const id = frame.readUInt32LE(pos);
      pos += 4;
      const name = str16();
      const partitions = frame.readUInt32LE(pos);
      const compacted = frame.readUInt8(pos + 4) === 1;
      pos += 5;
      const next: number[] = [];
      for (let p = 0; p < partitions; p++, pos += 8) next.push(frame.readDoubleLE(pos));
      topics.push({ id, name, partitions, compacted, next });
    }
    return { kind, number, coversThrough, topics, commits: readCommits() };
  }
  if (kind !== KIND_BATCH && kind !== KIND_RECORDS) throw new CorruptDataError(`journal frame of unknown kind ${kind}`);
  const cursor = new RecordCursor(frame);
  const records: RecordSlot[] = [];
  while (cursor.next()) {
    const { topicId, partition, start, length, offset, timestamp, keyAt, keyLength, tombstone } = cursor;
    records.push({ topicId, partition, start, length, offset, timestamp, keyAt, keyLength, tombstone });
  }
  pos = cursor.position;
  if (kind === KIND_RECORDS) return { kind, records, commits: [] };
  return { kind, records, commits: readCommits() };

  function readCommits(): OffsetCommitEntry[] {
    const commitCount = frame.readUInt32LE(pos);
    pos += 4;
    const commits: OffsetCommitEntry[] = [];
    for (let i = 0; i < commitCount; i++) {
      const group = str16();
      commits.push({ group, topicId: frame.readUInt32LE(pos), partition: frame.readUInt32LE(pos + 4), offset: frame.readDoubleLE(pos + 8) });
      pos += 16;
    }
    return commits;
  }
}


/**
 * Walks the records of a batch or records frame, one `next()` at a time, without allocating:
 * after each `next()` the fields describe the current record (as a RecordSlot would). The
 * cleaner's loop, which may pause between any two records.
 */
export class RecordCursor {
  topicId = 0;
  partition = 0;
  start = 0;
  length = 0;
  offset: number | undefined = undefined;
  timestamp = 0;
  keyAt = 0;
  keyLength = -1;
  tombstone = false;
  private pos: number;
  private remaining: number;
  private readonly explicit: boolean;

  constructor(private readonly frame: Buffer) {
    const kind = frame.readUInt8(FRAME_HEADER);
    if (kind !== KIND_BATCH && kind !== KIND_RECORDS) throw new CorruptDataError(`journal frame of kind ${kind} holds no records`);
    this.explicit = kind === KIND_RECORDS;
    this.remaining = frame.readUInt32LE(FRAME_HEADER + 1);
    this.pos = FRAME_HEADER + 5;
  }

  /** Where the records end (after the last `next()` returned false: the frame's commits). */
  get position(): number {
    return this.pos;
  }

  next(): boolean {
    if (this.remaining === 0) return false;
    this.remaining--;
    const frame = this.frame;
    let pos = this.pos;
    if (this.explicit) {
      this.offset = frame.readDoubleLE(pos);
      pos += 8;
    } else this.offset = undefined;
    this.start = pos;
    this.topicId = frame.readUInt32LE(pos);
    this.partition = frame.readUInt32LE(pos + 4);
    this.timestamp = frame.readDoubleLE(pos + 8);
    pos += 16;
    const keyLength = frame.readInt32LE(pos);
    this.keyLength = keyLength;
    this.keyAt = pos + 4;
    pos = this.keyAt + Math.max(keyLength, 0);
    const valueLength = frame.readInt32LE(pos);
    this.tombstone = valueLength < 0;
    pos += 4 + Math.max(valueLength, 0);
    const headers = frame.readUInt16LE(pos);
    pos += 2;
    for (let h = 0; h < headers; h++) {
      pos += 2 + frame.readUInt16LE(pos);
      pos += 4 + frame.readUInt32LE(pos);
    }
    this.length = pos - this.start;
    this.pos = pos;
    return true;
  }
}

/** Decodes one record's bytes (as located by a RecordSlot). */
export function decodeRecord(bytes: Buffer): {
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
} {
  const timestamp = bytes.readDoubleLE(8);
  // Straight-line reads: this runs once per record read back from the journal.
  let pos = 16;
  const keyLength = bytes.readInt32LE(pos);
  pos += 4;
  const key = keyLength < 0 ? null : bytes.subarray(pos, pos + keyLength);
  pos += Math.max(keyLength, 0);
  const valueLength = bytes.readInt32LE(pos);
  pos += 4;
  const value = valueLength < 0 ? null : bytes.subarray(pos, pos + valueLength);
  pos += Math.max(valueLength, 0);
  const count = bytes.readUInt16LE(pos);
  pos += 2;
  const headers: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const kn = bytes.readUInt16LE(pos);
    const k = bytes.toString('utf8', pos + 2, pos + 2 + kn);
    pos += 2 + kn;
    const vn = bytes.readUInt32LE(pos);
    headers[k] = bytes.toString('utf8', pos + 4, pos + 4 + vn);
    pos += 4 + vn;
  }
  return { timestamp, key, value, headers };
}
