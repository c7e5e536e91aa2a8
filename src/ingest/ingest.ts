import { NotAnInputError, UnknownEventTypeError } from '../errors.js';
import type { FaradMetrics } from '../metrics/index.js';
import type { CompiledApp, CompiledEvent } from '../procedures/index.js';
import { partitionForKey } from '../state/index.js';
import type { EventLog, OutRecord, TopicPartitionOffset } from '../streams/index.js';
import { fromJson, type EventCodec } from '../codec/index.js';

/**
 * Turns events into input records the way any well-behaved producer must: Avro single-object
 * encoding, key = the procedure's partition key, partition = murmur2(key) like Kafka's default
 * partitioner. Used by HTTP, `farad produce` and the demo's load generator.
 */
export class Ingest {
  constructor(
    private readonly app: CompiledApp,
    private readonly catalog: EventCodec,
    private readonly log: EventLog,
    private readonly metrics?: FaradMetrics,
  ) {}

  /**
   * The input event named by its Avro full name (`voter.Vote`) or its short name (`Vote`).
   * Throws `UnknownEventTypeError` for a name the app does not declare and `NotAnInputError`
   * for an event no input topic carries.
   */
  inputEvent(name: string): CompiledEvent {
    const event = this.app.eventsByFullName.get(name) ?? this.app.events.get(name);
    if (!event) {
      const known = [...this.app.events.values()].filter((e) => e.inputTopic).map((e) => e.fullName);
      throw new UnknownEventTypeError(`unknown event type "${name}"; this app accepts ${known.join(', ')}`, { eventType: name });
    }
    if (!event.inputTopic || !event.procedure) {
      throw new NotAnInputError(`event type "${event.fullName}" is not read from any input topic`, { eventType: event.fullName });
    }
    return event;
  }

  /** Validates a JSON value (as parsed from a request) and encodes it as an input record. */
  fromJson(event: CompiledEvent, json: unknown, timestamp = Date.now()): OutRecord {
    return this.record(event, fromJson(event.type, json, { eventType: event.fullName }), timestamp);
  }

  /** Encodes an Avro value (already of the event's shape) as an input record. */
  record(event: CompiledEvent, value: unknown, timestamp = Date.now()): OutRecord {
    const topic = event.inputTopic!;
    const key = String(event.procedure!.partitionKey(value));
    return {
      topic,
      partition: partitionForKey(key, this.log.partitionsOf(topic)),
      timestamp,
      key: Buffer.from(key),
      value: this.catalog.encode(event.fullName, value),
    };
  }

  /**
   * Appends records durably, in order. Answers where they ended: per input partition written,
   * the offset just past its last record (reads wait for it with `?waitFor=`).
   */
  async send(event: CompiledEvent, records: readonly OutRecord[]): Promise<readonly TopicPartitionOffset[]> {
    const written = await this.log.append(records);
    this.metrics?.ingested.inc({ event_type: event.fullName }, records.length);
    return written;
  }
}
