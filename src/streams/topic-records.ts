/**
 * Any record of an app's topics as one JSON object (`farad tail`, `GET /topics/:topic/records`):
 * events decoded with the app's schemas, dead letters with why and where from, changelog rows as
 * table/key/row, farad's own JSON topics parsed. Pure: reading is the caller's.
 */
import { decodeChangeKey, SchemaBook, toJson, type EventCodec, type RowCodec, type SchemaRecord } from '../codec/index.js';
import { describeError } from '../errors.js';
import type { CompiledApp } from '../procedures/index.js';
import { parseDeadLetter, replayLogTopicOf } from './dead-letters.js';
import { DLQ_HEADERS, type LogRecord } from './records.js';

/** What a topic is to the app. */
export type TopicRole = 'input' | 'output' | 'dead_letters' | 'changelog' | 'replay_log' | 'schemas' | 'protocol';

export interface AppTopic {
  readonly name: string;
  readonly role: TopicRole;
}

/** Every topic of an app, with its role: inputs, outputs, dead letters, changelog, replay log, table schemas, multi-partition protocol. */
export function appTopicsOf(app: CompiledApp): AppTopic[] {
  const topics: AppTopic[] = [];
  const add = (name: string, role: TopicRole): void => {
    if (!topics.some((t) => t.name === name)) topics.push({ name, role });
  };
  for (const name of app.inputTopics) add(name, 'input');
  for (const name of app.outputTopics) add(name, 'output');
  add(app.deadLetterTopic, 'dead_letters');
  add(app.changelogTopic, 'changelog');
  add(replayLogTopicOf(app).name, 'replay_log');
  add(schemaTopicName(app), 'schemas');
  if (app.protocolTopic) add(app.protocolTopic, 'protocol');
  return topics;
}

/** The table schema registry's topic (service/table-schemas.ts creates and writes it). */
export function schemaTopicName(app: { readonly name: string }): string {
  return `${app.name}-schemas`;
}

/** Bytes that are not text: base64. */
export interface Base64 {
  readonly base64: string;
}

/** A record as JSON: the same shape on every topic, with what its role adds. */
export interface RecordLine {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** ms since the epoch. */
  readonly timestamp: number;
  /** UTF-8 text, `{ base64 }` when it is not text, or null. */
  readonly key: string | Base64 | null;
  readonly headers: Readonly<Record<string, string>>;
  /** Events (inputs, outputs, a dead letter's value): the Avro full name. */
  readonly eventType?: string;
  /** The event, row or JSON record; `{ base64 }` when it does not decode (then `decodeError` says why); null for a tombstone. */
  readonly value: unknown;
  readonly decodeError?: string;
  /** Dead letters: why and where from. */
  readonly deadLetter?: {
    readonly reason: string;
    readonly error: string;
    readonly eventType: string | null;
    readonly source: { readonly topic: string; readonly partition: number; readonly offset: number } | null;
    readonly timer?: { readonly dueAt: number; readonly firedAt: number };
  };
  /** Changelog: the row's table and key (`value` is the row; null and `tombstone: true` when deleted). */
  readonly table?: string;
  readonly rowKey?: string | number;
  readonly tombstone?: boolean;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function bytesJson(bytes: Buffer | null): string | Base64 | null {
  if (bytes === null) return null;
  try {
    return UTF8.decode(bytes);
  } catch {
    return { base64: bytes.toString('base64') };
  }
}

/** Turns records of an app's topics into RecordLines. */
export class RecordDescriber {
  private readonly roles: Map<string, TopicRole>;

  /**
   * @param rows decodes changelog rows (with every registered table schema: see readSchemaBook);
   *   without it, rows are shown as base64.
   */
  constructor(
    private readonly app: CompiledApp,
    private readonly codec: EventCodec,
    private readonly rows: RowCodec | undefined,
  ) {
    this.roles = new Map(appTopicsOf(app).map((t) => [t.name, t.role]));
  }

  roleOf(topic: string): TopicRole | undefined {
    return this.roles.get(topic);
  }

  /** The app's topics. */
  topics(): string[] {
    return [...this.roles.keys()];
  }

  /** Fetches what decoding these records needs (schemas by id, with a schema registry); never fails: what cannot be fetched does not decode. */
  async prepare(records: readonly LogRecord[]): Promise<void> {
    if (!this.codec.prepare) return;
    const role = records[0] && this.roles.get(records[0].topic);
    if (role !== 'input' && role !== 'output' && role !== 'dead_letters') return;
    try {
      await this.codec.prepare(records.map((r) => r.value));
    } catch {
      // Each record then shows why it does not decode.
    }
  }

  describe(record: LogRecord): RecordLine {
    const base = {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      key: bytesJson(record.key),
      headers: record.headers,
    };
    switch (this.roles.get(record.topic)) {
      case 'input':
      case 'output':
        return { ...base, ...this.event(record.value) };
      case 'dead_letters':
        return { ...base, ...this.deadLetter(record) };
      case 'changelog':
        return { ...base, ...this.row(record) };
      default:
        return { ...base, ...jsonValue(record.value) };
    }
  }

  private event(value: Buffer | null): { eventType?: string; value: unknown; decodeError?: string } {
    if (value === null) return { value: null, decodeError: 'record has no value' };
    try {
      const decoded = this.codec.decode(value);
      return { eventType: decoded.name, value: toJson(decoded.type, decoded.value) };
    } catch (err) {
      return { value: { base64: value.toString('base64') }, decodeError: describeError(err) };
    }
  }

  private deadLetter(record: LogRecord): Omit<RecordLine, 'topic' | 'partition' | 'offset' | 'timestamp' | 'key' | 'headers'> {
    const letter = parseDeadLetter(record);
    const deadLetter = {
      reason: letter.reason,
      error: letter.error,
      eventType: letter.eventType ?? null,
      source: letter.source ?? null,
      ...(letter.timer ? { timer: letter.timer } : {}),
    };
    // A timer is dead-lettered as its row in JSON, not as an event.
    if (record.headers[DLQ_HEADERS.timerDueAt] !== undefined) return { ...jsonValue(record.value), deadLetter };
    return { ...this.event(record.value), deadLetter };
  }

  private row(record: LogRecord): { table?: string; rowKey?: string | number; value: unknown; tombstone?: boolean; decodeError?: string } {
    if (record.key === null) return { value: bytesJson(record.value), decodeError: 'changelog record without a key' };
    let table: string;
    let rowKey: string | number;
    try {
      ({ table, key: rowKey } = decodeChangeKey(record.key));
    } catch (err) {
      return { value: bytesJson(record.value), decodeError: describeError(err) };
    }
    if (record.value === null) return { table, rowKey, value: null, tombstone: true };
    const current = this.rows?.tableFor(table);
    const shape = current === undefined ? undefined : this.app.tables.get(current);
    if (!this.rows || current === undefined || !shape) {
      const why = !this.rows ? 'table schemas were not read' : this.rows.isDropped(table) ? `table "${table}" was dropped by the app` : `the app declares no table "${table}"`;
      return { table, rowKey, value: { base64: record.value.toString('base64') }, decodeError: why };
    }
    try {
      return { table, rowKey, value: toJson(shape.valueType, this.rows.decodeRow(current, record.value)) };
    } catch (err) {
      return { table, rowKey, value: { base64: record.value.toString('base64') }, decodeError: describeError(err) };
    }
  }
}

/** farad's JSON records (replay log, table schemas, protocol messages): parsed, else text. */
function jsonValue(value: Buffer | null): { value: unknown } {
  if (value === null) return { value: null };
  const text = bytesJson(value);
  if (typeof text !== 'string') return { value: text };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { value: text };
  }
}

/** The table schema registry's records (for a RowCodec that reads every registered version). */
export function schemaBookOf(records: readonly LogRecord[]): SchemaBook {
  const parsed: SchemaRecord[] = [];
  for (const record of records) {
    if (record.value === null) continue;
    try {
      const r = JSON.parse(record.value.toString('utf8')) as Partial<SchemaRecord>;
      if (typeof r.table === 'string' && typeof r.fingerprint === 'string' && r.schema !== undefined) {
        parsed.push({ table: r.table, fingerprint: r.fingerprint, schema: r.schema, ...(Array.isArray(r.formerly) ? { formerly: r.formerly } : {}) });
      }
    } catch {
      // not a registration: skipped (farad refuses such a registry at start)
    }
  }
  return new SchemaBook(parsed);
}
