export { loadConfig, environmentVariables, type LoadOptions } from './config.js';
export type { ConfigFields, ConfigInput } from './schema.js';
export type {
  CompiledOptions,
  Config,
  EmbeddedOptions,
  HttpOptions,
  KafkaClientOptions,
  KafkaGroupOptions,
  KafkaProducerOptions,
  KafkaTopicOptions,
  LogOptions,
  ProcessingOptions,
  RedisOptions,
  ReplicationOptions,
  SchemaRegistryOptions,
} from './compile.js';
export { envNameOf, settingNameOf } from './env.js';
export { configFields, type ConfigField, type FieldKind } from './fields.js';
export { heartbeatIntervalMs, rebalanceTimeoutMs } from './kafka-timing.js';
export { readSettingsTable, settingsTable, withSettingsTable, SETTINGS_TABLE_END, SETTINGS_TABLE_START } from './settings-table.js';
export { dataDirError, listenError, settingSource } from './explain.js';
