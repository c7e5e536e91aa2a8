import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { kafkaClientConfig } from '../../src/streams/kafka/index.js';

const logger = createLogger('silent');

test('TLS files and SASL SCRAM settings from the environment reach the kafkajs client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'farad-tls-'));
  for (const name of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, name), `-----${name}-----`);
  const config = loadConfig({
    env: {
      FARAD_KAFKA_BROKERS: 'b1:9093, b2:9093',
      FARAD_KAFKA_SSL_ENABLED: 'true',
      FARAD_KAFKA_SSL_CA_FILE: join(dir, 'ca.pem'),
      FARAD_KAFKA_SSL_CERT_FILE: join(dir, 'cert.pem'),
      FARAD_KAFKA_SSL_KEY_FILE: join(dir, 'key.pem'),
      FARAD_KAFKA_SSL_REJECT_UNAUTHORIZED: 'false',
      FARAD_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      FARAD_KAFKA_SASL_USERNAME: 'farad',
      FARAD_KAFKA_SASL_PASSWORD: 's3cret',
    },
  });
  const client = kafkaClientConfig(config.kafka, logger);
  assert.deepEqual(client.brokers, ['b1:9093', 'b2:9093']);
  assert.deepEqual(client.ssl, { rejectUnauthorized: false, ca: ['-----ca.pem-----'], cert: '-----cert.pem-----', key: '-----key.pem-----' });
  assert.deepEqual(client.sasl, { mechanism: 'scram-sha-512', username: 'farad', password: 's3cret' });
});

test('SASL PLAIN and SCRAM-SHA-256 from a config file; no TLS unless enabled', () => {
  for (const mechanism of ['plain', 'scram-sha-256'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'farad-sasl-'));
    const file = join(dir, 'farad.yaml');
    writeFileSync(file, `kafka:\n  sasl:\n    mechanism: ${mechanism}\n    username: u\n    password: p\n`);
    const client = kafkaClientConfig(loadConfig({ file, env: {} }).kafka, logger);
    assert.deepEqual(client.sasl, { mechanism, username: 'u', password: 'p' });
    assert.equal(client.ssl, undefined);
  }
});

test('a SASL mechanism without credentials is refused at start, naming the fields', () => {
  assert.throws(() => loadConfig({ env: { FARAD_KAFKA_SASL_MECHANISM: 'plain' } }), /kafka\.sasl\.mechanism "plain" needs kafka\.sasl\.username and kafka\.sasl\.password/);
  assert.throws(() => loadConfig({ env: { FARAD_KAFKA_SASL_MECHANISM: 'gssapi' } }), /kafka\.sasl\.mechanism/);
});
