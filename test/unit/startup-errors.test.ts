/**
 * OS errors at start caused by a setting (an address that cannot be listened on, a data
 * directory that is a file) become one-line ConfigErrors naming the setting and its source.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { dataDirError, listenError, loadConfig, settingSource } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'farad-startup-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An error as Node reports it for a system call. */
function errno(code: string, extra: Record<string, unknown> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: something`), { code, ...extra });
}

/** The OS error `run` throws. */
function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  assert.fail('expected an error');
}

describe('settingSource', () => {
  it('names the environment variable, the file, or the default', () => {
    const file = join(dir, 'farad.yaml');
    writeFileSync(file, 'http:\n  host: 127.0.0.1\n');
    const config = loadConfig({ file, env: { FARAD_HTTP_PORT: '81' } });
    assert.equal(settingSource(config, 'http.port'), 'environment variable FARAD_HTTP_PORT');
    assert.equal(settingSource(config, 'http.host'), `config file ${file}`);
    assert.equal(settingSource(config, 'dataDir'), 'the default');
  });
});

describe('listenError', () => {
  const config = loadConfig({ env: { FARAD_HTTP_HOST: 'nowhere.invalid', FARAD_HTTP_PORT: '80' } });

  it('names http.host and its variable for an address that does not resolve or is not this machine', () => {
    for (const code of ['ENOTFOUND', 'EAI_AGAIN']) {
      const err = listenError(errno(code, { syscall: 'getaddrinfo', hostname: 'nowhere.invalid' }), config);
      assert.ok(err instanceof ConfigError);
      assert.equal(err.context.field, 'http.host');
      assert.equal(
        err.message,
        `http.host "nowhere.invalid" [from environment variable FARAD_HTTP_HOST] does not resolve to an address (${code}); set FARAD_HTTP_HOST (or http.host) to an address of this machine, such as 0.0.0.0 (every interface) or 127.0.0.1`,
      );
    }
    const notHere = listenError(errno('EADDRNOTAVAIL', { syscall: 'listen' }), config);
    assert.equal(notHere?.context.field, 'http.host');
    assert.match(notHere!.message, /^http\.host "nowhere\.invalid" \[from environment variable FARAD_HTTP_HOST\] is not an address of this machine \(EADDRNOTAVAIL\)/);
  });

  it('names http.port for a port in use or not allowed', () => {
    const inUse = listenError(errno('EADDRINUSE'), config);
    assert.equal(inUse?.context.field, 'http.port');
    assert.equal(inUse!.message, 'http.port 80 [from environment variable FARAD_HTTP_PORT]: the port is in use on nowhere.invalid; set FARAD_HTTP_PORT (or http.port) to a free port');
    assert.match(listenError(errno('EACCES'), config)!.message, /^http\.port 80 \[from environment variable FARAD_HTTP_PORT\]: not allowed to listen on this port/);
  });

  it('leaves other errors alone', () => {
    assert.equal(listenError(new Error('boom'), config), undefined);
    assert.equal(listenError(errno('ECONNRESET'), config), undefined);
    assert.equal(listenError('text', config), undefined);
  });
});

describe('dataDirError', () => {
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'x');

  it('names dataDir and its source when the directory is a file', () => {
    const config = loadConfig({ env: { FARAD_DATA_DIR: aFile } });
    const err = dataDirError(thrown(() => mkdirSync(aFile, { recursive: true })), config);
    assert.ok(err instanceof ConfigError);
    assert.equal(err.context.field, 'dataDir');
    assert.equal(
      err.message,
      `dataDir ${JSON.stringify(aFile)} [from environment variable FARAD_DATA_DIR] cannot be used as the data directory: it is a file, not a directory; set FARAD_DATA_DIR (or dataDir) to a directory farad can create and write`,
    );
  });

  it('names dataDir when a directory above it is a file, or a file inside cannot be opened', () => {
    const below = join(aFile, 'data');
    const file = join(dir, 'farad.yaml');
    writeFileSync(file, `dataDir: ${below}\n`);
    const config = loadConfig({ file, env: {} });
    const err = dataDirError(thrown(() => mkdirSync(below, { recursive: true })), config);
    assert.match(err!.message, new RegExp(`^dataDir ".*a-file/data" \\[from config file ${file.replace(/[.]/g, '\\.')}\\] cannot be used as the data directory: it, or a directory above it, is a file;`));
    const inside = dataDirError(errno('ENOTDIR', { syscall: 'open', path: join(below, 'LOCK') }), config);
    assert.match(inside!.message, /is a file \(open .*a-file\/data\/LOCK\);/);
  });

  it('leaves errors about other paths, other codes and the kafka transport alone', () => {
    const config = loadConfig({ env: { FARAD_DATA_DIR: join(dir, 'data') } });
    mkdirSync(join(dir, 'data'), { recursive: true });
    assert.equal(dataDirError(errno('ENOTDIR', { path: '/elsewhere' }), config), undefined);
    assert.equal(dataDirError(errno('ENOSPC', { path: join(dir, 'data', 'journal') }), config), undefined);
    assert.equal(dataDirError(errno('EEXIST', { path: join(dir, 'data', 'LOCK') }), config), undefined);
    assert.equal(dataDirError(new Error('boom'), config), undefined);
    const kafka = loadConfig({ env: { FARAD_TRANSPORT: 'kafka' } });
    assert.equal(dataDirError(errno('ENOTDIR', { path: kafka.dataDir }), kafka), undefined);
  });
});
