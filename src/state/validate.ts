import type avro from 'avsc';

export interface Invalid {
  /** Path of the first bad field, e.g. `address.zip` or `items[2]`; empty for the value itself. */
  readonly field: string;
  readonly message: string;
}

/**
 * Why `value` does not fit `type`, naming the first bad field; undefined when it fits. Strings
 * (map keys included) must be well-formed Unicode: UTF-8 cannot encode a lone surrogate, so the
 * changelog would hold U+FFFD instead and a restored or standby copy would differ.
 */
export function describeInvalid(type: avro.Type, value: unknown): Invalid | undefined {
  return describeMismatch(type, value) ?? describeNonUnicode(type, value);
}

const STRICT = { noUndeclaredFields: true };

/**
 * True when `value` fits `type` as describeInvalid defines it. The check on every write: no
 * closure or path is built unless it fails (then describeInvalid says why).
 */
export function fitsSchema(type: avro.Type, value: unknown): boolean {
  return type.isValid(value, STRICT) && compileUnicodeCheck(type)(value) === undefined;
}

function describeMismatch(type: avro.Type, value: unknown): Invalid | undefined {
  let first: Invalid | undefined;
  const ok = type.isValid(value, {
    // A field the schema does not declare would live in memory but vanish from the changelog,
    // so a restored or standby copy would differ from the active one.
    noUndeclaredFields: true,
    errorHook(path: string[], bad: unknown, badType: avro.Type) {
      if (first) return;
      if (badType.typeName === 'record' && bad !== null && typeof bad === 'object') {
        const declared = new Set((badType as unknown as { fields: Array<{ name: string }> }).fields.map((f) => f.name));
        const extra = Object.keys(bad).filter((k) => !declared.has(k));
        if (extra.length > 0) {
          const at = fieldPath(path);
          const field = at ? `${at}.${extra[0]}` : extra[0]!;
          first = { field, message: `field "${field}" is not in schema ${badType.name ?? 'record'}` };
          return;
        }
      }
      const field = fieldPath(path);
      const expected = badType.typeName === 'record' || badType.typeName === 'enum' ? `${badType.typeName} ${badType.name ?? ''}`.trim() : badType.typeName;
      const got = bad === undefined ? 'nothing (missing)' : `${typeof bad} ${truncate(JSON.stringify(bad) ?? String(bad))}`;
      first = { field, message: `${field ? `field "${field}"` : 'value'}: expected ${expected}, got ${got}` };
    },
  });
  if (ok) return undefined;
  return first ?? { field: '', message: `value does not match schema ${type.name ?? type.typeName}` };
}

/** The first string of a valid `value` that holds a lone surrogate, or undefined (compiled per type: cheap). */
export function describeNonUnicode(type: avro.Type, value: unknown): Invalid | undefined {
  const found = compileUnicodeCheck(type)(value);
  if (found === undefined) return undefined;
  const field = formatSegments(found.path.reverse());
  const what = found.mapKey ? 'map key' : 'string';
  return { field, message: `${field ? `field "${field}"` : 'value'}: ${what} ${JSON.stringify(found.text)} ${LONE_SURROGATE_REASON}` };
}

const LONE_SURROGATE_REASON = 'holds a lone surrogate, which is not Unicode text and cannot be encoded as UTF-8 (the changelog would hold U+FFFD instead)';
/** With the `u` flag a surrogate pair is one code point: only lone surrogates match. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Where a lone surrogate was found: path innermost-first (collected while unwinding). */
interface NonUnicode {
  readonly path: Array<string | number>;
  readonly text: string;
  readonly mapKey: boolean;
}
type UnicodeCheck = (value: unknown) => NonUnicode | undefined;

const NO_STRINGS: UnicodeCheck = () => undefined;
const unicodeChecks = new WeakMap<avro.Type, UnicodeCheck>();

/**
 * A check of every string in a value of `type` (assumed valid), compiled once per type; types
 * that hold no strings (numbers, enums, bytes) get a check that does nothing.
 */
function compileUnicodeCheck(type: avro.Type): UnicodeCheck {
  const cached = unicodeChecks.get(type);
  if (cached !== undefined) return cached;
  if (type.typeName === 'record' || type.typeName === 'error') {
    // Records may be recursive: publish a forwarding stub before compiling the fields.
    let impl: UnicodeCheck | undefined;
    unicodeChecks.set(type, (value) => impl!(value));
    impl = recordUnicodeCheck(type as unknown as { fields: ReadonlyArray<{ name: string; type: avro.Type }> });
    unicodeChecks.set(type, impl);
    return impl;
  }
  const check = buildUnicodeCheck(type);
  unicodeChecks.set(type, check);
  return check;
}

function buildUnicodeCheck(type: avro.Type): UnicodeCheck {
  switch (type.typeName) {
    case 'string':
      return (value) => (typeof value === 'string' && LONE_SURROGATE.test(value) ? { path: [], text: value, mapKey: false } : undefined);
    case 'array': {
      const items = compileUnicodeCheck((type as unknown as { itemsType: avro.Type }).itemsType);
      if (items === NO_STRINGS) return NO_STRINGS;
      return (value) => {
        const list = value as readonly unknown[];
        for (let i = 0; i < list.length; i++) {
          const found = items(list[i]);
          if (found) return within(found, i);
        }
        return undefined;
      };
    }
    case 'map': {
      const values = compileUnicodeCheck((type as unknown as { valuesType: avro.Type }).valuesType);
      return (value) => {
        const map = value as Record<string, unknown>;
        for (const key of Object.keys(map)) {
          if (LONE_SURROGATE.test(key)) return { path: [key], text: key, mapKey: true };
          const found = values(map[key]);
          if (found) return within(found, key);
        }
        return undefined;
      };
    }
    case 'union:unwrapped': {
      // avsc allows one branch per kind of value, so the value's kind picks the branch.
      const checks = (type as unknown as { types: readonly avro.Type[] }).types.map((t) => ({ matches: (v: unknown) => t.isValid(v), check: compileUnicodeCheck(t) }));
      const live = checks.filter((c) => c.check !== NO_STRINGS);
      if (live.length === 0) return NO_STRINGS;
      return (value) => live.find((c) => c.matches(value))?.check(value);
    }
    case 'union:wrapped': {
      const byBranch = new Map<string, UnicodeCheck>();
      for (const t of (type as unknown as { types: readonly avro.Type[] }).types) {
        const check = compileUnicodeCheck(t);
        if (check !== NO_STRINGS) byBranch.set(t.branchName!, check);
      }
      if (byBranch.size === 0) return NO_STRINGS;
      return (value) => {
        if (value === null || typeof value !== 'object') return undefined;
        for (const [branch, inner] of Object.entries(value)) {
          const found = byBranch.get(branch)?.(inner);
          if (found) return within(found, branch);
        }
        return undefined;
      };
    }
    default:
      return NO_STRINGS; // null, boolean, numbers, enum (symbols are names), bytes, fixed
  }
}

function recordUnicodeCheck(type: { fields: ReadonlyArray<{ name: string; type: avro.Type }> }): UnicodeCheck {
  const fields = type.fields.map((f) => ({ name: f.name, check: compileUnicodeCheck(f.type) })).filter((f) => f.check !== NO_STRINGS);
  if (fields.length === 0) return NO_STRINGS;
  return (value) => {
    const record = value as Record<string, unknown>;
    for (const field of fields) {
      const found = field.check(record[field.name]);
      if (found) return within(found, field.name);
    }
    return undefined;
  };
}

function within(found: NonUnicode, segment: string | number): NonUnicode {
  found.path.push(segment);
  return found;
}

/** Path segments as `a.b[2].c`; map keys that are not identifiers as `tags["a key"]`. */
function formatSegments(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += `[${JSON.stringify(seg)}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** avsc's path parts as `a.b[2].c`. */
function fieldPath(path: readonly string[]): string {
  return path.reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export type TableKeyType = 'string' | 'int' | 'long';

/** Why a key does not fit its table's key type, or undefined when it fits. */
export function checkKey(keyType: TableKeyType, key: unknown): string | undefined {
  if (keyType === 'string') {
    if (typeof key !== 'string') return 'must be a string';
    // The changelog stores keys as UTF-8: a lone surrogate would come back as U+FFFD, another key.
    return LONE_SURROGATE.test(key) ? 'holds a lone surrogate, which is not Unicode text and cannot be encoded as UTF-8 (the changelog would hold U+FFFD instead)' : undefined;
  }
  if (typeof key !== 'number' || !Number.isSafeInteger(key)) return `must be an integer (${keyType})`;
  if (keyType === 'int' && (key < -2147483648 || key > 2147483647)) return 'is outside the int range';
  return undefined;
}

type Freezer = (value: unknown) => unknown;
const freezers = new WeakMap<avro.Type, Freezer>();

/**
 * deepFreeze for values of `type`, compiled once: a record whose fields hold no objects is one
 * `Object.freeze`, without looking at its values. Values must fit the type (rows are checked first).
 */
export function freezerFor(type: avro.Type): Freezer {
  const known = freezers.get(type);
  if (known) return known;
  let freezer: Freezer = deepFreeze;
  if (type.typeName === 'record' || type.typeName === 'error') {
    const fields = (type as unknown as { fields: ReadonlyArray<{ type: avro.Type }> }).fields;
    if (fields.every((f) => FLAT.has(f.type.typeName))) freezer = Object.freeze;
  } else if (FLAT.has(type.typeName)) {
    freezer = (value) => value;
  }
  freezers.set(type, freezer);
  return freezer;
}
/** Types whose values are never objects that could be changed (bytes and fixed are Buffers, which cannot be frozen). */
const FLAT = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'string', 'enum']);

/** Freezes a value and everything it holds, so table rows cannot change outside a put. */
export function deepFreeze<V>(value: V): V {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value) || ArrayBuffer.isView(value)) return value;
  Object.freeze(value);
  for (const inner of Object.values(value as object)) deepFreeze(inner);
  return value;
}
