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
  type ReadonlyTable,
  type ScanOptions,
  type EmitOptions,
  type Typed,
  type AvroSchema,
  type RecordSchema,
} from './procedures/index.js';
export * from './errors.js';
