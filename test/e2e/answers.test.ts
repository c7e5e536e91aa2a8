/**
 * Answers that say what to fix, end to end: an app run by the real CLI that imports `farad` from
 * its own node_modules (another copy of farad's errors) refuses a query's parameters with 400 and
 * its own message; keys of thousands of characters are written through HTTP and read back by path
 * and by `?key=`; what Node and the HTTP library refuse themselves comes back as farad's JSON.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import bank from '../../examples/bank/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { exitOf, freePort, http, postJson, ROOT, spawnCli, startTestService, tempDir, waitFor, waitProcessed } from './helpers.js';

/**
 * An app directory whose `farad` is its own: `node_modules/farad` holds a copy of farad's errors
 * module (so `QueryParamsError` is another class than the running farad's) beside farad's API.
 */
function appWithItsOwnFarad(dir: string): string {
  const app = join(dir, 'app');
  const farad = join(app, 'node_modules', 'farad');
  mkdirSync(farad, { recursive: true });
  copyFileSync(join(ROOT, 'src', 'errors.ts'), join(farad, 'errors.ts'));
  writeFileSync(join(farad, 'package.json'), JSON.stringify({ name: 'farad', type: 'module', exports: { '.': './index.ts' } }));
  writeFileSync(
    join(farad, 'index.ts'),
    `export { defineApp, query, record, table } from ${JSON.stringify(join(ROOT, 'src', 'index.ts'))};\nexport * from './errors.ts';\n`,
  );
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ledger-app', type: 'module' }));
  writeFileSync(
    join(app, 'index.ts'),
    `import { defineApp, QueryParamsError, record, table } from 'farad';

interface Entry { account: string; amount: number }

export default defineApp({
  name: 'ledger',
  partitions: 2,
  events: { Entry: record<Entry>({ type: 'record', name: 'Entry', namespace: 'ledger', fields: [{ name: 'account', type: 'string' }, { name: 'amount', type: 'long' }] }) },
  tables: { sums: table({ key: 'string', value: record<{ sum: number }>({ type: 'record', name: 'Sum', namespace: 'ledger', fields: [{ name: 'sum', type: 'long' }] }) }) },
  inputs: [{ topic: 'entries', events: ['Entry'] }],
  procedures: {
    Entry: {
      partitionKey: (e) => e.account,
      handle(ctx, e) {
        ctx.tables.sums.put(e.account, { sum: (ctx.tables.sums.get(e.account)?.sum ?? 0) + e.amount });
      },
    },
  },
  queries: (query) => ({
    // Accounts whose sum is at least ?min=, an integer.
    atLeast: query({
      partition(ctx, params) {
        const min = params['min'];
        if (min === undefined || !/^-?\\d+$/.test(min)) throw new QueryParamsError(\`min must be an integer, such as ?min=100, not \${JSON.stringify(min ?? null)}\`, 'min');
        return ctx.tables.sums.scan().filter(([, row]) => row.sum >= Number(min)).map(([account]) => account);
      },
      merge: (parts) => parts.flat().sort(),
    }),
  }),
});
`,
  );
  return app;
}

test('an app with its own copy of farad refuses query parameters with 400 and its message', { timeout: 90_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const app = appWithItsOwnFarad(dir);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawnCli(t, ['run', '--app', app], { FARAD_DATA_DIR: join(dir, 'data'), FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' });
  await waitFor('the app to be ready', async () => {
    if (child.process.exitCode !== null) throw new Error(`run exited ${child.process.exitCode}: ${child.stderr}`);
    return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
  }, { timeoutMs: 60_000, intervalMs: 100 });

  const entries = [
    { account: 'ann', amount: 50 },
    { account: 'bob', amount: 500 },
    { account: 'cy', amount: 120 },
    { account: 'ann', amount: 60 },
  ];
  assert.equal((await postJson(`${base}/events/Entry`, entries)).status, 202);
  const ok = await waitFor('the entries to be summed', async () => {
    const answer = await http<string[]>(`${base}/queries/atLeast?min=100`);
    return answer.status === 200 && answer.body.length === 3 ? answer : undefined;
  });
  assert.deepEqual(ok.body, ['ann', 'bob', 'cy']);

  for (const [query, shown] of [['', 'null'], ['?min=lots', '"lots"'], ['?min=1.5', '"1.5"']] as const) {
    const refused = await http<Record<string, unknown>>(`${base}/queries/atLeast${query}`);
    assert.equal(refused.status, 400, refused.text);
    assert.deepEqual(refused.body, { error: 'bad_query_params', message: `min must be an integer, such as ?min=100, not ${shown}`, field: 'min' });
  }

  child.process.kill('SIGTERM');
  assert.equal((await exitOf(child, 15_000)).code, 0, child.stderr);
});

interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Record<string, unknown>;
}

/** Writes `request` as is on a new connection and reads the one answer (the server closes the connection after it). */
function raw(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const parse = (): RawAnswer | undefined => {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      const body = Buffer.from(text.slice(end + 4), 'utf8');
      if (body.length < Number(headers['content-length'])) return undefined;
      return { status: Number(statusLine!.split(' ')[1]), headers, body: JSON.parse(body.toString('utf8')) as Record<string, unknown> };
    };
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer (the server discards what it did not read) still leaves the answer.
    const settle = (err?: Error): void => {
      const answer = parse();
      if (answer) resolve(answer);
      else reject(err ?? new Error(`no complete answer: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`));
    };
    socket.on('close', () => settle());
    socket.on('error', (err) => settle(err));
    socket.write(request);
  });
}

test('long keys are read back by path and by ?key=; the HTTP layer’s own refusals are JSON', { timeout: 60_000 }, async (t: TestContext) => {
  const { service, base, log } = await startTestService(t, bank, tempDir(t));
  const port = Number(new URL(base).port);
  const accounts = ['a'.repeat(101), `acct/${'é'.repeat(50)}?&#%`, 'x'.repeat(6000)];
  assert.equal((await postJson(`${base}/events/Deposit`, accounts.map((account, i) => ({ account, amount: 10 + i })))).status, 202);
  await waitProcessed(service, log, base);
  for (const [i, account] of accounts.entries()) {
    const expected = { table: 'balances', key: account, partition: partitionForKey(account, 4), value: { balance: 10 + i } };
    const byPath = await http(`${base}/tables/balances/${encodeURIComponent(account)}`);
    assert.equal(byPath.status, 200, `${account.length} characters by path: ${byPath.text.slice(0, 300)}`);
    assert.deepEqual(byPath.body, expected);
    const byQuery = await http(`${base}/tables/balances?key=${encodeURIComponent(account)}`);
    assert.equal(byQuery.status, 200, `${account.length} characters by ?key=: ${byQuery.text.slice(0, 300)}`);
    assert.deepEqual(byQuery.body, expected);
  }
  const both = await http<Record<string, unknown>>(`${base}/tables/balances?key=a&limit=3`);
  assert.equal(both.status, 400);
  assert.equal(both.body['error'], 'bad_request');

  const tooLong = await http<Record<string, unknown>>(`${base}/tables/balances/${'x'.repeat(9000)}`);
  assert.equal(tooLong.status, 414);
  assert.equal(tooLong.body['error'], 'uri_too_long');
  const badUrl = await http<Record<string, unknown>>(`${base}/tables/%E0%A4%A`);
  assert.equal(badUrl.status, 400);
  assert.equal(badUrl.body['error'], 'bad_url');

  const headers = await raw(port, `GET /tables/balances HTTP/1.1\r\nhost: x\r\nx-padding: ${'p'.repeat(20_000)}\r\n\r\n`);
  assert.equal(headers.status, 431);
  assert.equal(headers.headers['connection'], 'close');
  assert.match(headers.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(headers.body['error'], 'headers_too_large');
  const garbage = await raw(port, 'GET /tables/balances HTTP/1.1\r\nhost x\r\n\r\n');
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body['error'], 'bad_request');
  // The service still answers after refusing them.
  assert.equal((await http(`${base}/healthz`)).status, 200);
});
