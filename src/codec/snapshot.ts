import { createHash } from 'node:crypto';
import { CorruptDataError } from '../errors.js';
import { encodeChangeKey, isMovedRow, type RowCodec } from './changelog.js';
import type { PartitionState } from '../state/index.js';

/**
 * Snapshot of one partition's tables:
 *   "FSNP" | u8 version | u32 header length | header JSON | rows | sha256 of everything before
 * rows: u32 count, then per row u32 key length | key | u32 value length | value, where key and
 * value are exactly a changelog record's (so restore reuses the changelog path). Version 2 names
 * the schema fingerprint of each table's rows in the header (`schemas`); version 1 snapshots,
 * written before, hold rows of each table's first registered schema.
 */
const MAGIC = Buffer.from('FSNP');
const VERSION = 2;
const READABLE_VERSIONS = new Set([1, 2]);
const DIGEST = 32;

export interface SnapshotHeader {
  readonly app: string;
  readonly partition: number;
  /** The changelog offset the rows reflect: restore continues the changelog from here. */
  readonly changelogOffset: number;
  readonly takenAt: number;
  readonly rows: number;
  /** Schema fingerprint of each table's rows (version 2). */
  readonly schemas?: Readonly<Record<string, string>>;
}

/** Encodes a partition's committed tables. Call between batches (no open transaction). */
export function encodeSnapshot(state: PartitionState, meta: Omit<SnapshotHeader, 'rows' | 'partition' | 'schemas'>, codec: RowCodec): Buffer {
  if (state.inTransaction) throw new CorruptDataError('cannot snapshot a partition with an open transaction');
  const parts: Buffer[] = [];
  const schemas: Record<string, string> = {};
  let rows = 0;
  for (const table of state.tableNames()) {
    const fingerprint = codec.fingerprintOf(table);
    if (fingerprint) schemas[table] = fingerprint;
    for (const [key, value] of state.store(table).entries()) {
      const k = encodeChangeKey(table, key);
      const v = codec.encodeValue(table, value);
      const lengths = Buffer.allocUnsafe(4);
      lengths.writeUInt32LE(k.length, 0);
      const vlen = Buffer.allocUnsafe(4);
      vlen.writeUInt32LE(v.length, 0);
      parts.push(lengths, k, vlen, v);
      rows++;
    }
  }
  const header = Buffer.from(JSON.stringify({ ...meta, partition: state.partition, rows, schemas } satisfies SnapshotHeader));
  const prefix = Buffer.allocUnsafe(MAGIC.length + 1 + 4 + header.length + 4);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt8(VERSION, 4);
  prefix.writeUInt32LE(header.length, 5);
  header.copy(prefix, 9);
  prefix.writeUInt32LE(rows, 9 + header.length);
  const body = Buffer.concat([prefix, ...parts]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Verifies the checksum and returns the header; throws CorruptDataError when the bytes are damaged. */
export function readSnapshotHeader(bytes: Buffer): SnapshotHeader {
  if (bytes.length < 9 + DIGEST || !bytes.subarray(0, 4).equals(MAGIC)) throw new CorruptDataError('not a farad snapshot');
  if (!READABLE_VERSIONS.has(bytes.readUInt8(4))) throw new CorruptDataError(`snapshot version ${bytes.readUInt8(4)} is not supported`);
  const body = bytes.subarray(0, bytes.length - DIGEST);
  if (!createHash('sha256').update(body).digest().equals(bytes.subarray(bytes.length - DIGEST))) {
    throw new CorruptDataError('snapshot checksum mismatch');
  }
  const headerLength = bytes.readUInt32LE(5);
  return JSON.parse(bytes.toString('utf8', 9, 9 + headerLength)) as SnapshotHeader;
}

/**
 * Loads a verified snapshot into an empty partition state; calls `progress` every 64k rows and
 * `moved` with the key of each row filed under a former or dropped table name. Returns the header.
 */
export function loadSnapshot(
  state: PartitionState,
  bytes: Buffer,
  codec: RowCodec,
  options: { progress?: (rows: number, total: number) => void; moved?: (key: Buffer) => void } = {},
): SnapshotHeader {
  const { progress, moved } = options;
  const header = readSnapshotHeader(bytes);
  if (header.partition !== state.partition) {
    throw new CorruptDataError(`snapshot is of partition ${header.partition}, not ${state.partition}`);
  }
  const missing = header.schemas ? codec.tablesMissingFrom(new Set(Object.keys(header.schemas))) : [];
  if (missing.length > 0) {
    throw new CorruptDataError(`snapshot was written by a version of the app without table(s) ${missing.map((t) => `"${t}"`).join(', ')}; it cannot stand for their rows`, { partition: state.partition });
  }
  const end = bytes.length - DIGEST;
  let pos = 9 + bytes.readUInt32LE(5);
  const count = bytes.readUInt32LE(pos);
  pos += 4;
  for (let i = 0; i < count; i++) {
    if (pos + 8 > end) throw new CorruptDataError('snapshot ends early');
    const klen = bytes.readUInt32LE(pos);
    const key = bytes.subarray(pos + 4, pos + 4 + klen);
    pos += 4 + klen;
    const vlen = bytes.readUInt32LE(pos);
    const value = bytes.subarray(pos + 4, pos + 4 + vlen);
    pos += 4 + vlen;
    if (isMovedRow(codec.apply(state, key, value))) moved?.(Buffer.from(key));
    if (progress && (i + 1) % 65_536 === 0) progress(i + 1, count);
  }
  progress?.(count, count);
  return header;
}

