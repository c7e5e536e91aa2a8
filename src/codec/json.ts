/**
 * JSON <-> Avro values, for HTTP ingest and responses.
 *
 * `fromJson` is strict (unknown fields, wrong types and out-of-range numbers are errors naming the
 * field) because its output goes straight onto the log. A converter is compiled once per avsc type
 * and cached, so ingest does one pass over the JSON with no schema interpretation.
 *
 * Mapping (close to Avro's JSON encoding, but unions may also be bare values):
 * - `string`: well-formed Unicode text. A lone surrogate (`"\ud800"` not followed by a low
 *   surrogate, or a stray low one) is an error: UTF-8 cannot encode it, so the log would hold
 *   U+FFFD instead and the handler, the partition key and the row keys would all differ from
 *   what was acknowledged. Map keys are checked too.
 * - `int`: integer in the int32 range; `long`: safe integer, or a decimal string of one (JSON
 *   clients that cannot send 64-bit numbers send strings). Longs stay JS numbers (avsc default).
 * - `float`/`double`: any JSON number.
 * - `bytes`/`fixed`: a string whose code points are U+0000..U+00FF, one per byte (latin1), as in
 *   Avro's JSON encoding; `fixed` must have exactly `size` of them.
 * - `enum`: one of the symbols. `array`/`map`: JSON array / object.
 * - record: JSON object; missing fields take the schema default, else are an error; unknown
 *   fields are an error.
 * - union: Avro's wrapped form `{"branch": value}` (one key naming a branch, full or short name),
 *   or a bare value matching exactly one branch (`null` for the null branch).
 * Logical types are not supported (farad does not register any).
 */
import type { Type, types } from 'avsc';
import { SchemaValidationError } from '../errors.js';
import { describeType, describeValue, formatPath } from './describe.js';

/**
 * Converts a parsed JSON value into a valid avsc value of `type`. Throws `SchemaValidationError`
 * whose message and `context.field` name the path of the first problem (`items[2].qty`).
 */
export function fromJson(type: Type, json: unknown, context?: { eventType?: string }): unknown {
  try {
    return compileFrom(type)(json);
  } catch (err) {
    if (!(err instanceof Problem)) throw err;
    const field = err.path.length === 0 ? undefined : formatPath(err.path.reverse());
    const message = field === undefined ? `value: ${err.detail}` : `field "${field}": ${err.detail}`;
    return throwValidation(message, field, context?.eventType ?? type.name);
  }
}

/**
 * Converts an avsc value of `type` into plain JSON: bytes/fixed as latin1 strings, unions as bare
 * values, records as plain objects. Assumes `value` is valid (e.g. it was decoded).
 */
export function toJson(type: Type, value: unknown): unknown {
  return compileTo(type)(value);
}

function throwValidation(message: string, field: string | undefined, eventType: string | undefined): never {
  throw new SchemaValidationError(message, { field, eventType });
}

/**
 * Thrown internally while converting. Not an Error: no stack trace is captured, and union
 * branch trials throw it routinely. The path is collected innermost-first while unwinding, so
 * the success path never builds path strings.
 */
class Problem {
  readonly path: Array<string | number> = [];
  /**
   * @param decisive no union branch can accept the value either (a lone surrogate: every branch
   *   that could take the text converts it), so branch trials report this problem as is.
   */
  constructor(
    readonly detail: string,
    readonly decisive = false,
  ) {}
}

function mismatch(expected: string, got: unknown): Problem {
  return new Problem(`expected ${expected}, got ${describeValue(got)}`);
}

/** Re-throws a nested problem with one more path segment. */
function within(err: unknown, segment: string | number): never {
  if (err instanceof Problem) err.path.push(segment);
  throw err;
}

type Converter = (value: unknown) => unknown;

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const DECIMAL = /^-?\d{1,16}$/;
const NON_LATIN1 = /[^\u0000-\u00ff]/;
/** With the `u` flag, a surrogate pair is one code point: only lone surrogates match. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Why `text` cannot be encoded as UTF-8 (it holds a lone surrogate), or undefined when it can. */
function loneSurrogate(text: string): string | undefined {
  const found = LONE_SURROGATE.exec(text);
  if (found === null) return undefined;
  const unit = found[0].charCodeAt(0).toString(16).toUpperCase();
  return `holds a lone surrogate (U+${unit} at index ${found.index}), which is not Unicode text and cannot be encoded as UTF-8; send well-formed text`;
}

function notUnicode(text: string): Problem {
  return new Problem(`string ${describeValue(text).slice('string '.length)} ${loneSurrogate(text)!}`, true);
}

function isObject(json: unknown): json is Record<string, unknown> {
  return typeof json === 'object' && json !== null && !Array.isArray(json);
}

/** Sets a property even when the key is `__proto__` (a valid map key and Avro name). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

const hasOwn = Object.prototype.hasOwnProperty;

// ---------------------------------------------------------------------------------------------
// JSON -> avsc

const fromCache = new WeakMap<Type, Converter>();

function compileFrom(type: Type): Converter {
  const cached = fromCache.get(type);
  if (cached !== undefined) return cached;
  if (type.typeName === 'record' || type.typeName === 'error') {
    // Records may be recursive: publish a forwarding stub before compiling the fields.
    let impl: Converter | undefined;
    fromCache.set(type, (json) => impl!(json));
    impl = recordFrom(type as types.RecordType);
    fromCache.set(type, impl);
    return impl;
  }
  const converter = buildFrom(type);
  fromCache.set(type, converter);
  return converter;
}

function buildFrom(type: Type): Converter {
  switch (type.typeName) {
    case 'null':
      return (json) => {
        if (json === null) return null;
        throw mismatch('null', json);
      };
    case 'boolean':
      return (json) => {
        if (typeof json === 'boolean') return json;
        throw mismatch('boolean', json);
      };
    case 'int':
      return (json) => {
        if (typeof json === 'number' && Number.isInteger(json) && json >= INT_MIN && json <= INT_MAX) return json;
        if (typeof json === 'number' && Number.isInteger(json)) throw mismatch('int (32-bit)', json);
        throw mismatch('int', json);
      };
    case 'long':
      return (json) => {
        if (typeof json === 'number' && Number.isSafeInteger(json)) return json;
        if (typeof json === 'string' && DECIMAL.test(json)) {
          const n = Number(json);
          if (Number.isSafeInteger(n)) return n === 0 ? 0 : n;
        }
        throw mismatch('long (integer within ±2^53-1, as a number or decimal string)', json);
      };
    case 'float':
    case 'double': {
      const name = type.typeName;
      return (json) => {
        if (typeof json === 'number') return json;
        throw mismatch(name, json);
      };
    }
    case 'string':
      return (json) => {
        if (typeof json !== 'string') throw mismatch('string', json);
        if (LONE_SURROGATE.test(json)) throw notUnicode(json);
        return json;
      };
    case 'bytes':
      return (json) => {
        if (typeof json === 'string' && !NON_LATIN1.test(json)) return Buffer.from(json, 'latin1');
        throw mismatch('bytes (a string of U+0000..U+00FF code points, one per byte)', json);
      };
    case 'fixed': {
      const { size } = type as types.FixedType;
      const label = `${describeType(type)} (a string of ${size} U+0000..U+00FF code points)`;
      return (json) => {
        if (typeof json === 'string' && json.length === size && !NON_LATIN1.test(json)) {
          return Buffer.from(json, 'latin1');
        }
        throw mismatch(label, json);
      };
    }
    case 'enum': {
      const symbols = new Set((type as types.EnumType).symbols);
      const label = `one of ${[...symbols].map((s) => JSON.stringify(s)).join(', ')} (${describeType(type)})`;
      return (json) => {
        if (typeof json === 'string' && symbols.has(json)) return json;
        throw mismatch(label, json);
      };
    }
    case 'array': {
      const items = compileFrom((type as types.ArrayType).itemsType);
      return (json) => {
        if (!Array.isArray(json)) throw mismatch('array', json);
        const out = new Array<unknown>(json.length);
        for (let i = 0; i < json.length; i++) {
          try {
            out[i] = items(json[i]);
          } catch (err) {
            within(err, i);
          }
        }
        return out;
      };
    }
    case 'map': {
      const values = compileFrom((type as types.MapType).valuesType as Type);
      return (json) => {
        if (!isObject(json)) throw mismatch('object (map)', json);
        const out: Record<string, unknown> = {};
        for (const key in json) {
          if (!hasOwn.call(json, key)) continue;
          if (LONE_SURROGATE.test(key)) {
            const problem = new Problem(`map key ${notUnicode(key).detail}`, true);
            problem.path.push(key);
            throw problem;
          }
          try {
            setOwn(out, key, values(json[key]));
          } catch (err) {
            within(err, key);
          }
        }
        return out;
      };
    }
    case 'union:unwrapped':
    case 'union:wrapped':
      return unionFrom(type as types.UnwrappedUnionType | types.WrappedUnionType);
    default:
      throw new TypeError(`the JSON codec does not support Avro type ${type.typeName}`);
  }
}

function recordFrom(type: types.RecordType): Converter {
  const fields = type.fields.map((field) => ({
    name: field.name,
    convert: compileFrom(field.type),
    // avsc returns undefined when the field has no default (a null default is null).
    hasDefault: field.defaultValue() !== undefined,
    defaultValue: () => field.defaultValue() as unknown,
    missing: `missing required field (${describeType(field.type)})`,
  }));
  const names = new Set(fields.map((f) => f.name));
  const known = fields.map((f) => f.name).join(', ');
  const label = `object (${describeType(type)})`;
  return (json) => {
    if (!isObject(json)) throw mismatch(label, json);
    // Unknown fields first: a misspelt field is reported as itself, not as a missing one.
    for (const key in json) {
      if (!names.has(key) && hasOwn.call(json, key)) {
        const problem = new Problem(`unknown field (${describeType(type)} has: ${known})`);
        problem.path.push(key);
        throw problem;
      }
    }
    const out: Record<string, unknown> = {};
    for (const field of fields) {
      const value = hasOwn.call(json, field.name) ? json[field.name] : undefined;
      if (value === undefined) {
        if (!field.hasDefault) {
          const problem = new Problem(field.missing);
          problem.path.push(field.name);
          throw problem;
        }
        setOwn(out, field.name, field.defaultValue());
        continue;
      }
      try {
        setOwn(out, field.name, field.convert(value));
      } catch (err) {
        within(err, field.name);
      }
    }
    return out;
  };
}

interface Branch {
  readonly type: Type;
  readonly name: string;
  readonly convert: Converter;
}

function unionFrom(type: types.UnwrappedUnionType | types.WrappedUnionType): Converter {
  const wrapped = type.typeName === 'union:wrapped';
  const branches: Branch[] = type.types.map((t) => ({ type: t, name: t.branchName!, convert: compileFrom(t) }));
  // Wrapped-form keys: full branch names, plus short names of namespaced types when unique.
  const byKey = new Map<string, Branch>();
  for (const b of branches) byKey.set(b.name, b);
  for (const b of branches) {
    const short = b.name.slice(b.name.lastIndexOf('.') + 1);
    if (short !== b.name && !byKey.has(short) && branches.filter((o) => o.name.endsWith(`.${short}`)).length === 1) {
      byKey.set(short, b);
    }
  }
  const hasNull = branches.some((b) => b.name === 'null');
  const nonNull = branches.filter((b) => b.name !== 'null');
  const label = `one of ${branches.map((b) => b.name).join(', ')}`;
  const wrap = (b: Branch, value: unknown): unknown => (wrapped ? { [b.name]: value } : value);

  const bare = (json: unknown): unknown => {
    // With a single candidate, convert directly so its own error (with the inner path) is
    // reported.
    if (nonNull.length === 1) return wrap(nonNull[0]!, nonNull[0]!.convert(json));
    let match: Branch | undefined;
    let value: unknown;
    const matches: string[] = [];
    for (const b of nonNull) {
      try {
        const v = b.convert(json);
        if (match === undefined) {
          match = b;
          value = v;
        }
        matches.push(b.name);
      } catch (err) {
        if (!(err instanceof Problem) || err.decisive) throw err;
      }
    }
    if (matches.length === 1) return wrap(match!, value);
    if (matches.length === 0) throw mismatch(label, json);
    throw new Problem(
      `ambiguous value ${describeValue(json)} matches ${matches.join(', ')}; ` +
        `use the wrapped form, e.g. {"${matches[0]}": ...}`,
    );
  };

  return (json) => {
    if (json === null) {
      if (hasNull) return null;
      throw mismatch(label, json);
    }
    const key = singleKey(json);
    const b = key === undefined ? undefined : byKey.get(key);
    if (b === undefined) return bare(json);
    // Looks like the wrapped form. A map or record with one key that happens to be a branch
    // name is still accepted as a bare value when the wrapped reading fails.
    const inner = (json as Record<string, unknown>)[key!];
    try {
      const v = b.convert(inner);
      return b.name === 'null' ? null : wrap(b, v);
    } catch (wrappedErr) {
      if (!(wrappedErr instanceof Problem) || wrappedErr.decisive) throw wrappedErr;
      try {
        return bare(json);
      } catch {
        throw wrappedErr;
      }
    }
  };
}

/** The only own key of a plain object, or undefined. */
function singleKey(json: unknown): string | undefined {
  if (!isObject(json)) return undefined;
  let only: string | undefined;
  for (const key in json) {
    if (!hasOwn.call(json, key)) continue;
    if (only !== undefined) return undefined;
    only = key;
  }
  return only;
}

// ---------------------------------------------------------------------------------------------
// avsc -> JSON

const toCache = new WeakMap<Type, Converter>();
const identity: Converter = (value) => value;

function compileTo(type: Type): Converter {
  const cached = toCache.get(type);
  if (cached !== undefined) return cached;
  if (type.typeName === 'record' || type.typeName === 'error') {
    let impl: Converter | undefined;
    toCache.set(type, (value) => impl!(value));
    impl = recordTo(type as types.RecordType);
    toCache.set(type, impl);
    return impl;
  }
  const converter = buildTo(type);
  toCache.set(type, converter);
  return converter;
}

function buildTo(type: Type): Converter {
  switch (type.typeName) {
    case 'bytes':
    case 'fixed':
      return (value) => (value as Buffer).toString('latin1');
    case 'array': {
      const items = compileTo((type as types.ArrayType).itemsType);
      if (items === identity) return identity;
      return (value) => (value as unknown[]).map(items);
    }
    case 'map': {
      const values = compileTo((type as types.MapType).valuesType as Type);
      if (values === identity) return identity;
      return (value) => {
        const out: Record<string, unknown> = {};
        const map = value as Record<string, unknown>;
        for (const key in map) if (hasOwn.call(map, key)) setOwn(out, key, values(map[key]));
        return out;
      };
    }
    case 'union:wrapped': {
      const byName = new Map<string, Converter>();
      for (const t of (type as types.WrappedUnionType).types) byName.set(t.branchName!, compileTo(t));
      return (value) => {
        if (value === null) return null;
        const wrapper = value as Record<string, unknown>;
        for (const key in wrapper) {
          if (!hasOwn.call(wrapper, key)) continue;
          const convert = byName.get(key);
          if (convert !== undefined) return convert(wrapper[key]);
        }
        return value;
      };
    }
    case 'union:unwrapped': {
      // avsc guarantees at most one branch per value "bucket", so the value's kind picks it.
      const byBucket = new Map<string, Converter>();
      for (const t of (type as types.UnwrappedUnionType).types) byBucket.set(typeBucket(t), compileTo(t));
      if ([...byBucket.values()].every((c) => c === identity)) return identity;
      return (value) => (byBucket.get(valueBucket(value)) ?? identity)(value);
    }
    default:
      return identity; // null, boolean, numbers, string, enum
  }
}

function recordTo(type: types.RecordType): Converter {
  const fields = type.fields.map((f) => ({ name: f.name, convert: compileTo(f.type) }));
  return (value) => {
    const record = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const field of fields) setOwn(out, field.name, field.convert(record[field.name]));
    return out;
  };
}

/** Same grouping as avsc's unwrapped unions. */
function typeBucket(type: Type): string {
  switch (type.typeName) {
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return 'number';
    case 'bytes':
    case 'fixed':
      return 'buffer';
    case 'enum':
      return 'string';
    case 'map':
    case 'record':
    case 'error':
      return 'object';
    default:
      return type.typeName;
  }
}

function valueBucket(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (Buffer.isBuffer(value)) return 'buffer';
  return typeof value;
}
