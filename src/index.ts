/** farad's public API: define an app; run it with the `farad` CLI or `startService`. */
export {
  defineApp,
  table,
  globalTable,
  procedure,
  query,
  record,
  schema,
  type App,
  type AppSpec,
  type ProcedureContext,
  type QueryContext,
  type Table,
  type TableMigration,
  type ReadonlyTable,
  type ScanOptions,
  type EmitOptions,
  type Timers,
  type TimerDef,
  type TimerSetting,
  type FiredTimer,
  type PendingTimer,
  type ScheduleDef,
  type ScheduledRun,
  windowed,
  type Window,
  type WindowSpec,
  type WindowResult,
  type WindowAdd,
  type Typed,
  type AvroSchema,
  type RecordSchema,
} from './procedures/index.js';
export * from './errors.js';
export { startService, type Service, type StartOptions } from './service/index.js';
export { Ingest } from './ingest/index.js';
export { loadConfig, type Config, type ConfigInput } from './config/index.js';
export { createLogger, type Logger } from './log.js';
export { METRIC } from './metrics/index.js';
export { EmbeddedLog, DLQ_HEADERS, FIRED_AT_HEADER, type EventLog, type LogRecord, type OutRecord } from './streams/index.js';
/** What `farad tail` and `GET /topics/:topic/records` print, and the headers of a replayed dead letter. */
export { REPLAY_HEADERS, type RecordLine, type ReplayEntry } from './streams/index.js';
