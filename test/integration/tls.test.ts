// TLS for real: farad runs the Voter as a process against the test broker's TLS listeners
// (services/kafka/tls.properties.template: SSL = server verification, MTLS = client certificate
// required), given only the TLS port, with snapshots in a redis-server of the test's own that
// speaks TLS only (plaintext port off) and wants a password, or a client certificate; results
// are checked exactly once against an independent tally, and the snapshots are read back over
// TLS. Then what must be refused, and how: a CA that did not sign the broker's certificate, no
// client certificate or an untrusted one on the mutual-TLS listener, TLS to a plaintext
// listener, a wrong or missing Redis password, a Redis certificate the CA does not vouch for.
// Each ends farad with exit status 2 and one line naming the setting to change, within its
// connect retries (no hang).
//
// Certificates: scripts/services-up.sh generates them into .services/tls (FARAD_TEST_TLS_DIR) and
// prints the listeners (KAFKA_TLS_BROKERS, KAFKA_MTLS_BROKERS); scripts/test.mjs passes them on.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createSnapshotStore } from '../../src/replication/index.js';
import { ConfigError } from '../../src/errors.js';
import { startRedisServer, tlsMaterial, type RedisServer } from '../support/tls.js';
import { allConsumed, brokers, cleanUpVoter, makeVotes, plainProducer, produceVotes, readTopic, ROOT, testKafka, uid, voterNames, type ReadRecord } from './helpers.js';
import {
  assertResultsMatch,
  assertStateMatches,
  PARTITIONS,
  readyz,
  spawnInstance,
  terminate,
  total,
  VOTER_FIXTURE,
  waitWithLogs,
  type Instance,
} from './replication-helpers.js';

const material = tlsMaterial();
const TLS_BROKERS = process.env['KAFKA_TLS_BROKERS'] || '127.0.0.1:9095';
const MTLS_BROKERS = process.env['KAFKA_MTLS_BROKERS'] || '127.0.0.1:9096';
const REDIS_PASSWORD = 'farad-tls-test-secret';
const VOTES = 2_000;
/** A start-up that must fail has this long: kafkajs's connect retries take about 10 s. */
const REFUSAL_WITHIN_MS = 45_000;

let redisTls: RedisServer; // TLS only, requirepass
let redisMutual: RedisServer; // TLS only, client certificates required
let redisPassword: RedisServer; // plaintext, requirepass

before(async () => {
  [redisTls, redisMutual, redisPassword] = await Promise.all([
    startRedisServer({ tls: { material, clientCertificates: 'no' }, password: REDIS_PASSWORD }),
    startRedisServer({ tls: { material, clientCertificates: 'yes' } }),
    startRedisServer({ password: REDIS_PASSWORD }),
  ]);
});

after(async () => {
  await Promise.all([redisTls?.stop(), redisMutual?.stop(), redisPassword?.stop()]);
});

/** TLS to the brokers with the test CA, and a client certificate when `mutual`. */
function kafkaTlsEnv(mutual: boolean): Record<string, string> {
  return {
    FARAD_KAFKA_BROKERS: mutual ? MTLS_BROKERS : TLS_BROKERS,
    FARAD_KAFKA_SSL_ENABLED: 'true',
    FARAD_KAFKA_SSL_CA_FILE: material.ca,
    ...(mutual ? { FARAD_KAFKA_SSL_CERT_FILE: material.clientCert, FARAD_KAFKA_SSL_KEY_FILE: material.clientKey } : {}),
  };
}

interface RedisUnderTest {
  /** farad's Redis settings. */
  readonly env: Record<string, string>;
  /** The test's own client to the same server, over the same TLS. */
  client(): Redis;
}

/**
 * The Voter, as a farad process given only `env`'s brokers (TLS), fed 2k votes through the
 * plaintext listener by the test's own producer; results and state against the tally, then the
 * snapshots every partition wrote (periodic and at the graceful stop) read back from Redis over
 * TLS, and listed by `farad snapshot list` with the same settings.
 */
async function voterOverTls(t: TestContext, kafkaEnv: Record<string, string>, redis: RedisUnderTest): Promise<void> {
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  let instance: Instance | undefined;
  t.after(async () => {
    if (instance) await terminate(instance);
    await cleanUpVoter(admin, names);
    await admin.disconnect();
  });
  const env = { ...kafkaEnv, ...redis.env, FARAD_TEST_VOTER_SUFFIX: suffix, FARAD_REPLICAS: '0', FARAD_SNAPSHOT_INTERVAL_MS: '1000', FARAD_SESSION_TIMEOUT_MS: '6000' };
  const given = (kafkaEnv['FARAD_KAFKA_BROKERS'] ?? '').split(',');
  assert.ok(given.every((b) => b !== '' && !brokers().includes(b)), 'farad is given the TLS listener only, never the plaintext one');

  instance = await spawnInstance(`tls-${suffix}`, env);
  const running = instance;
  await waitWithLogs(`all ${PARTITIONS} partitions to be ready over TLS`, [running], () => readyz(running), { timeoutMs: 60_000, intervalMs: 200 });

  const votes = makeVotes(VOTES, { phones: 500, seed: 17 });
  const producer = await plainProducer(kafka);
  try {
    await produceVotes(producer, names.input, votes);
  } finally {
    await producer.disconnect();
  }
  await waitWithLogs('the group to commit the whole input', [running], () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
  const results: ReadRecord[] = await readTopic(kafka, names.output);
  const tally = assertResultsMatch(results, votes);
  await assertStateMatches(running.base, tally);
  await waitWithLogs('a snapshot of every partition (periodic, over TLS)', [running], async () => (await total(running.base, 'farad_snapshots_total', { outcome: 'ok' })) >= PARTITIONS, {
    timeoutMs: 30_000,
    intervalMs: 250,
  });
  assert.equal(await total(running.base, 'farad_snapshots_total', { outcome: 'skipped' }), 0, 'no snapshot skipped: Redis answered over TLS from the start');

  const stopped = await terminate(running);
  assert.equal(stopped.code, 0, `a graceful stop\n${running.output().slice(-3000)}`);

  // Read back by the test's own client, over TLS: the server has no plaintext port.
  const client = redis.client();
  try {
    for (let p = 0; p < PARTITIONS; p++) {
      const current = await client.get(`farad:{${names.app}:${p}}:current`);
      assert.ok(current, `partition ${p} has a current snapshot`);
      const bytes = await client.getBuffer(`farad:{${names.app}:${p}}:data:${current}`);
      assert.ok(bytes && bytes.length > 0, `partition ${p}'s snapshot ${current} has its bytes`);
    }
  } finally {
    client.disconnect();
  }
  const listed = await farad(['snapshot', 'list', '--app', VOTER_FIXTURE], { ...env, FARAD_LOG_LEVEL: 'warn' });
  assert.equal(listed.code, 0, listed.output);
  const current = listed.stdout.split('\n').filter((line) => /^\s*\d+\s+yes\s/.test(line));
  assert.equal(current.length, PARTITIONS, `farad snapshot list shows a current snapshot per partition:\n${listed.output}`);
}

test('Voter over TLS (server verification), snapshots to Redis over TLS with a password: exactly once against the tally', { timeout: 240_000 }, async (t) => {
  await voterOverTls(t, kafkaTlsEnv(false), {
    env: { FARAD_REDIS_URL: redisTls.url, FARAD_REDIS_PASSWORD: REDIS_PASSWORD, FARAD_REDIS_CA_FILE: material.ca },
    client: () => testClient(redisTls.url, { password: REDIS_PASSWORD, tls: { ca: readFileSync(material.ca) } }),
  });
});

test('Voter over mutual TLS, snapshots to a Redis that requires a client certificate: exactly once against the tally', { timeout: 240_000 }, async (t) => {
  await voterOverTls(t, kafkaTlsEnv(true), {
    env: { FARAD_REDIS_URL: redisMutual.url, FARAD_REDIS_CA_FILE: material.ca, FARAD_REDIS_CERT_FILE: material.clientCert, FARAD_REDIS_KEY_FILE: material.clientKey },
    client: () =>
      testClient(redisMutual.url, { tls: { ca: readFileSync(material.ca), cert: readFileSync(material.clientCert), key: readFileSync(material.clientKey) } }),
  });
});

// ---- refusals -----------------------------------------------------------------------------------

interface Refusal {
  readonly code: number | null;
  /** The one line farad printed for the error it stopped on. */
  readonly line: string;
  readonly output: string;
  readonly ms: number;
}

/** Starts farad (Voter) with `env`; it must exit by itself within REFUSAL_WITHIN_MS. */
async function refusedStart(env: Record<string, string>): Promise<Refusal> {
  const started = Date.now();
  const instance = await spawnInstance(`tls-refused-${uid()}`, { FARAD_TEST_VOTER_SUFFIX: uid(), FARAD_REPLICAS: '0', ...env });
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), REFUSAL_WITHIN_MS)));
  const outcome = await Promise.race([instance.exited, hung]);
  clearTimeout(timer);
  if (outcome === 'hung') {
    await terminate(instance, 5_000);
    assert.fail(`farad did not give up within ${REFUSAL_WITHIN_MS} ms:\n${instance.output().slice(-3000)}`);
  }
  const output = instance.output();
  const line = output.split('\n').find((l) => l.startsWith('farad: ')) ?? '';
  return { code: outcome.code, line, output, ms: Date.now() - started };
}

function assertRefused(refusal: Refusal, ...patterns: RegExp[]): void {
  assert.equal(refusal.code, 2, `exit status 2 (a start-up error farad explains)\n${refusal.output.slice(-3000)}`);
  for (const pattern of patterns) assert.match(refusal.line, pattern, refusal.output.slice(-3000));
}

test('a CA that did not sign the broker certificate is refused, naming kafka.ssl.caFile', { timeout: 90_000 }, async (t) => {
  const refusal = await refusedStart({ ...kafkaTlsEnv(false), FARAD_KAFKA_SSL_CA_FILE: material.otherCa });
  assertRefused(refusal, /cannot connect to Kafka at /, /not signed by the CA in kafka\.ssl\.caFile \(FARAD_KAFKA_SSL_CA_FILE\), .*other-ca\.pem/, /set kafka\.ssl\.caFile to the PEM file of the CA/);
  t.diagnostic(`refused after ${refusal.ms} ms: ${refusal.line}`);
});

test('mutual TLS without a client certificate is refused, naming kafka.ssl.certFile and kafka.ssl.keyFile', { timeout: 90_000 }, async (t) => {
  const refusal = await refusedStart({ ...kafkaTlsEnv(false), FARAD_KAFKA_BROKERS: MTLS_BROKERS });
  assertRefused(refusal, /requires a client certificate \(mutual TLS\) and farad has none/, /kafka\.ssl\.certFile \(FARAD_KAFKA_SSL_CERT_FILE\) and kafka\.ssl\.keyFile \(FARAD_KAFKA_SSL_KEY_FILE\)/);
  t.diagnostic(`refused after ${refusal.ms} ms: ${refusal.line}`);
});

test('mutual TLS with a client certificate the broker does not trust is refused, naming kafka.ssl.certFile', { timeout: 90_000 }, async (t) => {
  const refusal = await refusedStart({ ...kafkaTlsEnv(true), FARAD_KAFKA_SSL_CERT_FILE: material.otherClientCert, FARAD_KAFKA_SSL_KEY_FILE: material.otherClientKey });
  assertRefused(refusal, /refused the client certificate in kafka\.ssl\.certFile \(FARAD_KAFKA_SSL_CERT_FILE\), .*other-client\.pem/);
  t.diagnostic(`refused after ${refusal.ms} ms: ${refusal.line}`);
});

test('TLS to a plaintext listener is refused, saying it is not a TLS listener', { timeout: 90_000 }, async () => {
  const refusal = await refusedStart({ ...kafkaTlsEnv(false), FARAD_KAFKA_BROKERS: brokers().join(',') });
  assertRefused(refusal, /does not look like a TLS listener/, /kafka\.ssl\.enabled/);
});

test('TLS files that are not what their setting says are refused before connecting, naming the setting', { timeout: 60_000 }, async () => {
  const wrongKey = await refusedStart({ ...kafkaTlsEnv(true), FARAD_KAFKA_SSL_KEY_FILE: material.otherClientKey });
  assertRefused(wrongKey, /kafka\.ssl\.keyFile \(FARAD_KAFKA_SSL_KEY_FILE\): .*other-client-key\.pem is not the private key of the certificate in kafka\.ssl\.certFile/);
  const keyAsCa = await refusedStart({ ...kafkaTlsEnv(false), FARAD_KAFKA_SSL_CA_FILE: material.clientKey });
  assertRefused(keyAsCa, /kafka\.ssl\.caFile \(FARAD_KAFKA_SSL_CA_FILE\): .*client-key\.pem holds no PEM certificate/);
  const missing = await refusedStart({ FARAD_REDIS_URL: redisTls.url, FARAD_REDIS_PASSWORD: REDIS_PASSWORD, FARAD_REDIS_CA_FILE: join(material.dir, 'no-such-ca.pem') });
  assertRefused(missing, /redis\.caFile \(FARAD_REDIS_CA_FILE\): cannot read .*no-such-ca\.pem: ENOENT/);
});

test('contradicting Redis TLS and password settings are refused by the configuration, naming them', () => {
  const refused = (env: Record<string, string>): string => {
    try {
      loadConfig({ env });
    } catch (err) {
      return (err as Error).message;
    }
    return assert.fail(`accepted ${JSON.stringify(env)}`);
  };
  assert.match(refused({ FARAD_REDIS_URL: 'redis://r:6379', FARAD_REDIS_CA_FILE: material.ca }), /redis\.caFile is a TLS setting, but Redis is reached without TLS; set redis\.tls: true/);
  assert.match(refused({ FARAD_REDIS_URL: 'rediss://r:6379', FARAD_REDIS_CERT_FILE: material.clientCert }), /redis\.certFile and redis\.keyFile must be set together/);
  assert.match(refused({ FARAD_REDIS_URL: 'redis://:a@r:6379', FARAD_REDIS_PASSWORD: 'b' }), /redis\.password is set and redis\.url has a password too/);
  const accepted = loadConfig({ env: { FARAD_REDIS_URL: 'redis://r:6379', FARAD_REDIS_TLS: 'true', FARAD_REDIS_CA_FILE: material.ca } });
  assert.equal(accepted.redis.caFile, material.ca);
});

test('a wrong Redis password is refused at start, naming redis.password and never showing the password', { timeout: 60_000 }, async () => {
  const wrong = 'not-the-password-4711';
  const inUrl = await refusedStart({ FARAD_REDIS_URL: redisPassword.url.replace('redis://', `redis://:${wrong}@`) });
  assertRefused(inUrl, /Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+ refused the password \(WRONGPASS\); check redis\.password \(FARAD_REDIS_PASSWORD\) or the password in redis\.url/);
  assert.ok(!inUrl.output.includes(wrong), 'the password is in no output line');
  const inSetting = await refusedStart({ FARAD_REDIS_URL: redisTls.url, FARAD_REDIS_CA_FILE: material.ca, FARAD_REDIS_PASSWORD: wrong });
  assertRefused(inSetting, /refused the password \(WRONGPASS\)/);
  assert.ok(!inSetting.output.includes(wrong), 'the password is in no output line');
  const none = await refusedStart({ FARAD_REDIS_URL: redisPassword.url });
  assertRefused(none, /requires a password \(NOAUTH\) and none is set; set redis\.password \(FARAD_REDIS_PASSWORD\)/);
});

test('a Redis server certificate the CA did not sign is refused at start, naming redis.caFile', { timeout: 60_000 }, async () => {
  const wrongCa = await refusedStart({ FARAD_REDIS_URL: redisTls.url, FARAD_REDIS_PASSWORD: REDIS_PASSWORD, FARAD_REDIS_CA_FILE: material.otherCa });
  assertRefused(wrongCa, /its TLS certificate is not signed by the CA in redis\.caFile \(FARAD_REDIS_CA_FILE\), .*other-ca\.pem/);
  const noCa = await refusedStart({ FARAD_REDIS_URL: redisTls.url, FARAD_REDIS_PASSWORD: REDIS_PASSWORD });
  assertRefused(noCa, /not signed by a CA this system trusts, and redis\.caFile \(FARAD_REDIS_CA_FILE\) is not set/);
});

test('the snapshot store takes the password from the URL, and refuses a wrong one as a ConfigError', { timeout: 30_000 }, async () => {
  const logger = createLogger('silent');
  const url = redisPassword.url.replace('redis://', `redis://:${REDIS_PASSWORD}@`);
  const app = `tls_${uid()}`;
  const store = await createSnapshotStore(app, { url, tls: false, keep: 2 }, logger);
  assert.ok(store);
  try {
    const id = await store.save(3, Buffer.from('snapshot bytes'), { partition: 3, changelogOffset: 42, takenAt: Date.now(), rows: 1 });
    assert.deepEqual(await store.load(3), Buffer.from('snapshot bytes'));
    assert.deepEqual((await store.list(3)).map((i) => [i.id, i.current]), [[id, true]]);
  } finally {
    await store.close();
  }
  const refused = await createSnapshotStore(app, { url: redisPassword.url, password: 'wrong', tls: false, keep: 2 }, logger).then(
    () => assert.fail('a wrong password must be refused'),
    (err: unknown) => err,
  );
  assert.ok(refused instanceof ConfigError && refused.context.field === 'redis.password', String(refused));
});

// ---- helpers -------------------------------------------------------------------------------------

function testClient(url: string, options: RedisOptions): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, ...options });
  client.on('error', () => undefined);
  return client;
}

/** Runs a farad command to its end (the same environment a `run` gets, plus `env`). */
async function farad(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', FARAD_TRANSPORT: 'kafka', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => ((stdout += chunk.toString()), (output += chunk.toString())));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stdout, output };
}
