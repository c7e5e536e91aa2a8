/**
 * The console's server side on one instance of the embedded log: the page and its files behind
 * the token (bearer, or HTTP Basic with the token as password, which a browser asks for), and the
 * gathered view counting what the instance did, checked against what the test sent: events by
 * outcome, dead letters by reason and the newest ones, every partition active here, the alert
 * that dead letters raise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import bank from '../../examples/bank/index.js';
import type { ClusterView } from '../../src/console/web/api.js';
import { http, postJson, startTestService, tempDir, waitProcessed } from './helpers.js';

const TOKEN = 'console-test-token';
const bearer = { authorization: `Bearer ${TOKEN}` };
const basic = (password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`operator:${password}`).toString('base64')}` });

test('the console: page and files behind the token, and a live view that counts what happened', { timeout: 60_000 }, async (t) => {
  const { service, base, log } = await startTestService(t, bank, tempDir(t), { http: { token: TOKEN }, instanceId: 'console-a' });

  // The page asks a browser for the token; API clients may send it as a bearer token.
  const anonymous = await fetch(`${base}/console`);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get('www-authenticate'), 'Basic realm="farad", charset="UTF-8"');
  assert.equal((await fetch(`${base}/console`, { headers: basic('wrong') })).status, 401);
  assert.equal((await fetch(`${base}/console/api/cluster`)).status, 401);
  const page = await fetch(`${base}/console`, { headers: basic(TOKEN) });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
  const html = await page.text();
  assert.match(html, /\/console\/assets\/app\.js/);
  assert.doesNotMatch(html, /https?:\/\//, 'the page refers to nothing outside this origin');
  assert.equal((await fetch(`${base}/console`, { headers: bearer })).status, 200);
  // What the browser then sends with the page's own requests: the API takes it too, without a prompt.
  const openapi = await fetch(`${base}/openapi.json`, { headers: basic(TOKEN) });
  assert.equal(openapi.status, 200);
  const refused = await fetch(`${base}/openapi.json`, { headers: basic('wrong') });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get('www-authenticate'), 'Bearer', 'API routes never make a browser prompt');

  const script = await fetch(`${base}/console/assets/app.js`, { headers: basic(TOKEN) });
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
  const code = await script.text();
  assert.ok(code.length > 1000, 'the page\'s TypeScript, bundled');
  assert.doesNotMatch(code, /\bimport\s*["'(]|from\s*["']/, 'one file: nothing imported at run time');
  assert.equal((await fetch(`${base}/console/assets/style.css`, { headers: bearer })).status, 200);
  assert.equal((await fetch(`${base}/console/assets/secrets.json`, { headers: bearer })).status, 404);

  // What the view must count: deposits, one of them refused by the handler (a dead letter).
  const accounts = ['alice', 'bob', 'carol', 'dave', 'erin'];
  for (const [i, account] of accounts.entries()) {
    assert.equal((await postJson(`${base}/events/Deposit`, { account, amount: 10 + i }, bearer)).status, 202);
  }
  assert.equal((await postJson(`${base}/events/Deposit`, { account: 'mallory', amount: -5 }, bearer)).status, 202);
  await waitProcessed(service, log, base);

  const { status, body: view } = await http<ClusterView>(`${base}/console/api/cluster`, { headers: bearer });
  assert.equal(status, 200);
  assert.equal(view.app, 'bank');
  assert.equal(view.transport, 'embedded');
  assert.equal(view.servedBy, 'console-a');
  assert.deepEqual(view.instances.map((i) => [i.instanceId, i.ready, i.active.length]), [['console-a', true, view.partitions]]);
  assert.deepEqual(view.unreachable, []);
  assert.equal(view.partitionRows.length, view.partitions);
  for (const row of view.partitionRows) {
    assert.equal(row.owner, 'console-a', `partition ${row.partition} owned here`);
    assert.equal(row.role, 'active');
    assert.equal(row.lag, 0);
  }
  assert.equal(view.partitionRows.reduce((sum, r) => sum + r.eventsTotal, 0), accounts.length + 1);
  assert.ok(view.partitionRows.some((r) => r.lastCommitAt !== undefined && r.lastCommitAt <= view.at && r.lastCommitAt > view.at - 60_000));
  assert.deepEqual(view.events, [
    { eventType: 'bank.Deposit', outcome: 'failed', total: 1 },
    { eventType: 'bank.Deposit', outcome: 'ok', total: accounts.length },
  ]);
  assert.deepEqual(view.ingested, [{ eventType: 'bank.Deposit', total: accounts.length + 1 }]);
  assert.equal(view.deadLetters.find((d) => d.reason === 'handler_error')?.total, 1);
  assert.deepEqual(
    view.alerts.map((a) => [a.name, a.state, a.labels]),
    [['FaradDeadLetters', 'firing', { reason: 'handler_error' }]],
  );

  const letters = await http<{ items: Array<{ deadLetter?: { reason?: string; error?: string } }> }>(`${base}/console/api/dead-letters?limit=5`, { headers: bearer });
  assert.equal(letters.status, 200);
  assert.equal(letters.body.items.length, 1);
  assert.equal(letters.body.items[0]!.deadLetter?.reason, 'handler_error');
  assert.match(letters.body.items[0]!.deadLetter?.error ?? '', /amounts must be positive/);
  for (const bad of ['0', '101', 'x']) {
    const answer = await http<{ error: string; message: string }>(`${base}/console/api/dead-letters?limit=${bad}`, { headers: bearer });
    assert.equal(answer.status, 400, `limit=${bad}`);
    assert.equal(answer.body.error, 'bad_limit');
  }
});
