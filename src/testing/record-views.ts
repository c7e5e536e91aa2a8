import { toJson, type SchemaCatalog } from '../codec/index.js';
import type { CompiledApp } from '../procedures/index.js';
import { DLQ_HEADERS, type DeadLetterReason, type LogRecord } from '../streams/records.js';

/** An event a handler emitted, as committed to its output topic. */
export interface EmittedEvent {
  /** Avro full name (`bank.WithdrawalRejected`). */
  readonly type: string;
  /** Short name as declared in `events`. */
  readonly name: string;
  /** The value as JSON, as the HTTP API shows events (bytes as latin1 strings, unions bare). */
  readonly value: unknown;
  readonly key: string | null;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
}

/** A record of the dead-letter topic, with the headers that say why. */
export interface DeadLetter {
  readonly reason: DeadLetterReason;
  readonly error: string;
  /** Full event type, or `timer:<name>` / `schedule:<name>`. */
  readonly eventType: string;
  readonly sourceTopic: string | undefined;
  readonly sourcePartition: number | undefined;
  readonly sourceOffset: number | undefined;
  /** The dead record's value as JSON when it decodes (a timer's row for timers), else null. */
  readonly value: unknown;
  readonly key: string | null;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** Decodes committed records into what tests assert on: emitted events and dead letters. */
export class RecordViews {
  constructor(
    private readonly app: CompiledApp,
    private readonly catalog: SchemaCatalog,
  ) {}

  emitted(record: LogRecord): EmittedEvent {
    const { name, value } = this.catalog.decode(record.value!);
    const event = this.app.eventsByFullName.get(name)!;
    return {
      type: name,
      name: event.alias,
      value: toJson(event.type, value),
      key: record.key?.toString('utf8') ?? null,
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
    };
  }

  deadLetter(record: LogRecord): DeadLetter {
    const h = record.headers;
    const number = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
    return {
      reason: h[DLQ_HEADERS.reason] as DeadLetterReason,
      error: h[DLQ_HEADERS.error] ?? '',
      eventType: h[DLQ_HEADERS.eventType] ?? '',
      sourceTopic: h[DLQ_HEADERS.sourceTopic],
      sourcePartition: number(h[DLQ_HEADERS.sourcePartition]),
      sourceOffset: number(h[DLQ_HEADERS.sourceOffset]),
      value: this.deadValue(record),
      key: record.key?.toString('utf8') ?? null,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      headers: h,
    };
  }

  private deadValue(record: LogRecord): unknown {
    if (record.value === null) return null;
    if (record.headers[DLQ_HEADERS.timerDueAt] !== undefined) return JSON.parse(record.value.toString('utf8')) as unknown;
    try {
      const { name, value } = this.catalog.decode(record.value);
      return toJson(this.app.eventsByFullName.get(name)!.type, value);
    } catch {
      return null;
    }
  }
}
