import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { appSource, GITIGNORE, packageJson, readme, TEST_SOURCE, TSCONFIG, type TemplateValues } from './init-templates.js';

export interface InitOptions {
  /** The `farad` dependency to write: a version range, a tarball or a directory (default: this farad). */
  readonly farad?: string | undefined;
  /** App name (default: the directory's name). */
  readonly name?: string | undefined;
}

interface FaradPackage {
  readonly root: string;
  readonly version: string;
  readonly dependencies: Readonly<Record<string, string>>;
  readonly devDependencies: Readonly<Record<string, string>>;
}

/**
 * Scaffolds an app in `dir` (created if missing, refused if it has files): package.json with
 * farad as a dependency, tsconfig, an app of one event type and procedure, its test with
 * farad/testing, and a README of the commands. Returns the files written.
 */
export function initApp(dir: string, options: InitOptions = {}): string[] {
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).some((f) => f !== '.git')) {
    throw new ConfigError(`${target} is not empty: farad init writes a new app into an empty or new directory`);
  }
  const name = options.name ?? appNameOf(basename(target));
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) {
    throw new ConfigError(`"${name}" cannot name an app (letters, digits, _ and -, not starting with a digit or -): pass --name`);
  }
  const farad = faradPackage();
  const values: TemplateValues = {
    name,
    namespace: name.replace(/-/g, '_'),
    faradSpec: options.farad === undefined ? defaultSpec(farad) : dependencySpec(options.farad),
    versions: {
      tsx: farad.dependencies.tsx ?? '^4.0.0',
      typescript: farad.devDependencies.typescript ?? '^5.0.0',
      typesNode: farad.devDependencies['@types/node'] ?? '^22.0.0',
    },
  };
  const files: Array<[string, string]> = [
    ['package.json', packageJson(values)],
    ['tsconfig.json', TSCONFIG],
    ['index.ts', appSource(values)],
    ['index.test.ts', TEST_SOURCE],
    ['README.md', readme(values)],
    ['.gitignore', GITIGNORE],
  ];
  mkdirSync(target, { recursive: true });
  for (const [file, text] of files) writeFileSync(join(target, file), text, { flag: 'wx' });
  return files.map(([file]) => join(target, file));
}

/** A directory name made into an app name: `my app` → `my-app`. */
function appNameOf(dirName: string): string {
  const name = dirName.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[^A-Za-z_]+/, '');
  return name || 'app';
}

/** This farad's version when installed from a registry; a link to its directory when run from a checkout. */
function defaultSpec(farad: FaradPackage): string {
  return farad.root.split(/[\\/]/).includes('node_modules') ? `^${farad.version}` : `file:${farad.root}`;
}

/** A tarball or directory given by path becomes a `file:` spec npm resolves from the app's directory. */
function dependencySpec(spec: string): string {
  const looksLikePath = spec.startsWith('.') || spec.startsWith('/') || spec.endsWith('.tgz');
  return looksLikePath && !spec.includes(':') ? `file:${resolve(spec)}` : spec;
}

function faradPackage(): FaradPackage {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
      if (pkg.name === 'farad') return { root: dir, version: pkg.version ?? '0.0.0', dependencies: pkg.dependencies ?? {}, devDependencies: pkg.devDependencies ?? {} };
    }
    const parent = dirname(dir);
    if (parent === dir) throw new ConfigError('farad init cannot find farad\'s own package.json; reinstall farad');
    dir = parent;
  }
}

/** The lines `farad init` prints: what it wrote and the commands to go on with. */
export function nextSteps(dir: string, files: readonly string[]): string[] {
  return [
    `created ${files.length} files in ${resolve(dir)}:`,
    ...files.map((f) => `  ${relative(resolve(dir), f)}`),
    '',
    'next:',
    `  cd ${dir}`,
    '  npm install',
    '  npm test      # type-check and run index.test.ts with farad/testing',
    '  npm start     # run the app on the embedded log, HTTP on port 8080',
  ];
}
