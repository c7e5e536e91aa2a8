import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';

/** The settings of a YAML or JSON config file, not yet validated. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`config file ${file} must hold a mapping of settings`);
  return value as Record<string, unknown>;
}

/** True for a nested mapping of settings (not an array, not null). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A copy of `target` with `value` at `path`, creating mappings on the way. */
export function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  if (head === undefined) return target;
  if (rest.length === 0) return { ...target, [head]: value };
  const inner = target[head];
  return { ...target, [head]: setPath(isMapping(inner) ? inner : {}, rest, value) };
}

/** `over` deep-merged onto `base`; undefined values in `over` leave `base` as is. */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  let out = base;
  for (const [key, value] of Object.entries(over)) {
    if (isMapping(value)) {
      const inner = out[key];
      out = { ...out, [key]: merge(isMapping(inner) ? inner : {}, value) };
    } else if (value !== undefined) out = { ...out, [key]: value };
  }
  return out;
}
