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
