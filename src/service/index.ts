export { startService, type Service, type StartOptions } from './service.js';
export { appTopics, createCodec, openTransport } from './transport.js';
export { Lifecycle } from './lifecycle.js';
export { loadTableSchemas, schemaTopicOf, TableSchemaRegistry } from './table-schemas.js';
