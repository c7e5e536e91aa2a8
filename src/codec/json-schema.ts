/**
 * JSON Schemas (draft 2020-12, the dialect of OpenAPI 3.1) of Avro types, as farad's JSON mapping
 * (json.ts) reads and writes them:
 *
 * - `fromJson`: what `POST /events` accepts. A value is valid exactly when `fromJson` converts it
 *   (test/unit/openapi.test.ts checks that against a validator, value by value): strings
 *   well-formed Unicode, longs as safe integers or decimal strings of one, bytes and fixed as
 *   latin1 strings, records closed (`additionalProperties: false`) with the fields that have no
 *   default required, unions as a bare value of exactly one branch or Avro's wrapped
 *   `{"branch": value}`.
 * - `toJson`: what reads answer (rows, decoded records): every record field present, unions bare,
 *   longs numbers, NaN and infinities as null (JSON has no such numbers).
 *
 * Named types (records, enums, fixed) used more than once, recursive ones, and the roots asked for
 * become definitions referenced with `$ref`, so a recursive type does not loop. Pure: no I/O.
 */
import type { Type, types } from 'avsc';
import { toJson } from './json.js';

/** A JSON Schema object (annotations and keywords of draft 2020-12). */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** Which side of the JSON mapping a schema describes. */
export type JsonMapping = 'fromJson' | 'toJson';

export interface JsonSchemaOptions {
  readonly mapping: JsonMapping;
  /** Prefix of every `$ref` to a definition: `#/components/schemas/`. */
  readonly refBase: string;
  /** Suffix of every definition's name, to keep several mappings of one type apart (`-out`). */
  readonly nameSuffix?: string;
}

/** The schemas of some Avro types, and the named types they share. */
export interface JsonSchemaSet {
  /** The schema of each root, in the order given: a `$ref` for named types, else inline. */
  readonly roots: JsonSchema[];
  /** Definitions by name (the Avro full name, plus `-2`… when two different types share one, plus the suffix). */
  readonly definitions: Record<string, JsonSchema>;
}

const INT32 = { minimum: -2147483648, maximum: 2147483647 } as const;
const SAFE = { minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } as const;

/**
 * Well-formed UTF-16: no lone surrogate (json.ts refuses them: UTF-8 cannot encode them). Written
 * so that it means the same with and without the regular expression's `u` flag: a surrogate pair
 * is one code point with it, two code units matching the second branch without it.
 */
export const WELL_FORMED_TEXT = '^(?:[^\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])*$';
/** One byte per code point, U+0000..U+00FF (Avro's JSON encoding of bytes and fixed). */
export const LATIN1_TEXT = '^[\\u0000-\\u00FF]*$';
/** A decimal string of a safe integer (json.ts: at most 16 digits, |n| ≤ 2^53 - 1; leading zeros allowed). */
export const SAFE_DECIMAL = `^-?(?:\\d{1,15}|${atMost(String(Number.MAX_SAFE_INTEGER))})$`;

/** Alternatives matching the digit strings of `limit`'s length that are at most `limit`. */
function atMost(limit: string): string {
  const alternatives: string[] = [];
  for (let i = 0; i < limit.length; i++) {
    const digit = Number(limit[i]);
    const rest = limit.length - i - 1;
    if (digit > 0) alternatives.push(`${limit.slice(0, i)}[0-${digit - 1}]${rest > 0 ? `\\d{${rest}}` : ''}`);
  }
  alternatives.push(limit);
  return alternatives.join('|');
}

function isNamed(type: Type): boolean {
  return type.typeName === 'record' || type.typeName === 'error' || type.typeName === 'enum' || type.typeName === 'fixed';
}

function childrenOf(type: Type): Type[] {
  switch (type.typeName) {
    case 'record':
    case 'error':
      return (type as types.RecordType).fields.map((f) => f.type);
    case 'array':
      return [(type as types.ArrayType).itemsType];
    case 'map':
      return [(type as types.MapType).valuesType as Type];
    case 'union:wrapped':
    case 'union:unwrapped':
      return [...(type as types.UnwrappedUnionType).types];
    default:
      return [];
  }
}

/** The schemas of `roots` under one mapping, sharing definitions. */
export function jsonSchemasOf(roots: readonly Type[], options: JsonSchemaOptions): JsonSchemaSet {
  return new SchemaWriter(options).write(roots);
}

/**
 * Names the named types (one name per distinct definition: two separately parsed schemas may
 * hold the same type, or two different types of one name), counts their uses, then writes.
 */
class SchemaWriter {
  /** A named type's definition name, by its full name and definition. */
  private readonly names = new Map<string, string>();
  private readonly taken = new Set<string>();
  private readonly uses = new Map<string, number>();
  private readonly definitions: Record<string, JsonSchema> = {};
  private readonly written = new Set<string>();

  constructor(private readonly options: JsonSchemaOptions) {}

  write(roots: readonly Type[]): JsonSchemaSet {
    for (const root of roots) this.count(root);
    // Roots are definitions in any case: the caller refers to them by name.
    for (const root of roots) if (isNamed(root)) this.uses.set(this.nameOf(root), Number.POSITIVE_INFINITY);
    return { roots: roots.map((r) => this.schemaOf(r)), definitions: this.definitions };
  }

  private nameOf(type: Type): string {
    const identity = `${type.name!}\u0000${JSON.stringify(type.schema())}`;
    let name = this.names.get(identity);
    if (name === undefined) {
      const base = type.name!;
      name = `${base}${this.options.nameSuffix ?? ''}`;
      for (let n = 2; this.taken.has(name); n++) name = `${base}-${n}${this.options.nameSuffix ?? ''}`;
      this.names.set(identity, name);
      this.taken.add(name);
    }
    return name;
  }

  private count(type: Type): void {
    if (isNamed(type)) {
      const name = this.nameOf(type);
      const uses = (this.uses.get(name) ?? 0) + 1;
      this.uses.set(name, uses);
      // Seen before (a second use, or a recursive one): its children are counted already.
      if (uses > 1) return;
    }
    for (const child of childrenOf(type)) this.count(child);
  }

  private schemaOf(type: Type): JsonSchema {
    if (!isNamed(type)) return this.build(type);
    const name = this.nameOf(type);
    if ((this.uses.get(name) ?? 0) <= 1) return this.build(type);
    if (!this.written.has(name)) {
      // Marked before building, so a recursive use refers to it instead of building it again.
      this.written.add(name);
      this.definitions[name] = this.build(type);
    }
    return { $ref: `${this.options.refBase}${name}` };
  }

  private build(type: Type): JsonSchema {
    const reading = this.options.mapping === 'fromJson';
    const doc = type.doc === undefined ? {} : { description: type.doc };
    switch (type.typeName) {
      case 'null':
        return { type: 'null' };
      case 'boolean':
        return { type: 'boolean' };
      case 'int':
        return { type: 'integer', format: 'int32', ...INT32 };
      case 'long':
        if (!reading) return { type: 'integer', format: 'int64', ...SAFE };
        return {
          description: 'long: an integer within ±(2^53 - 1), as a number or a decimal string',
          anyOf: [
            { type: 'integer', format: 'int64', ...SAFE },
            { type: 'string', pattern: SAFE_DECIMAL },
          ],
        };
      case 'float':
      case 'double':
        if (reading) return { type: 'number', format: type.typeName };
        return { type: ['number', 'null'], format: type.typeName, description: `${type.typeName}: NaN and ±Infinity are shown as null` };
      case 'string':
        return reading ? { type: 'string', pattern: WELL_FORMED_TEXT } : { type: 'string' };
      case 'bytes':
        return { type: 'string', pattern: LATIN1_TEXT, description: 'bytes: one code point U+0000..U+00FF per byte (latin1)' };
      case 'fixed': {
        const { size } = type as types.FixedType;
        return {
          title: type.name,
          description: type.doc ?? `fixed: ${size} bytes, one code point U+0000..U+00FF each (latin1)`,
          type: 'string',
          minLength: size,
          maxLength: size,
          pattern: LATIN1_TEXT,
        };
      }
      case 'enum':
        return { title: type.name, ...doc, type: 'string', enum: [...(type as types.EnumType).symbols] };
      case 'array':
        return { type: 'array', items: this.schemaOf((type as types.ArrayType).itemsType) };
      case 'map': {
        const values = this.schemaOf((type as types.MapType).valuesType as Type);
        return reading ? { type: 'object', propertyNames: { pattern: WELL_FORMED_TEXT }, additionalProperties: values } : { type: 'object', additionalProperties: values };
      }
      case 'record':
      case 'error':
        return this.record(type as types.RecordType, doc);
      case 'union:wrapped':
      case 'union:unwrapped':
        return this.union(type as types.UnwrappedUnionType);
      default:
        throw new TypeError(`no JSON Schema for Avro type ${type.typeName}`);
    }
  }

  private record(type: types.RecordType, doc: JsonSchema): JsonSchema {
    const reading = this.options.mapping === 'fromJson';
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const field of type.fields) {
      const fieldDoc = (field as { doc?: string }).doc;
      const defaultValue: unknown = field.defaultValue();
      // avsc gives undefined when the field has no default (json.ts: then it is required).
      const hasDefault = defaultValue !== undefined;
      properties[field.name] = {
        ...this.schemaOf(field.type),
        ...(fieldDoc === undefined ? {} : { description: fieldDoc }),
        ...(reading && hasDefault ? { default: toJson(field.type, defaultValue) } : {}),
      };
      // toJson writes every field; fromJson fills in the defaults.
      if (!reading || !hasDefault) required.push(field.name);
    }
    return { title: type.name, ...doc, type: 'object', properties, required, additionalProperties: false };
  }

  /**
   * fromJson (json.ts `unionFrom`): null for a null branch; `{"branch": value}` with a branch's
   * full name, or the short name of a namespaced one when unique; else the bare value, which
   * exactly one non-null branch must accept (several: ambiguous, refused). toJson: bare.
   */
  private union(type: types.UnwrappedUnionType | types.WrappedUnionType): JsonSchema {
    const branches = type.types.map((t) => ({ type: t, name: t.branchName! }));
    const hasNull = branches.some((b) => b.name === 'null');
    const nonNull = branches.filter((b) => b.name !== 'null');
    if (this.options.mapping === 'toJson') {
      return { anyOf: [...(hasNull ? [{ type: 'null' }] : []), ...nonNull.map((b) => this.schemaOf(b.type))] };
    }
    const byKey = new Map<string, Type>();
    for (const b of branches) byKey.set(b.name, b.type);
    for (const b of branches) {
      const short = b.name.slice(b.name.lastIndexOf('.') + 1);
      if (short !== b.name && !byKey.has(short) && branches.filter((o) => o.name.endsWith(`.${short}`)).length === 1) byKey.set(short, b.type);
    }
    const bare = nonNull.length === 1 ? [this.schemaOf(nonNull[0]!.type)] : nonNull.length > 1 ? [{ oneOf: nonNull.map((b) => this.schemaOf(b.type)) }] : [];
    const wrapped = [...byKey].map(([key, t]) => ({
      type: 'object',
      properties: { [key]: this.schemaOf(t) },
      required: [key],
      additionalProperties: false,
    }));
    return {
      description: `union of ${branches.map((b) => b.name).join(', ')}: ${hasNull ? 'null, ' : ''}the bare value of one branch, or {"<branch>": value}`,
      anyOf: [...(hasNull ? [{ type: 'null' }] : []), ...bare, ...wrapped],
    };
  }
}
