import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppDefinitionError } from '../errors.js';
import type { App } from '../procedures/index.js';

const ENTRY_NAMES = ['index.ts', 'index.js', 'app.ts', 'app.js', 'index.mts', 'index.mjs'];

/** Finds an app's entry file: the path itself, or index/app .ts/.js inside a directory. */
export function resolveAppEntry(path: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new AppDefinitionError(`app path ${full} does not exist (--app)`);
  if (statSync(full).isFile()) return full;
  for (const name of ENTRY_NAMES) {
    const candidate = join(full, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new AppDefinitionError(`no app entry in ${full}: expected one of ${ENTRY_NAMES.join(', ')}`);
}

/** Imports an app module (TypeScript apps are compiled on the fly) and returns its default export. */
export async function loadApp(path: string): Promise<App> {
  const entry = resolveAppEntry(path);
  if (/\.m?ts$/.test(entry)) {
    // No-op when already running under tsx; otherwise teaches Node to import TypeScript.
    const { register } = await import('tsx/esm/api');
    register();
  }
  const module = (await import(pathToFileURL(entry).href)) as { default?: unknown };
  const app = module.default;
  if (!app || typeof app !== 'object' || !('spec' in app)) {
    throw new AppDefinitionError(`${entry} must export default defineApp({...})`);
  }
  return app as App;
}
