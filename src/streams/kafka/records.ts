import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { LogRecord, OutRecord } from '../records.js';

/** A kafkajs message as a farad record. Headers keep their first value, as UTF-8. */
export function fromKafka(topic: string, partition: number, message: KafkaMessage): LogRecord {
  return {
    topic,
    partition,
    offset: Number(message.offset),
    timestamp: Number(message.timestamp),
    key: message.key,
    value: message.value,
    headers: headersOf(message.headers),
  };
}

/** Most records carry no headers: they share one frozen empty object. */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

function headersOf(headers: IHeaders | undefined): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const name in headers) {
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) (out ??= {})[name] = value.toString();
  }
  return out ?? NO_HEADERS;
}

/**
 * Most bytes (keys, values, headers and a record's framing) per `sendBatch` call: one call is one
 * record batch per partition, and brokers refuse batches over `message.max.bytes` (1 MiB by
 * default). Sequential calls on a producer with one request in flight keep per-partition order.
 */
export const SEND_SLICE_BYTES = 900_000;
/** Framing of one record in a v2 batch, at most (length, attributes, deltas, lengths). */
const RECORD_OVERHEAD = 24;

/**
 * Record slices of at most SEND_SLICE_BYTES, each grouped by topic as kafkajs `sendBatch` wants
 * them. Without farad's grouping in kafkajs (fast-produce.ts), which is quadratic in the messages
 * per partition of one call, slices also hold at most `maxMessages`.
 */
export function toTopicMessageSlices(records: readonly OutRecord[], maxMessages = Infinity): Array<Array<{ topic: string; messages: Message[] }>> {
  const slices: Array<Array<{ topic: string; messages: Message[] }>> = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < records.length; i++) {
    const size = recordBytes(records[i]!);
    if (i > start && (bytes + size > SEND_SLICE_BYTES || i - start >= maxMessages)) {
      slices.push(toTopicMessages(records.slice(start, i)));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < records.length) slices.push(toTopicMessages(start === 0 ? records : records.slice(start)));
  return slices;
}

function recordBytes(r: OutRecord): number {
  let size = RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (r.headers) for (const name in r.headers) size += 10 + name.length + Buffer.byteLength(r.headers[name]!);
  return size;
}

/** Groups records by topic, as kafkajs `sendBatch` wants them, keeping their order. */
export function toTopicMessages(records: readonly OutRecord[]): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let messages = byTopic.get(r.topic);
    if (!messages) byTopic.set(r.topic, (messages = []));
    // The record is the message (partition, key, value, timestamp, headers): no copy per record.
    // Its timestamp is a number, which farad's encoder (fast-produce.ts) and kafkajs's both take,
    // though kafkajs's types ask for a string.
    messages.push(r as unknown as Message);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
