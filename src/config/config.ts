import { ConfigError } from '../errors.js';
import { compileConfig, type Config } from './compile.js';
import { applyEnvironment, ENV_FIELDS, SETTINGS_PREFIX } from './env.js';
import { checkEffects } from './no-effect.js';
import { isMapping, merge, readConfigFile } from './raw.js';
import { configSchema, type ConfigFields, type ConfigInput } from './schema.js';
import { Sources } from './sources.js';

/** Where {@link loadConfig} reads from. */
export interface LoadOptions {
  /** Path of a YAML or JSON config file. */
  file?: string | undefined;
  /** Environment to read `FARAD_*` variables from. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Values that win over the file but not over the environment (CLI flags, tests). */
  overrides?: ConfigInput;
  /**
   * The app's setting names, so `FARAD_SETTINGS_MAX_QPS` sets `maxQPS` (UPPER_SNAKE_CASE loses
   * case). Names the file or overrides set are known without this.
   */
  settingNames?: readonly string[];
}

/**
 * farad's configuration, in stages: what users write (defaults, then the config file, then
 * `overrides`, then `FARAD_*` environment variables, lowest first) → validated fields → the
 * compiled {@link Config}, with one options slice per component and the warnings to log at
 * start. Every setting has a variable: its path in UPPER_SNAKE_CASE (`http.bodyLimitBytes` →
 * `FARAD_HTTP_BODY_LIMIT_BYTES`); app settings are `FARAD_SETTINGS_<NAME>`. Errors are
 * ConfigErrors naming the field and where its value came from.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const sources = new Sources();
  let raw: Record<string, unknown> = {};
  if (options.file) {
    raw = readConfigFile(options.file);
    sources.markAll(raw, `config file ${options.file}`);
  }
  if (options.overrides) {
    const overrides = options.overrides as Record<string, unknown>;
    raw = merge(raw, overrides);
    sources.markAll(overrides, 'overrides');
  }
  const written = isMapping(raw['settings']) ? Object.keys(raw['settings']) : [];
  raw = applyEnvironment(raw, options.env ?? process.env, sources, [...(options.settingNames ?? []), ...written]);
  const fields = validate(raw, sources);
  return compileConfig(fields, checkEffects(fields, sources));
}

function validate(raw: Record<string, unknown>, sources: Sources): ConfigFields {
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const unknownKeys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
    // An unknown key is reported at its parent's path; its own path says where it was written.
    const ownPath = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? (path ? `${path}.${issue.keys[0]}` : issue.keys[0]) : path;
    const source = sources.of(ownPath) ?? 'configuration';
    return `${path || '(top level)'}${unknownKeys}: ${issue.message} [from ${source}]`;
  });
  throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`, { field: parsed.error.issues[0]?.path.map(String).join('.') });
}

/** Names of all environment variables farad reads, for docs and `--help`. */
export function environmentVariables(): string[] {
  return [...ENV_FIELDS.map((f) => f.name), `${SETTINGS_PREFIX}<NAME>`];
}
