import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { envNameOf, environmentVariables, loadConfig } from '../../src/config/index.js';
import { compileApp } from '../../src/procedures/index.js';
import voter from '../../examples/voter/index.js';

const dir = mkdtempSync(join(tmpdir(), 'farad-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes a config file into the test's temp directory and returns its path. */
function configFile(text: string, ext = 'yaml'): string {
  const file = join(dir, `config-${++fileCount}.${ext}`);
  writeFileSync(file, text);
  return file;
}

/** The ConfigError loadConfig throws for these options (fails the test if it does not throw one). */
function configError(options: Parameters<typeof loadConfig>[0]): ConfigError {
  try {
    loadConfig(options);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

const YAML = `
transport: embedded
dataDir: /var/lib/farad
commitIntervalMs: 250
maxBatchRecords: 500
logLevel: debug
http:
  port: 9000
  host: 127.0.0.1
  token: s3cret
settings:
  maxVotesPerPhone: 3
`;

describe('loadConfig: sources', () => {
  it('has documented defaults when there is no file and no environment', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.transport, 'embedded');
    assert.equal(config.dataDir, './data');
    assert.equal(config.commitIntervalMs, 100);
    assert.equal(config.maxBatchRecords, 10_000);
    assert.equal(config.retryBackoffMs, 200);
    assert.equal(config.logLevel, 'info');
    assert.deepEqual(config.http, { port: 8080, host: '0.0.0.0', bodyLimitBytes: 1_048_576 });
    assert.equal(config.http.token, undefined);
    assert.deepEqual(config.settings, {});
    assert.equal(config.instanceId, hostname());
  });

  it('reads a YAML file, keeping defaults for what it does not set', () => {
    const config = loadConfig({ file: configFile(YAML), env: {} });
    assert.equal(config.dataDir, '/var/lib/farad');
    assert.equal(config.commitIntervalMs, 250);
    assert.equal(config.maxBatchRecords, 500);
    assert.equal(config.logLevel, 'debug');
    assert.deepEqual(config.http, { port: 9000, host: '127.0.0.1', token: 's3cret', bodyLimitBytes: 1_048_576 });
    assert.deepEqual(config.settings, { maxVotesPerPhone: 3 });
    assert.equal(config.retryBackoffMs, 200, 'unset fields keep their defaults');
  });

  it('reads a JSON file', () => {
    const config = loadConfig({ file: configFile(JSON.stringify({ http: { port: 7000 }, commitIntervalMs: 5 }), 'json'), env: {} });
    assert.equal(config.http.port, 7000);
    assert.equal(config.http.host, '0.0.0.0');
    assert.equal(config.commitIntervalMs, 5);
  });

  it('treats an empty file as all defaults', () => {
    assert.deepEqual(loadConfig({ file: configFile(''), env: {} }), loadConfig({ env: {} }));
  });

  it('lets environment variables win over the file', () => {
    const config = loadConfig({
      file: configFile(YAML),
      env: {
        FARAD_HTTP_PORT: '9100',
        FARAD_COMMIT_INTERVAL_MS: '40',
        FARAD_SETTINGS_MAX_VOTES_PER_PHONE: '7',
        FARAD_LOG_LEVEL: 'warn',
        FARAD_DATA_DIR: '/data',
        FARAD_HTTP_BODY_LIMIT_BYTES: ' 2048 ',
      },
    });
    assert.equal(config.http.port, 9100);
    assert.equal(config.http.host, '127.0.0.1', 'fields the environment does not set keep the file value');
    assert.equal(config.commitIntervalMs, 40);
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.dataDir, '/data');
    assert.equal(config.http.bodyLimitBytes, 2048);
    assert.equal(config.maxBatchRecords, 500);
    // Settings arrive as strings: the app's compile step coerces them to the default's type.
    assert.deepEqual(config.settings, { maxVotesPerPhone: '7' });
  });

  it('feeds FARAD_SETTINGS_<NAME> into the app setting of the camelCase name, coerced to its type', () => {
    const config = loadConfig({ env: { FARAD_SETTINGS_MAX_VOTES_PER_PHONE: '4' } });
    const app = compileApp(voter, config.settings);
    assert.equal(app.settings.maxVotesPerPhone, 4);
  });

  it('ignores empty environment variables, settings included', () => {
    const config = loadConfig({ file: configFile(YAML), env: { FARAD_HTTP_PORT: '', FARAD_SETTINGS_MAX_VOTES_PER_PHONE: '' } });
    assert.equal(config.http.port, 9000);
    assert.deepEqual(config.settings, { maxVotesPerPhone: 3 });
  });

  it('puts overrides between the file and the environment', () => {
    const file = configFile(YAML);
    const overridden = loadConfig({ file, env: {}, overrides: { http: { port: 1234 }, commitIntervalMs: 7 } });
    assert.equal(overridden.http.port, 1234);
    assert.equal(overridden.http.host, '127.0.0.1', 'overrides merge into nested objects');
    assert.equal(overridden.commitIntervalMs, 7);
    const envWins = loadConfig({ file, env: { FARAD_HTTP_PORT: '4321' }, overrides: { http: { port: 1234 } } });
    assert.equal(envWins.http.port, 4321);
  });
});

describe('loadConfig: validation errors name the field and its source', () => {
  it('names the field and the file for a bad value in the file', () => {
    const file = configFile('http:\n  port: eighty\n');
    const err = configError({ file, env: {} });
    assert.match(err.message, /http\.port/);
    assert.ok(err.message.includes(`config file ${file}`), err.message);
    assert.equal(err.context.field, 'http.port');
  });

  it('names the field and the environment variable for a bad value from the environment', () => {
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ FARAD_HTTP_PORT: 'eighty' }, 'http.port', 'FARAD_HTTP_PORT'],
      [{ FARAD_HTTP_PORT: '70000' }, 'http.port', 'FARAD_HTTP_PORT'],
      [{ FARAD_COMMIT_INTERVAL_MS: '0' }, 'commitIntervalMs', 'FARAD_COMMIT_INTERVAL_MS'],
      [{ FARAD_COMMIT_INTERVAL_MS: '1.5' }, 'commitIntervalMs', 'FARAD_COMMIT_INTERVAL_MS'],
      [{ FARAD_MAX_BATCH_RECORDS: '1e3' }, 'maxBatchRecords', 'FARAD_MAX_BATCH_RECORDS'],
      [{ FARAD_LOG_LEVEL: 'loud' }, 'logLevel', 'FARAD_LOG_LEVEL'],
      [{ FARAD_TRANSPORT: 'carrier-pigeon' }, 'transport', 'FARAD_TRANSPORT'],
    ];
    for (const [env, field, variable] of cases) {
      // The file sets the same field validly: the message must blame the variable, not the file.
      const err = configError({ file: configFile('http:\n  port: 9000\ncommitIntervalMs: 10\nlogLevel: info\n'), env });
      assert.ok(err.message.includes(field), `${JSON.stringify(env)}: ${err.message}`);
      assert.ok(err.message.includes(`environment variable ${variable}`), `${JSON.stringify(env)}: ${err.message}`);
      assert.equal(err.context.field, field);
    }
  });

  it('blames an override, not the file, for a bad override value', () => {
    const file = configFile('http:\n  port: 9000\n');
    const err = configError({ file, env: {}, overrides: { http: { port: 'x' as unknown as number } } });
    assert.match(err.message, /http\.port/);
    assert.doesNotMatch(err.message, /config file/);
  });

  it('lists every problem, not just the first', () => {
    const err = configError({ file: configFile('commitIntervalMs: -1\nlogLevel: loud\n'), env: { FARAD_HTTP_PORT: 'x' } });
    for (const field of ['commitIntervalMs', 'logLevel', 'http.port']) assert.ok(err.message.includes(field), err.message);
  });

  it('rejects unknown keys, naming them and the file they came from', () => {
    const file = configFile('comitIntervalMs: 5\n');
    const top = configError({ file, env: {} });
    assert.match(top.message, /comitIntervalMs/);
    assert.ok(top.message.includes(`config file ${file}`), top.message);

    const nestedFile = configFile('http:\n  prot: 80\n');
    const nested = configError({ file: nestedFile, env: {} });
    assert.match(nested.message, /http/);
    assert.match(nested.message, /prot/);
    assert.ok(nested.message.includes(`config file ${nestedFile}`), nested.message);
  });

  it('reports unreadable, malformed and non-mapping files with the file name', () => {
    const missing = join(dir, 'does-not-exist.yaml');
    assert.ok(configError({ file: missing, env: {} }).message.includes(missing));
    const malformed = configFile('http: [unclosed\n');
    assert.ok(configError({ file: malformed, env: {} }).message.includes(malformed));
    const list = configFile('- a\n- b\n');
    const err = configError({ file: list, env: {} });
    assert.ok(err.message.includes(list));
    assert.match(err.message, /mapping/);
  });
});

describe('envNameOf', () => {
  it('maps a config path to its FARAD_ environment variable', () => {
    const cases: Array<[string, string]> = [
      ['http.port', 'FARAD_HTTP_PORT'],
      ['http.bodyLimitBytes', 'FARAD_HTTP_BODY_LIMIT_BYTES'],
      ['commitIntervalMs', 'FARAD_COMMIT_INTERVAL_MS'],
      ['maxBatchRecords', 'FARAD_MAX_BATCH_RECORDS'],
      ['dataDir', 'FARAD_DATA_DIR'],
      ['logLevel', 'FARAD_LOG_LEVEL'],
      ['transport', 'FARAD_TRANSPORT'],
      ['settings.maxVotesPerPhone', 'FARAD_SETTINGS_MAX_VOTES_PER_PHONE'],
      ['settings.top10Limit', 'FARAD_SETTINGS_TOP10_LIMIT'],
    ];
    for (const [path, name] of cases) assert.equal(envNameOf(path), name, path);
  });

  it('every variable environmentVariables() lists is read by loadConfig', () => {
    const names = environmentVariables();
    for (const name of ['FARAD_HTTP_PORT', 'FARAD_COMMIT_INTERVAL_MS', 'FARAD_HTTP_BODY_LIMIT_BYTES', 'FARAD_SETTINGS_<NAME>']) {
      assert.ok(names.includes(name), `${name} is listed`);
    }
    // Each listed variable, set to a value that is no field's default, either changes the loaded
    // config or makes loading fail: none is listed but ignored.
    const baseline = JSON.stringify(loadConfig({ env: {} }));
    for (const name of names.filter((n) => !n.includes('<'))) {
      let outcome: string;
      try {
        outcome = JSON.stringify(loadConfig({ env: { [name]: 'zz-not-a-default' } })) === baseline ? 'ignored' : 'read';
      } catch (err) {
        assert.ok(err instanceof ConfigError, `${name}: ${String(err)}`);
        outcome = 'read';
      }
      assert.equal(outcome, 'read', name);
    }
  });
});
