import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import { describeError, FaradError, SchemaValidationError, UnknownEventTypeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FaradMetrics } from '../metrics/index.js';
import { globalViews, type CompiledApp, type CompiledTable } from '../procedures/index.js';
import type { Ingest } from '../service/index.js';
import { compareKeys, partitionForKey, type Key } from '../state/index.js';
import { type Executor, type OutRecord } from '../streams/index.js';
import { toJson } from '../codec/index.js';
import { ClusterReads, FORWARDED_HEADER, type Cluster, type ReadMode, type ReadOptions, type ScannedRow } from './cluster-reads.js';
import { HttpProblem } from './problem.js';

export interface HttpDeps {
  readonly app: CompiledApp;
  readonly config: Config;
  readonly executor: Executor;
  readonly ingest: Ingest;
  readonly metrics: FaradMetrics;
  readonly logger: Logger;
  /** Other instances and local standby copies; absent on a single node. */
  readonly cluster?: Cluster | undefined;
}

const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;


/**
 * The HTTP API: ingest (`POST /events/:type`), state reads (`/tables`, `/queries`), health,
 * readiness and metrics. Reads see committed state only.
 */
export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const { app, config, executor, ingest, metrics } = deps;
  const http = Fastify({ bodyLimit: config.http.bodyLimitBytes, logger: false, return503OnClosing: true });
  const globals = globalViews(app);

  http.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (err instanceof HttpProblem) {
      void reply.code(err.status).headers(err.headers).send({ error: err.code, message: err.message, ...err.extra });
      return;
    }
    const status = err.statusCode ?? 500;
    if (status === 413) metrics.ingestRejected.inc({ reason: 'too_large' });
    if (status === 400 && err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') metrics.ingestRejected.inc({ reason: 'bad_json' });
    if (status >= 500) deps.logger.error({ err }, 'HTTP request failed');
    const code = status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : status === 400 ? 'bad_request' : 'internal';
    const message =
      status === 413
        ? `request body is larger than ${config.http.bodyLimitBytes} bytes (http.bodyLimitBytes); send fewer events per request`
        : status < 500
          ? err.message
          : 'internal error; see the server log';
    void reply.code(status).send({ error: code, message });
  });
  http.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` });
  });

  // Empty bodies with a JSON content type are malformed JSON, not "no body".
  http.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      metrics.ingestRejected.inc({ reason: 'bad_json' });
      done(new HttpProblem(400, 'bad_json', `request body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  const token = config.http.token ? Buffer.from(config.http.token) : undefined;
  const requireToken = async (request: FastifyRequest): Promise<void> => {
    if (!token) return;
    const header = request.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    if (given.length !== token.length || !timingSafeEqual(given, token)) {
      metrics.ingestRejected.inc({ reason: 'unauthorized' });
      throw new HttpProblem(401, 'unauthorized', 'missing or wrong bearer token (Authorization: Bearer <FARAD_HTTP_TOKEN>)', {}, {
        'www-authenticate': 'Bearer',
      });
    }
  };

  http.get('/healthz', async (_request, reply) => {
    if (executor.failure !== undefined) {
      return reply.code(503).send({ status: 'failed', message: `processing stopped: ${describeError(executor.failure)}` });
    }
    return { status: 'ok' };
  });

  http.get('/readyz', async (_request, reply) => {
    const partitions = [...executor.partitions()].map((p) => ({ partition: p.partition, role: p.roles.role }));
    partitions.sort((a, b) => a.partition - b.partition);
    const ready = executor.ready;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', partitions });
  });

  http.get('/metrics', async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });

  http.post<{ Params: { type: string } }>('/events/:type', { onRequest: requireToken }, async (request, reply) => {
    let event;
    try {
      event = ingest.inputEvent(request.params.type);
    } catch (err) {
      metrics.ingestRejected.inc({ reason: 'unknown_type' });
      const status = err instanceof UnknownEventTypeError && err.constructor === UnknownEventTypeError ? 404 : 400;
      throw new HttpProblem(status, (err as FaradError).code, (err as Error).message);
    }
    const contentType = request.headers['content-type'] ?? '';
    if (!/^application\/(.+\+)?json\b/i.test(contentType)) {
      metrics.ingestRejected.inc({ reason: 'invalid' });
      throw new HttpProblem(415, 'unsupported_media_type', `send events as JSON (content-type: application/json), not ${JSON.stringify(contentType || 'no content type')}`);
    }
    const body: unknown = request.body;
    if (body === undefined || body === null || (typeof body !== 'object')) {
      metrics.ingestRejected.inc({ reason: 'invalid' });
      throw new HttpProblem(400, 'bad_request', 'body must be a JSON object (one event) or an array of objects (applied in order)');
    }
    const items = Array.isArray(body) ? body : [body];
    if (items.length === 0) throw new HttpProblem(400, 'bad_request', 'the array holds no events');
    const now = Date.now();
    const records: OutRecord[] = [];
    for (let i = 0; i < items.length; i++) {
      try {
        records.push(ingest.fromJson(event, items[i], now));
      } catch (err) {
        if (!(err instanceof SchemaValidationError)) throw err;
        metrics.ingestRejected.inc({ reason: 'invalid' });
        const where = Array.isArray(body) ? `event [${i}]: ` : '';
        throw new HttpProblem(422, err.code, `${where}${err.message}`, {
          eventType: event.fullName,
          field: err.context.field ?? '',
          ...(Array.isArray(body) ? { index: i } : {}),
        });
      }
    }
    await ingest.send(event, records);
    return reply.code(202).send({ accepted: records.length, eventType: event.fullName, topic: event.inputTopic });
  });

  const reads = new ClusterReads(app, executor, deps.cluster, config.http.token);

  http.get<{ Params: { table: string; key: string }; Querystring: ReadOptions }>('/tables/:table/:key', { onRequest: requireToken }, async (request, reply) => {
    const { table, global } = findTable(app, request.params.table);
    const key = parseKey(table, request.params.key);
    if (global) {
      const value = globals[table.name]!.get(key);
      if (value === undefined) throw notFoundRow(table.name, key);
      return { table: table.name, key, value: toJson(table.valueType, value) };
    }
    if (table.scope === 'local') {
      throw new HttpProblem(400, 'local_table', `table "${table.name}" is partition-local (one row per key in every partition); read it through a query or a scan`);
    }
    const partition = partitionForKey(String(key), app.partitions);
    const where = reads.locate(partition, readMode(request));
    if (where.kind === 'remote') {
      const answer = await reads.forward(where.url, request.url);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    }
    if (where.stale) void reply.header('x-farad-stale', 'true');
    const value = where.state.readCommitted(table.name, key);
    if (value === undefined) throw notFoundRow(table.name, key);
    return { table: table.name, key, partition, value: toJson(table.valueType, value) };
  });

  http.get<{ Params: { table: string }; Querystring: ReadOptions & { after?: string; limit?: string } }>(
    '/tables/:table',
    { onRequest: requireToken },
    async (request, reply) => {
      const { table, global } = findTable(app, request.params.table);
      const limit = parseLimit(request.query.limit);
      const after = request.query.after === undefined ? undefined : parseKey(table, request.query.after);
      let rows: ScannedRow[];
      if (global) {
        rows = globals[table.name]!.scan({ after, limit: limit + 1 }).map(([key, value]) => ({ key, value: toJson(table.valueType, value) }));
      } else {
        const gathered = await reads.scan(table, after, limit + 1, readMode(request));
        if (gathered.stale) void reply.header('x-farad-stale', 'true');
        rows = gathered.rows;
        rows.sort((a, b) => compareKeys(a.key, b.key) || (a.partition ?? 0) - (b.partition ?? 0));
      }
      // For local tables a key may repeat across partitions; page by key so no row is skipped:
      // a page holds every row of its last key (`after` resumes past the whole key).
      let page = rows.slice(0, limit);
      let next: Key | null = rows.length > limit ? page[page.length - 1]!.key : null;
      if (next !== null && table.scope === 'local') {
        const lastKey = next;
        const cut = page.findIndex((r) => r.key === lastKey);
        if (cut > 0) {
          page.length = cut;
          next = page[cut - 1]!.key;
        } else {
          // The page is all one key: return all of its rows (at most one per partition, and each
          // partition's scan began with it), even if that is more than `limit`.
          page = rows.filter((r) => r.key === lastKey);
          next = rows.length > page.length ? lastKey : null;
        }
      }
      return {
        table: table.name,
        items: page.map((r) => ({ key: r.key, ...(r.partition !== undefined ? { partition: r.partition } : {}), value: r.value })),
        next,
      };
    },
  );

  http.get<{ Params: { name: string }; Querystring: Record<string, string> }>(
    '/queries/:name',
    { onRequest: requireToken },
    async (request, reply) => {
      if (!app.queries.has(request.params.name)) {
        throw new HttpProblem(404, 'unknown_query', `no query "${request.params.name}"; this app has ${[...app.queries.keys()].join(', ') || 'none'}`);
      }
      const params = queryParams(request.query);
      const parts = await reads.queryPartials(request.params.name, params, readMode(request));
      if (parts.stale) void reply.header('x-farad-stale', 'true');
      return reply.send(executor.mergeQuery(request.params.name, parts.values, params));
    },
  );

  // Internal: another instance gathers the partitions this one holds (never forwarded further).
  http.get<{ Params: { name: string }; Querystring: Record<string, string> }>(
    '/internal/partials/queries/:name',
    { onRequest: requireToken },
    async (request) => {
      if (!app.queries.has(request.params.name)) throw new HttpProblem(404, 'unknown_query', `no query "${request.params.name}"`);
      return reads.localQueryPartials(request.params.name, queryParams(request.query), parsePartitions(request.query['partitions']), readMode(request));
    },
  );
  http.get<{ Params: { table: string }; Querystring: ReadOptions & { partitions?: string; after?: string; limit?: string } }>(
    '/internal/partials/tables/:table',
    { onRequest: requireToken },
    async (request) => {
      const { table } = findTable(app, request.params.table);
      const after = request.query.after === undefined ? undefined : parseKey(table, request.query.after);
      return reads.localScan(table, parsePartitions(request.query.partitions), after, parseLimit(request.query.limit), readMode(request));
    },
  );

  return http;
}

function findTable(app: CompiledApp, name: string): { table: CompiledTable; global: boolean } {
  const table = app.tables.get(name);
  if (table) return { table, global: false };
  const global = app.globalTables.get(name);
  if (global) return { table: global, global: true };
  const known = [...app.tables.keys(), ...app.globalTables.keys()].join(', ');
  throw new HttpProblem(404, 'unknown_table', `no table "${name}"; tables: ${known || 'none'}`);
}

function parseKey(table: CompiledTable, text: string): Key {
  if (table.keyType === 'string') return text;
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new HttpProblem(400, 'bad_key', `table "${table.name}" has ${table.keyType} keys; "${text}" is not an integer`);
  }
  return n;
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PAGE;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw new HttpProblem(400, 'bad_limit', `limit must be an integer from 1 to ${MAX_PAGE}`);
  return n;
}

function notFoundRow(table: string, key: Key): HttpProblem {
  return new HttpProblem(404, 'not_found', `table "${table}" has no row with key ${JSON.stringify(key)}`);
}

/** Query-string parameters meant for the query itself (farad's own are removed). */
function queryParams(query: Record<string, string>): Record<string, string> {
  const { stale: _stale, partitions: _partitions, ...params } = query;
  return params;
}

function parsePartitions(text: string | undefined): number[] {
  if (!text) return [];
  return text.split(',').map((p) => Number(p)).filter((p) => Number.isInteger(p) && p >= 0);
}

/** Stale reads (from a standby copy) are allowed with `?stale=true` or `x-farad-accept-stale: true`. */
function readMode(request: FastifyRequest): ReadMode {
  const query = request.query as ReadOptions;
  return {
    staleOk: query.stale === 'true' || request.headers['x-farad-accept-stale'] === 'true',
    forwarded: request.headers[FORWARDED_HEADER] === '1',
    authorization: request.headers.authorization,
  };
}
