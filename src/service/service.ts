import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { listenError, type Config } from '../config/index.js';
import { ClusterConsole, REPORTED_METRICS, type MetricValues } from '../console/index.js';
import { buildHttpServer } from '../http/index.js';
import { Ingest, IngestForwarder, KeyedIngest, serveForwardedIngest } from '../ingest/index.js';
import { createLogger, type Logger } from '../log.js';
import { FaradMetrics } from '../metrics/index.js';
import { PartitionHost } from '../partition/index.js';
import { compileApp, globalViews, type App, type CompiledApp } from '../procedures/index.js';
import { Peers, Reads } from '../reads/index.js';
import { createSnapshotStore, ReplicationMembership, Snapshots } from '../replication/index.js';
import type { EventLog } from '../streams/index.js';
import { DeadLetterReplays, RecordDescriber, replayLogTopicOf, TopicRecords } from '../streams/index.js';
import { ConsistentQueries } from '../transactions/index.js';
import { Lifecycle } from './lifecycle.js';
import { stateSizes, timersPending } from './state-sizes.js';
import { loadTableSchemas } from './table-schemas.js';
import { appTopics, createCodec, openTransport } from './transport.js';
import { instanceHealth, instanceMetrics, instanceMetricValues, serveSiblings } from './worker-views.js';
import type { WorkerLink } from '../workers/index.js';

/** A running farad instance. */
export interface Service {
  readonly app: CompiledApp;
  readonly config: Config;
  readonly log: EventLog;
  /** Every partition hosted here (active and standby), one owner each. */
  readonly host: PartitionHost;
  /** Table and query reads, local or across instances. */
  readonly reads: Reads;
  readonly ingest: Ingest;
  readonly metrics: FaradMetrics;
  readonly logger: Logger;
  /** The HTTP server; `address` is where it listens. */
  readonly http: FastifyInstance;
  readonly address: { host: string; port: number };
  /** Settles when processing ends: resolves after stop(), rejects if it stopped on an error. */
  readonly done: Promise<void>;
  /** Commits what is in flight, hands the partitions over, stops every component. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Don't open the HTTP server (embedded uses in tests and the demo's headless mode). */
  http?: boolean;
  /** Transport to use instead of the one named in config (tests). */
  transport?: EventLog;
  /** This process is one worker of an instance (`farad run` with several workers): its link to the others. */
  worker?: WorkerLink | undefined;
}

/**
 * Starts an app. Components start in this order and stop in the reverse one: snapshot store,
 * final snapshots (written on stop, after the transport has handed the partitions over),
 * transport (topics created), table schemas (checked against the stored state, registered),
 * HTTP (bound before partitions start, so the group learns this instance's URL), partitions
 * (join the group; stopping commits what is in flight), HTTP requests (stopped first).
 */
export async function startService(app: App, config: Config, options: StartOptions = {}): Promise<Service> {
  const { worker } = options;
  const logger = (options.logger ?? createLogger(config.log.level)).child(worker ? { worker: worker.worker } : {});
  // Workers of one instance share the config: one of them speaks for it.
  if (!worker || worker.worker === 0) for (const warning of config.warnings) logger.warn({ warning }, 'setting has no effect');
  const compiled = compileApp(app, config.settings);
  const codec = await createCodec(compiled, config);
  // Gauges read what exists when they are scraped.
  const startedAt = Date.now();
  const live: { host?: PartitionHost; log?: EventLog; membership?: ReplicationMembership; url?: string } = {};
  const metrics = new FaradMetrics(
    () => stateSizes(live.host),
    () => live.log?.consumerLag() ?? [],
    () => live.log?.diskUsage?.() ?? [],
    () => timersPending(live.host),
    logger, // failed handlers, rate-limited
  );
  const life = new Lifecycle(logger);
  // Stops last: once processing has ended, the failed-handler lines a window held back are written.
  await life.start('handler failure log', () => undefined, () => metrics.flushLogs());

  const store = await life.start(
    'snapshot store',
    () => createSnapshotStore(compiled.name, config.redis, logger),
    (s) => s?.close(),
  );
  // Stops after the transport has handed the partitions over: final snapshots, then owners leave.
  await life.start('final snapshots', () => undefined, () => live.host?.closeOwners());
  const log = await life.start(
    'transport',
    async () => {
      const opened = options.transport ?? (await openTransport(compiled, config, logger));
      try {
        await opened.ensureTopics([...appTopics(compiled), replayLogTopicOf(compiled)]);
      } catch (err) {
        await opened.close();
        throw err;
      }
      return opened;
    },
    (l) => l.close(), // leaves the group: other instances take the partitions over now
  );
  live.log = log;
  // Refuses, before any input is accepted, an app whose tables cannot read the stored state.
  const schemas = await life.start('table schemas', () => loadTableSchemas(compiled, log, logger), () => undefined);
  const snapshots = store && new Snapshots(compiled.name, store, schemas.rows, config.replication.snapshotIntervalMs, logger, metrics);
  const host = new PartitionHost({
    app: compiled,
    codec,
    rows: schemas.rows,
    refreshSchemas: schemas.refresh,
    globals: globalViews(compiled),
    processing: config.processing,
    snapshots,
    logger,
    observer: metrics,
    ownerUrl: (p): string | undefined => live.membership?.ownerUrl(p),
    clustered: config.transport === 'kafka',
  });
  live.host = host;
  const consistent = await life.start(
    'consistent queries',
    () => (compiled.protocolTopic ? new ConsistentQueries(log, compiled.protocolTopic, logger) : undefined),
    (c) => c?.close(),
  );
  const reads = new Reads({ app: compiled, directory: host, peers: { token: config.http.token, fetch: worker?.fetch }, consistent, writes: host });
  const ingest = new Ingest(compiled, codec, log, metrics);
  // Each Idempotency-Key is kept by the worker owning partition partitionForKey(key); the others forward to it.
  const keyed = new KeyedIngest({
    partitions: compiled.partitions,
    directory: host,
    forwarder: new IngestForwarder({ token: config.http.token, link: worker }),
    window: { windowMs: config.http.idempotencyWindowSeconds * 1000, maxKeys: config.http.idempotencyMaxKeys },
  });
  const health = worker ? instanceHealth(worker) : host;
  const records = new TopicRecords(log, new RecordDescriber(compiled, codec, schemas.rows), new Set(['output', 'dead_letters']));
  const clusterConsole = new ClusterConsole({
    facts: { app: compiled.name, transport: config.transport, partitions: compiled.partitions, replicas: config.replication.replicas, servedBy: config.instanceId },
    identity: () => ({ instanceId: config.instanceId, url: live.url, workers: worker?.workers ?? 1, startedAt: worker?.instanceStartedAt ?? startedAt }),
    health: async () => {
      const [failure, { ready, partitions }] = await Promise.all([health.failure(), health.readiness()]);
      return { ready, failure, partitions };
    },
    metrics: worker ? instanceMetricValues(worker) : async () => (await metrics.valuesOf(REPORTED_METRICS)) as MetricValues[],
    instances: () => live.membership?.instances() ?? [],
    peers: new Peers({ token: config.http.token, fetch: worker?.fetch, timeoutMs: 3000 }),
    records,
    deadLetterTopic: compiled.deadLetterTopic,
  });
  const { http, address } = await life.start(
    'http',
    async () => {
      const server = await buildHttpServer({
        http: config.http,
        reads,
        ingest,
        keyed,
        health,
        metrics,
        exposition: worker && instanceMetrics(worker, metrics),
        logger,
        // Outputs and dead letters decoded, on either transport; replay where one append is one frame.
        topics: records,
        replays: config.transport === 'embedded' ? new DeadLetterReplays(compiled, log) : undefined,
        app: compiled,
        console: clusterConsole,
      });
      if (worker) serveSiblings(worker, { health: host, metrics, http: server });
      if (worker) serveForwardedIngest(worker, server);
      try {
        return { http: server, address: await listen(server, config, options.http !== false) };
      } catch (err) {
        await server.close();
        throw err;
      }
    },
    // Normally closed already by 'http requests' below; this covers a start that fails before it.
    () => closeHttp(),
  );
  let httpClosed: Promise<void> | undefined;
  const closeHttp = (): Promise<void> => (httpClosed ??= http.close());
  const advertisedUrl = (): string | undefined => config.replication.advertisedUrl ?? (options.http === false ? undefined : urlOf(config, address.port));
  live.url = advertisedUrl();
  const membership = (live.membership = new ReplicationMembership({
    partitions: compiled.partitions,
    instanceId: config.instanceId,
    worker: worker?.worker,
    replicas: config.replication.replicas,
    rack: config.replication.rack,
    advertisedUrl,
    holdings: () => host.holdings(),
    onStandbys: (standbys, activeHere) => host.setStandbys(standbys, activeHere),
    onRebalance: () => metrics.rebalances.inc(),
  }));
  const { done } = await life.start(
    'partitions',
    () => {
      const running = host.start(log, membership);
      running.catch((err: unknown) => logger.fatal({ err }, 'processing stopped on an error'));
      return { done: running }; // wrapped: the start must not wait for processing to end
    },
    () => host.stop(),
  );
  // HTTP binds before partitions join (the group learns this instance's URL) but stops taking
  // requests before they stop, so a graceful handover is not held up by open connections.
  await life.start('http requests', () => undefined, () => closeHttp());
  logger.info({ app: compiled.name, transport: config.transport, partitions: compiled.partitions, http: address }, 'farad started');

  return {
    app: compiled,
    config,
    log,
    host,
    reads,
    ingest,
    metrics,
    logger,
    http,
    address,
    done,
    async stop() {
      await life.stop();
      logger.info({ app: compiled.name }, 'farad stopped');
    },
  };
}

/** Binds the HTTP API; an address that cannot be used (in use, unresolvable, not this machine's) is a ConfigError naming the setting and its source. */
async function listen(http: FastifyInstance, config: Config, enabled: boolean): Promise<{ host: string; port: number }> {
  if (!enabled) return { host: config.http.host, port: config.http.port };
  try {
    await http.listen({ host: config.http.host, port: config.http.port });
  } catch (err) {
    throw listenError(err, config) ?? err;
  }
  const bound = http.server.address();
  return bound && typeof bound === 'object' ? { host: bound.address, port: bound.port } : { host: config.http.host, port: config.http.port };
}

/** How other instances reach this one when `advertisedUrl` is not set: the host name and bound port. */
function urlOf(config: Config, port: number): string {
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? hostname() : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
