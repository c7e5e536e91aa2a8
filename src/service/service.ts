import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { createLogger, type Logger } from '../log.js';
import { FaradMetrics } from '../metrics/index.js';
import { compileApp, type App, type CompiledApp } from '../procedures/index.js';
import { EmbeddedLog, Executor, HttpSchemaRegistry, KafkaLog, type EventLog } from '../streams/index.js';
import { ConfluentCodec, SchemaCatalog, type EventCodec } from '../codec/index.js';
import { buildHttpServer } from '../http/index.js';
import { ConfigError } from '../errors.js';
import { hostname } from 'node:os';
import { StandbyManager } from '../replication/index.js';
import { PartitionState } from '../state/index.js';
import { createSnapshotStore, createSnapshotter, loadSnapshotInto } from './replication.js';
import { Ingest } from './ingest.js';

/** A running farad instance. */
export interface Service {
  readonly app: CompiledApp;
  readonly config: Config;
  readonly log: EventLog;
  readonly executor: Executor;
  readonly ingest: Ingest;
  readonly metrics: FaradMetrics;
  readonly logger: Logger;
  /** The HTTP server; `address` is where it listens. */
  readonly http: FastifyInstance;
  readonly address: { host: string; port: number };
  /** Settles when processing ends: resolves after stop(), rejects if it stopped on an error. */
  readonly done: Promise<void>;
  /** Commits what is in flight, closes the log and the HTTP server. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Don't open the HTTP server (embedded uses in tests and the demo's headless mode). */
  http?: boolean;
  /** Transport to use instead of the one named in config (tests). */
  transport?: EventLog;
}

/** Starts an app: opens the transport, creates its topics, restores and runs its partitions, serves HTTP. */
export async function startService(app: App, config: Config, options: StartOptions = {}): Promise<Service> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const compiled = compileApp(app, config.settings);
  const catalog = await createCodec(compiled, config);
  let executor: Executor | undefined;
  let log: EventLog | undefined;
  let standbys: StandbyManager | undefined;
  const metrics = new FaradMetrics(
    () => stateSizes(executor),
    () => log?.consumerLag() ?? [],
  );
  const snapshots = createSnapshotStore(compiled, config, logger);
  let boundPort: number | undefined;
  const hooks: TransportHooks = {
    advertisedUrl: () => {
      if (config.advertisedUrl) return config.advertisedUrl;
      if (boundPort === undefined) return undefined;
      const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? hostname() : config.http.host;
      return `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
    },
    onRebalance: () => metrics.rebalances.inc(),
    warm: () => standbys?.warm() ?? {},
    onStandbys: (partitions, active) => standbys?.assign(partitions, active),
  };
  log = options.transport ?? (await openTransport(compiled, config, logger, hooks));
  if (log instanceof KafkaLog && config.replicas > 0) {
    standbys = new StandbyManager({
      newState: (p) => new PartitionState(p, compiled.partitions, compiled.tables.values()),
      follower: log.changelogFollower(),
      ...(snapshots ? { loadSnapshot: (p: number, into: PartitionState) => loadSnapshotInto(snapshots, p, into, logger) } : {}),
      logger,
      onLag: (p, lag) => (lag === undefined ? metrics.standbyLag.remove({ partition: String(p) }) : metrics.standbyLag.set({ partition: String(p) }, lag)),
    });
  }
  try {
    await log.ensureTopics([
      ...compiled.inputTopics.map((name) => ({ name, partitions: compiled.partitions, exactPartitions: 'input' as const })),
      ...compiled.outputTopics.map((name) => ({ name, partitions: compiled.partitions })),
      { name: compiled.changelogTopic, partitions: compiled.partitions, compacted: true, exactPartitions: 'changelog' as const },
      { name: compiled.deadLetterTopic, partitions: compiled.partitions },
    ]);
  } catch (err) {
    await log.close();
    throw err;
  }

  executor = new Executor(
    compiled,
    log,
    catalog,
    {
      ...config,
      seeds: {
        takeStandby: (p) => standbys?.take(p),
        loadSnapshot: async (p, into) => (snapshots ? loadSnapshotInto(snapshots, p, into, logger) : undefined),
      },
      snapshots: snapshots ? createSnapshotter(compiled, snapshots, config.snapshotIntervalMs, metrics) : undefined,
    },
    logger,
    metrics,
  );
  const ingest = new Ingest(compiled, catalog, log, metrics);
  const kafkaLog = log instanceof KafkaLog ? log : undefined;
  const cluster = kafkaLog
    ? {
        standbyState: (p: number) => standbys?.state(p),
        ownerUrl: (p: number) => {
          const owner = kafkaLog.groupView().active.get(p);
          return owner && owner.instanceId !== config.instanceId ? owner.url : undefined;
        },
      }
    : undefined;
  const http = await buildHttpServer({ app: compiled, config, executor, ingest, metrics, logger, cluster });
  let address = { host: config.http.host, port: config.http.port };
  if (options.http !== false) {
    try {
      await http.listen({ host: config.http.host, port: config.http.port });
    } catch (err) {
      await executor.stop();
      await log.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') {
        throw new ConfigError(`HTTP port ${config.http.port} is in use; set FARAD_HTTP_PORT (or http.port) to a free port`, { field: 'http.port' });
      }
      throw err;
    }
    const bound = http.server.address();
    if (bound && typeof bound === 'object') address = { host: bound.address, port: bound.port };
    boundPort = address.port;
  }
  // Partitions start after the HTTP port is bound, so the group already learns this instance's URL.
  const running = executor.start();
  running.catch((err: unknown) => logger.fatal({ err }, 'executor stopped on an error'));
  logger.info({ app: compiled.name, transport: config.transport, partitions: compiled.partitions, http: address }, 'farad started');

  let stopping: Promise<void> | undefined;
  const service: Service = {
    app: compiled,
    config,
    log,
    executor,
    ingest,
    metrics,
    logger,
    http,
    address,
    done: running,
    stop() {
      stopping ??= (async () => {
        await http.close();
        await executor.stop();
        await standbys?.close();
        await log.close(); // leaves the group: other instances take the partitions over now
        await executor.flushFinalSnapshots();
        await snapshots?.close();
        logger.info({ app: compiled.name }, 'farad stopped');
      })();
      return stopping;
    },
  };
  return service;
}

/** Single-object encoding, or the Confluent wire format when a schema registry is configured. */
export async function createCodec(app: CompiledApp, config: Config): Promise<EventCodec> {
  const types = [...app.events.values()].map((e) => e.type);
  const catalog = new SchemaCatalog(types);
  const { url, username, password } = config.schemaRegistry;
  if (!url) return catalog;
  return ConfluentCodec.create(catalog, new HttpSchemaRegistry({ url, username, password }), types);
}

/** The transport named by `config.transport`. */
/** Callbacks a transport calls as group membership changes. */
export interface TransportHooks {
  onRebalance?: () => void;
  warm?: () => Record<number, number>;
  onStandbys?: (standby: number[], active: ReadonlySet<number>) => void;
  advertisedUrl?: () => string | undefined;
}

export async function openTransport(app: CompiledApp, config: Config, logger: Logger, hooks: TransportHooks = {}): Promise<EventLog> {
  if (config.transport === 'embedded') {
    return EmbeddedLog.open({
      dataDir: config.dataDir,
      logger,
      group: app.name,
      inputTopics: app.inputTopics,
      changelogTopic: app.changelogTopic,
      partitions: app.partitions,
    });
  }
  return KafkaLog.open({
    connection: config.kafka,
    logger,
    group: app.name,
    partitions: app.partitions,
    inputTopics: app.inputTopics,
    changelogTopic: app.changelogTopic,
    instanceId: config.instanceId,
    sessionTimeoutMs: config.sessionTimeoutMs,
    replicationFactor: config.kafka.replicationFactor,
    maxQueuedRecords: config.kafka.maxQueuedRecords,
    transactionTimeoutMs: config.kafka.transactionTimeoutMs,
    replicas: config.replicas,
    rack: config.rack,
    ...hooks,
  });
}

const SIZE_SAMPLE = 32;

/** Rows and approximate bytes per table and partition: Avro size of a sample of rows, scaled. */
function* stateSizes(executor: Executor | undefined): Generator<{ table: string; partition: number; keys: number; bytes: number }> {
  for (const hosted of executor?.partitions() ?? []) {
    for (const table of hosted.state.tableNames()) {
      const store = hosted.state.store(table);
      const type = hosted.state.schemaOf(table).valueType;
      let sampled = 0;
      let sampleBytes = 0;
      for (const [key, value] of store.entries()) {
        sampleBytes += String(key).length + type.toBuffer(value).length;
        if (++sampled === SIZE_SAMPLE) break;
      }
      yield { table, partition: hosted.partition, keys: store.size, bytes: sampled === 0 ? 0 : Math.round((sampleBytes / sampled) * store.size) };
    }
  }
}
