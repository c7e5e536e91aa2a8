import { configFields, type FieldKind, type NumberRange } from './fields.js';
import { setPath } from './raw.js';
import type { Sources } from './sources.js';

/** App settings are read from `FARAD_SETTINGS_<NAME>`, one variable per setting. */
export const SETTINGS_PREFIX = 'FARAD_SETTINGS_';

/**
 * A config path's environment variable: `FARAD_` + the path in UPPER_SNAKE_CASE. A run of
 * capitals is one word (`maxQPS` → `MAX_QPS`, `maxQPSLimit` → `MAX_QPS_LIMIT`); digits stay with
 * the word before them (`top10Limit` → `TOP10_LIMIT`).
 */
export function envNameOf(path: string): string {
  const words = path
    .replace(/\./g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2');
  return 'FARAD_' + words.toUpperCase();
}

/** A setting the environment can set: its path, variable and how to parse the text. */
export interface EnvField {
  readonly path: string;
  readonly name: string;
  readonly kind: Exclude<FieldKind, 'map'>;
  /** For `number` fields: integers only, and the bounds. */
  readonly range?: NumberRange | undefined;
}

/** Every settable leaf of the schema with its variable; fails at start-up if two names collide. */
export const ENV_FIELDS: readonly EnvField[] = deriveEnvFields();

function deriveEnvFields(): EnvField[] {
  const out: EnvField[] = [];
  const byName = new Map<string, string>();
  for (const field of configFields()) {
    if (field.kind === 'map') continue; // settings: one variable per key, below
    const name = envNameOf(field.path);
    const other = byName.get(name);
    if (other !== undefined) throw new Error(`config fields ${other} and ${field.path} both map to ${name}`);
    byName.set(name, field.path);
    out.push({ path: field.path, name, kind: field.kind, range: field.range });
  }
  return out;
}

/**
 * The app setting `FARAD_SETTINGS_<suffix>` sets. UPPER_SNAKE_CASE loses case, so a known name
 * whose variable matches wins (`MAX_QPS` → `maxQPS`); otherwise camelCase (`MAX_QPS` → `maxQps`).
 */
export function settingNameOf(suffix: string, known: Iterable<string>): string {
  const variable = SETTINGS_PREFIX + suffix;
  for (const name of known) if (envNameOf(`settings.${name}`) === variable) return name;
  return suffix.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** What {@link applyEnvironment} did. */
export interface AppliedEnvironment {
  /** The raw settings with the variables' values in place. */
  readonly raw: Record<string, unknown>;
  /** Paths a variable set (replacing what the file or overrides wrote there). */
  readonly paths: readonly string[];
  /** Variables that were read but change nothing (empty text settings, unknown names). */
  readonly warnings: readonly string[];
}

/**
 * Applies the `FARAD_*` variables of `env` to `raw`, recording each as the source of its path.
 * An empty variable of a text setting (or app setting) is ignored with a warning; an empty one
 * of a number, boolean or list setting is passed on, so validation refuses it ("empty"): it must
 * not silently mean the default. `settingNames` are the setting names known so far (the app's,
 * and those the file sets), for {@link settingNameOf}.
 */
export function applyEnvironment(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  sources: Sources,
  settingNames: Iterable<string>,
): AppliedEnvironment {
  let out = raw;
  const paths: string[] = [];
  const warnings: string[] = [];
  for (const field of ENV_FIELDS) {
    const text = env[field.name];
    if (text === undefined) continue;
    if (text.trim() === '' && field.kind === 'string') {
      warnings.push(emptyIgnored(field.name, field.path, sources));
      continue;
    }
    out = setPath(out, field.path.split('.'), parseEnvValue(field, text));
    sources.set(field.path, `environment variable ${field.name}`);
    paths.push(field.path);
  }
  const known = [...settingNames];
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(SETTINGS_PREFIX) || text === undefined) continue;
    const key = settingNameOf(name.slice(SETTINGS_PREFIX.length), known);
    if (text.trim() === '') {
      warnings.push(emptyIgnored(name, `settings.${key}`, sources));
      continue;
    }
    // Settings arrive as strings: the app's compile step coerces them to the default's type.
    out = setPath(out, ['settings', key], text);
    sources.set(`settings.${key}`, `environment variable ${name}`);
    paths.push(`settings.${key}`);
  }
  warnings.push(...unknownVariables(env));
  return { raw: out, paths, warnings };
}

function emptyIgnored(name: string, path: string, sources: Sources): string {
  const kept = sources.explicit(path);
  return `environment variable ${name} is empty and has no effect: ${path} keeps ${kept ? `its value from ${kept}` : 'its default'}. Unset it, or give it a value`;
}

/**
 * Text that does not parse as the field's type is passed on as is (empty text too), so
 * validation names it. Integers must be written as integers: `1e3` and `1.0` are refused, not
 * read as 1000 and 1.
 */
function parseEnvValue(field: EnvField, text: string): unknown {
  const trimmed = text.trim();
  switch (field.kind) {
    case 'number':
      return (field.range?.integer ? /^-?\d+$/ : /^-?\d+(\.\d+)?$/).test(trimmed) ? Number(trimmed) : text;
    case 'boolean':
      return trimmed === 'true' ? true : trimmed === 'false' ? false : text;
    case 'list': {
      const items = trimmed
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
      return items.length > 0 ? items : text;
    }
    case 'string':
      return text;
  }
}

/**
 * `FARAD_*` names that are not farad's settings but are read by others: app settings (one
 * variable per setting, any name), the test suite's, benchmarks' and demo's own knobs, and what
 * farad passes its own worker processes (FARAD_INTERNAL_*).
 */
const OTHER_PREFIXES = [SETTINGS_PREFIX, 'FARAD_TEST_', 'FARAD_BENCH_', 'FARAD_DEMO_', 'FARAD_INTERNAL_'];

/**
 * A warning for each `FARAD_*` variable that no setting reads (a typo such as `FARAD_HTTPPORT`),
 * naming the closest variable farad does read.
 */
export function unknownVariables(env: NodeJS.ProcessEnv): string[] {
  const known = new Set(ENV_FIELDS.map((f) => f.name));
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('FARAD_') || known.has(name) || OTHER_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    const closest = closestField(name);
    const hint = closest ? ` Did you mean ${closest.name} (${closest.path})?` : '';
    warnings.push(`environment variable ${name} has no effect: farad has no such setting.${hint} farad --help lists every variable`);
  }
  return warnings;
}

/** The setting whose variable is the fewest single-character edits away from `name`. */
function closestField(name: string): EnvField | undefined {
  let best: EnvField | undefined;
  let bestDistance = Infinity;
  for (const field of ENV_FIELDS) {
    const distance = editDistance(name, field.name);
    if (distance < bestDistance) {
      best = field;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: insertions, deletions and substitutions, one each. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitute);
    }
    previous = current;
  }
  return previous[b.length]!;
}
