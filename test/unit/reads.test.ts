/**
 * Reads over a hand-made PartitionDirectory and real PartitionState objects: where a partition
 * is read (active here, standby when stale is allowed, the owner, or 503), key reads, paging
 * (including partition-local tables), queries, gathering from another instance or a sibling
 * worker, typed errors.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidParameterError,
  LocalTableReadError,
  PartitionUnavailableError,
  RowNotFoundError,
  UnknownQueryError,
  UnknownTableError,
} from '../../src/errors.js';
import type { PartitionDirectory, PartitionRole } from '../../src/partition/index.js';
import { compileApp, defineApp, globalTable, record, table, type CompiledApp } from '../../src/procedures/index.js';
import { FRESH, locate, pageOf, readModeOf, Reads, type ReadMode, type ScannedRow } from '../../src/reads/index.js';
import { PartitionState, partitionForKey } from '../../src/state/index.js';
import { workerUrl } from '../../src/workers/index.js';
import { intKeysOf, keysOf } from './support/partition-keys.js';

// ---- the app under test ---------------------------------------------------------------------

interface Deposit {
  account: string;
  amount: number;
}
const schemas = {
  Deposit: record<Deposit>({
    type: 'record',
    name: 'Deposit',
    namespace: 'bank',
    fields: [
      { name: 'account', type: 'string' },
      { name: 'amount', type: 'long' },
    ],
  }),
  Balance: record<{ balance: number }>({ type: 'record', name: 'Balance', namespace: 'bank', fields: [{ name: 'balance', type: 'long' }] }),
  Count: record<{ n: number }>({ type: 'record', name: 'Count', namespace: 'bank', fields: [{ name: 'n', type: 'int' }] }),
  Color: record<{ name: string }>({ type: 'record', name: 'Color', namespace: 'bank', fields: [{ name: 'name', type: 'string' }] }),
};

const PARTITIONS = 4;

const bank = defineApp({
  name: 'bank',
  partitions: PARTITIONS,
  events: { Deposit: schemas.Deposit },
  tables: {
    balances: table({ key: 'string', value: schemas.Balance }),
    byNumber: table({ key: 'long', value: schemas.Count }),
    // A row per key in every partition that counted one.
    totals: table({ key: 'int', value: schemas.Count, scope: 'local' }),
  },
  globalTables: {
    colors: globalTable({ key: 'int', value: schemas.Color, load: () => [[1, { name: 'red' }], [2, { name: 'green' }], [3, { name: 'blue' }]] as const }),
  },
  inputs: [{ topic: 'deposits', events: ['Deposit'] }],
  procedures: {
    Deposit: {
      partitionKey: (d) => d.account,
      handle(ctx, d) {
        ctx.tables.balances.put(d.account, { balance: d.amount });
      },
    },
  },
  queries: (query) => ({
    // Each partition's sum of `totals`, times the `factor` parameter; merge keeps them in order.
    sums: query({
      partition: (ctx, params) => ({
        partition: ctx.partition,
        sum: ctx.tables.totals.scan().reduce((s, [, v]) => s + v.n, 0) * Number(params['factor'] ?? '1'),
      }),
      merge: (parts, params) => ({ parts, params }),
    }),
  }),
});

// ---- a hand-made directory over real states -------------------------------------------------

interface Holding {
  role: PartitionRole;
  state: PartitionState | undefined;
}

class Directory implements PartitionDirectory {
  readonly held = new Map<number, Holding>();
  readonly owners = new Map<number, string>();
  constructor(readonly clustered = false) {}

  local(partition: number): Holding | undefined {
    return this.held.get(partition);
  }

  ownerUrl(partition: number): string | undefined {
    return this.owners.get(partition);
  }

  hold(partition: number, role: PartitionRole, state: PartitionState | undefined): this {
    this.held.set(partition, { role, state });
    return this;
  }
}

/** Committed states of every partition: balances by account, `totals` rows per partition. */
function states(app: CompiledApp, rows: { balances?: Record<string, number>; totals?: Array<[partition: number, key: number, n: number]> }): PartitionState[] {
  const out = Array.from({ length: app.partitions }, (_, p) => new PartitionState(p, app.partitions, app.tables.values()));
  for (const [account, balance] of Object.entries(rows.balances ?? {})) {
    out[partitionForKey(account, app.partitions)]!.applyRestored('balances', account, { balance });
  }
  for (const [p, key, n] of rows.totals ?? []) out[p]!.applyRestored('totals', key, { n });
  return out;
}

/** A directory holding every partition as active. */
function allActive(all: readonly PartitionState[], clustered = false): Directory {
  const directory = new Directory(clustered);
  all.forEach((state, p) => directory.hold(p, 'active', state));
  return directory;
}

const STALE: ReadMode = { staleOk: true, forwarded: false, fromSibling: false };
/** A read another instance forwarded here. */
const FORWARDED: ReadMode = { staleOk: false, forwarded: true, fromSibling: false };
/** A read a sibling worker of this instance forwarded here. */
const FROM_SIBLING: ReadMode = { staleOk: false, forwarded: true, fromSibling: true };
const app = compileApp(bank);
const [ALICE, BOB] = keysOf(1, PARTITIONS, 2, 'acct-') as [string, string];
const [CAROL] = keysOf(2, PARTITIONS, 1, 'acct-') as [string];

/** Runs `fn` and returns the error it throws, checking its class. */
async function thrown<E extends Error>(fn: () => unknown, type: new (...args: never[]) => E): Promise<E> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${type.name}, nothing was thrown`);
}

// ---- where a partition is read --------------------------------------------------------------

describe('locate', () => {
  const [state] = states(app, {});
  it('reads an active partition here, fresh', () => {
    const directory = new Directory().hold(0, 'active', state);
    assert.deepEqual(locate(directory, 0, FRESH), { kind: 'local', state, stale: false });
    assert.deepEqual(locate(directory, 0, STALE), { kind: 'local', state, stale: false });
  });

  it('reads a standby copy only when the caller accepts stale data', () => {
    const directory = new Directory(true).hold(0, 'standby', state);
    assert.deepEqual(locate(directory, 0, STALE), { kind: 'local', state, stale: true });
    assert.throws(() => locate(directory, 0, FRESH), PartitionUnavailableError);
    directory.owners.set(0, 'http://owner:8080');
    assert.deepEqual(locate(directory, 0, FRESH), { kind: 'remote', url: 'http://owner:8080' });
  });

  it('forwards to the owner unless the request was already forwarded', () => {
    const directory = new Directory(true);
    directory.owners.set(3, 'http://b:8080');
    assert.deepEqual(locate(directory, 3, FRESH), { kind: 'remote', url: 'http://b:8080' });
    assert.throws(() => locate(directory, 3, FORWARDED), PartitionUnavailableError);
  });

  it('a forwarded read may still go to a sibling worker; one from a sibling goes nowhere', () => {
    const directory = new Directory(true);
    directory.owners.set(1, workerUrl(2)).set(3, 'http://b:8080');
    for (const mode of [FRESH, FORWARDED]) assert.deepEqual(locate(directory, 1, mode), { kind: 'remote', url: 'farad-worker://2' });
    assert.throws(() => locate(directory, 1, FROM_SIBLING), PartitionUnavailableError);
    assert.throws(() => locate(directory, 3, FROM_SIBLING), PartitionUnavailableError);
    // Reading a standby copy here (stale) comes before asking anyone.
    const [state] = states(app, {});
    directory.hold(1, 'standby', state);
    assert.deepEqual(locate(directory, 1, { ...FROM_SIBLING, staleOk: true }), { kind: 'local', state, stale: true });
  });

  it('never reads a partition that is restoring, fencing, closing or failed, even stale', () => {
    for (const role of ['restoring', 'fencing', 'closing', 'failed'] as const) {
      const directory = new Directory(true).hold(0, role, state);
      assert.throws(() => locate(directory, 0, STALE), PartitionUnavailableError, role);
    }
    // An active partition without a readable state is not read either.
    assert.throws(() => locate(new Directory().hold(0, 'active', undefined), 0, FRESH), PartitionUnavailableError);
  });

  it('503 names the partition and its role here, and is retriable', async () => {
    const err = await thrown(() => locate(new Directory(true).hold(2, 'restoring', state), 2, FRESH), PartitionUnavailableError);
    assert.equal(err.code, 'partition_unavailable');
    assert.equal(err.retriable, true);
    assert.equal(err.role, 'restoring');
    assert.equal(err.context.partition, 2);
    assert.deepEqual(err.details, { partition: 2, role: 'restoring' });
    assert.match(err.message, /partition 2 is restoring here; retry shortly, or accept a stale answer with \?stale=true/);

    const nowhere = await thrown(() => locate(new Directory(false), 1, FRESH), PartitionUnavailableError);
    assert.deepEqual(nowhere.details, { partition: 1 });
    assert.match(nowhere.message, /partition 1 has no reachable owner/);
    assert.doesNotMatch(nowhere.message, /stale/, 'a single node has no standby to offer');
  });
});

describe('readModeOf', () => {
  it('allows stale answers by query parameter or header, and marks forwarded requests (by another instance or a sibling worker)', () => {
    assert.deepEqual(readModeOf({}, {}), FRESH);
    assert.deepEqual(readModeOf({ stale: 'true' }, {}), STALE);
    assert.deepEqual(readModeOf({ stale: 'false' }, { 'x-farad-accept-stale': 'true' }), STALE);
    assert.deepEqual(readModeOf({}, { 'x-farad-forwarded': '1' }), FORWARDED);
    assert.deepEqual(readModeOf({}, { 'x-farad-forwarded': 'worker' }), FROM_SIBLING);
    assert.deepEqual(readModeOf({}, { 'x-farad-forwarded': 'yes' }), FRESH, 'only the values farad sends count');
  });
});

// ---- key reads ------------------------------------------------------------------------------

describe('Reads.get', () => {
  const all = states(app, { balances: { [ALICE]: 10, [BOB]: 20, [CAROL]: 30 }, totals: [[0, 1, 5]] });

  it('reads a row of an active partition', async () => {
    const reads = new Reads({ app, directory: allActive(all) });
    assert.deepEqual(await reads.get('balances', ALICE), {
      kind: 'row',
      body: { table: 'balances', key: ALICE, partition: 1, value: { balance: 10 } },
      stale: false,
    });
  });

  it('reads committed state only: an open batch is not seen', async () => {
    const [p0, p1, p2, p3] = states(app, { balances: { [ALICE]: 10 } });
    p1!.write('balances', ALICE, { balance: 99 });
    const reads = new Reads({ app, directory: allActive([p0!, p1!, p2!, p3!]) });
    const read = await reads.get('balances', ALICE);
    assert.equal(read.kind === 'row' && (read.body.value as { balance: number }).balance, 10);
  });

  it('reads a standby copy only when asked, and says so', async () => {
    const directory = new Directory(true).hold(1, 'standby', all[1]);
    const reads = new Reads({ app, directory });
    const err = await thrown(() => reads.get('balances', ALICE), PartitionUnavailableError);
    assert.deepEqual(err.details, { partition: 1, role: 'standby' });
    const read = await reads.get('balances', ALICE, STALE);
    assert.equal(read.kind, 'row');
    assert.equal(read.stale, true);
    assert.deepEqual(read.body, { table: 'balances', key: ALICE, partition: 1, value: { balance: 10 } });
  });

  it('relays the owner of the partition: its status, body and stale mark', async () => {
    const directory = new Directory(true);
    directory.owners.set(1, 'http://b:8080/');
    const calls: Array<{ url: string; headers: Record<string, string> }> = [];
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      calls.push({ url: String(url), headers: init?.headers as Record<string, string> });
      return new Response(JSON.stringify({ error: 'not_found', message: 'nope' }), {
        status: 404,
        headers: { 'content-type': 'application/json', 'x-farad-stale': 'true' },
      });
    }) as typeof fetch;
    const reads = new Reads({ app, directory, peers: { token: 's3cret', fetch: fakeFetch } });
    const read = await reads.get('balances', ALICE, STALE);
    assert.deepEqual(read, { kind: 'relayed', status: 404, body: { error: 'not_found', message: 'nope' }, stale: true });
    assert.deepEqual(calls, [
      {
        url: `http://b:8080/tables/balances/${ALICE}?stale=true`,
        headers: { 'x-farad-forwarded': '1', authorization: 'Bearer s3cret' },
      },
    ]);
  });

  it('an owner that does not answer is a 503, not a crash', async () => {
    const directory = new Directory(true);
    directory.owners.set(1, 'http://b:8080');
    const down = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const err = await thrown(() => new Reads({ app, directory, peers: { fetch: down } }).get('balances', ALICE), PartitionUnavailableError);
    assert.match(err.message, /instance http:\/\/b:8080 did not answer \(fetch failed\)/);
  });

  it('reads global tables without any partition', async () => {
    const reads = new Reads({ app, directory: new Directory() });
    assert.deepEqual(await reads.get('colors', '2'), { kind: 'row', body: { table: 'colors', key: 2, value: { name: 'green' } }, stale: false });
    await thrown(() => reads.get('colors', '9'), RowNotFoundError);
  });

  it('throws typed errors for what the caller got wrong', async () => {
    const reads = new Reads({ app, directory: allActive(all) });
    const unknown = await thrown(() => reads.get('nope', '1'), UnknownTableError);
    assert.equal(unknown.code, 'unknown_table');
    assert.match(unknown.message, /no table "nope"; tables: balances, byNumber, totals, colors/);
    const badKey = await thrown(() => reads.get('byNumber', 'abc'), InvalidParameterError);
    assert.equal(badKey.code, 'bad_key');
    assert.equal((await thrown(() => reads.get('byNumber', String(2 ** 60)), InvalidParameterError)).code, 'bad_key');
    const local = await thrown(() => reads.get('totals', '1'), LocalTableReadError);
    assert.equal(local.code, 'local_table');
    const missing = await thrown(() => reads.get('balances', 'acct-none'), RowNotFoundError);
    assert.equal(missing.code, 'not_found');
    assert.match(missing.message, /table "balances" has no row with key "acct-none"/);
  });
});

// ---- scans and paging -----------------------------------------------------------------------

/** Every page of a scan, following `next`. */
async function pages(reads: Reads, tableName: string, limit: number, mode: ReadMode = FRESH): Promise<Array<{ items: ScannedRow[]; next: unknown }>> {
  const out: Array<{ items: ScannedRow[]; next: unknown }> = [];
  let after: string | undefined;
  for (;;) {
    const { body } = await reads.scan(tableName, { limit: String(limit), ...(after !== undefined ? { after } : {}) }, mode);
    out.push(body);
    if (body.next === null) return out;
    after = String(body.next);
    assert.ok(out.length < 1000, 'paging terminates');
  }
}

describe('Reads.scan', () => {
  const accounts = Object.fromEntries(Array.from({ length: 23 }, (_, i) => [`acct-${String(i).padStart(2, '0')}`, i]));
  // Key 1 in all four partitions, key 2 in two, keys 3..6 in one each.
  const totals: Array<[number, number, number]> = [
    [0, 1, 1], [1, 1, 2], [2, 1, 3], [3, 1, 4],
    [1, 2, 5], [3, 2, 6],
    [0, 3, 7], [1, 4, 8], [2, 5, 9], [3, 6, 10],
  ];
  const all = states(app, { balances: accounts, totals });
  const reads = new Reads({ app, directory: allActive(all) });
  const sortedAccounts = Object.keys(accounts).sort();

  it('pages a partitioned table in key order: full pages, next = last key, nothing lost', async () => {
    for (const limit of [1, 3, 7, 23, 100]) {
      const got = await pages(reads, 'balances', limit);
      for (const page of got.slice(0, -1)) {
        assert.equal(page.items.length, limit, 'only the last page is short');
        assert.equal(page.next, page.items.at(-1)!.key);
      }
      assert.deepEqual(got.flatMap((p) => p.items.map((r) => r.key)), sortedAccounts, `limit=${limit}`);
    }
    const first = await reads.scan('balances', { limit: '2' });
    assert.deepEqual(first.body.items[0], { key: 'acct-00', partition: partitionForKey('acct-00', PARTITIONS), value: { balance: 0 } });
    assert.equal(first.stale, false);
  });

  it('pages a partition-local table by whole keys, so no row is skipped', async () => {
    const full = (await pages(reads, 'totals', 1000)).flatMap((p) => p.items);
    assert.deepEqual(
      full.map((r) => `${r.key}@${r.partition}`),
      ['1@0', '1@1', '1@2', '1@3', '2@1', '2@3', '3@0', '4@1', '5@2', '6@3'],
    );
    for (const limit of [1, 2, 3, 5, 9]) {
      const got = await pages(reads, 'totals', limit);
      assert.deepEqual(got.flatMap((p) => p.items), full, `limit=${limit}`);
      // A page ends where its key ends: the next page never starts with the same key.
      for (let i = 1; i < got.length; i++) assert.notEqual(got[i]!.items[0]?.key, got[i - 1]!.items.at(-1)!.key);
    }
    // A page that is all one key holds every row of it, even beyond the limit.
    const one = await reads.scan('totals', { limit: '2' });
    assert.deepEqual(one.body.items.map((r) => r.partition), [0, 1, 2, 3]);
    assert.equal(one.body.next, 1);
  });

  it('pages a global table', async () => {
    const got = await pages(reads, 'colors', 2);
    assert.deepEqual(got, [
      { items: [{ key: 1, value: { name: 'red' } }, { key: 2, value: { name: 'green' } }], next: 2, table: 'colors' },
      { items: [{ key: 3, value: { name: 'blue' } }], next: null, table: 'colors' },
    ]);
  });

  it('validates limit and after', async () => {
    for (const limit of ['0', 'abc', '1001', '1.5', '-1']) {
      assert.equal((await thrown(() => reads.scan('balances', { limit }), InvalidParameterError)).code, 'bad_limit', limit);
    }
    assert.equal((await reads.scan('balances', {})).body.items.length, 23, 'default page size 100');
    assert.equal((await thrown(() => reads.scan('byNumber', { after: 'abc' }), InvalidParameterError)).code, 'bad_key');
    await thrown(() => reads.scan('nope'), UnknownTableError);
  });

  it('needs every partition: one no one serves makes the scan a 503', async () => {
    const directory = allActive(all);
    directory.hold(2, 'restoring', all[2]);
    const err = await thrown(() => new Reads({ app, directory }).scan('balances'), PartitionUnavailableError);
    assert.deepEqual(err.details, { partition: 2, role: 'restoring' });
  });

  it('pageOf keeps the paging rule on its own', () => {
    const rows: ScannedRow[] = [
      { key: 2, partition: 1, value: 'b1' },
      { key: 1, partition: 3, value: 'a3' },
      { key: 1, partition: 0, value: 'a0' },
      { key: 3, partition: 0, value: 'c0' },
    ];
    assert.deepEqual(pageOf(rows, 3, false).next, 2);
    // Local table, limit 2: the page is all key 1, so it holds every row of key 1.
    assert.deepEqual(pageOf(rows, 2, true), { rows: [rows[2], rows[1]], next: 1 });
    // Limit 3 ends inside the gathered rows at key 2, which other partitions may hold beyond
    // what they sent: the page stops before key 2.
    assert.deepEqual(pageOf(rows, 3, true), { rows: [rows[2], rows[1]], next: 1 });
    assert.deepEqual(pageOf(rows, 4, true).next, null);
  });
});

// ---- queries --------------------------------------------------------------------------------

describe('Reads.query', () => {
  const all = states(app, { totals: [[0, 1, 1], [1, 1, 2], [1, 2, 3], [3, 9, 4]] });

  it('runs the partial on every partition and merges the parts in partition order', async () => {
    const reads = new Reads({ app, directory: allActive(all) });
    const answer = await reads.query('sums', { factor: '10', stale: 'true', partitions: '0' });
    assert.equal(answer.stale, false);
    assert.deepEqual(answer.body, {
      parts: [
        { partition: 0, sum: 10 },
        { partition: 1, sum: 50 },
        { partition: 2, sum: 0 },
        { partition: 3, sum: 40 },
      ],
      // farad's own parameters never reach the query.
      params: { factor: '10' },
    });
  });

  it('uses standby copies only when stale answers are allowed, and says so', async () => {
    const directory = allActive(all, true);
    directory.hold(3, 'standby', all[3]);
    const reads = new Reads({ app, directory });
    const err = await thrown(() => reads.query('sums'), PartitionUnavailableError);
    assert.deepEqual(err.details, { partition: 3, role: 'standby' });
    const answer = await reads.query('sums', {}, STALE);
    assert.equal(answer.stale, true);
    assert.equal((answer.body as { parts: unknown[] }).parts.length, PARTITIONS);
  });

  it('unknown query → UnknownQueryError naming the queries there are', async () => {
    const reads = new Reads({ app, directory: allActive(all) });
    const err = await thrown(() => reads.query('nope'), UnknownQueryError);
    assert.equal(err.code, 'unknown_query');
    assert.match(err.message, /no query "nope"; this app has sums/);
    await thrown(() => reads.queryPartial('nope', {}, FRESH), UnknownQueryError);
  });
});

// ---- two instances: gathering over the wire protocol ----------------------------------------

describe('gathering from another instance', () => {
  const accounts = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`acct-${i}`, i]));
  const all = states(app, { balances: accounts, totals: [[0, 1, 1], [1, 1, 2], [2, 1, 3], [3, 1, 4]] });
  const B = 'http://b:8080';

  /** Instance A holds partitions 0 and 1; B holds 2 (active) and 3 (a standby only, in `bRole`). */
  function cluster(bRole: PartitionRole = 'active'): { a: Reads; requests: string[] } {
    const onA = new Directory(true).hold(0, 'active', all[0]).hold(1, 'active', all[1]);
    onA.owners.set(2, B).set(3, B);
    const onB = new Directory(true).hold(2, 'active', all[2]).hold(3, bRole, all[3]);
    const b = new Reads({ app, directory: onB });
    const requests: string[] = [];
    // B's side of the internal routes, as the HTTP adapter wires them.
    const toB = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input));
      requests.push(url.pathname + url.search);
      const query = Object.fromEntries(url.searchParams);
      const mode = readModeOf(query, init?.headers as Record<string, string>);
      try {
        const [, , , kind, name] = url.pathname.split('/');
        const body = kind === 'tables' ? await b.scanPartial(name!, query, mode) : await b.queryPartial(name!, query, mode);
        return Response.json(body);
      } catch (err) {
        return Response.json({ error: (err as PartitionUnavailableError).code, message: (err as Error).message }, { status: 503 });
      }
    }) as typeof fetch;
    return { a: new Reads({ app, directory: onA, peers: { fetch: toB } }), requests };
  }

  it('a scan gathers the other instance’s partitions in one request per instance', async () => {
    const { a, requests } = cluster();
    const got = await pages(a, 'balances', 5);
    assert.deepEqual(got.flatMap((p) => p.items.map((r) => r.key)), Object.keys(accounts).sort());
    assert.equal(requests.length, got.length);
    assert.match(requests[0]!, /^\/internal\/partials\/tables\/balances\?partitions=2%2C3&limit=6$/);
    // A full page of 1000 asks for 1001 rows: the internal scan accepts one more than a page.
    assert.equal((await a.scan('balances', { limit: '1000' })).body.items.length, 12);
  });

  it('a query gathers partials from both and merges them in partition order', async () => {
    const { a } = cluster();
    const answer = await a.query('sums', { factor: '2' });
    assert.deepEqual((answer.body as { parts: unknown[] }).parts, [0, 1, 2, 3].map((partition) => ({ partition, sum: 2 * (partition + 1) })));
    assert.equal(answer.stale, false);
  });

  it('a stale read is stale when any part came from a standby copy', async () => {
    const { a, requests } = cluster('standby');
    await thrown(() => a.query('sums'), PartitionUnavailableError);
    const answer = await a.query('sums', {}, STALE);
    assert.equal(answer.stale, true);
    assert.match(requests.at(-1)!, /stale=true/);
    const scanned = await a.scan('balances', {}, STALE);
    assert.equal(scanned.stale, true);
    assert.equal(scanned.body.items.length, 12);
  });

  it('the other instance failing to answer for a partition is a 503 naming it', async () => {
    const { a } = cluster('restoring');
    const err = await thrown(() => a.scan('balances'), PartitionUnavailableError);
    assert.match(err.message, /^http:\/\/b:8080: partition 3 is restoring here/);
  });
});

// ---- several workers in one instance: reading from a sibling worker -------------------------

describe('reading from a sibling worker', () => {
  const accounts = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`acct-${i}`, i]));
  const all = states(app, { balances: accounts, totals: [[0, 1, 1], [1, 1, 2], [2, 1, 3], [3, 1, 4]] });
  const SIBLING = workerUrl(1);
  const B = 'http://b:8080';
  const [DAVE] = keysOf(3, PARTITIONS, 1, 'acct-') as [string];

  interface Call {
    readonly url: string;
    readonly forwarded: string | undefined;
  }

  /**
   * Worker 0 of instance A holds partitions 0 and 1; its sibling worker 1 holds 2 (in
   * `siblingRole`); another instance B holds 3. Requests to the sibling and to B reach their
   * Reads as the HTTP adapter wires them (internal partials answered, key reads relayed).
   */
  function instance(siblingRole: PartitionRole = 'active'): { w0: Reads; calls: Call[] } {
    const onW0 = new Directory(true).hold(0, 'active', all[0]).hold(1, 'active', all[1]);
    onW0.owners.set(2, SIBLING).set(3, B);
    const onW1 = new Directory(true).hold(2, siblingRole, all[2]);
    onW1.owners.set(0, workerUrl(0)).set(1, workerUrl(0)).set(3, B);
    const onB = new Directory(true).hold(3, 'active', all[3]);
    onB.owners.set(0, 'http://a:8080').set(1, 'http://a:8080').set(2, 'http://a:8080');
    const peers = { w1: new Reads({ app, directory: onW1 }), b: new Reads({ app, directory: onB }) };
    const calls: Call[] = [];
    const fakeFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const headers = init?.headers as Record<string, string>;
      calls.push({ url: String(input), forwarded: headers['x-farad-forwarded'] });
      const url = new URL(String(input));
      const to = String(input).startsWith(SIBLING) ? peers.w1 : String(input).startsWith(B) ? peers.b : undefined;
      if (!to) throw new TypeError('fetch failed');
      const query = Object.fromEntries(url.searchParams);
      const mode = readModeOf(query, headers);
      try {
        const [, first, second, kind, name] = url.pathname.split('/').map(decodeURIComponent);
        if (first === 'tables') {
          const read = await to.get(second!, kind!, mode);
          return Response.json(read.body, { status: read.kind === 'relayed' ? read.status : 200 });
        }
        const body = kind === 'tables' ? await to.scanPartial(name!, query, mode) : await to.queryPartial(name!, query, mode);
        return Response.json(body);
      } catch (err) {
        return Response.json({ error: (err as PartitionUnavailableError).code, message: (err as Error).message }, { status: 503 });
      }
    }) as typeof fetch;
    return { w0: new Reads({ app, directory: onW0, peers: { fetch: fakeFetch } }), calls };
  }

  it('a fresh key read of a partition a sibling owns goes to that sibling, marked as from a sibling', async () => {
    const { w0, calls } = instance();
    const read = await w0.get('balances', CAROL);
    assert.deepEqual(read, {
      kind: 'relayed',
      status: 200,
      body: { table: 'balances', key: CAROL, partition: 2, value: { balance: accounts[CAROL] } },
      stale: false,
    });
    assert.deepEqual(calls, [{ url: `${SIBLING}/tables/balances/${CAROL}`, forwarded: 'worker' }]);
  });

  it('a read another instance forwarded still reaches the sibling worker that owns the partition', async () => {
    const { w0, calls } = instance();
    const read = await w0.get('balances', CAROL, FORWARDED);
    assert.equal(read.kind, 'relayed');
    assert.equal(read.kind === 'relayed' && read.status, 200);
    assert.deepEqual(calls, [{ url: `${SIBLING}/tables/balances/${CAROL}`, forwarded: 'worker' }]);
  });

  it('a read another instance forwarded never goes on to a third instance', async () => {
    const { w0, calls } = instance();
    const err = await thrown(() => w0.get('balances', DAVE, FORWARDED), PartitionUnavailableError);
    assert.deepEqual(err.details, { partition: 3 });
    await thrown(() => w0.scanPartial('balances', { partitions: '0,3' }, FORWARDED), PartitionUnavailableError);
    await thrown(() => w0.queryPartial('sums', { partitions: '3' }, FORWARDED), PartitionUnavailableError);
    assert.deepEqual(calls, [], 'nothing was sent');
    // A fresh read does go to the other instance, marked forwarded.
    await w0.get('balances', DAVE);
    assert.deepEqual(calls, [{ url: `${B}/tables/balances/${DAVE}`, forwarded: '1' }]);
  });

  it('a read a sibling forwarded is answered here or fails: never forwarded again', async () => {
    const { w0, calls } = instance();
    for (const key of [CAROL, DAVE]) {
      const err = await thrown(() => w0.get('balances', key, FROM_SIBLING), PartitionUnavailableError);
      assert.equal(err.context.partition, partitionForKey(key, PARTITIONS));
    }
    await thrown(() => w0.scanPartial('balances', { partitions: '2' }, FROM_SIBLING), PartitionUnavailableError);
    await thrown(() => w0.queryPartial('sums', { partitions: '2' }, { ...FROM_SIBLING, staleOk: true }), PartitionUnavailableError);
    assert.deepEqual(calls, [], 'nothing was sent');
    // What it holds itself it answers.
    const mine = await w0.scanPartial('balances', { partitions: '0,1' }, FROM_SIBLING);
    assert.equal(mine.rows.length, Object.keys(accounts).filter((k) => partitionForKey(k, PARTITIONS) < 2).length);
  });

  it('an internal scan or query another instance sent gathers the partitions sibling workers hold', async () => {
    const { w0, calls } = instance();
    const scanned = await w0.scanPartial('balances', { partitions: '0,2', limit: '100' }, FORWARDED);
    const expected = Object.keys(accounts).filter((k) => [0, 2].includes(partitionForKey(k, PARTITIONS)));
    assert.deepEqual(scanned.rows.map((r) => r.key).sort(), expected.sort());
    assert.ok(scanned.rows.some((r) => r.partition === 2), 'the sibling’s rows are there');
    assert.equal(scanned.stale, false);
    assert.deepEqual(calls, [{ url: `${SIBLING}/internal/partials/tables/balances?partitions=2&limit=100`, forwarded: 'worker' }]);

    const queried = await w0.queryPartial('sums', { partitions: '1,2', factor: '3' }, FORWARDED);
    assert.deepEqual(
      [...queried.parts].sort((a, b) => a.partition - b.partition),
      [
        { partition: 1, value: { partition: 1, sum: 6 } },
        { partition: 2, value: { partition: 2, sum: 9 } },
      ],
    );
    assert.equal(calls.at(-1)!.forwarded, 'worker');
    assert.match(calls.at(-1)!.url, /^farad-worker:\/\/1\/internal\/partials\/queries\/sums\?factor=3&partitions=2$/);
  });

  it('an outside scan and query gather this worker, its sibling and the other instance', async () => {
    const { w0, calls } = instance();
    const got = await pages(w0, 'balances', 5);
    assert.deepEqual(got.flatMap((p) => p.items.map((r) => r.key)), Object.keys(accounts).sort());
    const answer = await w0.query('sums', { factor: '2' });
    assert.deepEqual((answer.body as { parts: unknown[] }).parts, [0, 1, 2, 3].map((partition) => ({ partition, sum: 2 * (partition + 1) })));
    assert.deepEqual(new Set(calls.map((c) => `${c.url.startsWith(SIBLING) ? 'sibling' : 'b'}:${c.forwarded}`)), new Set(['sibling:worker', 'b:1']));
  });

  it('a sibling that no longer holds the partition makes the read a 503, stale only from a copy it holds', async () => {
    const { w0 } = instance('standby');
    const err = await thrown(() => w0.scan('balances'), PartitionUnavailableError);
    assert.match(err.message, /^farad-worker:\/\/1: partition 2 is standby here/);
    const stale = await w0.scan('balances', {}, STALE);
    assert.equal(stale.stale, true);
    assert.equal(stale.body.items.length, Object.keys(accounts).length);
  });
});
