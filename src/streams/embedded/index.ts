export { EmbeddedLog, type EmbeddedLogOptions } from './embedded-log.js';
