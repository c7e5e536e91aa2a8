/** The HTTP API: a thin adapter over ingest, reads and health. */
export { buildHttpServer, type HttpDeps } from './server.js';
export { openApiDocument, type OpenApiDocument, type OpenApiOptions } from './openapi.js';
export { STATUS, problemOf, type Problem } from './status.js';
export { RequestRejectedError, InvalidEventError } from './problem.js';
export type { HealthSource, Readiness } from './routes/health.js';
export type { MetricsSource } from './routes/metrics.js';
