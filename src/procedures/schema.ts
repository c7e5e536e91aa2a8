import avro from 'avsc';
import type { schema as AvroSchemas } from 'avsc';

/** An Avro schema as JSON (what `avsc.Type.forSchema` accepts). */
export type AvroSchema = AvroSchemas.AvroSchema;
export type RecordSchema = AvroSchemas.RecordType;

/**
 * An Avro schema tagged with the TypeScript type of its values. The tag exists only at compile
 * time; it lets `ctx.emit`, tables and handlers be typed from the app definition.
 */
export interface Typed<T, S extends AvroSchema = AvroSchema> {
  readonly schema: S;
  /** Compile-time only. */
  readonly __value?: T;
}

/** Tags an Avro record schema with its TypeScript value type: `record<Vote>({ type: 'record', ... })`. */
export function record<T>(schema: RecordSchema): Typed<T, RecordSchema> {
  return { schema };
}

/** Tags any Avro schema (for table values that are not records). */
export function schema<T>(s: AvroSchema): Typed<T> {
  return { schema: s };
}

export type ValueOf<S> = S extends Typed<infer T> ? T : never;

/** Parses a schema with the options farad uses everywhere (avsc defaults: `long` is a JS number). */
export function parseType(s: AvroSchema): avro.Type {
  return avro.Type.forSchema(s);
}
