import { configFields, type FieldKind } from './fields.js';
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
    out.push({ path: field.path, name, kind: field.kind });
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

/**
 * Applies the `FARAD_*` variables of `env` to `raw`, recording each as the source of its path.
 * Empty variables are ignored. `settingNames` are the setting names known so far (the app's,
 * and those the file sets), for {@link settingNameOf}.
 */
export function applyEnvironment(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  sources: Sources,
  settingNames: Iterable<string>,
): Record<string, unknown> {
  let out = raw;
  for (const field of ENV_FIELDS) {
    const text = env[field.name];
    if (text === undefined || text === '') continue;
    out = setPath(out, field.path.split('.'), parseEnvValue(field.kind, text));
    sources.set(field.path, `environment variable ${field.name}`);
  }
  const known = [...settingNames];
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(SETTINGS_PREFIX) || text === undefined || text === '') continue;
    const key = settingNameOf(name.slice(SETTINGS_PREFIX.length), known);
    // Settings arrive as strings: the app's compile step coerces them to the default's type.
    out = setPath(out, ['settings', key], text);
    sources.set(`settings.${key}`, `environment variable ${name}`);
  }
  return out;
}

/** Text that does not parse as the field's type is passed on as is, so validation names it. */
function parseEnvValue(kind: EnvField['kind'], text: string): unknown {
  const trimmed = text.trim();
  switch (kind) {
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : text;
    case 'boolean':
      return trimmed === 'true' ? true : trimmed === 'false' ? false : text;
    case 'list':
      return trimmed
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    case 'string':
      return text;
  }
}
