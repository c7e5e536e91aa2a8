/**
 * JSON Schema of an event (as farad writes it from the Avro schema) → the fields of a form, and
 * each field's text → a JSON value or a message saying what is wrong. Pure: no DOM.
 *
 * Recognised shapes: strings (with pattern and length), enums, integers (Avro long is
 * `anyOf: [integer, decimal string]`), numbers, booleans, records (nested fields), and nullable
 * unions (`type: [x, "null"]`, or `anyOf` with `{type: "null"}`, where farad also lists each
 * branch wrapped as `{"branch": value}`). Arrays, maps and unions of several types are typed as JSON.
 */
import type { JsonSchema } from './openapi.js';

export type FieldSpec = (
  | { readonly kind: 'text'; readonly pattern?: string; readonly minLength?: number; readonly maxLength?: number }
  | { readonly kind: 'enum'; readonly symbols: readonly string[] }
  | { readonly kind: 'integer'; readonly minimum?: number; readonly maximum?: number }
  | { readonly kind: 'number' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'record'; readonly fields: readonly FieldEntry[] }
  | { readonly kind: 'json'; readonly expect: 'array' | 'object' | 'any' }
) & { readonly nullable: boolean; readonly description?: string };

export interface FieldEntry {
  readonly name: string;
  readonly spec: FieldSpec;
  /** A field with a default may be left out (the server fills the default in). */
  readonly required: boolean;
  readonly default?: unknown;
}

/** Records nested deeper than this (a recursive type) are typed as JSON. */
const MAX_DEPTH = 6;

export function fieldSpecOf(schema: JsonSchema, resolve: (s: JsonSchema) => JsonSchema, depth = 0): FieldSpec {
  const s = resolve(schema);
  const description = typeof s['description'] === 'string' ? { description: s['description'] } : {};
  const union = (s['anyOf'] ?? s['oneOf']) as unknown;
  if (Array.isArray(union)) return { ...unionSpec(union.map((b) => resolve(b as JsonSchema)), resolve, depth), ...description };
  const types = Array.isArray(s['type']) ? (s['type'] as unknown[]) : [s['type']];
  const nullable = types.includes('null');
  const nonNull = types.filter((t) => t !== 'null');
  const common = { nullable, ...description };
  if (Array.isArray(s['enum'])) return { kind: 'enum', symbols: (s['enum'] as unknown[]).filter((x): x is string => typeof x === 'string'), ...common };
  if (nonNull.length !== 1) return { kind: 'json', expect: 'any', ...common };
  switch (nonNull[0]) {
    case 'string':
      return { kind: 'text', ...numberKeyword(s, 'minLength'), ...numberKeyword(s, 'maxLength'), ...(typeof s['pattern'] === 'string' ? { pattern: s['pattern'] } : {}), ...common };
    case 'integer':
      return { kind: 'integer', ...numberKeyword(s, 'minimum'), ...numberKeyword(s, 'maximum'), ...common };
    case 'number':
      return { kind: 'number', ...common };
    case 'boolean':
      return { kind: 'boolean', ...common };
    case 'array':
      return { kind: 'json', expect: 'array', ...common };
    case 'object':
      if (typeof s['properties'] === 'object' && s['properties'] !== null && depth < MAX_DEPTH) return { kind: 'record', fields: fieldsOf(s, resolve, depth + 1), ...common };
      return { kind: 'json', expect: 'object', ...common };
    default:
      return { kind: 'json', expect: 'any', ...common };
  }
}

function fieldsOf(s: JsonSchema, resolve: (s: JsonSchema) => JsonSchema, depth: number): FieldEntry[] {
  const required = new Set(Array.isArray(s['required']) ? (s['required'] as unknown[]) : []);
  return Object.entries(s['properties'] as Record<string, JsonSchema>).map(([name, prop]) => {
    const resolved = resolve(prop);
    return {
      name,
      spec: fieldSpecOf(resolved, resolve, depth),
      required: required.has(name),
      ...('default' in resolved ? { default: resolved['default'] } : {}),
    };
  });
}

function unionSpec(branches: readonly JsonSchema[], resolve: (s: JsonSchema) => JsonSchema, depth: number): FieldSpec {
  const nullable = branches.some((b) => b['type'] === 'null');
  const values = branches.filter((b) => b['type'] !== 'null');
  const bare = values.filter((b) => !isWrapped(b, branches, resolve));
  // farad's long: a 64-bit integer, or the same as a decimal string.
  const integer = bare.find((b) => b['type'] === 'integer' && b['format'] === 'int64');
  const decimal = bare.find((b) => b['type'] === 'string' && typeof b['pattern'] === 'string' && b['pattern'].startsWith('^-?'));
  if (bare.length === 2 && integer !== undefined && decimal !== undefined) return { ...fieldSpecOf(integer, resolve, depth), nullable };
  if (bare.length !== 1) return { kind: 'json', expect: 'any', nullable };
  const spec = fieldSpecOf(bare[0]!, resolve, depth);
  // A nullable record has no place to say "null" in a fieldset: typed as JSON instead.
  if (nullable && spec.kind === 'record') return { kind: 'json', expect: 'object', nullable: true };
  return { ...spec, nullable: nullable || spec.nullable };
}

/** `{"branch": value}`: an object of one required property whose schema is another branch's. */
function isWrapped(candidate: JsonSchema, branches: readonly JsonSchema[], resolve: (s: JsonSchema) => JsonSchema): boolean {
  const props = candidate['properties'];
  const required = candidate['required'];
  if (candidate['type'] !== 'object' || typeof props !== 'object' || props === null || !Array.isArray(required) || required.length !== 1) return false;
  const wrapped = (props as Record<string, JsonSchema | undefined>)[String(required[0])];
  if (wrapped === undefined) return false;
  // Branches are compared resolved: a named type is a $ref in one place and inline in another.
  const inner = JSON.stringify(resolve(wrapped));
  const asBranch = (b: JsonSchema): boolean => b !== candidate && (JSON.stringify(b) === inner || (Array.isArray(b['oneOf']) && (b['oneOf'] as unknown[]).some((x) => JSON.stringify(x) === inner)));
  return branches.some(asBranch);
}

function numberKeyword<K extends string>(s: JsonSchema, key: K): { [P in K]?: number } {
  return typeof s[key] === 'number' ? ({ [key]: s[key] } as { [P in K]?: number }) : {};
}

// ---- values ------------------------------------------------------------------------------------

export type Parsed = { readonly ok: true; readonly value: unknown } | { readonly ok: true; readonly omit: true } | { readonly ok: false; readonly message: string };

/**
 * The value of one (non-record) field from its input's text. Empty means null when the field is
 * nullable, "leave it out" when it has a default, and is refused when the field is required.
 */
export function parseField(spec: FieldSpec, raw: string, required: boolean): Parsed {
  const text = spec.kind === 'text' ? raw : raw.trim();
  if (text === '') {
    if (spec.nullable) return { ok: true, value: null };
    if (!required) return { ok: true, omit: true };
    return { ok: false, message: 'required' };
  }
  switch (spec.kind) {
    case 'text':
      return parseText(spec, text);
    case 'enum':
      return spec.symbols.includes(text) ? { ok: true, value: text } : { ok: false, message: `one of ${spec.symbols.join(', ')}` };
    case 'integer': {
      if (!/^-?\d+$/.test(text)) return { ok: false, message: 'a whole number, like 42' };
      const n = Number(text);
      if (!Number.isSafeInteger(n)) return { ok: false, message: `at most ±${Number.MAX_SAFE_INTEGER}` };
      if (spec.minimum !== undefined && n < spec.minimum) return { ok: false, message: `at least ${spec.minimum}` };
      if (spec.maximum !== undefined && n > spec.maximum) return { ok: false, message: `at most ${spec.maximum}` };
      return { ok: true, value: n };
    }
    case 'number': {
      const n = Number(text);
      return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, message: 'a number, like 1.5' };
    }
    case 'boolean':
      return text === 'true' || text === 'false' ? { ok: true, value: text === 'true' } : { ok: false, message: 'true or false' };
    case 'json':
      return parseJson(spec.expect, text);
    case 'record':
      throw new Error('parseField: a record is read field by field');
  }
}

function parseText(spec: Extract<FieldSpec, { kind: 'text' }>, text: string): Parsed {
  const length = [...text].length;
  if (spec.minLength !== undefined && length < spec.minLength) return { ok: false, message: `at least ${spec.minLength} characters (has ${length})` };
  if (spec.maxLength !== undefined && length > spec.maxLength) return { ok: false, message: `at most ${spec.maxLength} characters (has ${length})` };
  if (spec.pattern !== undefined && !matches(spec.pattern, text)) return { ok: false, message: `does not match the pattern ${spec.pattern}` };
  return { ok: true, value: text };
}

function matches(pattern: string, text: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(text);
  } catch {
    // A pattern this browser cannot compile: the server checks it.
    return true;
  }
}

function parseJson(expect: 'array' | 'object' | 'any', text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (expect === 'array' && !Array.isArray(value)) return { ok: false, message: 'a JSON array, like [1, 2]' };
  if (expect === 'object' && (typeof value !== 'object' || value === null || Array.isArray(value))) return { ok: false, message: 'a JSON object, like {"a": 1}' };
  return { ok: true, value };
}

/** The text an input starts with: the field's default, if it has one. */
export function initialText(spec: FieldSpec, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (spec.kind === 'json') return JSON.stringify(value);
  return String(value);
}
