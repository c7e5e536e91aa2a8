/**
 * The OpenAPI 3.1 document of an app's HTTP API (`GET /openapi.json`), generated from the
 * compiled app: one `POST /events/<type>` per input event with its JSON body as `fromJson` reads
 * it, key reads and pages per table with rows as `toJson` writes them, one path per query, the
 * records of the output topics and the dead letters, health, readiness, metrics. A console can
 * build its forms from it. Pure: the route caches what this returns.
 */
import { createHash } from 'node:crypto';
import { jsonSchemasOf, type JsonSchema } from '../codec/index.js';
import type { CompiledApp, CompiledTable } from '../procedures/index.js';
import { ACCEPT_STALE_HEADER, DEFAULT_PAGE, MAX_PAGE, STALE_HEADER, WAIT_FOR_LIMIT_MS } from '../reads/index.js';

export interface OpenApiOptions {
  /** `http.token` is set: every route but health, readiness and metrics needs `Authorization: Bearer`. */
  readonly bearerToken: boolean;
  /** `http.bodyLimitBytes`, named in the 413 answer. */
  readonly bodyLimitBytes: number;
}

/** An OpenAPI document as plain JSON. */
export type OpenApiDocument = { readonly openapi: '3.1.0'; readonly info: { readonly title: string; readonly version: string } } & Readonly<Record<string, unknown>>;

const SCHEMAS = '#/components/schemas/';
/** Suffix of the answer (toJson) schema of a named type; `-` cannot occur in an Avro name. */
const OUT = '-out';
const ref = (name: string): JsonSchema => ({ $ref: `${SCHEMAS}${name}` });
const json = (schema: JsonSchema): Record<string, unknown> => ({ 'application/json': { schema } });

/** The shared error answer (components/responses) of each status; every body is the `Error` schema. */
const ANSWERS = {
  400: 'BadRequest',
  401: 'Unauthorized',
  413: 'TooLarge',
  415: 'UnsupportedMediaType',
  422: 'Unprocessable',
  500: 'QueryFailed',
  503: 'Unavailable',
  507: 'DiskFull',
} as const;

function errorAnswer(description: string, retryAfter = false): Record<string, unknown> {
  return {
    description,
    ...(retryAfter ? { headers: { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' } } } } : {}),
    content: json(ref('Error')),
  };
}

/** The OpenAPI 3.1 document of `app`'s HTTP API. `info.version` is a hash of the rest of the document. */
export function openApiDocument(app: CompiledApp, options: OpenApiOptions): OpenApiDocument {
  const inputs = [...app.events.values()].filter((e) => e.inputTopic !== undefined && e.procedure !== undefined);
  const outputs = [...app.events.values()].filter((e) => e.outputTopic !== undefined);
  const tables = [...app.tables.values(), ...app.globalTables.values()].filter((t) => t.system !== true);

  // Request bodies as fromJson reads them; answers as toJson writes them. Every event and row type is a component.
  const requests = jsonSchemasOf(inputs.map((e) => e.type), { mapping: 'fromJson', refBase: SCHEMAS });
  const answers = jsonSchemasOf([...tables.map((t) => t.valueType), ...outputs.map((e) => e.type)], { mapping: 'toJson', refBase: SCHEMAS, nameSuffix: OUT });
  const rowSchema = new Map(tables.map((t, i) => [t.name, answers.roots[i]!]));
  const outputSchema = new Map(outputs.map((e, i) => [e.fullName, answers.roots[tables.length + i]!]));

  const guarded = options.bearerToken ? { security: [{ bearer: [] }, { basic: [] }] } : {};
  const unauthorized = options.bearerToken ? { 401: { $ref: '#/components/responses/Unauthorized' } } : {};
  const answer = (status: keyof typeof ANSWERS): Record<number, unknown> => ({ [status]: { $ref: `#/components/responses/${ANSWERS[status]}` } });

  const paths: Record<string, unknown> = {};

  for (const [i, event] of inputs.entries()) {
    const body = requests.roots[i]!;
    paths[`/events/${event.fullName}`] = {
      post: {
        tags: ['events'],
        operationId: `send-${event.fullName}`,
        summary: `Send ${event.fullName} events (input topic ${event.inputTopic!})`,
        description:
          'One event (a JSON object) or several (an array, appended in array order, all or none). ' +
          'Answered 202 once durably appended; `position` names where the write ended, for reads that must see it (`waitFor`). ' +
          `The short name works too (/events/${event.fullName.slice(event.fullName.lastIndexOf('.') + 1)}).`,
        ...guarded,
        parameters: [{ $ref: '#/components/parameters/IdempotencyKey' }],
        requestBody: {
          required: true,
          content: json({ oneOf: [body, { type: 'array', items: body, minItems: 1 }] }),
        },
        responses: {
          202: {
            description: 'appended durably (or, with the same Idempotency-Key, the first answer again)',
            headers: { 'Idempotent-Replayed': { description: '`true` when this is the first answer to an earlier request with the same Idempotency-Key; nothing was appended', schema: { type: 'string', enum: ['true'] } } },
            content: json(ref('Accepted')),
          },
          ...answer(400),
          ...unauthorized,
          ...answer(413),
          ...answer(415),
          ...answer(422),
          ...answer(503),
          ...answer(507),
        },
      },
    };
  }

  for (const table of tables) {
    const row = rowSchema.get(table.name)!;
    const key = keySchema(table);
    const rowBody = rowBodySchema(table, key, row);
    const readParams = [{ $ref: '#/components/parameters/WaitFor' }, { $ref: '#/components/parameters/WaitMs' }, { $ref: '#/components/parameters/Stale' }, { $ref: '#/components/parameters/AcceptStale' }];
    const staleHeader = { [STALE_HEADER]: { $ref: '#/components/headers/Stale' } };
    const keyed = table.global || table.scope !== 'local';
    const kind = table.global ? 'global table (the same rows in every partition)' : table.scope === 'local' ? 'partition-local table (a key in every partition: read it by pages or a query)' : 'table';
    if (keyed) {
      paths[`/tables/${table.name}/{key}`] = {
        get: {
          tags: ['tables'],
          operationId: `get-${table.name}`,
          summary: `One committed row of ${kind} ${table.name}`,
          ...guarded,
          parameters: [
            { name: 'key', in: 'path', required: true, description: `the row's ${table.keyType} key (percent-encoded: encodeURIComponent)`, schema: keyParamSchema(table) },
            ...readParams,
          ],
          responses: {
            200: { description: 'the row', headers: staleHeader, content: json(rowBody) },
            ...answer(400),
            ...unauthorized,
            404: { description: 'no row with this key (`not_found`)', content: json(ref('Error')) },
            ...answer(503),
          },
        },
      };
    }
    const page = {
      type: 'object',
      properties: {
        table: { const: table.name },
        items: {
          type: 'array',
          items: {
            type: 'object',
            properties: { key, ...(table.global ? {} : { partition: { type: 'integer', minimum: 0 } }), value: row },
            required: table.global ? ['key', 'value'] : ['key', 'partition', 'value'],
            additionalProperties: false,
          },
        },
        next: { anyOf: [key, { type: 'null' }], description: 'pass as `after` for the next page; null on the last page' },
      },
      required: ['table', 'items', 'next'],
      additionalProperties: false,
    };
    paths[`/tables/${table.name}`] = {
      get: {
        tags: ['tables'],
        operationId: `scan-${table.name}`,
        summary: `Committed rows of ${kind} ${table.name} in key order${keyed ? ', or one row by `key`' : ''}`,
        ...guarded,
        parameters: [
          { name: 'after', in: 'query', description: 'the `next` of the previous page', schema: keyParamSchema(table) },
          { name: 'limit', in: 'query', description: `rows per page (default ${DEFAULT_PAGE})`, schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE } },
          ...(keyed ? [{ name: 'key', in: 'query', description: 'read this one row instead of a page (not with `after` or `limit`)', schema: keyParamSchema(table) }] : []),
          ...readParams,
        ],
        responses: {
          200: { description: keyed ? 'a page, or the row asked by `key`' : 'a page', headers: staleHeader, content: json(keyed ? { oneOf: [page, rowBody] } : page) },
          ...answer(400),
          ...unauthorized,
          ...(keyed ? { 404: { description: 'no row with the `key` asked (`not_found`)', content: json(ref('Error')) } } : {}),
          ...answer(503),
        },
      },
    };
  }

  for (const [name, query] of app.queries) {
    const consistent = query.consistent === true;
    paths[`/queries/${name}`] = {
      get: {
        tags: ['queries'],
        operationId: `query-${name}`,
        summary: `Query ${name}${consistent ? ' (consistent: one serializable cut of every partition)' : ''}`,
        description:
          'Runs on every partition\'s committed state and merges the parts. Query-string parameters other than farad\'s own ' +
          '(`stale`, `consistent`, `waitFor`, `waitMs`) are passed to the query as strings.',
        ...guarded,
        parameters: [
          { name: 'params', in: 'query', style: 'form', explode: true, description: "the query's own parameters, as strings", schema: { type: 'object', additionalProperties: { type: 'string' } } },
          ...(consistent ? [] : [{ $ref: '#/components/parameters/WaitFor' }, { $ref: '#/components/parameters/WaitMs' }, { $ref: '#/components/parameters/Stale' }, { $ref: '#/components/parameters/AcceptStale' }]),
          ...(app.multiPartition && !consistent
            ? [{ name: 'consistent', in: 'query', description: 'run as a read-only multi-partition transaction (one serializable cut; not with `waitFor`)', schema: { type: 'boolean' } }]
            : []),
        ],
        responses: {
          200: { description: "the query's merged answer (any JSON its merge returns)", headers: { [STALE_HEADER]: { $ref: '#/components/headers/Stale' } }, content: json({}) },
          ...answer(400),
          ...unauthorized,
          ...answer(500),
          ...answer(503),
        },
      },
    };
  }

  for (const topic of [...app.outputTopics, app.deadLetterTopic]) {
    const dead = topic === app.deadLetterTopic;
    const events = outputs.filter((e) => e.outputTopic === topic);
    const value = dead
      ? { description: 'the dead-lettered event as JSON (see eventType), a timer\'s row, or { base64 } when it does not decode' }
      : { anyOf: [...events.map((e) => outputSchema.get(e.fullName)!), ref('Base64')], description: 'the event as JSON (see eventType), or { base64 } when it does not decode' };
    paths[`/topics/${topic}/records`] = {
      get: {
        tags: ['topics'],
        operationId: `records-${topic}`,
        summary: dead ? `Dead letters (${topic}), decoded` : `Records of output topic ${topic} (${events.map((e) => e.fullName).join(', ')}), decoded`,
        description: 'A page of records as `farad tail` prints them. Without `partition` every partition is read in partition order and `from`/`next` are positions (`0:12,1:0`); with it they are offsets.',
        ...guarded,
        parameters: [
          { name: 'partition', in: 'query', description: 'one partition only', schema: { type: 'integer', minimum: 0 } },
          { name: 'from', in: 'query', description: '`beginning` (default), `end`, an offset (with `partition`) or a position (the `next` of a page)', schema: { type: 'string' } },
          { name: 'limit', in: 'query', description: 'records per page (default 100)', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        ],
        responses: {
          200: { description: 'a page of records', content: json(recordsPage(topic, value)) },
          ...answer(400),
          ...unauthorized,
        },
      },
    };
  }

  paths['/healthz'] = {
    get: {
      tags: ['health'],
      operationId: 'healthz',
      summary: 'Liveness (open)',
      responses: {
        200: { description: 'the process runs', content: json({ type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] }) },
        503: { description: 'processing stopped for good', content: json({ type: 'object', properties: { status: { const: 'failed' }, message: { type: 'string' } }, required: ['status', 'message'] }) },
      },
    },
  };
  paths['/readyz'] = {
    get: {
      tags: ['health'],
      operationId: 'readyz',
      summary: 'Readiness (open): every partition this instance owns is restored and processing',
      responses: {
        200: { description: 'ready', content: json(ref('Readiness')) },
        503: { description: 'not ready', content: json(ref('Readiness')) },
      },
    },
  };
  paths['/metrics'] = {
    get: {
      tags: ['health'],
      operationId: 'metrics',
      summary: 'Prometheus metrics (open)',
      responses: { 200: { description: 'the Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  };
  paths['/openapi.json'] = {
    get: {
      tags: ['health'],
      operationId: 'openapi',
      summary: 'This document',
      ...guarded,
      responses: { 200: { description: 'the OpenAPI 3.1 document of this app', content: json({ type: 'object' }) }, ...unauthorized },
    },
  };

  const document = {
    openapi: '3.1.0' as const,
    info: {
      title: app.name,
      version: '',
      description: `The HTTP API of farad app "${app.name}": send its input events, read its tables and queries, page through its outputs and dead letters.`,
    },
    tags: [
      { name: 'events', description: 'input events, as JSON (longs may be decimal strings; unions take a bare value or {"branch": value})' },
      { name: 'tables', description: 'committed rows' },
      { name: 'queries', description: 'named queries over every partition' },
      { name: 'topics', description: 'output topics and dead letters, decoded' },
      { name: 'health', description: 'probes and this document' },
    ],
    paths,
    components: {
      schemas: { ...sharedSchemas(), ...requests.definitions, ...answers.definitions },
      parameters: sharedParameters(),
      headers: { Stale: { description: '`true` when the answer came, at least partly, from a standby copy', schema: { type: 'string', enum: ['true'] } } },
      responses: sharedResponses(options),
      ...(options.bearerToken ? { securitySchemes: {
              bearer: { type: 'http', scheme: 'bearer', description: 'the token set as http.token (FARAD_HTTP_TOKEN)' },
              basic: { type: 'http', scheme: 'basic', description: 'any user name and the token as password (what a browser signed in to /console sends)' },
            },
          } : {}),
    },
  };
  // The version changes exactly when the document does: a console may cache the forms it built by it.
  const version = createHash('sha256').update(JSON.stringify(document)).digest('hex').slice(0, 16);
  return { ...document, info: { ...document.info, version } };
}

function keySchema(table: CompiledTable): JsonSchema {
  switch (table.keyType) {
    case 'int':
      return { type: 'integer', format: 'int32', minimum: -2147483648, maximum: 2147483647 };
    case 'long':
      return { type: 'integer', format: 'int64', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };
    default:
      return { type: 'string' };
  }
}

/** A key as text in a path or query string (reads/params.ts `parseKey`). */
function keyParamSchema(table: CompiledTable): JsonSchema {
  return table.keyType === 'string' ? { type: 'string', minLength: 1 } : keySchema(table);
}

function rowBodySchema(table: CompiledTable, key: JsonSchema, row: JsonSchema): JsonSchema {
  return {
    type: 'object',
    properties: { table: { const: table.name }, key, ...(table.global ? {} : { partition: { type: 'integer', minimum: 0 } }), value: row },
    required: table.global ? ['table', 'key', 'value'] : ['table', 'key', 'partition', 'value'],
    additionalProperties: false,
  };
}

function recordsPage(topic: string, value: JsonSchema): JsonSchema {
  const offset = { type: 'integer', minimum: 0 };
  return {
    type: 'object',
    properties: {
      topic: { const: topic },
      items: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            topic: { const: topic },
            partition: offset,
            offset,
            timestamp: { type: 'integer', description: 'ms since the epoch' },
            key: { anyOf: [{ type: 'string' }, ref('Base64'), { type: 'null' }], description: 'UTF-8 text, { base64 } when it is not text, or null' },
            headers: { type: 'object', additionalProperties: { type: 'string' } },
            eventType: { type: 'string' },
            value,
            decodeError: { type: 'string' },
            deadLetter: ref('DeadLetter'),
          },
          required: ['topic', 'partition', 'offset', 'timestamp', 'key', 'headers', 'value'],
        },
      },
      next: { anyOf: [offset, { type: 'string' }, { type: 'null' }], description: 'the `from` of the next page (an offset with `partition`, else a position); null once this page reached the end' },
      position: { anyOf: [offset, { type: 'string' }], description: 'where to look again later' },
    },
    required: ['topic', 'items', 'next', 'position'],
  };
}

function sharedSchemas(): Record<string, JsonSchema> {
  return {
    Error: {
      type: 'object',
      description: 'every error answer: a stable code, a message saying what to fix, and details (`field`, `index`, `eventType`, …) where they apply',
      properties: {
        error: { type: 'string', description: 'the code, e.g. schema_validation, bad_wait_for, partition_unavailable' },
        message: { type: 'string' },
        field: { type: 'string', description: 'the field at fault (`items[2].qty`)' },
        index: { type: 'integer', description: 'the event at fault in an array body' },
        eventType: { type: 'string' },
      },
      required: ['error', 'message'],
    },
    Accepted: {
      type: 'object',
      properties: {
        accepted: { type: 'integer', minimum: 1, description: 'events appended' },
        eventType: { type: 'string' },
        topic: { type: 'string' },
        position: { type: 'string', description: 'where the write ended (`votes:3:1042,votes:5:77`): pass it back as it came in `waitFor`' },
      },
      required: ['accepted', 'eventType', 'topic', 'position'],
      additionalProperties: false,
    },
    Base64: { type: 'object', properties: { base64: { type: 'string', contentEncoding: 'base64' } }, required: ['base64'], additionalProperties: false },
    DeadLetter: {
      type: 'object',
      properties: {
        reason: { type: 'string' },
        error: { type: 'string' },
        eventType: { type: ['string', 'null'] },
        source: {
          anyOf: [
            { type: 'object', properties: { topic: { type: 'string' }, partition: { type: 'integer' }, offset: { type: 'integer' } }, required: ['topic', 'partition', 'offset'] },
            { type: 'null' },
          ],
        },
        timer: { type: 'object', properties: { dueAt: { type: 'integer' }, firedAt: { type: 'integer' } }, required: ['dueAt', 'firedAt'] },
      },
      required: ['reason', 'error', 'eventType', 'source'],
    },
    Readiness: {
      type: 'object',
      properties: {
        status: { enum: ['ready', 'not_ready'] },
        partitions: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              partition: { type: 'integer', minimum: 0 },
              role: { type: 'string', description: 'standby, fencing, restoring, active, closing or failed' },
              reason: { type: 'string' },
              code: { type: 'string' },
            },
            required: ['partition', 'role'],
          },
        },
      },
      required: ['status', 'partitions'],
    },
  };
}

function sharedParameters(): Record<string, unknown> {
  return {
    IdempotencyKey: {
      name: 'Idempotency-Key',
      in: 'header',
      description: 'a value unique to this request (a UUID): a retry with the same key and events gets the first answer again and appends nothing',
      schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7E](?:[\\x20-\\x7E]*[\\x21-\\x7E])?$' },
    },
    WaitFor: {
      name: 'waitFor',
      in: 'query',
      description: 'a `position` POST /events answered: answer only once that write is processed (not with `stale`)',
      schema: { type: 'string' },
    },
    WaitMs: {
      name: 'waitMs',
      in: 'query',
      description: `how long to wait for \`waitFor\`, in ms (at most ${WAIT_FOR_LIMIT_MS}); then 503 write_not_visible_yet`,
      schema: { type: 'integer', minimum: 0, maximum: 999999999 },
    },
    Stale: { name: 'stale', in: 'query', description: "accept a standby copy's state (not with `waitFor`)", schema: { type: 'boolean' } },
    AcceptStale: { name: ACCEPT_STALE_HEADER, in: 'header', description: 'as `stale=true`', schema: { type: 'string', enum: ['true'] } },
  };
}

function sharedResponses(options: OpenApiOptions): Record<string, unknown> {
  return {
    BadRequest: errorAnswer('the request is malformed: bad JSON or parameters (bad_json, bad_request, bad_key, bad_limit, bad_wait_for, bad_idempotency_key, bad_query_params, consistency_unavailable, local_table)'),
    Unauthorized: { ...errorAnswer('missing or wrong token (`unauthorized`)'), headers: { 'WWW-Authenticate': { schema: { type: 'string' } } } },
    TooLarge: errorAnswer(`the body is larger than ${options.bodyLimitBytes} bytes (http.bodyLimitBytes, \`body_too_large\`): send fewer events per request`),
    UnsupportedMediaType: errorAnswer('the body is not JSON (`unsupported_media_type`): send content-type application/json'),
    Unprocessable: errorAnswer('an event does not match its schema (`schema_validation`, naming the `field`, and the `index` in an array; nothing is appended), or the Idempotency-Key was used for another request (`idempotency_key_reused`)'),
    QueryFailed: errorAnswer("the query's code threw (`query_failed`; the message names the partition, or the merge)"),
    Unavailable: errorAnswer('a partition needed is restoring or moving (`partition_unavailable`), or the write waited for is not processed yet (`write_not_visible_yet`): retry shortly, with the same Idempotency-Key', true),
    DiskFull: errorAnswer("the embedded log's disk is full (`disk_full`); nothing was acknowledged", true),
  };
}
