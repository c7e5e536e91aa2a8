import { z } from 'zod';
import { configSchema } from './schema.js';

/** How a setting's value is written in the environment. `map` is `settings`: one variable per key. */
export type FieldKind = 'string' | 'number' | 'boolean' | 'list' | 'map';

/** One leaf of the config schema: a setting users can write. */
export interface ConfigField {
  /** Dotted path, e.g. `kafka.ssl.caFile`. */
  readonly path: string;
  readonly kind: FieldKind;
  /** The leaf's `.describe()` text; empty when missing (the settings table refuses that). */
  readonly description: string;
  /** The schema's default, or undefined when the field is optional. */
  readonly defaultValue: unknown;
  /** How the table shows a default that is not a constant (the host name, the app's own). */
  readonly shownDefault: string | undefined;
  /** For `number` fields: whether only integers are valid, and the bounds (undefined: none). */
  readonly range?: NumberRange;
}

/** The values a `number` field takes, as its zod schema says. */
export interface NumberRange {
  readonly integer: boolean;
  readonly min: number | undefined;
  readonly max: number | undefined;
}

/** `an integer from 0 to 65535`, `an integer of at least 1`, `a number`: what to write. */
export function describeRange(range: NumberRange): string {
  const what = range.integer ? 'an integer' : 'a number';
  const { min, max } = range;
  if (min !== undefined && max !== undefined) return `${what} from ${min} to ${max}`;
  if (min !== undefined) return `${what} of at least ${min}`;
  if (max !== undefined) return `${what} of at most ${max}`;
  return what;
}

type AnySchema = z.core.$ZodType;

/** Wrappers that hold a default or optionality around the leaf's own type. */
const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly']);

/** Every leaf of `schema`, in declaration order. Throws on a leaf type with no environment form. */
export function configFields(schema: AnySchema = configSchema): ConfigField[] {
  const out: ConfigField[] = [];
  walk(schema, [], out);
  return out;
}

function walk(schema: AnySchema, path: readonly string[], out: ConfigField[]): void {
  const meta: { description?: string; shownDefault?: string } = {};
  let defaultValue: unknown;
  let inner = schema;
  for (;;) {
    const found = z.globalRegistry.get(inner);
    meta.description ??= found?.description;
    if (typeof found?.['shownDefault'] === 'string') meta.shownDefault ??= found['shownDefault'];
    const def = inner._zod.def as { type: string; innerType?: AnySchema; defaultValue?: unknown };
    if (def.type === 'default' && defaultValue === undefined) defaultValue = def.defaultValue;
    if (!WRAPPERS.has(def.type) || !def.innerType) break;
    inner = def.innerType;
  }
  const def = inner._zod.def as { type: string; shape?: Record<string, AnySchema>; element?: AnySchema };
  if (def.type === 'object' && def.shape) {
    for (const [key, child] of Object.entries(def.shape)) walk(child, [...path, key], out);
    return;
  }
  out.push({
    path: path.join('.'),
    kind: kindOf(def, path),
    description: meta.description ?? '',
    defaultValue,
    shownDefault: meta.shownDefault,
    ...(def.type === 'number' ? { range: rangeOf(inner) } : {}),
  });
}

/** zod's `.int()` alone bounds a number to the safe integers: such bounds are not shown. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

function rangeOf(schema: AnySchema): NumberRange {
  const number = schema as unknown as { isInt?: boolean; minValue?: number | null; maxValue?: number | null };
  const bound = (value: number | null | undefined): number | undefined => (value === null || value === undefined || Math.abs(value) >= UNBOUNDED ? undefined : value);
  return { integer: number.isInt === true, min: bound(number.minValue), max: bound(number.maxValue) };
}

function kindOf(def: { type: string; element?: AnySchema }, path: readonly string[]): FieldKind {
  switch (def.type) {
    case 'string':
    case 'enum':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'record':
      return 'map';
    case 'array':
      if (def.element?._zod.def.type === 'string') return 'list';
  }
  // A new field type needs an environment form here, or it could not be set from the environment.
  throw new Error(`config field ${path.join('.')}: no environment form for a zod ${def.type}`);
}
