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

function headersOf(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) out[name] = value.toString();
  }
  return out;
}

/**
 * Most messages per `sendBatch` call. kafkajs 2.2.4 groups a call's messages per partition by
 * copying the partition's array for every message (quadratic), so large batches are sent in
 * slices; sequential calls on a producer with one request in flight keep per-partition order.
 */
export const SEND_SLICE = 1_000;

/** Record slices of at most SEND_SLICE, each grouped by topic as kafkajs `sendBatch` wants them. */
export function toTopicMessageSlices(records: readonly OutRecord[]): Array<Array<{ topic: string; messages: Message[] }>> {
  const slices: Array<Array<{ topic: string; messages: Message[] }>> = [];
  for (let i = 0; i < records.length; i += SEND_SLICE) slices.push(toTopicMessages(records.slice(i, i + SEND_SLICE)));
  return slices;
}

/** Groups records by topic, as kafkajs `sendBatch` wants them, keeping their order. */
export function toTopicMessages(records: readonly OutRecord[]): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let messages = byTopic.get(r.topic);
    if (!messages) byTopic.set(r.topic, (messages = []));
    messages.push({
      partition: r.partition,
      key: r.key,
      value: r.value,
      timestamp: String(r.timestamp),
      ...(r.headers ? { headers: { ...r.headers } } : {}),
    });
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
