/**
 * Answers that say what to fix: a query refusing its parameters is a 400 with the query's
 * message (thrown by another copy of farad too, and from a partition on another instance); keys
 * longer than fastify's 100-character default are readable by path and by `?key=`; what the
 * HTTP library or Node refuse themselves (414, 431, a bad URL, a bad request line) is answered in
 * farad's `{ error, message }` form, checked on raw sockets.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { InvalidParameterError, QueryParamsError } from '../../src/errors.js';
import { buildHttpServer, problemOf } from '../../src/http/index.js';
import { Ingest } from '../../src/ingest/index.js';
import { createLogger } from '../../src/log.js';
import { FaradMetrics } from '../../src/metrics/index.js';
import type { PartitionDirectory } from '../../src/partition/index.js';
import { compileApp, defineApp, record, table } from '../../src/procedures/index.js';
import { Reads } from '../../src/reads/index.js';
import { SchemaCatalog } from '../../src/codec/index.js';
import { PartitionState, partitionForKey } from '../../src/state/index.js';
import type { EventLog } from '../../src/streams/index.js';

// A second copy of farad's errors module, as an app that imports `farad` from its own
// node_modules has: same code, different classes (`instanceof` fails across the two).
const SECOND_COPY = '../../src/errors.js?as-an-app-copy-would-be';
const copy = (await import(SECOND_COPY)) as typeof import('../../src/errors.js');

// ---- the app under test ---------------------------------------------------------------------

const PARTITIONS = 4;
const Note = record<{ text: string }>({ type: 'record', name: 'Note', namespace: 'notes', fields: [{ name: 'text', type: 'string' }] });

/** `n` as the `top` query wants it: an integer from 1 to 100. */
function topN(params: Readonly<Record<string, string>>): number {
  const text = params['n'] ?? '10';
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 100) throw new QueryParamsError(`n must be an integer from 1 to 100, not "${text}"`, 'n');
  return n;
}

const app = compileApp(
  defineApp({
    name: 'notes',
    partitions: PARTITIONS,
    events: { Note: record<{ id: string; text: string }>({ type: 'record', name: 'Posted', namespace: 'notes', fields: [{ name: 'id', type: 'string' }, { name: 'text', type: 'string' }] }) },
    tables: { notes: table({ key: 'string', value: Note }) },
    inputs: [{ topic: 'notes', events: ['Note'] }],
    procedures: { Note: { partitionKey: (n) => n.id, handle: (ctx, n) => ctx.tables.notes.put(n.id, { text: n.text }) } },
    queries: (query) => ({
      // The first n keys of each partition, merged in key order and cut to n.
      top: query({
        partition: (ctx, params) => ctx.tables.notes.scan({ limit: topN(params) }).map(([key]) => key),
        merge: (parts, params) => parts.flat().sort().slice(0, topN(params)),
      }),
      // Refuses its parameter in the merge only.
      count: query({
        partition: (ctx) => ctx.tables.notes.scan().length,
        merge(parts, params) {
          const order = params['unit'] ?? 'notes';
          if (order !== 'notes') throw new QueryParamsError(`unit must be "notes", not "${order}"`);
          return { notes: parts.reduce((a, b) => a + b, 0) };
        },
      }),
      // Refuses with the QueryParamsError of another copy of farad.
      copied: query({
        partition: (_ctx, params) => {
          if (params['since'] !== undefined && Number.isNaN(Date.parse(params['since']))) {
            throw new copy.QueryParamsError(`since must be an ISO date such as 2024-05-01, not "${params['since']}"`, 'since');
          }
          return 0;
        },
        merge: (parts) => parts.length,
      }),
      // A bug in the query: partition 2 throws.
      broken: query({
        partition: (ctx) => {
          if (ctx.partition === 2) throw new RangeError('division by zero');
          return 1;
        },
        merge: (parts) => parts.length,
      }),
      badMerge: query({
        partition: () => 1,
        merge: () => {
          throw new TypeError('parts.flat is not a function');
        },
      }),
    }),
  }),
);

/** Keys of every length to read back: fastify's default would refuse anything over 100 characters. */
const KEYS = ['short', 'k'.repeat(100), 'k'.repeat(101), `long/key?with&odd=chars#and é ${'x'.repeat(300)}`, 'y'.repeat(7000)];

/** Committed states of every partition, holding a note per key in KEYS and a few more. */
function states(): PartitionState[] {
  const all = Array.from({ length: PARTITIONS }, (_, p) => new PartitionState(p, PARTITIONS, app.tables.values()));
  for (const key of [...KEYS, 'a', 'b', 'c', 'd', 'e', 'f']) all[partitionForKey(key, PARTITIONS)]!.applyRestored('notes', key, { text: `note ${key.length}` });
  return all;
}

/** Every partition active here. */
function here(all: readonly PartitionState[]): PartitionDirectory {
  return { clustered: true, local: (p) => ({ role: 'active', state: all[p] }), ownerUrl: () => undefined };
}

/** No partition here: every one is owned by the instance at `owner`. */
function elsewhere(owner: string): PartitionDirectory {
  return { clustered: true, local: () => undefined, ownerUrl: () => owner };
}

async function server(t: TestContext, directory: PartitionDirectory): Promise<FastifyInstance> {
  const metrics = new FaradMetrics(() => []);
  const log = { partitionsOf: () => PARTITIONS, append: async () => undefined } as unknown as EventLog;
  const http = await buildHttpServer({
    http: { bodyLimitBytes: 1024 },
    reads: new Reads({ app, directory }),
    ingest: new Ingest(app, new SchemaCatalog([...app.events.values()].map((e) => e.type)), log, metrics),
    health: { failure: () => undefined, readiness: () => ({ ready: true, partitions: [] }) },
    metrics,
    logger: createLogger('silent'),
  });
  t.after(() => http.close());
  return http;
}

/** A server listening on a free port of 127.0.0.1; its base URL. */
async function listening(t: TestContext, directory: PartitionDirectory): Promise<{ http: FastifyInstance; base: string; port: number }> {
  const http = await server(t, directory);
  await http.listen({ port: 0, host: '127.0.0.1' });
  const address = http.server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { http, base: `http://127.0.0.1:${address.port}`, port: address.port };
}

interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Record<string, unknown>;
}

/**
 * Writes `request` as is on a new connection and reads one HTTP/1.1 answer: the server may close
 * (or reset) the connection after it, or keep it open once the body is complete.
 */
function raw(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      const answer = parse(data);
      if (answer === undefined && err === undefined && !socket.destroyed) return;
      done = true;
      socket.destroy();
      if (answer) resolve(answer);
      else reject(err ?? new Error(`no complete HTTP answer in ${JSON.stringify(data.toString('latin1'))}`));
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      finish();
    });
    socket.on('close', () => finish());
    socket.on('error', (err) => finish(err));
    socket.write(request);
  });
}

function parse(data: Buffer): RawAnswer | undefined {
  const text = data.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  const length = Number(headers['content-length']);
  const body = Buffer.from(text.slice(end + 4), 'utf8');
  if (body.length < length) return undefined;
  return { status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body.subarray(0, length).toString('utf8')) as Record<string, unknown> };
}

/** A farad error answer: JSON with a string `error` and a non-empty `message`. */
function assertProblem(answer: { status: number; body: Record<string, unknown>; type: string | undefined }, status: number, error: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.match(answer.type ?? '', /^application\/json/);
  assert.equal(answer.body['error'], error, JSON.stringify(answer.body));
  assert.equal(typeof answer.body['message'], 'string');
  assert.ok((answer.body['message'] as string).length > 0);
}

async function get(http: FastifyInstance, url: string): Promise<{ status: number; body: Record<string, unknown>; type: string | undefined }> {
  const answer = await http.inject({ url });
  return { status: answer.statusCode, body: answer.json(), type: answer.headers['content-type'] as string | undefined };
}

// ---- the error class ---------------------------------------------------------------------------

describe('QueryParamsError', () => {
  it('is a read parameter error answered 400 bad_query_params with its message and field', () => {
    const err = new QueryParamsError('n must be an integer from 1 to 100, not "abc"', 'n');
    assert.ok(err instanceof InvalidParameterError);
    assert.equal(err.name, 'QueryParamsError');
    assert.equal(err.code, 'bad_query_params');
    assert.equal(err.context.field, 'n');
    assert.deepEqual(problemOf(err), {
      status: 400,
      headers: {},
      body: { error: 'bad_query_params', message: 'n must be an integer from 1 to 100, not "abc"', field: 'n' },
    });
    assert.deepEqual(problemOf(new QueryParamsError('give from or to'))?.body, { error: 'bad_query_params', message: 'give from or to' });
  });

  it('of() knows one thrown by another copy of farad, and nothing else', () => {
    const theirs = new copy.QueryParamsError('since must be an ISO date', 'since');
    assert.ok(!(theirs instanceof QueryParamsError), 'the two copies are different classes');
    const ours = QueryParamsError.of(theirs);
    assert.ok(ours instanceof QueryParamsError);
    assert.equal(ours.message, 'since must be an ISO date');
    assert.deepEqual(ours.details, { field: 'since' });
    assert.equal(ours.cause, theirs);
    const mine = new QueryParamsError('x');
    assert.equal(QueryParamsError.of(mine), mine);
    for (const other of [new Error('n is bad'), new copy.InvalidParameterError('bad_key', 'not an integer'), 'n is bad', null, undefined, { code: 'bad_query_params' }]) {
      assert.equal(QueryParamsError.of(other), undefined, String(other));
    }
  });
});

// ---- queries ------------------------------------------------------------------------------------

describe('a query refusing its parameters', () => {
  it('answers 400 bad_query_params with the query’s message, from a partition or the merge; other throws are 500 query_failed saying where', async (t) => {
    const http = await server(t, here(states()));
    const refused = await get(http, '/queries/top?n=abc');
    assertProblem(refused, 400, 'bad_query_params');
    assert.deepEqual(refused.body, { error: 'bad_query_params', message: 'n must be an integer from 1 to 100, not "abc"', field: 'n' });
    const fine = await get(http, '/queries/top?n=3');
    assert.equal(fine.status, 200);
    assert.deepEqual(fine.body, ['a', 'b', 'c']);

    assert.deepEqual((await get(http, '/queries/count?unit=pages')).body, { error: 'bad_query_params', message: 'unit must be "notes", not "pages"' });
    assert.deepEqual((await get(http, '/queries/count')).body, { notes: KEYS.length + 6 });

    const copied = await get(http, '/queries/copied?since=yesterday');
    assertProblem(copied, 400, 'bad_query_params');
    assert.deepEqual(copied.body, { error: 'bad_query_params', message: 'since must be an ISO date such as 2024-05-01, not "yesterday"', field: 'since' });
    assert.equal((await get(http, '/queries/copied?since=2024-05-01')).status, 200);

    const broken = await get(http, '/queries/broken');
    assertProblem(broken, 500, 'query_failed');
    assert.equal(broken.body['message'], 'query "broken" failed on partition 2: division by zero');
    const badMerge = await get(http, '/queries/badMerge');
    assertProblem(badMerge, 500, 'query_failed');
    assert.equal(badMerge.body['message'], 'query "badMerge" failed in its merge: parts.flat is not a function');
  });

  it('gives the same answer when the partitions ran on another instance', async (t) => {
    const b = await listening(t, here(states()));
    const a = await server(t, elsewhere(b.base));
    for (const url of ['/queries/top?n=abc', '/queries/top?n=0', '/queries/copied?since=soon', '/queries/count?unit=pages', '/queries/broken', '/queries/top?n=2', '/queries/count']) {
      const direct = await get(b.http, url);
      const hopped = await get(a, url);
      assert.equal(hopped.status, direct.status, `${url}: ${JSON.stringify(hopped.body)}`);
      assert.deepEqual(hopped.body, direct.body, url);
    }
    assert.equal((await get(a, '/queries/top?n=abc')).status, 400);
    assert.equal((await get(a, '/queries/broken')).body['message'], 'query "broken" failed on partition 2: division by zero');
    // An instance that cannot be reached is still the instance's problem: 503, retry.
    await b.http.close();
    assertProblem(await get(a, '/queries/top?n=abc'), 503, 'partition_unavailable');
  });
});

// ---- keys of any length ---------------------------------------------------------------------------

describe('key reads', () => {
  it('read keys of any length up to the URL limit, by path and by ?key=, here and relayed from the owner', async (t) => {
    const b = await listening(t, here(states()));
    const a = await server(t, elsewhere(b.base));
    for (const key of KEYS) {
      const expected = { table: 'notes', key, partition: partitionForKey(key, PARTITIONS), value: { text: `note ${key.length}` } };
      for (const http of [b.http, a]) {
        const byPath = await get(http, `/tables/notes/${encodeURIComponent(key)}`);
        assert.equal(byPath.status, 200, `${key.length} characters by path: ${JSON.stringify(byPath.body)}`);
        assert.deepEqual(byPath.body, expected);
        const byQuery = await get(http, `/tables/notes?key=${encodeURIComponent(key)}`);
        assert.equal(byQuery.status, 200, `${key.length} characters by ?key=: ${JSON.stringify(byQuery.body)}`);
        assert.deepEqual(byQuery.body, expected);
      }
    }
    assertProblem(await get(a, `/tables/notes?key=${'z'.repeat(500)}`), 404, 'not_found');
    // The paging form is unchanged.
    const page = await get(b.http, '/tables/notes?limit=2&after=b');
    assert.deepEqual((page.body['items'] as Array<{ key: string }>).map((r) => r.key), ['c', 'd']);
  });

  it('?key= with after or limit, or given twice, is a 400 naming them', async (t) => {
    const http = await server(t, here(states()));
    for (const [url, named] of [
      ['/tables/notes?key=a&after=b', /key reads one row and after page/],
      ['/tables/notes?limit=5&key=a', /key reads one row and limit page/],
      ['/tables/notes?key=a&after=b&limit=5', /after and limit/],
      ['/tables/notes?key=a&key=b', /key is given 2 times/],
      ['/tables/notes?limit=1&limit=2', /limit is given 2 times/],
    ] as const) {
      const answer = await get(http, url);
      assertProblem(answer, 400, 'bad_request');
      assert.match(answer.body['message'] as string, named, url);
    }
  });

  it('a URL over 8192 bytes answers 414 uri_too_long, by path or query', async (t) => {
    const http = await server(t, here(states()));
    for (const url of [`/tables/notes/${'k'.repeat(8200)}`, `/tables/notes?key=${'k'.repeat(8200)}`, `/queries/top?n=${'9'.repeat(8200)}`]) {
      const answer = await get(http, url);
      assertProblem(answer, 414, 'uri_too_long');
      assert.match(answer.body['message'] as string, /at most 8192 bytes/);
    }
    // Exactly at the limit is read.
    const key = 'k'.repeat(8192 - '/tables/notes/'.length);
    assertProblem(await get(http, `/tables/notes/${key}`), 404, 'not_found');
  });
});

// ---- what the HTTP library and Node refuse ------------------------------------------------------

describe('answers of the HTTP layer itself, on raw sockets', () => {
  it('431 for header fields over 16 KiB, as JSON, closing the connection', async (t) => {
    const { port } = await listening(t, here(states()));
    const answer = await raw(port, `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(answer.status, 431);
    assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(answer.headers['connection'], 'close');
    assert.equal(answer.body['error'], 'headers_too_large');
    assert.match(answer.body['message'] as string, /larger than 16384 bytes/);
  });

  it('400 bad_request for a request Node cannot parse', async (t) => {
    const { port } = await listening(t, here(states()));
    for (const request of ['HELLO THERE\r\n\r\n', 'GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n', 'GET /healthz HTTP/9.9\r\n\r\n']) {
      const answer = await raw(port, request);
      assert.equal(answer.status, 400, request);
      assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(answer.headers['connection'], 'close');
      assert.equal(answer.body['error'], 'bad_request', request);
      assert.match(answer.body['message'] as string, /not a valid HTTP\/1\.1 request \(HPE_/);
    }
  });

  it('400 bad_url for malformed percent-encoding in the path or the query', async (t) => {
    const { port } = await listening(t, here(states()));
    for (const url of ['/tables/%E0%A4%A', '/tables/notes/%zz', '/tables/notes?key=%E0%A4%A', '/queries/top?n=%']) {
      const answer = await raw(port, `GET ${url} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      assert.equal(answer.status, 400, url);
      assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(answer.body['error'], 'bad_url', url);
      assert.match(answer.body['message'] as string, /not valid percent-encoding/);
    }
  });

  it('414 for a long URL and 404 for no route, as JSON, on the wire too', async (t) => {
    const { port } = await listening(t, here(states()));
    const long = await raw(port, `GET /tables/notes/${'k'.repeat(10_000)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
    assert.equal(long.status, 414);
    assert.equal(long.body['error'], 'uri_too_long');
    const none = await raw(port, 'GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.equal(none.status, 404);
    assert.equal(none.body['error'], 'not_found');
  });
});
