import type { Config } from '../config/index.js';
import { ConfluentCodec, SchemaCatalog, type EventCodec } from '../codec/index.js';
import type { Logger } from '../log.js';
import type { CompiledApp } from '../procedures/index.js';
import { EmbeddedLog, HttpSchemaRegistry, KafkaLog, type EventLog, type TopicSpec } from '../streams/index.js';
import { schemaTopicOf } from './table-schemas.js';

/** Single-object encoding, or the Confluent wire format when a schema registry is configured. */
export async function createCodec(app: CompiledApp, config: Pick<Config, 'schemaRegistry'>): Promise<EventCodec> {
  const types = [...app.events.values()].map((e) => e.type);
  const catalog = new SchemaCatalog(types);
  const { url, username, password } = config.schemaRegistry;
  if (!url) return catalog;
  return ConfluentCodec.create(catalog, new HttpSchemaRegistry({ url, username, password }), types);
}

/** The transport named by `config.transport`, opened (not yet joined to the app's group). */
export async function openTransport(app: CompiledApp, config: Config, logger: Logger): Promise<EventLog> {
  if (config.transport === 'embedded') {
    return EmbeddedLog.open({
      dataDir: config.embedded.dataDir,
      logger,
      group: app.name,
      inputTopics: consumedTopics(app),
      changelogTopic: app.changelogTopic,
      partitions: app.partitions,
      retention: config.embedded.retention,
    });
  }
  return KafkaLog.open({
    connection: config.kafka,
    logger,
    group: app.name,
    partitions: app.partitions,
    inputTopics: consumedTopics(app),
    controlTopics: app.protocolTopic ? [app.protocolTopic] : [],
    changelogTopic: app.changelogTopic,
    sessionTimeoutMs: config.kafkaGroup.sessionTimeoutMs,
    heartbeatIntervalMs: config.kafkaGroup.heartbeatIntervalMs,
    rebalanceTimeoutMs: config.kafkaGroup.rebalanceTimeoutMs,
    maxQueuedRecords: config.kafkaGroup.maxQueuedRecords,
    replicationFactor: config.kafkaTopics.replicationFactor,
    transactionTimeoutMs: config.kafkaProducer.transactionTimeoutMs,
  });
}

/** Every topic the app reads or writes: inputs and changelog with exactly `partitions` partitions, and the table schema registry. */
export function appTopics(app: CompiledApp): TopicSpec[] {
  return [
    ...app.inputTopics.map((name) => ({ name, partitions: app.partitions, exactPartitions: 'input' as const })),
    ...app.outputTopics.map((name) => ({ name, partitions: app.partitions })),
    { name: app.changelogTopic, partitions: app.partitions, compacted: true, exactPartitions: 'changelog' as const },
    { name: app.deadLetterTopic, partitions: app.partitions },
    schemaTopicOf(app),
    ...(app.protocolTopic ? [{ name: app.protocolTopic, partitions: app.partitions, exactPartitions: 'input' as const }] : []),
  ];
}

/** Topics the app's partitions consume: its inputs, and the multi-partition protocol's topic. */
function consumedTopics(app: CompiledApp): readonly string[] {
  return app.protocolTopic ? [...app.inputTopics, app.protocolTopic] : app.inputTopics;
}
