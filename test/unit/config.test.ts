import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from '../../src/errors.js';
import {
  envNameOf,
  environmentVariables,
  heartbeatIntervalMs,
  loadConfig,
  readSettingsTable,
  rebalanceTimeoutMs,
  settingNameOf,
  settingsTable,
  withSettingsTable,
  SETTINGS_TABLE_END,
  SETTINGS_TABLE_START,
  configFields,
} from '../../src/config/index.js';
import { compileApp, defineApp, record } from '../../src/procedures/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Vote {
  phone: string;
}
const Vote = record<Vote>({ type: 'record', name: 'Vote', namespace: 'cfg', fields: [{ name: 'phone', type: 'string' }] });
/** A small app whose settings include an acronym (`maxQPS`). */
const settingsApp = defineApp({
  name: 'cfg',
  partitions: 2,
  events: { Vote },
  tables: {},
  settings: { maxVotesPerPhone: 2, maxQPS: 100 },
  inputs: [{ topic: 'votes', events: ['Vote'] }],
  outputs: {},
  procedures: { Vote: { partitionKey: (v: Vote) => v.phone, handle() {} } },
});

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
    assert.deepEqual(config.http, { port: 8080, host: '0.0.0.0', bodyLimitBytes: 1_048_576, idempotencyWindowSeconds: 86_400, idempotencyMaxKeys: 100_000 });
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
    assert.deepEqual(config.http, { port: 9000, host: '127.0.0.1', token: 's3cret', bodyLimitBytes: 1_048_576, idempotencyWindowSeconds: 86_400, idempotencyMaxKeys: 100_000 });
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
    const app = compileApp(settingsApp, config.settings);
    assert.equal(app.settings.maxVotesPerPhone, 4);
  });

  it('ignores empty variables of text settings and app settings, with a warning naming what is kept', () => {
    const file = configFile(YAML);
    const config = loadConfig({ file, env: { FARAD_HTTP_HOST: '', FARAD_HTTP_TOKEN: ' ', FARAD_SETTINGS_MAX_VOTES_PER_PHONE: '' } });
    assert.equal(config.http.host, '127.0.0.1');
    assert.equal(config.http.token, 's3cret');
    assert.deepEqual(config.settings, { maxVotesPerPhone: 3 });
    const host = config.warnings.find((w) => w.startsWith('environment variable FARAD_HTTP_HOST '));
    assert.ok(host?.includes(`http.host keeps its value from config file ${file}`), JSON.stringify(config.warnings));
    assert.ok(config.warnings.some((w) => w.startsWith('environment variable FARAD_HTTP_TOKEN is empty')), JSON.stringify(config.warnings));
    assert.ok(config.warnings.some((w) => w.startsWith('environment variable FARAD_SETTINGS_MAX_VOTES_PER_PHONE is empty')), JSON.stringify(config.warnings));
    const defaults = loadConfig({ env: { FARAD_HTTP_TOKEN: '' } });
    assert.equal(defaults.http.token, undefined);
    assert.match(defaults.warnings.join('\n'), /FARAD_HTTP_TOKEN is empty and has no effect: http\.token keeps its default/);
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
    // `sources` records every variable that is set, read or not: compare the rest.
    const loaded = (env: NodeJS.ProcessEnv): string => JSON.stringify({ ...loadConfig({ env }), sources: undefined });
    const baseline = loaded({});
    for (const name of names.filter((n) => !n.includes('<'))) {
      let outcome: string;
      try {
        outcome = loaded({ [name]: 'zz-not-a-default' }) === baseline ? 'ignored' : 'read';
      } catch (err) {
        assert.ok(err instanceof ConfigError, `${name}: ${String(err)}`);
        outcome = 'read';
      }
      assert.equal(outcome, 'read', name);
    }
  });
});

/** The value at a dotted path of the loaded config. */
function at(config: object, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], config);
}

/** Every variable farad has read so far: a contract (README, Helm chart, users' deployments). */
const CONTRACT: ReadonlyArray<[variable: string, path: string, text: string, value: unknown]> = [
  ['FARAD_TRANSPORT', 'transport', 'kafka', 'kafka'],
  ['FARAD_DATA_DIR', 'dataDir', '/d', '/d'],
  ['FARAD_RETENTION_BYTES', 'retention.bytes', '8388608', 8_388_608],
  ['FARAD_RETENTION_MS', 'retention.ms', '3600000', 3_600_000],
  ['FARAD_RETENTION_SEGMENT_BYTES', 'retention.segmentBytes', '1048576', 1_048_576],
  ['FARAD_RETENTION_TOMBSTONE_MS', 'retention.tombstoneMs', '60000', 60_000],
  ['FARAD_COMMIT_INTERVAL_MS', 'commitIntervalMs', '7', 7],
  ['FARAD_COMMIT_LINGER_MS', 'commitLingerMs', '3', 3],
  ['FARAD_MAX_BATCH_RECORDS', 'maxBatchRecords', '8', 8],
  ['FARAD_RETRY_BACKOFF_MS', 'retryBackoffMs', '9', 9],
  ['FARAD_LOG_LEVEL', 'logLevel', 'debug', 'debug'],
  ['FARAD_HTTP_PORT', 'http.port', '81', 81],
  ['FARAD_HTTP_HOST', 'http.host', 'h', 'h'],
  ['FARAD_HTTP_TOKEN', 'http.token', 't', 't'],
  ['FARAD_HTTP_BODY_LIMIT_BYTES', 'http.bodyLimitBytes', '2048', 2048],
  ['FARAD_HTTP_IDEMPOTENCY_WINDOW_SECONDS', 'http.idempotencyWindowSeconds', '60', 60],
  ['FARAD_HTTP_IDEMPOTENCY_MAX_KEYS', 'http.idempotencyMaxKeys', '500', 500],
  ['FARAD_INSTANCE_ID', 'instanceId', 'i-0', 'i-0'],
  ['FARAD_WORKERS', 'workers', '3', 3],
  ['FARAD_REPLICAS', 'replicas', '2', 2],
  ['FARAD_RACK', 'rack', 'zone-a', 'zone-a'],
  ['FARAD_ADVERTISED_URL', 'advertisedUrl', 'http://a:1', 'http://a:1'],
  ['FARAD_SNAPSHOT_INTERVAL_MS', 'snapshotIntervalMs', '5', 5],
  ['FARAD_REDIS_URL', 'redis.url', 'redis://r:6379', 'redis://r:6379'],
  ['FARAD_REDIS_PASSWORD', 'redis.password', 'rp', 'rp'],
  ['FARAD_REDIS_TLS', 'redis.tls', 'true', true],
  ['FARAD_REDIS_CA_FILE', 'redis.caFile', '/redis-ca.pem', '/redis-ca.pem'],
  ['FARAD_REDIS_CERT_FILE', 'redis.certFile', '/redis-cert.pem', '/redis-cert.pem'],
  ['FARAD_REDIS_KEY_FILE', 'redis.keyFile', '/redis-key.pem', '/redis-key.pem'],
  ['FARAD_REDIS_KEEP', 'redis.keep', '3', 3],
  ['FARAD_SESSION_TIMEOUT_MS', 'sessionTimeoutMs', '6000', 6000],
  ['FARAD_KAFKA_BROKERS', 'kafka.brokers', 'a:1, b:2', ['a:1', 'b:2']],
  ['FARAD_KAFKA_CLIENT_ID', 'kafka.clientId', 'c', 'c'],
  ['FARAD_KAFKA_REPLICATION_FACTOR', 'kafka.replicationFactor', '3', 3],
  ['FARAD_KAFKA_MAX_QUEUED_RECORDS', 'kafka.maxQueuedRecords', '500', 500],
  ['FARAD_KAFKA_TRANSACTION_TIMEOUT_MS', 'kafka.transactionTimeoutMs', '5000', 5000],
  ['FARAD_KAFKA_SSL_ENABLED', 'kafka.ssl.enabled', 'true', true],
  ['FARAD_KAFKA_SSL_CA_FILE', 'kafka.ssl.caFile', '/ca.pem', '/ca.pem'],
  ['FARAD_KAFKA_SSL_CERT_FILE', 'kafka.ssl.certFile', '/cert.pem', '/cert.pem'],
  ['FARAD_KAFKA_SSL_KEY_FILE', 'kafka.ssl.keyFile', '/key.pem', '/key.pem'],
  ['FARAD_KAFKA_SSL_REJECT_UNAUTHORIZED', 'kafka.ssl.rejectUnauthorized', 'false', false],
  ['FARAD_KAFKA_SASL_MECHANISM', 'kafka.sasl.mechanism', 'scram-sha-512', 'scram-sha-512'],
  ['FARAD_KAFKA_SASL_USERNAME', 'kafka.sasl.username', 'u', 'u'],
  ['FARAD_KAFKA_SASL_PASSWORD', 'kafka.sasl.password', 'pw', 'pw'],
  ['FARAD_SCHEMA_REGISTRY_URL', 'schemaRegistry.url', 'http://sr:8081', 'http://sr:8081'],
  ['FARAD_SCHEMA_REGISTRY_USERNAME', 'schemaRegistry.username', 'su', 'su'],
  ['FARAD_SCHEMA_REGISTRY_PASSWORD', 'schemaRegistry.password', 'sp', 'sp'],
  ['FARAD_SETTINGS_MAX_VOTES_PER_PHONE', 'settings.maxVotesPerPhone', '4', '4'],
];

describe('environment variables derived from the schema', () => {
  it('splits acronyms and digits into words', () => {
    const cases: Array<[string, string]> = [
      ['maxQPS', 'FARAD_MAX_QPS'],
      ['limits.maxQPS', 'FARAD_LIMITS_MAX_QPS'],
      ['maxQPSLimit', 'FARAD_MAX_QPS_LIMIT'],
      ['kafka.ssl.caFile', 'FARAD_KAFKA_SSL_CA_FILE'],
      ['advertisedUrl', 'FARAD_ADVERTISED_URL'],
      ['http.bodyLimitBytes', 'FARAD_HTTP_BODY_LIMIT_BYTES'],
      ['schemaRegistry.url', 'FARAD_SCHEMA_REGISTRY_URL'],
      ['settings.maxQPS', 'FARAD_SETTINGS_MAX_QPS'],
      ['settings.top10Limit', 'FARAD_SETTINGS_TOP10_LIMIT'],
    ];
    for (const [path, name] of cases) assert.equal(envNameOf(path), name, path);
  });

  it('keeps every existing variable name, and each sets its field', () => {
    const env = Object.fromEntries(CONTRACT.map(([name, , text]) => [name, text]));
    const config = loadConfig({ env });
    for (const [name, path, , value] of CONTRACT) {
      if (!name.startsWith('FARAD_SETTINGS_')) assert.ok(environmentVariables().includes(name), `${name} is listed`);
      assert.deepEqual(at(config, path), value, `${name} → ${path}`);
    }
  });

  it('has a variable for every setting in the schema, and lists nothing else', () => {
    const leaves = configFields().filter((f) => f.kind !== 'map');
    assert.deepEqual(
      environmentVariables().filter((n) => !n.includes('<')).sort(),
      leaves.map((f) => envNameOf(f.path)).sort(),
    );
    assert.deepEqual(
      CONTRACT.filter(([name]) => !name.startsWith('FARAD_SETTINGS_')).map(([, path]) => path).sort(),
      leaves.map((f) => f.path).sort(),
      'the contract above covers every setting: add a new one there too',
    );
  });

  it('parses each variable by its zod type: number, boolean, comma-separated list, string', () => {
    const config = loadConfig({ env: { FARAD_REDIS_KEEP: ' 5 ', FARAD_REDIS_TLS: 'true', FARAD_KAFKA_BROKERS: 'x:1,,y:2 ', FARAD_HTTP_HOST: '::1' } });
    assert.equal(config.redis.keep, 5);
    assert.equal(config.redis.tls, true);
    assert.deepEqual(config.kafka.brokers, ['x:1', 'y:2']);
    assert.equal(config.http.host, '::1');
    const err = configError({ env: { FARAD_REDIS_TLS: 'yes' } });
    assert.ok(err.message.includes('redis.tls') && err.message.includes('environment variable FARAD_REDIS_TLS'), err.message);
  });

  it('refuses a schema leaf type with no environment form', () => {
    assert.throws(() => configFields(z.object({ when: z.date() })), /when: no environment form/);
  });

  it('reads every variable the Helm chart sets', () => {
    const template = readFileSync(join(ROOT, 'helm/farad/templates/statefulset.yaml'), 'utf8');
    const names = [...template.matchAll(/name: (FARAD_[A-Z0-9_]+)/g)].map((m) => m[1]!);
    assert.ok(names.length > 10, 'the chart sets FARAD_* variables');
    for (const name of names) assert.ok(environmentVariables().includes(name) || name.startsWith('FARAD_SETTINGS_'), name);
  });
});

describe('app settings from the environment', () => {
  it('round-trips acronyms when the setting name is known', () => {
    assert.equal(settingNameOf('MAX_QPS', ['maxVotesPerPhone', 'maxQPS']), 'maxQPS');
    assert.equal(settingNameOf('MAX_VOTES_PER_PHONE', ['maxVotesPerPhone', 'maxQPS']), 'maxVotesPerPhone');
    assert.equal(settingNameOf('MAX_QPS', []), 'maxQps', 'unknown names fall back to camelCase');
  });

  it('sets an acronym setting from FARAD_SETTINGS_MAX_QPS given the app setting names', () => {
    const config = loadConfig({ env: { FARAD_SETTINGS_MAX_QPS: '50' }, settingNames: Object.keys(settingsApp.spec.settings ?? {}) });
    assert.deepEqual(config.settings, { maxQPS: '50' });
    assert.equal(compileApp(settingsApp, config.settings).settings['maxQPS'], 50);
  });

  it('matches an acronym setting the file sets, without the app names', () => {
    const config = loadConfig({ file: configFile('settings:\n  maxQPS: 10\n'), env: { FARAD_SETTINGS_MAX_QPS: '70' } });
    assert.deepEqual(config.settings, { maxQPS: '70' });
    assert.equal(compileApp(settingsApp, config.settings).settings['maxQPS'], 70);
  });
});

describe('compiled config: one options slice per component', () => {
  it('keeps the validated fields and adds the slices', () => {
    const config = loadConfig({ env: { FARAD_TRANSPORT: 'kafka', FARAD_REPLICAS: '2', FARAD_RACK: 'r1', FARAD_COMMIT_INTERVAL_MS: '40', FARAD_LOG_LEVEL: 'warn' } });
    assert.equal(config.replicas, 2);
    assert.equal(config.commitIntervalMs, 40);
    assert.deepEqual(config.processing, { commitIntervalMs: 40, commitLingerMs: 20, maxBatchRecords: 10_000, retryBackoffMs: 200 });
    assert.deepEqual(config.kafkaClient, { brokers: config.kafka.brokers, clientId: 'farad', ssl: config.kafka.ssl, sasl: config.kafka.sasl });
    assert.deepEqual(config.kafkaGroup, {
      instanceId: hostname(),
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1_000,
      rebalanceTimeoutMs: 30_000,
      maxQueuedRecords: 20_000,
    });
    assert.deepEqual(config.kafkaProducer, { transactionTimeoutMs: 60_000 });
    assert.deepEqual(config.kafkaTopics, { replicationFactor: -1 });
    assert.deepEqual(config.replication, { replicas: 2, rack: 'r1', advertisedUrl: undefined, snapshotIntervalMs: 60_000, sessionTimeoutMs: 10_000 });
    assert.deepEqual(config.embedded, {
      dataDir: './data',
      retention: { bytes: 268_435_456, ms: 604_800_000, topics: {}, tombstoneMs: 86_400_000, segmentBytes: 8_388_608, checkIntervalMs: 10_000 },
    });
    assert.deepEqual(config.log, { level: 'warn' });
    assert.deepEqual(config.warnings, []);
    for (const slice of [config.processing, config.kafkaClient, config.kafkaGroup, config.replication, config.log, config.warnings]) assert.ok(Object.isFrozen(slice));
  });

  it('derives heartbeat and rebalance timeouts from the session timeout', () => {
    const cases: Array<[session: number, heartbeat: number, rebalance: number]> = [
      [1_000, 250, 30_000],
      [3_000, 300, 30_000],
      [6_000, 600, 30_000],
      [10_000, 1_000, 30_000],
      [20_000, 1_000, 60_000],
    ];
    for (const [session, heartbeat, rebalance] of cases) {
      assert.equal(heartbeatIntervalMs(session), heartbeat, `heartbeat for ${session}`);
      assert.equal(rebalanceTimeoutMs(session), rebalance, `rebalance for ${session}`);
    }
    const config = loadConfig({ env: { FARAD_TRANSPORT: 'kafka', FARAD_SESSION_TIMEOUT_MS: '6000' } });
    assert.equal(config.kafkaGroup.heartbeatIntervalMs, 600);
    assert.equal(config.kafkaGroup.rebalanceTimeoutMs, 30_000);
  });

  it('has no standbys on the embedded transport, without a warning for the default replicas', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.transport, 'embedded');
    assert.equal(config.replicas, 1, 'the field keeps its value');
    assert.equal(config.replication.replicas, 0, 'the slice says what runs');
    assert.deepEqual(config.warnings, []);
    assert.deepEqual(loadConfig({ env: { FARAD_REPLICAS: '0' } }).warnings, []);
  });

  it('states the real heartbeat rule when the session timeout is too short', () => {
    const err = configError({ env: { FARAD_TRANSPORT: 'kafka', FARAD_SESSION_TIMEOUT_MS: '2000' } });
    assert.match(err.message, /sessionTimeoutMs must be at least 3000/);
    assert.match(err.message, /sessionTimeoutMs \/ 10, kept between 250 and 1000 ms/);
    assert.doesNotMatch(err.message, /\/ 3\b/);
    assert.ok(err.message.includes('environment variable FARAD_SESSION_TIMEOUT_MS'), err.message);
    assert.equal(heartbeatIntervalMs(2_500), 250, 'the rule the message quotes');
  });
});

describe('settings that have no effect are refused or warned about', () => {
  /** The one warning naming `field`. */
  function warningFor(warnings: readonly string[], field: string): string {
    const hits = warnings.filter((w) => w.split(' [from ')[0]!.split(', ').includes(field));
    assert.equal(hits.length, 1, `one warning names ${field}: ${JSON.stringify(warnings)}`);
    return hits[0]!;
  }

  it('refuses standby replicas on the embedded transport, naming both fields and their sources', () => {
    const fromEnv = configError({ env: { FARAD_REPLICAS: '2' } });
    assert.equal(fromEnv.context.field, 'replicas');
    assert.match(fromEnv.message, /replicas: 2 \[from environment variable FARAD_REPLICAS\]/);
    assert.match(fromEnv.message, /transport: embedded \[from the default\]/);
    assert.match(fromEnv.message, /FARAD_REPLICAS=0/);
    const file = configFile('transport: embedded\nreplicas: 1\n');
    const fromFile = configError({ file, env: {} });
    assert.ok(fromFile.message.includes(`replicas: 1 [from config file ${file}]`), fromFile.message);
    assert.ok(fromFile.message.includes(`transport: embedded [from config file ${file}]`), fromFile.message);
  });

  it('warns about Kafka settings on the embedded transport, naming the fields, source and fix', () => {
    const file = configFile('kafka:\n  clientId: x\n  ssl:\n    enabled: true\nsessionTimeoutMs: 20000\n');
    const config = loadConfig({ file, env: { FARAD_KAFKA_BROKERS: 'k:9092' } });
    const fromFile = warningFor(config.warnings, 'kafka.clientId');
    assert.equal(fromFile, warningFor(config.warnings, 'sessionTimeoutMs'), 'one warning per source');
    assert.ok(fromFile.includes(`[from config file ${file}]`), fromFile);
    assert.match(fromFile, /kafka\.ssl\.enabled/);
    assert.match(fromFile, /transport: kafka \(FARAD_TRANSPORT=kafka\)/);
    const fromEnv = warningFor(config.warnings, 'kafka.brokers');
    assert.match(fromEnv, /\[from environment variable FARAD_KAFKA_BROKERS\] has no effect/);
    assert.equal(config.kafka.brokers[0], 'k:9092', 'the value is still loaded');
  });

  it('warns about rack and advertisedUrl on the embedded transport', () => {
    const { warnings } = loadConfig({ env: { FARAD_RACK: 'node-a', FARAD_ADVERTISED_URL: 'http://a:8080' } });
    assert.match(warningFor(warnings, 'rack'), /FARAD_RACK/);
    assert.match(warningFor(warnings, 'advertisedUrl'), /FARAD_ADVERTISED_URL/);
  });

  it('warns about dataDir on the kafka transport (the Helm chart always sets it)', () => {
    const { warnings } = loadConfig({ env: { FARAD_TRANSPORT: 'kafka', FARAD_DATA_DIR: '/data' } });
    assert.equal(warnings.length, 1);
    assert.match(warningFor(warnings, 'dataDir'), /dataDir \[from environment variable FARAD_DATA_DIR\] has no effect: .*embedded log/);
  });

  it('warns about TLS files with TLS off, and Redis or schema registry settings without their URL', () => {
    const { warnings } = loadConfig({
      env: { FARAD_TRANSPORT: 'kafka', FARAD_KAFKA_SSL_CA_FILE: '/ca.pem', FARAD_REDIS_KEEP: '4', FARAD_SCHEMA_REGISTRY_USERNAME: 'u' },
    });
    assert.match(warningFor(warnings, 'kafka.ssl.caFile'), /FARAD_KAFKA_SSL_ENABLED=true/);
    assert.match(warningFor(warnings, 'redis.keep'), /redis\.url \(FARAD_REDIS_URL\)/);
    assert.match(warningFor(warnings, 'schemaRegistry.username'), /schemaRegistry\.url/);
  });

  it('does not warn about defaults, or about settings that take effect', () => {
    assert.deepEqual(loadConfig({ env: {} }).warnings, []);
    const kafka = loadConfig({
      env: { FARAD_TRANSPORT: 'kafka', FARAD_KAFKA_BROKERS: 'k:9092', FARAD_SESSION_TIMEOUT_MS: '6000', FARAD_REPLICAS: '1', FARAD_RACK: 'r', FARAD_REDIS_URL: 'redis://r', FARAD_REDIS_KEEP: '3' },
    });
    assert.deepEqual(kafka.warnings, []);
    const embedded = loadConfig({ env: { FARAD_DATA_DIR: '/data', FARAD_REPLICAS: '0', FARAD_SNAPSHOT_INTERVAL_MS: '0' } });
    assert.deepEqual(embedded.warnings, []);
  });
});

describe('README settings table', () => {
  it('matches the table generated from the schema (regenerate: node --import tsx scripts/settings-table.ts --write)', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const table = readSettingsTable(readme);
    assert.ok(table !== undefined, `README.md has a ${SETTINGS_TABLE_START} … ${SETTINGS_TABLE_END} section`);
    assert.equal(table, settingsTable());
  });

  it('has one row per setting with its variable, default and description', () => {
    const rows = settingsTable().split('\n').slice(2);
    assert.equal(rows.length, configFields().length);
    for (const name of environmentVariables()) assert.ok(rows.some((row) => row.includes(`\`${name}\``)), name);
    assert.ok(rows.includes('| `http.port` | `FARAD_HTTP_PORT` | `8080` | port of the HTTP API; 0 picks a free port |'));
    assert.ok(rows.some((row) => row.startsWith('| `instanceId` | `FARAD_INSTANCE_ID` | host name |')), 'no machine-specific default');
    assert.ok(rows.some((row) => row.startsWith('| `kafka.brokers` | `FARAD_KAFKA_BROKERS` | `127.0.0.1:9092` |')));
  });

  it('rewrites only the text between the markers', () => {
    const readme = `# x\n\nbefore\n${SETTINGS_TABLE_START}\nold\n${SETTINGS_TABLE_END}\nafter\n`;
    const updated = withSettingsTable(readme, 'NEW');
    assert.equal(updated, `# x\n\nbefore\n${SETTINGS_TABLE_START}\nNEW\n${SETTINGS_TABLE_END}\nafter\n`);
    assert.equal(readSettingsTable(updated), 'NEW');
    assert.throws(() => withSettingsTable('# no markers', 'NEW'), /settings:start/);
  });
});

describe('start-up inputs: one line naming the setting and its source, or a warning', () => {
  /** The ConfigError for `options`, checked to be one line naming `field` and `source`. */
  function oneLine(options: Parameters<typeof loadConfig>[0], field: string, source: string): string {
    const err = configError(options);
    assert.equal(err.context.field, field);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    assert.ok(err.message.startsWith(`invalid configuration: ${field}: `), err.message);
    assert.ok(err.message.endsWith(`[from ${source}]`), err.message);
    return err.message;
  }

  it('refuses an empty variable of a number, boolean or list setting instead of using the default', () => {
    const env = (name: string, text = '') => ({ env: { [name]: text } });
    assert.match(oneLine(env('FARAD_HTTP_PORT'), 'http.port', 'environment variable FARAD_HTTP_PORT'), /http\.port: empty; unset it or give an integer from 0 to 65535/);
    assert.match(oneLine(env('FARAD_HTTP_PORT', '  '), 'http.port', 'environment variable FARAD_HTTP_PORT'), /empty; unset it/);
    assert.match(oneLine(env('FARAD_REDIS_TLS'), 'redis.tls', 'environment variable FARAD_REDIS_TLS'), /empty; unset it or give true or false/);
    assert.match(oneLine(env('FARAD_KAFKA_BROKERS', ' , '), 'kafka.brokers', 'environment variable FARAD_KAFKA_BROKERS'), /empty; unset it or give a comma-separated list/);
    assert.match(oneLine(env('FARAD_RETRY_BACKOFF_MS'), 'retryBackoffMs', 'environment variable FARAD_RETRY_BACKOFF_MS'), /retryBackoffMs: empty; unset it or give an integer of at least 1 \[/);
    // Not even a valid file value stands in for it: the variable is what was asked for.
    const file = configFile('http:\n  port: 9000\n');
    oneLine({ file, env: { FARAD_HTTP_PORT: '' } }, 'http.port', 'environment variable FARAD_HTTP_PORT');
  });

  it('takes integers in digits only, and names the range of a value out of range', () => {
    const cases: Array<[variable: string, text: string, field: string, message: string]> = [
      ['FARAD_HTTP_PORT', '1e9', 'http.port', '"1e9" is not written as an integer, and 1000000000 is out of range; give an integer from 0 to 65535'],
      ['FARAD_MAX_BATCH_RECORDS', '1e3', 'maxBatchRecords', '"1e3" is not written as an integer; write 1000'],
      ['FARAD_HTTP_PORT', '0x50', 'http.port', '"0x50" is not written as an integer; write 80'],
      ['FARAD_COMMIT_INTERVAL_MS', '1.5', 'commitIntervalMs', '"1.5" is not an integer; give an integer from 1 to 60000'],
      ['FARAD_COMMIT_INTERVAL_MS', '10.0', 'commitIntervalMs', '"10.0" is not written as an integer; write 10'],
      ['FARAD_HTTP_PORT', '70000', 'http.port', '70000 is out of range; give an integer from 0 to 65535'],
      ['FARAD_HTTP_PORT', '-1', 'http.port', '-1 is out of range; give an integer from 0 to 65535'],
      ['FARAD_RETRY_BACKOFF_MS', '0', 'retryBackoffMs', '0 is out of range; give an integer of at least 1'],
      ['FARAD_HTTP_PORT', 'eighty', 'http.port', '"eighty" is not a number; give an integer from 0 to 65535'],
      ['FARAD_REDIS_TLS', 'yes', 'redis.tls', '"yes" is not a boolean; give true or false'],
    ];
    for (const [variable, text, field, message] of cases) {
      const line = oneLine({ env: { [variable]: text } }, field, `environment variable ${variable}`);
      assert.ok(line.includes(`${field}: ${message} [from`), `${variable}=${text}: ${line}`);
    }
    const file = configFile('http:\n  port: 70000\n');
    assert.match(oneLine({ file, env: {} }, 'http.port', `config file ${file}`), /70000 is out of range; give an integer from 0 to 65535/);
    assert.equal(loadConfig({ env: { FARAD_HTTP_PORT: ' 81 ' } }).http.port, 81, 'digits with spaces around are fine');
  });

  it('lets a variable replace an invalid file value, warning about the file value', () => {
    const file = configFile('http:\n  port: eighty\n  host: 127.0.0.1\nlogLevel: loud\ncommitIntervalMs: 5\n');
    const config = loadConfig({ file, env: { FARAD_HTTP_PORT: '9100', FARAD_LOG_LEVEL: 'warn' } });
    assert.equal(config.http.port, 9100);
    assert.equal(config.logLevel, 'warn');
    const port = config.warnings.filter((w) => w.startsWith('http.port: '));
    assert.equal(port.length, 1, JSON.stringify(config.warnings));
    assert.equal(
      port[0],
      `http.port: "eighty" is not a number; give an integer from 0 to 65535 [from config file ${file}] has no effect: environment variable FARAD_HTTP_PORT replaces it. Fix or remove it there`,
    );
    assert.ok(config.warnings.some((w) => w.startsWith('logLevel: ') && w.includes(`[from config file ${file}]`) && w.includes('environment variable FARAD_LOG_LEVEL replaces it')));
    assert.equal(config.warnings.length, 2, JSON.stringify(config.warnings));
    assert.equal(config.sources['http.port'], 'environment variable FARAD_HTTP_PORT');
    assert.equal(config.sources['http.host'], `config file ${file}`);
    assert.equal(config.sources['retryBackoffMs'], undefined, 'a default has no source');
  });

  it('blames the variable, not the file, when both are invalid', () => {
    const file = configFile('http:\n  port: eighty\n');
    const line = oneLine({ file, env: { FARAD_HTTP_PORT: '70000' } }, 'http.port', 'environment variable FARAD_HTTP_PORT');
    assert.doesNotMatch(line, /config file|eighty/);
  });

  it('still reports a file value that no variable replaces', () => {
    const file = configFile('http:\n  port: eighty\n');
    oneLine({ file, env: { FARAD_HTTP_HOST: '127.0.0.1' } }, 'http.port', `config file ${file}`);
  });

  it('lists several problems one per line', () => {
    const err = configError({ env: { FARAD_HTTP_PORT: '', FARAD_COMMIT_INTERVAL_MS: '1e3' } });
    assert.match(err.message, /^invalid configuration \(2 problems\):\n {2}\S/);
    const lines = err.message.split('\n').slice(1);
    assert.equal(lines.length, 2);
    assert.ok(lines.includes('  http.port: empty; unset it or give an integer from 0 to 65535 [from environment variable FARAD_HTTP_PORT]'), err.message);
    assert.ok(lines.includes('  commitIntervalMs: "1e3" is not written as an integer; write 1000 [from environment variable FARAD_COMMIT_INTERVAL_MS]'), err.message);
  });

  it('warns about an unknown FARAD_* variable, naming the closest setting', () => {
    const cases: Array<[typo: string, closest: string]> = [
      ['FARAD_HTTPPORT', 'FARAD_HTTP_PORT (http.port)'],
      ['FARAD_COMIT_INTERVAL_MS', 'FARAD_COMMIT_INTERVAL_MS (commitIntervalMs)'],
      ['FARAD_DATADIR', 'FARAD_DATA_DIR (dataDir)'],
      ['FARAD_KAFKA_BROKER', 'FARAD_KAFKA_BROKERS (kafka.brokers)'],
    ];
    for (const [typo, closest] of cases) {
      const config = loadConfig({ env: { [typo]: '9000' } });
      assert.deepEqual(config.warnings, [`environment variable ${typo} has no effect: farad has no such setting. Did you mean ${closest}? farad --help lists every variable`]);
      assert.deepEqual({ ...config, warnings: [] }, { ...loadConfig({ env: {} }), warnings: [] }, `${typo} changes nothing else`);
    }
  });

  it('does not warn about app settings, or the variables of tests, benchmarks and the demo', () => {
    const env = { FARAD_SETTINGS_MAX_VOTES_PER_PHONE: '3', FARAD_TEST_NO_SERVICES: '1', FARAD_BENCH_SUFFIX: 'x', FARAD_DEMO_RATE: '5', FARAD_HTTP_PORT: '81', PATH: '/bin' };
    assert.deepEqual(loadConfig({ env }).warnings, []);
  });
});
