export { KafkaLog, type KafkaLogOptions, type GroupView, type Member } from './kafka-log.js';
export { createKafka, kafkaClientConfig, type KafkaConnection } from './client.js';
export { readPartition } from './changelog-reader.js';
export { HttpSchemaRegistry, type RegistrySettings } from './schema-registry.js';
export { KafkaChangelogFollower, type ChangelogSink } from './changelog-follower.js';
