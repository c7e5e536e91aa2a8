/**
 * Avro single-object encoding (Avro spec, "Single-object encoding"): `C3 01`, the writer schema's
 * 8-byte little-endian CRC-64-AVRO fingerprint, then the Avro binary body. Every event on the log
 * is framed this way, so a reader can tell which schema (and which event type) wrote it.
 */
import avsc from 'avsc';
import type { Schema, Type } from 'avsc';
import {
  AppDefinitionError,
  DecodeError,
  SchemaValidationError,
  UnknownEventTypeError,
  UnknownSchemaError,
  describeError,
} from '../errors.js';
import { crc64Avro } from './crc64-avro.js';
import { describeType, describeValue, formatPath } from './describe.js';

/** Length of the `C3 01` marker plus the 8-byte fingerprint. */
export const SINGLE_OBJECT_HEADER_LENGTH = 10;
const MAGIC_0 = 0xc3;
const MAGIC_1 = 0x01;

type Resolver = ReturnType<Type['createResolver']>;

/**
 * Parses an event type's schema. It must be a named record (event types are looked up by full
 * name). avsc's defaults are kept on purpose: `long` decodes to a JS number and avsc throws on
 * values beyond ±2^53 rather than losing precision; unions are unwrapped when unambiguous
 * (`["null","string"]` takes `null` / `"x"`) and wrapped otherwise (`{"int": 1}`).
 */
export function parseEventType(schema: Schema): Type {
  let type: Type;
  try {
    type = avsc.Type.isType(schema) ? (schema as Type) : avsc.Type.forSchema(schema);
  } catch (err) {
    throw new AppDefinitionError(`invalid Avro schema: ${describeError(err)}`, {}, { cause: err });
  }
  if (type.typeName !== 'record' || type.name === undefined) {
    throw new AppDefinitionError(
      `an event type must be a named Avro record, got ${type.name ?? type.typeName}`,
      { eventType: type.name },
    );
  }
  return type;
}

/**
 * The schema's Parsing Canonical Form. avsc's `schema()` without options already is it: full
 * names, no namespace/doc/aliases/defaults/order/logicalType, attributes in canonical order, no
 * whitespace (checked against Avro's schema-tests.txt in the tests).
 */
export function canonicalForm(type: Type): string {
  return JSON.stringify(type.schema());
}

const fingerprints = new WeakMap<Type, Buffer>();

/** 8-byte little-endian CRC-64-AVRO fingerprint of the type's Parsing Canonical Form. */
export function fingerprint(type: Type): Buffer {
  let fp = fingerprints.get(type);
  if (fp === undefined) {
    fp = Buffer.allocUnsafe(8);
    fp.writeBigUInt64LE(crc64Avro(Buffer.from(canonicalForm(type), 'utf8')));
    fingerprints.set(type, fp);
  }
  return Buffer.from(fp); // callers may mutate; the cache must not change
}

/** True when `bytes` starts with the single-object marker and is long enough for the header. */
export function isSingleObject(bytes: Uint8Array): boolean {
  return bytes.length >= SINGLE_OBJECT_HEADER_LENGTH && bytes[0] === MAGIC_0 && bytes[1] === MAGIC_1;
}

/** Fingerprint as 16 hex digits of the unsigned 64-bit value (the wire holds it little-endian). */
function hexOf(bytes: Uint8Array, offset: number): string {
  let hex = '';
  for (let i = offset + 7; i >= offset; i--) hex += bytes[i]!.toString(16).padStart(2, '0');
  return hex;
}

function readUInt32LE(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0
  );
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A decoded single object: the catalog's (reader) type, its full name and the Avro value. */
export interface DecodedObject {
  readonly type: Type;
  readonly name: string;
  readonly value: unknown;
}

interface ReaderEntry {
  readonly type: Type;
  readonly name: string;
  /** `C3 01` + fingerprint, copied in front of every encoded body. */
  readonly header: Buffer;
  readonly hex: string;
}

interface FingerprintEntry {
  readonly reader: ReaderEntry;
  /** Set when the fingerprint is another writer schema that must be resolved into the reader's. */
  readonly resolver: Resolver | undefined;
  readonly hi: number;
  readonly lo: number;
}

// Shared encode buffer: bodies are written here once, then copied out behind their header.
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * The app's event types, by full name and by fingerprint. Encodes with the app's schema; decodes
 * the app's own schemas and any registered writer schemas (older or newer versions of an event
 * type), resolving them into the app's schema with Avro schema resolution.
 */
export class SchemaCatalog {
  private readonly byName = new Map<string, ReaderEntry>();
  // Keyed by the fingerprint's low 32 bits so lookups need no allocation; `hi` disambiguates.
  private readonly byFingerprint = new Map<number, FingerprintEntry[]>();

  constructor(types: Iterable<Type> = []) {
    for (const type of types) this.add(type);
  }

  /** Registers an event type (a named record). Adding the same schema twice is a no-op. */
  add(type: Type): void {
    const eventType = parseEventType(type);
    const name = eventType.name!;
    const fp = fingerprint(eventType);
    const existing = this.byName.get(name);
    if (existing !== undefined) {
      if (existing.header.subarray(2).equals(fp)) return;
      throw new AppDefinitionError(`event type "${name}" is registered twice with different schemas`, {
        eventType: name,
      });
    }
    const header = Buffer.concat([Buffer.from([MAGIC_0, MAGIC_1]), fp]);
    const reader: ReaderEntry = { type: eventType, name, header, hex: hexOf(fp, 0) };
    this.register(fp, reader, undefined);
    this.byName.set(name, reader);
  }

  /**
   * Registers another version of an event type's schema as a writer: records it wrote are
   * decoded into the catalog's type of the same full name (fields it lacks take their defaults,
   * fields the reader lacks are skipped). Returns the writer's fingerprint hex.
   */
  addWriterSchema(writer: Type | Schema): string {
    const writerType = parseEventType(writer);
    const name = writerType.name!;
    const reader = this.byName.get(name);
    if (reader === undefined) {
      throw new UnknownEventTypeError(`writer schema names event type "${name}", which the app does not declare`, {
        eventType: name,
      });
    }
    const fp = fingerprint(writerType);
    const hex = hexOf(fp, 0);
    if (hex === reader.hex) return hex;
    let resolver: Resolver;
    try {
      resolver = reader.type.createResolver(writerType);
    } catch (err) {
      throw new SchemaValidationError(
        `writer schema ${hex} of "${name}" cannot be read as the app's schema: ${describeError(err)}`,
        { eventType: name },
        { cause: err },
      );
    }
    this.register(fp, reader, resolver);
    return hex;
  }

  /** The event type with this full name, if registered. */
  typeByName(fullName: string): Type | undefined {
    return this.byName.get(fullName)?.type;
  }

  /** The event type's fingerprint as 16 hex digits of the unsigned 64-bit value. */
  fingerprintHex(fullName: string): string {
    return this.reader(fullName).hex;
  }

  /** Single-object encodes `value` as the named event type. */
  encode(fullName: string, value: unknown): Buffer {
    const reader = this.reader(fullName);
    let end: number;
    try {
      end = reader.type.encode(value, scratch, SINGLE_OBJECT_HEADER_LENGTH);
      if (end < 0) {
        // avsc reports how many bytes were missing; grow and write again.
        scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
        end = reader.type.encode(value, scratch, SINGLE_OBJECT_HEADER_LENGTH);
      }
    } catch (err) {
      throw invalidValue(reader, value, err);
    }
    const out = Buffer.allocUnsafe(end);
    reader.header.copy(out, 0);
    scratch.copy(out, SINGLE_OBJECT_HEADER_LENGTH, SINGLE_OBJECT_HEADER_LENGTH, end);
    return out;
  }

  /**
   * Decodes a single object. Throws `DecodeError` for a bad marker, a short header, or a body
   * that is corrupt, truncated or followed by extra bytes; `UnknownSchemaError` when no
   * registered schema has the fingerprint.
   */
  decode(bytes: Uint8Array): DecodedObject {
    if (bytes.length >= 2 && (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1)) {
      throw new DecodeError(
        `not an Avro single-object encoding: expected marker c3 01, got ${hexByte(bytes[0]!)} ${hexByte(bytes[1]!)}`,
      );
    }
    if (bytes.length < SINGLE_OBJECT_HEADER_LENGTH) {
      throw new DecodeError(
        `truncated single-object header: ${bytes.length} bytes, need ${SINGLE_OBJECT_HEADER_LENGTH}`,
      );
    }
    const entry = this.lookup(readUInt32LE(bytes, 6), readUInt32LE(bytes, 2));
    if (entry === undefined) {
      throw new UnknownSchemaError(
        `unknown schema fingerprint ${hexOf(bytes, 2)}: no event type or writer schema registered for it`,
      );
    }
    const { reader } = entry;
    const buf = asBuffer(bytes);
    let result: { value: unknown; offset: number };
    try {
      result = reader.type.decode(buf, SINGLE_OBJECT_HEADER_LENGTH, entry.resolver);
    } catch (err) {
      throw new DecodeError(`corrupt "${reader.name}" body: ${describeError(err)}`, { eventType: reader.name }, {
        cause: err,
      });
    }
    if (result.offset < 0) {
      throw new DecodeError(`truncated "${reader.name}" body (${buf.length} bytes in total)`, {
        eventType: reader.name,
      });
    }
    if (result.offset !== buf.length) {
      throw new DecodeError(`${buf.length - result.offset} trailing bytes after the "${reader.name}" body`, {
        eventType: reader.name,
      });
    }
    return { type: reader.type, name: reader.name, value: result.value };
  }

  private reader(fullName: string): ReaderEntry {
    const reader = this.byName.get(fullName);
    if (reader === undefined) {
      throw new UnknownEventTypeError(`unknown event type "${fullName}"`, { eventType: fullName });
    }
    return reader;
  }

  private register(fp: Buffer, reader: ReaderEntry, resolver: Resolver | undefined): void {
    const lo = fp.readUInt32LE(0);
    const hi = fp.readUInt32LE(4);
    const clash = this.lookup(hi, lo);
    if (clash !== undefined) {
      if (clash.reader === reader) return; // same writer schema registered again
      throw new AppDefinitionError(
        `fingerprint ${hexOf(fp, 0)} of "${reader.name}" is already used by "${clash.reader.name}"`,
        { eventType: reader.name },
      );
    }
    let bucket = this.byFingerprint.get(lo);
    if (bucket === undefined) this.byFingerprint.set(lo, (bucket = []));
    bucket.push({ reader, resolver, hi, lo });
  }

  private lookup(hi: number, lo: number): FingerprintEntry | undefined {
    const bucket = this.byFingerprint.get(lo);
    if (bucket === undefined) return undefined;
    for (const entry of bucket) if (entry.hi === hi) return entry;
    return undefined;
  }
}

function hexByte(b: number): string {
  return b.toString(16).padStart(2, '0');
}

/** Turns avsc's terse write error into one naming the offending field (slow path only). */
function invalidValue(reader: ReaderEntry, value: unknown, err: unknown): SchemaValidationError {
  let field: string | undefined;
  let detail = describeError(err);
  reader.type.isValid(value, {
    errorHook(path, val, type) {
      if (field !== undefined) return; // keep the first problem
      // avsc passes array indices as digit strings.
      field = formatPath(path.map((seg) => (/^\d+$/.test(seg) ? Number(seg) : seg)));
      detail = `expected ${describeType(type)}, got ${describeValue(val)}`;
    },
  });
  if (field === '') field = undefined; // the value itself, not one of its fields
  const where = field === undefined ? 'value' : `field "${field}"`;
  return new SchemaValidationError(`invalid "${reader.name}": ${where}: ${detail}`, { eventType: reader.name, field }, {
    cause: err,
  });
}
