import { CorruptDataError } from '../../errors.js';
import type { OffsetCommit, OutRecord } from '../records.js';
import { crc32 } from './crc32.js';

/**
 * Journal frame: u32 payload length | u32 CRC-32 of the payload | payload. A frame is written
 * whole or, after a crash, detected as torn by its length or checksum and cut off on replay.
 *
 * Payload kinds:
 *  1 topic:  u16 name length | name | u32 partitions | u8 compacted
 *  2 batch:  u32 record count | records | u32 offset-commit count | offset commits
 * record:  u32 topic id | u32 partition | f64 timestamp | i32 key length (-1 null) | key
 *          | i32 value length (-1 null) | value | u16 header count | (u16 len | k | u32 len | v)*
 * commit:  u16 group length | group | u32 topic id | u32 partition | f64 next offset
 */
export const FRAME_HEADER = 8;
export const KIND_TOPIC = 1;
export const KIND_BATCH = 2;

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
}

export interface BatchFrame {
  readonly kind: typeof KIND_BATCH;
  readonly records: readonly RecordSlot[];
  readonly commits: ReadonlyArray<{ group: string; topicId: number; partition: number; offset: number }>;
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
export function parseFrame(frame: Buffer): TopicFrame | BatchFrame {
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
  if (kind !== KIND_BATCH) throw new CorruptDataError(`journal frame of unknown kind ${kind}`);
  const count = frame.readUInt32LE(pos);
  pos += 4;
  const records: RecordSlot[] = [];
  for (let i = 0; i < count; i++) {
    const start = pos;
    const topicId = frame.readUInt32LE(pos);
    const partition = frame.readUInt32LE(pos + 4);
    pos += 16;
    for (let j = 0; j < 2; j++) {
      const n = frame.readInt32LE(pos);
      pos += 4 + Math.max(n, 0);
    }
    const headers = frame.readUInt16LE(pos);
    pos += 2;
    for (let h = 0; h < headers; h++) {
      pos += 2 + frame.readUInt16LE(pos);
      pos += 4 + frame.readUInt32LE(pos);
    }
    records.push({ topicId, partition, start, length: pos - start });
  }
  const commitCount = frame.readUInt32LE(pos);
  pos += 4;
  const commits: BatchFrame['commits'][number][] = [];
  for (let i = 0; i < commitCount; i++) {
    const group = str16();
    commits.push({ group, topicId: frame.readUInt32LE(pos), partition: frame.readUInt32LE(pos + 4), offset: frame.readDoubleLE(pos + 8) });
    pos += 16;
  }
  return { kind, records, commits };
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
