export { FaradMetrics, METRIC } from './metrics.js';
export { HandlerFailureLog, HANDLER_FAILED_LOG, HANDLER_FAILURE_LOG_WINDOW_MS } from './handler-failures.js';
