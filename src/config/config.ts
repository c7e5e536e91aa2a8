import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { compileConfig, type Config } from './compile.js';
import { applyEnvironment, ENV_FIELDS, SETTINGS_PREFIX } from './env.js';
import { configFields, describeRange, type ConfigField } from './fields.js';
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
 * ConfigErrors naming the field and where its value came from. A variable replaces the file's
 * value, even an invalid one (that is a warning naming the file's field); empty variables of
 * number, boolean and list settings are errors, unknown `FARAD_*` variables are warnings.
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
  const beforeEnvironment = { raw, sources: sources.copy() };
  const applied = applyEnvironment(raw, options.env ?? process.env, sources, [...(options.settingNames ?? []), ...written]);
  const fields = validate(applied.raw, sources);
  const overridden = overriddenProblems(beforeEnvironment.raw, beforeEnvironment.sources, sources, applied.paths);
  return compileConfig(fields, [...applied.warnings, ...overridden, ...checkEffects(fields, sources)], sources.toRecord());
}

type Issue = z.core.$ZodIssue;

function validate(raw: Record<string, unknown>, sources: Sources): ConfigFields {
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const path = pathOf(issue);
    // An unknown key is reported at its parent's path; its own path says where it was written.
    const ownPath = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? (path ? `${path}.${issue.keys[0]}` : issue.keys[0]) : path;
    return `${describeIssue(issue, raw)} [from ${sources.of(ownPath) ?? 'configuration'}]`;
  });
  const message = problems.length === 1 ? `invalid configuration: ${problems[0]!}` : `invalid configuration (${problems.length} problems):\n  ${problems.join('\n  ')}`;
  throw new ConfigError(message, { field: parsed.error.issues[0]?.path.map(String).join('.') });
}

/**
 * Warnings for invalid values of the file (or overrides) that a variable replaced: start-up goes
 * on with the variable's value, but the file still holds a mistake.
 */
function overriddenProblems(raw: Record<string, unknown>, before: Sources, after: Sources, paths: readonly string[]): string[] {
  if (paths.length === 0) return [];
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return [];
  const warnings: string[] = [];
  for (const issue of parsed.error.issues) {
    const path = pathOf(issue);
    const by = paths.find((p) => p === path || p.startsWith(`${path}.`) || path.startsWith(`${p}.`));
    const source = before.of(path);
    if (by === undefined || source === undefined) continue;
    warnings.push(`${describeIssue(issue, raw)} [from ${source}] has no effect: ${after.of(by) ?? by} replaces it. Fix or remove it there`);
  }
  return warnings;
}

function pathOf(issue: Issue): string {
  return issue.path.map(String).join('.');
}

/** Leaf settings by path, to describe their problems in their own terms. */
const FIELDS_BY_PATH: ReadonlyMap<string, ConfigField> = new Map(configFields().map((f) => [f.path, f]));

/** `path: what is wrong, and what to write instead`, without the source. */
function describeIssue(issue: Issue, raw: Record<string, unknown>): string {
  const path = pathOf(issue);
  if (issue.code === 'unrecognized_keys') return `${path || '(top level)'} (${issue.keys.join(', ')}): ${issue.message}`;
  const field = FIELDS_BY_PATH.get(path);
  const value = issue.path.reduce<unknown>((at, key) => (isMapping(at) ? at[String(key)] : undefined), raw);
  const own = field === undefined || issue.code === 'custom' ? undefined : describeBadValue(field, value);
  return `${path || '(top level)'}: ${own ?? issue.message}`;
}

/** What is wrong with `value` for a number, boolean or list field, or undefined to keep zod's message. */
function describeBadValue(field: ConfigField, value: unknown): string | undefined {
  const empty = typeof value === 'string' && (field.kind === 'list' ? value.split(',').every((item) => item.trim() === '') : value.trim() === '');
  if (empty && field.kind !== 'string') {
    const what = field.range ? describeRange(field.range) : field.kind === 'boolean' ? 'true or false' : field.kind === 'list' ? 'a comma-separated list' : 'a value';
    return `empty; unset it or give ${what}`;
  }
  if (field.kind === 'boolean' && typeof value !== 'boolean') return `${show(value)} is not a boolean; give true or false`;
  if (field.kind !== 'number' || field.range === undefined) return undefined;
  const range = field.range;
  const give = `give ${describeRange(range)}`;
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n)) return `${show(value)} is not a number; ${give}`;
  const outside = (range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max);
  if (range.integer && !Number.isInteger(n)) return `${show(value)} is not an integer; ${give}`;
  if (typeof value === 'string') {
    // Text that is an integer written otherwise (`1e9`, `0x10`, `1.0`): the environment takes digits only.
    const what = range.integer ? 'an integer' : 'a decimal number';
    return outside ? `${show(value)} is not written as ${what}, and ${n} is out of range; ${give}` : `${show(value)} is not written as ${what}; write ${n}`;
  }
  return outside ? `${n} is out of range; ${give}` : undefined;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : value === undefined ? 'nothing' : JSON.stringify(value) ?? String(value);
}

/** Names of all environment variables farad reads, for docs and `--help`. */
export function environmentVariables(): string[] {
  return [...ENV_FIELDS.map((f) => f.name), `${SETTINGS_PREFIX}<NAME>`];
}
