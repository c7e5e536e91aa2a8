export { EmbeddedLog, type EmbeddedLogOptions } from './embedded-log.js';
export { DiskFullError } from './errors.js';
export type { RetentionOptions, TopicRetention } from './retention.js';
export { EmbeddedLogReader } from './log-reader.js';
