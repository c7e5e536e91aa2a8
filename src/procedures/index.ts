export * from './app.js';
export { record, schema, parseType, type AvroSchema, type RecordSchema, type Typed, type ValueOf } from './schema.js';
export { compileApp, MP_TABLE, type CompiledApp, type CompiledEvent, type CompiledProcedure, type CompiledTable, type CompiledGlobalTable, type CompiledQuery } from './compile.js';
export { HandlerContext, emittable, queryContext, globalViews, type Emitted } from './context.js';
export { isThenable, isAsyncFunction, seededRandom, eventSeed } from './determinism.js';
export { TIMERS_TABLE, SCHEDULE_KIND_PREFIX, TimerIndex, hasTimers, timerRow, timerRowKey, type CompiledTimer, type CompiledSchedule, type TimerRow } from './timers.js';
export { INPUT_OFFSETS_TABLE, recordInputOffsets, inputOffsetsOf } from './input-offsets.js';
export { parseInterval } from './schedules.js';
export { windowed, type Window, type WindowSpec, type WindowResult, type WindowAdd, type WindowRow, type WindowCloseContext } from './windows.js';
