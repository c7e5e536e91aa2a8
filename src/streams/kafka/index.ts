export { KafkaLog, type KafkaLogOptions } from './kafka-log.js';
export { createKafka, kafkaClientConfig, type KafkaConnection } from './client.js';
export { readPartition } from './changelog-reader.js';
export { HttpSchemaRegistry, type RegistrySettings } from './schema-registry.js';
export { KafkaChangelogFollower } from './changelog-follower.js';
export { KafkaTopicReader, KafkaTransactionalWriter } from './topic-reader.js';
