/**
 * The one table from error codes to HTTP answers, and the adapter answering with it: every typed
 * error a route can throw has a status; bodies, headers and probes keep their contract.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConsistencyUnavailableError,
  FaradError,
  IdempotencyKeyReusedError,
  InvalidIdempotencyKeyError,
  InvalidPositionError,
  InvalidParameterError,
  LocalTableReadError,
  NotAnInputError,
  PartitionUnavailableError,
  QueryFailedError,
  RowNotFoundError,
  SchemaValidationError,
  TransportError,
  UnknownEventTypeError,
  UnknownQueryError,
  UnknownTableError,
  WriteNotVisibleError,
  QueryParamsError,
} from '../../src/errors.js';
import { buildHttpServer, InvalidEventError, problemOf, RequestRejectedError, STATUS } from '../../src/http/index.js';
import { Ingest } from '../../src/ingest/index.js';
import { createLogger } from '../../src/log.js';
import { FaradMetrics } from '../../src/metrics/index.js';
import type { PartitionDirectory, PartitionStatus, ServiceHealth } from '../../src/partition/index.js';
import { compileApp, defineApp, record, table } from '../../src/procedures/index.js';
import { Reads } from '../../src/reads/index.js';
import { PartitionState, partitionForKey } from '../../src/state/index.js';
import { SchemaCatalog } from '../../src/codec/index.js';
import { DiskFullError, type EventLog, type OutRecord } from '../../src/streams/index.js';

// Every typed error a route answers with, and the status it must get.
const ANSWERED: Array<[FaradError, number]> = [
  [new UnknownEventTypeError('unknown event type "x"'), 404],
  [new NotAnInputError('not read from any input topic'), 400],
  [new SchemaValidationError('field "a": not a long', { field: 'a' }), 422],
  [new InvalidEventError(new SchemaValidationError('field "a": not a long', { field: 'a' }), 'bank.Deposit', 2), 422],
  [new UnknownTableError('no table "x"'), 404],
  [new UnknownQueryError('no query "x"'), 404],
  [new QueryFailedError('query "total" failed on partition 2: boom'), 500],
  [new ConsistencyUnavailableError('no multi-partition protocol'), 400],
  [new RowNotFoundError('no row'), 404],
  [new InvalidParameterError('bad_key', 'not an integer'), 400],
  [new InvalidParameterError('bad_limit', 'limit must be ...'), 400],
  [new QueryParamsError('n must be an integer from 1 to 100', 'n'), 400],
  [new LocalTableReadError('partition-local'), 400],
  [new PartitionUnavailableError('partition 3 is restoring here', 'restoring', { partition: 3 }), 503],
  [new InvalidIdempotencyKeyError('Idempotency-Key must be 1 to 255 printable ASCII characters'), 400],
  [new IdempotencyKeyReusedError('Idempotency-Key "k" was used for another request'), 422],
  [new InvalidPositionError('waitFor is not a position'), 400],
  [new WriteNotVisibleError('partition 3 has not processed the write yet', { partition: 3, topic: 'votes', offset: 7 }), 503],
  [new DiskFullError('/var/lib/farad', 'journal write failed'), 507],
  [new RequestRejectedError('bad_json', 'not JSON'), 400],
  [new RequestRejectedError('bad_request', 'not an object'), 400],
  [new RequestRejectedError('unsupported_media_type', 'send JSON'), 415],
  [new RequestRejectedError('unauthorized', 'missing token'), 401],
  [new RequestRejectedError('login_required', 'sign in to the console'), 401],
];

describe('STATUS', () => {
  it('maps every code a route throws to its status', () => {
    for (const [err, status] of ANSWERED) assert.equal(problemOf(err)?.status, status, err.code);
  });

  it('holds no code that no route throws', () => {
    assert.deepEqual(Object.keys(STATUS).sort(), [...new Set(ANSWERED.map(([err]) => err.code))].sort());
  });

  it('answers { error, message, ...details } with the headers the code needs', () => {
    assert.deepEqual(problemOf(new PartitionUnavailableError('partition 3 is standby here', 'standby', { partition: 3 })), {
      status: 503,
      headers: { 'retry-after': '1' },
      body: { error: 'partition_unavailable', message: 'partition 3 is standby here', partition: 3, role: 'standby' },
    });
    assert.deepEqual(problemOf(new PartitionUnavailableError('instance b did not answer'))?.body, {
      error: 'partition_unavailable',
      message: 'instance b did not answer',
    });
    assert.deepEqual(problemOf(new RequestRejectedError('unauthorized', 'missing token'))?.headers, { 'www-authenticate': 'Bearer' });
    assert.deepEqual(problemOf(new RequestRejectedError('login_required', 'sign in'))?.headers, { 'www-authenticate': 'Basic realm="farad", charset="UTF-8"' });
    assert.deepEqual(problemOf(new UnknownTableError('no table "x"', { table: 'x' }))?.body, { error: 'unknown_table', message: 'no table "x"' });
    const invalid = new SchemaValidationError('field "amount": not a long', { field: 'amount', eventType: 'bank.Deposit' });
    assert.deepEqual(problemOf(new InvalidEventError(invalid, 'bank.Deposit', 2))?.body, {
      error: 'schema_validation',
      message: 'event [2]: field "amount": not a long',
      eventType: 'bank.Deposit',
      field: 'amount',
      index: 2,
    });
    assert.deepEqual(problemOf(new InvalidEventError(invalid, 'bank.Deposit', undefined))?.body, {
      error: 'schema_validation',
      message: 'field "amount": not a long',
      eventType: 'bank.Deposit',
      field: 'amount',
    });
  });

  it('has no answer for a code it does not know (the handler answers 500)', () => {
    assert.equal(problemOf(new TransportError('broker down')), undefined);
    class Odd extends FaradError {
      readonly code = 'constructor';
    }
    assert.equal(problemOf(new Odd('inherited keys are not codes')), undefined);
  });
});

// ---- the adapter ------------------------------------------------------------------------------

const Deposit = record<{ account: string; amount: number }>({
  type: 'record',
  name: 'Deposit',
  namespace: 'bank',
  fields: [
    { name: 'account', type: 'string' },
    { name: 'amount', type: 'long' },
  ],
});
const Balance = record<{ balance: number }>({ type: 'record', name: 'Balance', namespace: 'bank', fields: [{ name: 'balance', type: 'long' }] });
const app = compileApp(
  defineApp({
    name: 'bank',
    partitions: 2,
    events: { Deposit },
    tables: { balances: table({ key: 'string', value: Balance }) },
    inputs: [{ topic: 'deposits', events: ['Deposit'] }],
    procedures: { Deposit: { partitionKey: (d) => d.account, handle: (ctx, d) => ctx.tables.balances.put(d.account, { balance: d.amount }) } },
  }),
);

/** An HTTP server over partition 0 active and partition 1 a standby, with `failure` and readiness as given. */
async function server(t: TestContext, options: { token?: string; failure?: string; send?: () => Promise<void> } = {}) {
  const states = [0, 1].map((p) => new PartitionState(p, 2, app.tables.values()));
  const account = (p: number): string => ['a', 'b', 'c', 'd', 'e'].find((k) => partitionForKey(k, 2) === p)!;
  states[0]!.applyRestored('balances', account(0), { balance: 5 });
  states[1]!.applyRestored('balances', account(1), { balance: 7 });
  const directory: PartitionDirectory = {
    clustered: true,
    local: (p) => (p === 0 ? { role: 'active', state: states[0] } : { role: 'standby', state: states[1] }),
    ownerUrl: () => undefined,
  };
  const partitions: PartitionStatus[] = [
    { partition: 1, role: 'standby' },
    { partition: 0, role: 'failed', reason: 'handler broke its contract', code: 'handler_contract' },
  ];
  const health: ServiceHealth = { failure: () => options.failure, readiness: () => ({ ready: false, partitions }) };
  const appended: OutRecord[] = [];
  // Ingest uses only these two operations of the log.
  const log = {
    partitionsOf: () => 2,
    append: async (records: readonly OutRecord[]) => {
      await options.send?.();
      appended.push(...records);
      return [{ topic: 'deposits', partition: records[0]!.partition, offset: appended.length }];
    },
  } as unknown as EventLog;
  const metrics = new FaradMetrics(() => []);
  const http = await buildHttpServer({
    http: { bodyLimitBytes: 1024, token: options.token },
    reads: new Reads({ app, directory }),
    ingest: new Ingest(app, new SchemaCatalog([...app.events.values()].map((e) => e.type)), log, metrics),
    health,
    metrics,
    logger: createLogger('silent'),
  });
  t.after(() => http.close());
  return { http, account, appended };
}

describe('buildHttpServer', () => {
  it('/healthz and /readyz come from ServiceHealth; standbys and failed partitions are listed', async (t) => {
    const { http } = await server(t, { failure: 'partition 0: handler broke its contract' });
    const health = await http.inject({ url: '/healthz' });
    assert.equal(health.statusCode, 503);
    assert.deepEqual(health.json(), { status: 'failed', message: 'processing stopped: partition 0: handler broke its contract' });
    const ready = await http.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json(), {
      status: 'not_ready',
      partitions: [
        { partition: 0, role: 'failed', reason: 'handler broke its contract', code: 'handler_contract' },
        { partition: 1, role: 'standby' },
      ],
    });
    assert.deepEqual((await (await server(t)).http.inject({ url: '/healthz' })).json(), { status: 'ok' });
  });

  it('a partition no one serves answers 503 + Retry-After naming it; stale reads say x-farad-stale', async (t) => {
    const { http, account } = await server(t);
    const fresh = await http.inject({ url: `/tables/balances/${account(1)}` });
    assert.equal(fresh.statusCode, 503);
    assert.equal(fresh.headers['retry-after'], '1');
    assert.deepEqual({ ...(fresh.json() as object), message: undefined }, { error: 'partition_unavailable', message: undefined, partition: 1, role: 'standby' });
    for (const stale of [{ url: `/tables/balances/${account(1)}?stale=true` }, { url: `/tables/balances/${account(1)}`, headers: { 'x-farad-accept-stale': 'true' } }]) {
      const answer = await http.inject(stale);
      assert.equal(answer.statusCode, 200, answer.body);
      assert.equal(answer.headers['x-farad-stale'], 'true');
      assert.deepEqual(answer.json(), { table: 'balances', key: account(1), partition: 1, value: { balance: 7 } });
    }
    const active = await http.inject({ url: `/tables/balances/${account(0)}` });
    assert.equal(active.statusCode, 200);
    assert.equal(active.headers['x-farad-stale'], undefined);
    const scan = await http.inject({ url: '/tables/balances?stale=true&limit=1' });
    assert.deepEqual(scan.json(), { table: 'balances', items: [{ key: account(0), partition: 0, value: { balance: 5 } }], next: account(0) });
    const partial = await http.inject({ url: '/internal/partials/tables/balances?partitions=0&limit=1001', headers: { 'x-farad-forwarded': '1' } });
    assert.deepEqual(partial.json(), { rows: [{ key: account(0), partition: 0, value: { balance: 5 } }], stale: false });
  });

  it('typed read errors keep their status and error field', async (t) => {
    const { http } = await server(t);
    const cases: Array<[string, number, string]> = [
      ['/tables/nope', 404, 'unknown_table'],
      ['/tables/balances?limit=0', 400, 'bad_limit'],
      ['/tables/balances/zzz?stale=true', 404, 'not_found'],
      ['/queries/nope', 404, 'unknown_query'],
      ['/no/such/route', 404, 'not_found'],
    ];
    for (const [url, status, error] of cases) {
      const answer = await http.inject({ url });
      assert.equal(answer.statusCode, status, url);
      assert.equal(answer.json().error, error, url);
      assert.equal(typeof answer.json().message, 'string');
    }
  });

  it('ingest: unknown type 404, schema violation 422 naming index and field, bad token 401', async (t) => {
    const { http, appended } = await server(t, { token: 's3cret' });
    const auth = { authorization: 'Bearer s3cret', 'content-type': 'application/json' };
    const unauthorized = await http.inject({ method: 'POST', url: '/events/Deposit', payload: '{', headers: { 'content-type': 'application/json' } });
    assert.equal(unauthorized.statusCode, 401);
    assert.equal(unauthorized.headers['www-authenticate'], 'Bearer');
    assert.equal(unauthorized.json().error, 'unauthorized');
    assert.equal((await http.inject({ method: 'POST', url: '/events/Nope', payload: {}, headers: auth })).json().error, 'unknown_event_type');
    const bad = await http.inject({ method: 'POST', url: '/events/Deposit', payload: [{ account: 'a', amount: 1 }, { account: 'b', amount: 'x' }], headers: auth });
    assert.equal(bad.statusCode, 422);
    assert.deepEqual({ ...(bad.json() as object), message: undefined }, { error: 'schema_validation', message: undefined, eventType: 'bank.Deposit', field: 'amount', index: 1 });
    assert.equal((await http.inject({ method: 'POST', url: '/events/Deposit', payload: '{"a":', headers: auth })).json().error, 'bad_json');
    assert.equal(appended.length, 0);
    const ok = await http.inject({ method: 'POST', url: '/events/bank.Deposit', payload: [{ account: 'a', amount: 1 }], headers: auth });
    assert.equal(ok.statusCode, 202);
    assert.deepEqual(ok.json(), { accepted: 1, eventType: 'bank.Deposit', topic: 'deposits', position: `deposits:${partitionForKey('a', 2)}:1` });
    assert.equal(appended.length, 1);
  });

  it('a typed error with no status is a 500 that reveals nothing', async (t) => {
    const { http } = await server(t, { send: async () => Promise.reject(new TransportError('broker at 10.0.0.1 down')) });
    const answer = await http.inject({ method: 'POST', url: '/events/Deposit', payload: { account: 'a', amount: 1 } });
    assert.equal(answer.statusCode, 500);
    assert.deepEqual(answer.json(), { error: 'internal', message: 'internal error; see the server log' });
  });
});
