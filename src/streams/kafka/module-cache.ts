/** Puts `exports` in the CommonJS module cache under `path`: whoever requires it later gets them. */
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function replaceModule(path: string, exports: unknown): void {
  const module = new Module(path);
  module.filename = path;
  module.loaded = true;
  module.exports = exports;
  require.cache[path] = module;
}
