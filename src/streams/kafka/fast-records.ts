/**
 * kafkajs 2.2.4's decoder of one fetched record, in its place: the same object, without a BigInt
 * round trip per record for its offset and timestamp (kafkajs parses the batch's base offset from
 * a string, adds the delta and prints it again, twice per record) and without copying the headers
 * object once per header. Records whose numbers leave the safe-integer range go to kafkajs's own
 * decoder. Like fast-produce.ts, this must run before kafkajs is loaded.
 */
import { createRequire } from 'node:module';
import { replaceModule } from './module-cache.js';

const require = createRequire(import.meta.url);

/** kafkajs's Decoder: a buffer and a read position. */
interface DecoderLike {
  buffer: Buffer;
  offset: number;
}

/** What kafkajs's batch decoder passes for every record of a batch (one object per batch). */
interface BatchContext {
  readonly firstOffset: string;
  readonly firstTimestamp: string;
  readonly maxTimestamp?: string;
  readonly magicByte?: number;
  readonly isControlBatch?: boolean;
  readonly timestampType?: number;
}

type RecordDecoder = (decoder: DecoderLike, batchContext?: BatchContext) => unknown;

/** kafkajs's TimestampTypes.LOG_APPEND_TIME. */
const LOG_APPEND_TIME = 1;

/** The batch's base offset and timestamp as numbers, parsed once per batch (NaN: not safe). */
const bases = new WeakMap<object, { offset: number; timestamp: number }>();

function baseOf(context: BatchContext): { offset: number; timestamp: number } {
  let base = bases.get(context);
  if (!base) {
    const offset = Number(context.firstOffset);
    const timestamp = Number(context.firstTimestamp);
    base = { offset: Number.isSafeInteger(offset) ? offset : NaN, timestamp: Number.isSafeInteger(timestamp) ? timestamp : NaN };
    bases.set(context, base);
  }
  return base;
}

let pos = 0;

/** A zigzag varint at `pos` (advancing it); NaN past 7 bytes, where doubles stop being exact. */
function varint(buf: Buffer): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    const byte = buf[pos++]!;
    result += (byte & 0x7f) * scale;
    if (byte < 0x80) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    scale *= 128;
  }
  return NaN;
}

function bytes(buf: Buffer): Buffer | null {
  const length = varint(buf);
  if (length === -1) return null;
  const out = buf.subarray(pos, pos + length);
  pos += length;
  return out;
}

/** Decodes the record at the decoder's position, as kafkajs's record decoder (v0) does. */
export function decodeRecord(decoder: DecoderLike, context: BatchContext, fallback: RecordDecoder): unknown {
  const base = baseOf(context);
  const buf = decoder.buffer;
  pos = decoder.offset;
  const attributes = buf.readInt8(pos++);
  const timestampDelta = varint(buf);
  const offsetDelta = varint(buf);
  const offset = base.offset + offsetDelta;
  const appendTime = context.timestampType === LOG_APPEND_TIME && context.maxTimestamp;
  const timestamp = appendTime ? context.maxTimestamp! : base.timestamp + timestampDelta;
  if (!Number.isSafeInteger(offset) || (!appendTime && !Number.isSafeInteger(timestamp))) return fallback(decoder, context);
  const key = bytes(buf);
  const value = bytes(buf);
  const count = varint(buf);
  const headers: Record<string, Buffer | null | Array<Buffer | null>> = {};
  for (let i = 0; i < count; i++) {
    const name = bytes(buf)?.toString('utf8') ?? 'null';
    const headerValue = bytes(buf);
    const seen = headers[name];
    headers[name] = seen === undefined ? headerValue : Array.isArray(seen) ? [...seen, headerValue] : [seen, headerValue];
  }
  decoder.offset = pos;
  return {
    magicByte: context.magicByte,
    attributes,
    timestamp: typeof timestamp === 'string' ? timestamp : String(timestamp),
    offset: String(offset),
    key,
    value,
    headers,
    isControlRecord: context.isControlBatch ?? false,
    batchContext: context,
  };
}

function install(): boolean {
  const recordPath = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
  const batchPath = require.resolve('kafkajs/src/protocol/recordBatch/v0/decoder.js');
  // The batch decoder takes the record decoder when it loads: too late once it has.
  if (require.cache[batchPath]) return (require.cache[recordPath]?.exports as { fast?: boolean } | undefined)?.fast === true;
  const kafkajsDecoder = require(recordPath) as RecordDecoder;
  const fast = Object.assign((decoder: DecoderLike, context: BatchContext = { firstOffset: '0', firstTimestamp: '0' }) => decodeRecord(decoder, context, kafkajsDecoder), { fast: true });
  replaceModule(recordPath, fast);
  return true;
}

export const fastRecordsInstalled = install();
