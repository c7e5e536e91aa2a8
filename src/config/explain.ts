import { resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Config } from './compile.js';
import { envNameOf } from './env.js';

/**
 * Start-up failures the operating system reports about a configured address or directory, as
 * ConfigErrors that name the setting, where its value came from and what to do, in one line.
 */

type Sourced = Pick<Config, 'sources'>;

/** Where a setting's value came from: `environment variable FARAD_X`, `config file x.yaml`, `overrides` or `the default`. */
export function settingSource(config: Sourced, path: string): string {
  return config.sources[path] ?? 'the default';
}

/** `http.host "x" [from environment variable FARAD_HTTP_HOST]`. */
function named(config: Sourced, path: string, value: unknown): string {
  return `${path} ${JSON.stringify(value)} [from ${settingSource(config, path)}]`;
}

/** `set FARAD_HTTP_HOST (or http.host)`. */
function setIt(path: string): string {
  return `set ${envNameOf(path)} (or ${path})`;
}

function errnoOf(err: unknown): NodeJS.ErrnoException | undefined {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' ? (err as NodeJS.ErrnoException) : undefined;
}

const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);

/** Why the HTTP API cannot listen on `http.host`:`http.port`, or undefined for other errors. */
export function listenError(err: unknown, config: Pick<Config, 'http' | 'sources'>): ConfigError | undefined {
  const errno = errnoOf(err);
  if (errno === undefined) return undefined;
  const { host, port } = config.http;
  const code = errno.code!;
  const options = { cause: err };
  if (UNRESOLVED.has(code)) {
    return new ConfigError(
      `${named(config, 'http.host', host)} does not resolve to an address (${code}); ${setIt('http.host')} to an address of this machine, such as 0.0.0.0 (every interface) or 127.0.0.1`,
      { field: 'http.host' },
      options,
    );
  }
  if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT' || code === 'EINVAL') {
    return new ConfigError(
      `${named(config, 'http.host', host)} is not an address of this machine (${code}); ${setIt('http.host')} to one of its addresses, such as 0.0.0.0 (every interface) or 127.0.0.1`,
      { field: 'http.host' },
      options,
    );
  }
  if (code === 'EADDRINUSE') {
    return new ConfigError(`${named(config, 'http.port', port)}: the port is in use on ${host}; ${setIt('http.port')} to a free port`, { field: 'http.port' }, options);
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new ConfigError(
      `${named(config, 'http.port', port)}: not allowed to listen on this port (${code}; ports below 1024 need privileges); ${setIt('http.port')} to a port of 1024 or above`,
      { field: 'http.port' },
      options,
    );
  }
  return undefined;
}

/** What an errno of a data directory operation means, for people. */
const DATA_DIR_PROBLEMS: Readonly<Record<string, string>> = {
  ENOTDIR: 'it, or a directory above it, is a file',
  EEXIST: 'it is a file, not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
};

/**
 * Why the embedded log cannot use `dataDir` (it is a file, not writable, ...), or undefined when
 * `err` is not about that directory.
 */
export function dataDirError(err: unknown, config: Pick<Config, 'dataDir' | 'transport' | 'sources'>): ConfigError | undefined {
  const errno = errnoOf(err);
  if (errno === undefined || config.transport !== 'embedded' || errno.path === undefined) return undefined;
  const problem = DATA_DIR_PROBLEMS[errno.code!];
  const dir = resolve(config.dataDir);
  const path = resolve(errno.path);
  if (problem === undefined || (path !== dir && !path.startsWith(dir + sep))) return undefined;
  if (errno.code === 'EEXIST' && path !== dir) return undefined; // a file inside that exists is the log's business
  const at = path === dir ? '' : ` (${errno.syscall ?? 'using'} ${path})`;
  return new ConfigError(
    `${named(config, 'dataDir', config.dataDir)} cannot be used as the data directory: ${problem}${at}; ${setIt('dataDir')} to a directory farad can create and write`,
    { field: 'dataDir' },
    { cause: err },
  );
}
