/**
 * Table schema evolution: which writer schemas of a table's rows the current (reader) schema can
 * resolve by Avro's rules, and, when it cannot, which field changed how.
 */
import avsc, { type Schema, type Type } from 'avsc';
import { describeType, formatPath } from './describe.js';
import { canonicalForm, fingerprint } from './single-object.js';

/** A table schema as farad registered it: the writer of some rows. */
export interface RegisteredSchema {
  readonly table: string;
  /** 1, 2, … in the order farad first saw each schema of the table. */
  readonly version: number;
  /** 16 hex digits of the CRC-64-AVRO fingerprint of its canonical form. */
  readonly fingerprint: string;
  readonly type: Type;
}

/** One schema registration as stored (the registry topic's value). */
export interface SchemaRecord {
  readonly table: string;
  readonly fingerprint: string;
  /** The full schema (with defaults and aliases). */
  readonly schema: Schema;
  /** Names the table had before (a rename), as the registering app declared them. */
  readonly formerly?: readonly string[];
}

/** Every schema registered per table, in registration order, and by fingerprint. */
export class SchemaBook {
  private readonly byTable = new Map<string, RegisteredSchema[]>();
  private readonly byFp = new Map<string, RegisteredSchema>();
  private readonly formerly = new Map<string, Set<string>>();

  constructor(records: readonly SchemaRecord[] = []) {
    for (const record of records) this.add(record);
  }

  /** Adds a registration unless its table already has that fingerprint; returns the entry. */
  add(record: SchemaRecord): RegisteredSchema {
    if (record.formerly?.length) {
      const names = this.formerly.get(record.table) ?? new Set<string>();
      for (const old of record.formerly) names.add(old);
      this.formerly.set(record.table, names);
    }
    const versions = this.byTable.get(record.table) ?? [];
    const known = versions.find((v) => v.fingerprint === record.fingerprint);
    if (known) return known;
    const entry: RegisteredSchema = {
      table: record.table,
      version: versions.length + 1,
      fingerprint: record.fingerprint,
      type: avsc.Type.forSchema(record.schema),
    };
    versions.push(entry);
    this.byTable.set(record.table, versions);
    this.byFp.set(`${record.table}\u0000${record.fingerprint}`, entry);
    return entry;
  }

  versions(table: string): readonly RegisteredSchema[] {
    return this.byTable.get(table) ?? [];
  }

  find(table: string, fingerprintHex: string): RegisteredSchema | undefined {
    return this.byFp.get(`${table}\u0000${fingerprintHex}`);
  }

  tables(): string[] {
    return [...this.byTable.keys()];
  }

  /** Names a registered table says it had before. */
  formerNamesOf(table: string): readonly string[] {
    return [...(this.formerly.get(table) ?? [])];
  }
}

/** The fingerprint farad files a table schema under (hex of the canonical form's CRC-64-AVRO). */
export function schemaFingerprint(type: Type): string {
  const fp = fingerprint(type);
  let hex = '';
  for (let i = 7; i >= 0; i--) hex += fp[i]!.toString(16).padStart(2, '0');
  return hex;
}

/** What a registry stores for a table's current schema (and its former names, if it was renamed). */
export function schemaRecordOf(table: string, type: Type, formerly: readonly string[] = []): SchemaRecord {
  return { table, fingerprint: schemaFingerprint(type), schema: type.schema({ exportAttrs: true }) as Schema, ...(formerly.length ? { formerly } : {}) };
}

/** Why rows of one schema cannot be read with another: the first field that differs incompatibly. */
export interface Incompatibility {
  /** Path of the field (`balance`, `address.zip`); empty for the value itself. */
  readonly field: string;
  /** The writer's type at that path, or `absent`. */
  readonly from: string;
  /** The reader's type at that path, or `absent`. */
  readonly to: string;
}

/** Undefined when Avro resolves `writer` into `reader`; otherwise the first field that stops it. */
export function incompatibility(writer: Type, reader: Type): Incompatibility | undefined {
  if (canonicalForm(writer) === canonicalForm(reader)) return undefined;
  try {
    reader.createResolver(writer);
    return undefined;
  } catch {
    return firstDifference(writer, reader, []) ?? { field: '', from: describeType(writer), to: describeType(reader) };
  }
}

function firstDifference(writer: Type, reader: Type, path: string[]): Incompatibility | undefined {
  const field = formatPath(path);
  if (writer.typeName === 'record' && reader.typeName === 'record') {
    const writerFields = (writer as avsc.types.RecordType).fields;
    for (const rf of (reader as avsc.types.RecordType).fields) {
      const names = [rf.name, ...rf.aliases];
      const wf = writerFields.find((f) => names.includes(f.name));
      if (!wf) {
        if (rf.defaultValue() === undefined) return { field: formatPath([...path, rf.name]), from: 'absent', to: `${describeType(rf.type)} without a default` };
        continue;
      }
      const inner = firstDifference(wf.type, rf.type, [...path, rf.name]);
      if (inner) return inner;
    }
    // Same fields resolve one by one: the record itself does not (its name, say).
    try {
      reader.createResolver(writer);
      return undefined;
    } catch {
      return { field, from: describeType(writer), to: describeType(reader) };
    }
  }
  try {
    reader.createResolver(writer);
    return undefined;
  } catch {
    return { field, from: describeType(writer), to: describeType(reader) };
  }
}
