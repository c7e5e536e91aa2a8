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

/**
 * Imports an app module and returns its default export. TypeScript apps are compiled on the fly,
 * as ES modules or CommonJS as their package.json says (`export default` either way).
 */
export async function loadApp(path: string): Promise<App> {
  const entry = resolveAppEntry(path);
  const url = pathToFileURL(entry).href;
  let module: { default?: unknown };
  try {
    module = /\.[mc]?ts$/.test(entry) ? ((await (await import('tsx/esm/api')).tsImport(url, import.meta.url)) as { default?: unknown }) : ((await import(url)) as { default?: unknown });
  } catch (err) {
    throw missingPackage(err, entry) ?? err;
  }
  let app = module.default;
  // A CommonJS module's `export default` arrives as `module.exports.default`.
  if (app && typeof app === 'object' && !('spec' in app) && 'default' in app) app = (app as { default: unknown }).default;
  if (!app || typeof app !== 'object' || !('spec' in app)) {
    throw new AppDefinitionError(`${entry} must export default defineApp({...})`);
  }
  return app as App;
}

/** An app that imports a package its directory does not have (farad itself, typically): say how to install it. */
function missingPackage(err: unknown, entry: string): AppDefinitionError | undefined {
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return undefined;
  const name = /Cannot find (?:package|module) '([^']+)'/.exec(String(message))?.[1];
  if (!name || name.startsWith('.') || name.startsWith('/')) return undefined;
  const pkg = name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : name.split('/')[0]!;
  return new AppDefinitionError(`${entry} imports '${name}', which is not installed where the app is: run \`npm install ${pkg}\` in the app's directory (an app needs farad as its own dependency, see the README's "Installing farad")`, {}, { cause: err });
}
