import { heartbeatIntervalMs, rebalanceTimeoutMs } from './kafka-timing.js';
import type { ConfigFields } from './schema.js';

/** How partition owners form and retry batches. */
export interface ProcessingOptions {
  /** Longest time a batch stays open before it commits. */
  readonly commitIntervalMs: number;
  /** A batch whose input is drained commits once it is this old. */
  readonly commitLingerMs: number;
  /** Most input records per batch (one transaction). */
  readonly maxBatchRecords: number;
  /** First delay before retrying a failed commit; doubles up to 30 s. */
  readonly retryBackoffMs: number;
}

/** How the kafkajs client connects: brokers, client id, TLS and SASL. */
export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly ssl: Readonly<ConfigFields['kafka']['ssl']>;
  readonly sasl: Readonly<ConfigFields['kafka']['sasl']>;
}

/** This instance as a consumer group member, with the timings derived from the session timeout. */
export interface KafkaGroupOptions {
  /** Stable member name, sent to the group with its partitions. */
  readonly instanceId: string;
  readonly sessionTimeoutMs: number;
  /** `sessionTimeoutMs / 10`, kept between 250 and 1000 ms. */
  readonly heartbeatIntervalMs: number;
  /** Three sessions, at least 30 s. */
  readonly rebalanceTimeoutMs: number;
  /** Records buffered per partition before its fetching pauses. */
  readonly maxQueuedRecords: number;
}

/** The transactional producers (one per partition). */
export interface KafkaProducerOptions {
  readonly transactionTimeoutMs: number;
}

/** The topics farad creates. */
export interface KafkaTopicOptions {
  /** -1 = the broker's default. */
  readonly replicationFactor: number;
}

/** Standby copies, placement, forwarded reads and snapshots. */
export interface ReplicationOptions {
  /** Standby copies per partition (k); always 0 on the embedded transport, a single node. */
  readonly replicas: number;
  readonly rack: string | undefined;
  /** How other instances reach this one; undefined: derived from the bound HTTP address at start. */
  readonly advertisedUrl: string | undefined;
  /** How often a changed partition is snapshotted to Redis; 0 = only on graceful stop. */
  readonly snapshotIntervalMs: number;
  /** How long a silent instance keeps its partitions before they fail over. */
  readonly sessionTimeoutMs: number;
}

/** Retention of the embedded log's topics, its changelog compaction and segment size (the embedded log's RetentionOptions). */
export interface RetentionOptions {
  /** Newest bytes kept per topic (all partitions). */
  readonly bytes: number;
  /** Records younger than this are kept. */
  readonly ms: number;
  /** Per-topic overrides. */
  readonly topics: Readonly<Record<string, Readonly<{ bytes?: number | undefined; ms?: number | undefined }>>>;
  /** How long a changelog delete marker stays. */
  readonly tombstoneMs: number;
  readonly segmentBytes: number;
  /** How often retention by time and the group's progress are looked at, besides after every roll. */
  readonly checkIntervalMs: number;
}

/** The embedded (single node) log. */
export interface EmbeddedOptions {
  readonly dataDir: string;
  /** Retention, compaction and segment size of the journal. */
  readonly retention: RetentionOptions;
}

/** How often the embedded log looks at retention by time and the group's progress, besides after every segment roll. */
const RETENTION_CHECK_MS = 10_000;

/** The HTTP API: address, bearer token, body limit. */
export type HttpOptions = Readonly<ConfigFields['http']>;
/** Redis for snapshots; no `url` = snapshots off. */
export type RedisOptions = Readonly<ConfigFields['redis']>;
/** The Confluent schema registry; no `url` = farad's own single-object encoding. */
export type SchemaRegistryOptions = Readonly<ConfigFields['schemaRegistry']>;

/** Logging. */
export interface LogOptions {
  readonly level: ConfigFields['logLevel'];
}

/** What compiling adds to the validated fields: one options slice per component. */
export interface CompiledOptions {
  readonly processing: ProcessingOptions;
  readonly kafkaClient: KafkaClientOptions;
  readonly kafkaGroup: KafkaGroupOptions;
  readonly kafkaProducer: KafkaProducerOptions;
  readonly kafkaTopics: KafkaTopicOptions;
  readonly replication: ReplicationOptions;
  readonly embedded: EmbeddedOptions;
  readonly log: LogOptions;
  /** Settings that were set but have no effect here: each names the field, its source and the fix. Log them at start. */
  readonly warnings: readonly string[];
  /**
   * Where each explicitly set field came from, by path (`http.port` → `environment variable
   * FARAD_HTTP_PORT`, `config file x.yaml`, `overrides`); fields left at their default are absent.
   * For messages that name a setting (see `settingSource`).
   */
  readonly sources: Readonly<Record<string, string>>;
}

/**
 * farad's compiled configuration: the validated fields (`config.http.port`, `config.replicas`, …,
 * as written plus defaults) and the per-component slices computed from them once.
 */
export type Config = ConfigFields & CompiledOptions;

/** Adds the component slices to validated fields. Pure: the same fields give the same config. */
export function compileConfig(fields: ConfigFields, warnings: readonly string[], sources: Readonly<Record<string, string>> = {}): Config {
  const { kafka } = fields;
  const compiled: CompiledOptions = {
    processing: freeze({ commitIntervalMs: fields.commitIntervalMs, commitLingerMs: fields.commitLingerMs, maxBatchRecords: fields.maxBatchRecords, retryBackoffMs: fields.retryBackoffMs }),
    kafkaClient: freeze({ brokers: freeze([...kafka.brokers]), clientId: kafka.clientId, ssl: freeze({ ...kafka.ssl }), sasl: freeze({ ...kafka.sasl }) }),
    kafkaGroup: freeze({
      instanceId: fields.instanceId,
      sessionTimeoutMs: fields.sessionTimeoutMs,
      heartbeatIntervalMs: heartbeatIntervalMs(fields.sessionTimeoutMs),
      rebalanceTimeoutMs: rebalanceTimeoutMs(fields.sessionTimeoutMs),
      maxQueuedRecords: kafka.maxQueuedRecords,
    }),
    kafkaProducer: freeze({ transactionTimeoutMs: kafka.transactionTimeoutMs }),
    kafkaTopics: freeze({ replicationFactor: kafka.replicationFactor }),
    replication: freeze({
      replicas: fields.transport === 'embedded' ? 0 : fields.replicas,
      rack: fields.rack,
      advertisedUrl: fields.advertisedUrl,
      snapshotIntervalMs: fields.snapshotIntervalMs,
      sessionTimeoutMs: fields.sessionTimeoutMs,
    }),
    embedded: freeze({
      dataDir: fields.dataDir,
      retention: freeze({
        bytes: fields.retention.bytes,
        ms: fields.retention.ms,
        topics: freeze(Object.fromEntries(Object.entries(fields.retention.topics).map(([topic, r]) => [topic, freeze({ ...r })]))),
        tombstoneMs: fields.retention.tombstoneMs,
        segmentBytes: fields.retention.segmentBytes,
        checkIntervalMs: RETENTION_CHECK_MS,
      }),
    }),
    log: freeze({ level: fields.logLevel }),
    warnings: freeze([...warnings]),
    sources: freeze({ ...sources }),
  };
  return { ...fields, ...compiled };
}

function freeze<T extends object>(value: T): Readonly<T> {
  return Object.freeze(value);
}
