/** Environment variables a worker process learns its place from (set by the primary when it forks). */
export const WORKER_INDEX_ENV = 'FARAD_INTERNAL_WORKER_INDEX';
export const WORKER_COUNT_ENV = 'FARAD_INTERNAL_WORKER_COUNT';
/** When the instance (its primary process) started, ms since the epoch: the console's counters count from there. */
export const INSTANCE_STARTED_AT_ENV = 'FARAD_INTERNAL_INSTANCE_STARTED_AT';
