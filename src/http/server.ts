import Fastify, { type FastifyInstance } from 'fastify';
import { KeyedIngest, type Ingest } from '../ingest/index.js';
import type { Logger } from '../log.js';
import { ConsoleAssets, type ClusterConsole } from '../console/index.js';
import type { CompiledApp } from '../procedures/index.js';
import type { FaradMetrics } from '../metrics/index.js';
import type { Reads } from '../reads/index.js';
import { bearerAuth, consoleAuth } from './auth.js';
import { installErrorAnswers, transportErrorAnswers } from './error-handler.js';
import { RequestRejectedError } from './problem.js';
import { consoleRoutes } from './routes/console.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes, type HealthSource } from './routes/health.js';
import { internalRoutes } from './routes/internal.js';
import { metricsRoutes, type MetricsSource } from './routes/metrics.js';
import { openApiRoutes } from './routes/openapi.js';
import { queryRoutes } from './routes/queries.js';
import { tableRoutes } from './routes/tables.js';
import { topicRoutes, type TopicRouteDeps } from './routes/topics.js';

/**
 * Longest URL farad reads, path and query as sent (percent-encoded): 8 KiB, what common proxies
 * and CDNs pass. A key read's key must fit in it, in the path or in `?key=`; longer URLs get 414.
 * (Node refuses a request line and headers over 16 KiB together with 431.)
 */
export const MAX_URL_BYTES = 8192;

export interface HttpDeps {
  readonly http: {
    /** Largest request body accepted (`http.bodyLimitBytes`); larger ones get 413. */
    readonly bodyLimitBytes: number;
    /** Bearer token required by every route but health, readiness and metrics (`http.token`). */
    readonly token?: string | undefined;
  };
  readonly reads: Reads;
  readonly ingest: Ingest;
  /** Who keeps which `Idempotency-Key` (the service's members); unset: this process keeps every key. */
  readonly keyed?: KeyedIngest | undefined;
  readonly health: HealthSource;
  readonly metrics: FaradMetrics;
  /** What `GET /metrics` shows; `metrics.registry` unless the instance gathers several workers'. */
  readonly exposition?: MetricsSource | undefined;
  readonly logger: Logger;
  /** `GET /topics/:topic/records` (outputs and dead letters) and `POST /dlq/replay` (embedded log only). */
  readonly topics?: TopicRouteDeps['topics'];
  readonly replays?: TopicRouteDeps['replays'];
  /** The app, described by `GET /openapi.json` (not served without it). */
  readonly app?: CompiledApp | undefined;
  /** What `GET /console` shows (not served without it). */
  readonly console?: ClusterConsole | undefined;
}

/**
 * The HTTP API, an adapter over ingest, reads and health: `POST /events/:type`, `/tables`,
 * `/queries`, `/topics`, `/internal/partials/*`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/console`. Routes throw typed
 * errors; one handler answers them (status per code in status.ts).
 */
export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const { metrics } = deps;
  const http = Fastify({
    bodyLimit: deps.http.bodyLimitBytes,
    logger: false,
    return503OnClosing: true,
    // A key in the path may be as long as a URL may be (fastify's default is 100 characters).
    routerOptions: { maxParamLength: MAX_URL_BYTES },
    ...transportErrorAnswers({ maxUrlBytes: MAX_URL_BYTES, logger: deps.logger }),
  });
  installErrorAnswers(http, { bodyLimitBytes: deps.http.bodyLimitBytes, maxUrlBytes: MAX_URL_BYTES, metrics, logger: deps.logger });

  // Empty bodies with a JSON content type are malformed JSON, not "no body".
  http.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      metrics.ingestRejected.inc({ reason: 'bad_json' });
      done(new RequestRejectedError('bad_json', `request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  const auth = bearerAuth(deps.http.token, metrics);
  healthRoutes(http, deps.health);
  metricsRoutes(http, deps.exposition ?? { contentType: metrics.registry.contentType, exposition: () => metrics.registry.metrics() });
  eventRoutes(http, { ingest: deps.ingest, keyed: deps.keyed ?? KeyedIngest.alone(), metrics, auth });
  tableRoutes(http, { reads: deps.reads, auth });
  queryRoutes(http, { reads: deps.reads, auth });
  internalRoutes(http, { reads: deps.reads, auth });
  topicRoutes(http, { topics: deps.topics, replays: deps.replays, auth });
  if (deps.console) consoleRoutes(http, { console: deps.console, assets: new ConsoleAssets(), auth: consoleAuth(deps.http.token) });
  if (deps.app) openApiRoutes(http, { app: deps.app, bearerToken: Boolean(deps.http.token), bodyLimitBytes: deps.http.bodyLimitBytes, auth });
  return http;
}
