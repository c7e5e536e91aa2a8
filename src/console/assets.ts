import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** One file of the console, ready to send. */
export interface Asset {
  readonly contentType: string;
  readonly body: string;
}

/** The files the console serves, by the name in `/console/assets/<name>`; the page itself is `index.html`. */
const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
};

/**
 * The console's page, style and script, from `src/console/web` (shipped in the package as
 * source). The script is the page's TypeScript bundled by esbuild on first request, kept in
 * memory: no build step, and nothing is fetched at run time.
 */
export class ConsoleAssets {
  private readonly loaded = new Map<string, Promise<Asset>>();

  /** @param dir where the files are (found next to this module when not given) */
  constructor(private dir?: string) {}

  /** The asset called `name`, or undefined when there is none. */
  get(name: string): Promise<Asset> | undefined {
    const contentType = FILES[name];
    if (!contentType) return undefined;
    let asset = this.loaded.get(name);
    if (!asset) {
      asset = this.load(name, contentType);
      // A failed load is tried again on the next request.
      asset.catch(() => this.loaded.delete(name));
      this.loaded.set(name, asset);
    }
    return asset;
  }

  private async load(name: string, contentType: string): Promise<Asset> {
    const dir = (this.dir ??= webDir());
    if (name !== 'app.js') return { contentType, body: await readFile(`${dir}/${name}`, 'utf8') };
    const bundled = await build({
      entryPoints: [`${dir}/main.ts`],
      bundle: true,
      format: 'esm',
      target: 'es2022',
      platform: 'browser',
      write: false,
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
    return { contentType, body: bundled.outputFiles[0]!.text };
  }
}

/** `src/console/web`, from this file in the checkout (run by tsx) or in `dist` (built). */
function webDir(): string {
  for (const relative of ['./web', '../../../src/console/web']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${dir}/main.ts`)) return dir;
  }
  throw new Error('the console\'s files (src/console/web) are missing from this installation of farad');
}
