import type { Type } from 'avsc';
import { DecodeError, describeError, UnknownSchemaError } from '../errors.js';
import { parseEventType, SINGLE_OBJECT_HEADER_LENGTH, type DecodedObject, type SchemaCatalog } from './single-object.js';

/** First byte of the Confluent wire format: magic 0, then the schema id as a 4-byte big-endian int. */
export const CONFLUENT_MAGIC = 0;
export const CONFLUENT_HEADER_LENGTH = 5;

/** How events are turned into bytes on the log and back. */
export interface EventCodec {
  encode(fullName: string, value: unknown): Buffer;
  /** Synchronous: anything a record needs (a registry lookup) is fetched by `prepare` first. */
  decode(bytes: Uint8Array): DecodedObject;
  /** Fetches what decoding these values will need. */
  prepare?(values: ReadonlyArray<Buffer | null>): Promise<void>;
}

/** The part of a Confluent-compatible schema registry farad uses. */
export interface SchemaRegistry {
  /** The schema (JSON text) with this id; undefined when the registry has no such id. */
  schemaById(id: number): Promise<string | undefined>;
  /** Registers (or finds) a schema under a subject; returns its id. */
  register(subject: string, schema: string): Promise<number>;
}

interface WriterEntry {
  readonly reader: Type;
  readonly name: string;
  /** Set when the writer's schema differs from the app's: Avro schema resolution. */
  readonly resolver: ReturnType<Type['createResolver']> | undefined;
}

/**
 * The Confluent wire format (`00` + schema id + Avro body), with schemas in a registry under the
 * record-name subject strategy (subject = the event type's full name, so one topic can carry
 * several event types). Records a producer wrote with another compatible version of a schema are
 * read through Avro schema resolution. Single-object records are still accepted on input.
 */
export class ConfluentCodec implements EventCodec {
  private readonly idOf = new Map<string, number>();
  private readonly writers = new Map<number, WriterEntry | 'unknown'>();

  private constructor(
    private readonly catalog: SchemaCatalog,
    private readonly registry: SchemaRegistry,
  ) {}

  /** Registers the app's event types and returns a codec that writes with their ids. */
  static async create(catalog: SchemaCatalog, registry: SchemaRegistry, types: Iterable<Type>): Promise<ConfluentCodec> {
    const codec = new ConfluentCodec(catalog, registry);
    for (const type of types) {
      const name = type.name!;
      const id = await registry.register(name, JSON.stringify(type.schema()));
      codec.idOf.set(name, id);
      codec.writers.set(id, { reader: type, name, resolver: undefined });
    }
    return codec;
  }

  encode(fullName: string, value: unknown): Buffer {
    const id = this.idOf.get(fullName);
    // The catalog validates and encodes; its single-object header is swapped for the Confluent one.
    const singleObject = this.catalog.encode(fullName, value);
    if (id === undefined) return singleObject;
    const out = Buffer.allocUnsafe(CONFLUENT_HEADER_LENGTH + singleObject.length - SINGLE_OBJECT_HEADER_LENGTH);
    out[0] = CONFLUENT_MAGIC;
    out.writeUInt32BE(id, 1);
    singleObject.copy(out, CONFLUENT_HEADER_LENGTH, SINGLE_OBJECT_HEADER_LENGTH);
    return out;
  }

  decode(bytes: Uint8Array): DecodedObject {
    if (bytes[0] !== CONFLUENT_MAGIC) return this.catalog.decode(bytes);
    if (bytes.length < CONFLUENT_HEADER_LENGTH) throw new DecodeError(`truncated Confluent header: ${bytes.length} bytes, need 5`);
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const id = buf.readUInt32BE(1);
    const writer = this.writers.get(id);
    if (writer === undefined || writer === 'unknown') {
      throw new UnknownSchemaError(`schema id ${id} is ${writer === 'unknown' ? 'not a schema of an event type this app declares' : 'not known to the schema registry'}`);
    }
    let result: { value: unknown; offset: number };
    try {
      result = writer.reader.decode(buf, CONFLUENT_HEADER_LENGTH, writer.resolver);
    } catch (err) {
      throw new DecodeError(`corrupt "${writer.name}" body: ${describeError(err)}`, { eventType: writer.name }, { cause: err });
    }
    if (result.offset !== buf.length) {
      throw new DecodeError(
        result.offset < 0 ? `truncated "${writer.name}" body` : `${buf.length - result.offset} trailing bytes after the "${writer.name}" body`,
        { eventType: writer.name },
      );
    }
    return { type: writer.reader, name: writer.name, value: result.value };
  }

  async prepare(values: ReadonlyArray<Buffer | null>): Promise<void> {
    const missing = new Set<number>();
    for (const value of values) {
      if (value && value.length >= CONFLUENT_HEADER_LENGTH && value[0] === CONFLUENT_MAGIC) {
        const id = value.readUInt32BE(1);
        if (!this.writers.has(id)) missing.add(id);
      }
    }
    for (const id of missing) {
      const text = await this.registry.schemaById(id);
      this.writers.set(id, text === undefined ? 'unknown' : this.writerEntry(text));
    }
  }

  private writerEntry(schemaText: string): WriterEntry | 'unknown' {
    let writer: Type;
    try {
      writer = parseEventType(JSON.parse(schemaText));
    } catch {
      return 'unknown';
    }
    const reader = this.catalog.typeByName(writer.name!);
    if (!reader) return 'unknown';
    try {
      const same = JSON.stringify(reader.schema()) === JSON.stringify(writer.schema());
      return { reader, name: writer.name!, resolver: same ? undefined : reader.createResolver(writer) };
    } catch {
      return 'unknown';
    }
  }
}
