import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import voter from '../../examples/voter/index.js';
import { defineApp, loadConfig, startService, type Service } from '../../src/index.js';

// The test broker's SASL_PLAINTEXT listener (services/kafka/server.properties.template): PLAIN
// and SCRAM-SHA-256/512 for user farad. A broker without it fails this test, by design.
const saslBrokers = (process.env['KAFKA_SASL_BROKERS'] ?? '127.0.0.1:9094').split(',');
const started: Service[] = [];
after(async () => {
  for (const service of started) await service.stop();
});

for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
  test(`farad runs Voter on Kafka over SASL ${mechanism}, credentials from the environment`, { timeout: 90_000 }, async () => {
    const suffix = `${mechanism.replace(/-/g, '')}_${randomBytes(3).toString('hex')}`;
    const app = defineApp({
      ...voter.spec,
      name: `sasl_${suffix}`,
      inputs: [{ topic: `votes_${suffix}`, events: ['Vote'] }],
      outputs: { VoteAccepted: `results_${suffix}`, VoteRejected: `results_${suffix}` },
    });
    const env = {
      FARAD_TRANSPORT: 'kafka',
      FARAD_KAFKA_BROKERS: saslBrokers.join(','),
      FARAD_KAFKA_SASL_MECHANISM: mechanism,
      FARAD_KAFKA_SASL_USERNAME: 'farad',
      FARAD_KAFKA_SASL_PASSWORD: 'farad-secret',
      FARAD_HTTP_PORT: '0',
      FARAD_HTTP_HOST: '127.0.0.1',
      FARAD_LOG_LEVEL: 'warn',
      FARAD_REPLICAS: '0',
    };
    const service = await startService(app, loadConfig({ env }));
    started.push(service);
    const vote = service.ingest.inputEvent('voter.Vote');
    await service.ingest.send(vote, [1, 2, 3].map((c) => service.ingest.record(vote, { phoneNumber: 6175550100 + c, contestantNumber: c })));
    const deadline = Date.now() + 60_000;
    let total = 0;
    while (Date.now() < deadline) {
      const rows = service.host.readiness().ready ? ((await service.reads.query('leaderboard')).body as Array<{ votes: number }>) : [];
      total = rows.reduce((sum, row) => sum + row.votes, 0);
      if (total === 3) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(total, 3, 'three votes processed through the authenticated connection');
  });
}

test('wrong SASL credentials fail start-up with a message naming the settings', { timeout: 60_000 }, async () => {
  const env = {
    FARAD_TRANSPORT: 'kafka',
    FARAD_KAFKA_BROKERS: saslBrokers.join(','),
    FARAD_KAFKA_SASL_MECHANISM: 'scram-sha-256',
    FARAD_KAFKA_SASL_USERNAME: 'farad',
    FARAD_KAFKA_SASL_PASSWORD: 'wrong',
    FARAD_HTTP_PORT: '0',
    FARAD_LOG_LEVEL: 'silent',
  };
  await assert.rejects(startService(voter, loadConfig({ env })), /cannot connect to Kafka .*TLS\/SASL settings/);
});
