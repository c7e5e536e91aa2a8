/**
 * The body of a Kafka Produce request (versions 3 to 7 share it) with uncompressed v2 record
 * batches, written in two passes into one buffer: sizes first, then bytes. kafkajs 2.2.4 builds
 * an Encoder per record and per batch and copies each into the next; that was most of farad's
 * CPU per event on Kafka. Pure: no I/O, no kafkajs.
 */
import { crc32c } from './crc32c.js';

/** A message as kafkajs `send` takes it (farad passes Buffers and numeric timestamps). */
export interface ProduceMessage {
  readonly key?: Buffer | string | null;
  readonly value: Buffer | string | null;
  readonly timestamp?: string | number;
  readonly headers?: Readonly<Record<string, HeaderValue | readonly HeaderValue[] | undefined>>;
}
type HeaderValue = Buffer | string | null;

export interface ProducePartitionData {
  readonly partition: number;
  /** Sequence of the batch's first record for an idempotent producer; 0 otherwise. */
  readonly firstSequence?: number;
  readonly messages: readonly ProduceMessage[];
}

export interface ProduceTopicData {
  readonly topic: string;
  readonly partitions: readonly ProducePartitionData[];
}

export interface ProduceRequestFields {
  readonly transactionalId: string | null;
  readonly acks: number;
  readonly timeout: number;
  /** -1 for a producer that is neither idempotent nor transactional. */
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly topicData: readonly ProduceTopicData[];
  /** Timestamp of messages that carry none. */
  readonly now: number;
}

const MAGIC = 2;
const TRANSACTIONAL = 0x10;
/** Record batch bytes from the partition leader epoch on that precede the CRC. */
const BATCH_PREFIX = 4 + 1 + 4;
/** Attributes … record count: the part the CRC starts at, up to the records. */
const BATCH_HEADER = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;

/** Encodes the request body (everything after the request header). */
export function encodeProduceRequest(fields: ProduceRequestFields): Buffer {
  const transactionalId = fields.transactionalId === null ? null : Buffer.from(fields.transactionalId, 'utf8');
  const topics = fields.topicData.map((t) => ({ name: Buffer.from(t.topic, 'utf8'), partitions: t.partitions.map((p) => planBatch(p, fields.now)) }));
  let size = 2 + (transactionalId?.length ?? 0) + 2 + 4 + 4;
  for (const topic of topics) {
    size += 2 + topic.name.length + 4;
    for (const batch of topic.partitions) size += 4 + 4 + 8 + 4 + batch.bodySize;
  }
  const w = new Writer(Buffer.allocUnsafe(size));
  if (transactionalId === null) w.int16(-1);
  else w.int16(transactionalId.length).bytes(transactionalId);
  w.int16(fields.acks).int32(fields.timeout).int32(topics.length);
  for (const topic of topics) {
    w.int16(topic.name.length).bytes(topic.name).int32(topic.partitions.length);
    for (const batch of topic.partitions) {
      w.int32(batch.partition).int32(8 + 4 + batch.bodySize);
      writeBatch(w, batch, fields);
    }
  }
  if (w.pos !== size) throw new Error(`produce request: wrote ${w.pos} bytes, planned ${size}`);
  return w.buf;
}

/** A partition's batch, measured: per record its parts and body size, in arrays (no object per record). */
interface PlannedBatch {
  readonly partition: number;
  readonly firstSequence: number;
  readonly firstTimestamp: number;
  readonly maxTimestamp: number;
  readonly count: number;
  readonly keys: ReadonlyArray<Buffer | null>;
  readonly values: ReadonlyArray<Buffer | null>;
  readonly timestamps: Float64Array;
  /** Headers of the records that have any (sparse). */
  readonly headers: ReadonlyArray<ReadonlyArray<readonly [Buffer, Buffer | null]> | undefined>;
  readonly sizes: Int32Array;
  /** Bytes after the batch length field: leader epoch, magic, CRC, header, records. */
  readonly bodySize: number;
}

function planBatch(data: ProducePartitionData, now: number): PlannedBatch {
  const { messages } = data;
  const count = messages.length;
  let firstTimestamp = Infinity;
  let maxTimestamp = -Infinity;
  const timestamps = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const raw = messages[i]!.timestamp;
    const ts = raw === undefined || raw === null || raw === '' ? now : Number(raw);
    if (!Number.isSafeInteger(ts)) throw new TypeError(`produce request: timestamp ${String(raw)} is not an integer of milliseconds`);
    timestamps[i] = ts;
    if (ts < firstTimestamp) firstTimestamp = ts;
    if (ts > maxTimestamp) maxTimestamp = ts;
  }
  if (count === 0) firstTimestamp = maxTimestamp = now;
  const keys = new Array<Buffer | null>(count);
  const values = new Array<Buffer | null>(count);
  const headers = new Array<ReadonlyArray<readonly [Buffer, Buffer | null]> | undefined>(count);
  const sizes = new Int32Array(count);
  let recordsSize = 0;
  for (let i = 0; i < count; i++) {
    const m = messages[i]!;
    const key = (keys[i] = asBytes(m.key));
    const value = (values[i] = asBytes(m.value));
    let body = 1 + varlongSize(timestamps[i]! - firstTimestamp) + varintSize(i) + bytesSize(key) + bytesSize(value);
    const list = m.headers ? headerList(m.headers) : undefined;
    if (list && list.length > 0) {
      headers[i] = list;
      body += varintSize(list.length);
      for (const [name, headerValue] of list) body += bytesSize(name) + bytesSize(headerValue);
    } else {
      body += 1; // no headers: a zero count
    }
    sizes[i] = body;
    recordsSize += varintSize(body) + body;
  }
  return {
    partition: data.partition,
    firstSequence: data.firstSequence ?? 0,
    firstTimestamp,
    maxTimestamp,
    count,
    keys,
    values,
    timestamps,
    headers,
    sizes,
    bodySize: BATCH_PREFIX + BATCH_HEADER + recordsSize,
  };
}

function writeBatch(w: Writer, batch: PlannedBatch, fields: ProduceRequestFields): void {
  w.int64(0n).int32(batch.bodySize).int32(0).int8(MAGIC);
  const crcAt = w.pos;
  w.int32(0);
  const crcFrom = w.pos;
  w.int16(fields.transactionalId === null ? 0 : TRANSACTIONAL)
    .int32(Math.max(0, batch.count - 1))
    .int64(BigInt(batch.firstTimestamp))
    .int64(BigInt(batch.maxTimestamp))
    .int64(fields.producerId)
    .int16(fields.producerEpoch)
    .int32(batch.firstSequence)
    .int32(batch.count);
  for (let i = 0; i < batch.count; i++) {
    w.varint(batch.sizes[i]!).int8(0).varlong(batch.timestamps[i]! - batch.firstTimestamp).varint(i).nullableBytes(batch.keys[i]!).nullableBytes(batch.values[i]!);
    const list = batch.headers[i];
    if (list === undefined) {
      w.varint(0);
      continue;
    }
    w.varint(list.length);
    for (const [name, value] of list) w.nullableBytes(name).nullableBytes(value);
  }
  w.buf.writeUInt32BE(crc32c(w.buf, crcFrom, w.pos), crcAt);
}

function headerList(headers: NonNullable<ProduceMessage['headers']>): Array<readonly [Buffer, Buffer | null]> {
  const list: Array<readonly [Buffer, Buffer | null]> = [];
  for (const name of Object.keys(headers)) {
    const raw = headers[name];
    if (raw === undefined) continue;
    const key = Buffer.from(name, 'utf8');
    if (Array.isArray(raw)) for (const v of raw as readonly HeaderValue[]) list.push([key, asBytes(v)]);
    else list.push([key, asBytes(raw as HeaderValue)]);
  }
  return list;
}

function asBytes(value: Buffer | string | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function bytesSize(value: Buffer | null): number {
  return value === null ? 1 : varintSize(value.length) + value.length;
}

/** Bytes of a zigzag varint of a non-negative safe integer, or of -1. */
function varintSize(n: number): number {
  let z = n < 0 ? -2 * n - 1 : 2 * n;
  let bytes = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 128);
    bytes++;
  }
  return bytes;
}
const varlongSize = varintSize;

/** Big-endian and zigzag-varint writes at a moving position. */
class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  int8(n: number): this {
    this.buf[this.pos++] = n & 0xff;
    return this;
  }
  int16(n: number): this {
    this.buf.writeInt16BE(n, this.pos);
    this.pos += 2;
    return this;
  }
  int32(n: number): this {
    this.buf.writeInt32BE(n, this.pos);
    this.pos += 4;
    return this;
  }
  int64(n: bigint): this {
    this.buf.writeBigInt64BE(n, this.pos);
    this.pos += 8;
    return this;
  }
  bytes(b: Buffer): this {
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    return this;
  }
  /** Zigzag varint of a safe integer (lengths, deltas: they fit in 53 bits). */
  varint(n: number): this {
    let z = n < 0 ? -2 * n - 1 : 2 * n;
    const buf = this.buf;
    while (z >= 0x80) {
      buf[this.pos++] = (z & 0x7f) | 0x80;
      z = Math.floor(z / 128);
    }
    buf[this.pos++] = z;
    return this;
  }
  varlong(n: number): this {
    return this.varint(n);
  }
  nullableBytes(b: Buffer | null): this {
    if (b === null) return this.varint(-1);
    this.varint(b.length);
    if (b.length < 32) {
      // Short keys and values: a byte loop beats Buffer.copy's call overhead.
      const buf = this.buf;
      for (let i = 0; i < b.length; i++) buf[this.pos + i] = b[i]!;
      this.pos += b.length;
      return this;
    }
    return this.bytes(b);
  }
}
