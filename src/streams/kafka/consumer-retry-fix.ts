/**
 * kafkajs 2.2.4's group consumer gives up at once, though the condition passes, on what a broker
 * restart brings: while the broker is down its fetch finds no broker or no group coordinator
 * (the latter not retriable: the consumer stopped for good and farad exited), and once it is
 * back a join is answered that the coordinator is loading (for seconds) or has moved. The
 * consumer then "crashes" and kafkajs restarts it as a new group member (every 300 ms while the
 * coordinator loads), and farad must drop every lease a new member held (fault C in
 * RELIABILITY.md). Here these are retried with the consumer's retry settings instead; an outage
 * longer than those still ends in a crash and a rejoin.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface RunnerLike {
  readonly fetchManager: { start(): Promise<void> } & { [PATCHED]?: true };
  readonly consumerGroup: { readonly cluster: { refreshMetadata(): Promise<void> } };
  scheduleFetchManager(): void;
}

interface ConsumerGroupLike {
  readonly retrier: <T>(fn: (bail: (err: Error) => void) => Promise<T>) => Promise<T>;
  joinAndSync(): Promise<void>;
}

/**
 * Error codes of a coordinator that is starting or moving, worth waiting for:
 * COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR (kafkajs calls them
 * GROUP_LOAD_IN_PROGRESS, GROUP_COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR_FOR_GROUP).
 */
const COORDINATOR_BUSY = new Set([14, 15, 16]);

/** Errors of a broker that is down or restarting (kafkajs names), anywhere in the cause chain. */
const OUTAGE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSBrokerNotFound',
  'KafkaJSRequestTimeoutError',
]);

export function isBrokerOutage(err: unknown): boolean {
  for (let e = err as { name?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.name !== undefined && OUTAGE.has(e.name)) return true;
  }
  return false;
}

export function isCoordinatorBusy(err: unknown): boolean {
  for (let e = err as { code?: number; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code !== undefined && COORDINATOR_BUSY.has(e.code)) return true;
  }
  return false;
}

const PATCHED = Symbol('farad.consumerRetry');
const { KafkaJSError } = require('kafkajs/src/errors.js') as { KafkaJSError: new (e: Error, options: { retriable: boolean; cause: Error }) => Error };

/** The same error, retriable and under a name kafkajs does not bail on. */
function retriable(err: Error): Error {
  return new KafkaJSError(err, { retriable: true, cause: err });
}

function install(): boolean {
  const proto = (require('kafkajs/src/consumer/consumerGroup.js') as { prototype: ConsumerGroupLike & { [PATCHED]?: true } }).prototype;
  if (proto[PATCHED]) return true;
  const joinAndSync = proto.joinAndSync;
  proto.joinAndSync = function (this: ConsumerGroupLike): Promise<void> {
    return this.retrier(async (bail) => {
      try {
        await joinAndSync.call(this);
      } catch (err) {
        if (isCoordinatorBusy(err) || isBrokerOutage(err)) throw retriable(err as Error);
        bail(err as Error);
      }
    });
  };
  proto[PATCHED] = true;
  const runner = (require('kafkajs/src/consumer/runner.js') as { prototype: RunnerLike }).prototype;
  const scheduleFetchManager = runner.scheduleFetchManager;
  runner.scheduleFetchManager = function (this: RunnerLike): void {
    const fetchManager = this.fetchManager;
    if (!fetchManager[PATCHED]) {
      const start = fetchManager.start.bind(fetchManager);
      const { cluster } = this.consumerGroup;
      // kafkajs bails on some of these by name, or gets them wrapped as not retriable.
      fetchManager.start = () =>
        start().catch(async (err: Error) => {
          if (!isBrokerOutage(err)) throw err;
          // Metadata read while the broker was down lists no leaders, and a fetch asks no one
          // until it is read again (kafkajs's restart after a crash used to do that).
          if (err.name === 'KafkaJSNoBrokerAvailableError') await cluster.refreshMetadata().catch(() => undefined);
          throw retriable(err);
        });
      fetchManager[PATCHED] = true;
    }
    scheduleFetchManager.call(this);
  };
  return true;
}

export const consumerRetryFixed = install();
