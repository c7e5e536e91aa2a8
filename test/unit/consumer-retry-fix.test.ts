// kafkajs's group consumer after a broker restart (src/streams/kafka/consumer-retry-fix.ts): a join
// the loading coordinator cannot serve yet is retried rather than crashing the consumer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { isBrokerOutage, isCoordinatorBusy } from '../../src/streams/kafka/consumer-retry-fix.js';

const require = createRequire(import.meta.url);
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error };
const { KafkaJSProtocolError, KafkaJSNumberOfRetriesExceeded } = require('kafkajs/src/errors.js') as Record<string, new (e: Error, extra?: object) => Error>;
const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup.js') as new (options: object) => { memberId: string | null; joinAndSync(): Promise<void> };

const protocolError = (code: number): Error => new KafkaJSProtocolError!(createErrorFromCode(code));
const quiet = { namespace: () => quiet, info() {}, warn() {}, error() {}, debug() {} };
const groupOf = (cluster: object, retry = { retries: 3, initialRetryTime: 1, maxRetryTime: 5 }) =>
  new ConsumerGroup({ cluster, groupId: 'g', topics: [], topicConfigurations: {}, logger: quiet, instrumentationEmitter: { emit() {} }, assigners: [], retry });

test('a loading, unavailable or moved coordinator is worth waiting for; other errors are not', () => {
  for (const code of [14, 15, 16]) assert.equal(isCoordinatorBusy(protocolError(code)), true, `code ${code}`);
  assert.equal(isCoordinatorBusy(new KafkaJSNumberOfRetriesExceeded!(protocolError(14), { cause: protocolError(14) })), true, 'also as a cause');
  for (const code of [25, 27, 22]) assert.equal(isCoordinatorBusy(protocolError(code)), false, `code ${code}`);
  assert.equal(isCoordinatorBusy(new Error('ECONNREFUSED')), false);
});

test('a broker that is down shows as an outage, also wrapped as not retriable', () => {
  const { KafkaJSNonRetriableError, KafkaJSGroupCoordinatorNotFound, KafkaJSConnectionError } = require('kafkajs/src/errors.js') as Record<string, new (e: unknown, extra?: object) => Error>;
  const notFound = new KafkaJSGroupCoordinatorNotFound!('Failed to find group coordinator');
  assert.equal(isBrokerOutage(new KafkaJSNonRetriableError!(notFound, { cause: notFound })), true);
  assert.equal(isBrokerOutage(new KafkaJSConnectionError!('Connection error: connect ECONNREFUSED')), true);
  assert.equal(isBrokerOutage(protocolError(23)), false);
});

test('a join the coordinator cannot serve yet is retried; any other failure ends it at once', async () => {
  const group = groupOf({}) as unknown as { joinAndSync(): Promise<void>; [key: symbol]: unknown };
  const join = Object.getOwnPropertySymbols(Object.getPrototypeOf(group)).find((s) => String(s).includes('join'))!;
  let calls = 0;
  group[join] = async () => {
    calls++;
    if (calls < 3) throw protocolError(14);
    throw protocolError(23);
  };
  await assert.rejects(group.joinAndSync(), (err: Error & { code?: number }) => err.code === 23);
  assert.equal(calls, 3, 'two loading answers were waited out, then an inconsistent-protocol error ended it');
});

test('a fetch that finds no broker is retried with the consumer’s retry settings, not a crash at once', async () => {
  const Runner = require('kafkajs/src/consumer/runner.js') as new (options: object) => { running: boolean; scheduleFetchManager(): void };
  let asked = 0;
  let refreshed = 0;
  const consumerGroup = { groupId: 'g', memberId: 'm', getNodeIds: () => (asked++, []), cluster: { refreshMetadata: async () => void refreshed++ } };
  const crashed = new Promise<Error>((resolve) => {
    const runner = new Runner({
      logger: quiet,
      consumerGroup,
      instrumentationEmitter: { emit() {} },
      retry: { retries: 3, initialRetryTime: 1, maxRetryTime: 5 },
      onCrash: resolve,
      concurrency: 1,
      eachBatch: async () => undefined,
    });
    runner.running = true;
    runner.scheduleFetchManager();
  });
  const err = await crashed;
  assert.equal(err.name, 'KafkaJSNumberOfRetriesExceeded', 'the consumer crashes only once its retries are spent');
  assert.equal(asked, 4, 'the first try and three retries');
  assert.equal(refreshed, 4, 'metadata is read again before each retry (it may list no leaders from the outage)');
});
