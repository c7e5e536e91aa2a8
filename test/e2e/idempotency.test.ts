/**
 * Idempotent ingest and reading your own writes on the embedded log, through the HTTP API:
 * a retried POST /events with the same Idempotency-Key appends nothing and answers the first
 * answer; concurrent ones append once; a reused key for another request is refused; keys expire;
 * and a read given the position a 202 answered sees the write.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import bank from '../../examples/bank/index.js';
import voter from '../../examples/voter/index.js';
import { partitionForKey } from '../../src/state/index.js';
import type { EmbeddedLog } from '../../src/streams/index.js';
import { http, metricValue, postJson, sleep, startTestService, tempDir, waitFor, type HttpAnswer } from './helpers.js';

/** Records in every partition of `topic`. */
function appended(log: EmbeddedLog, topic: string, partitions: number): number {
  let n = 0;
  for (let p = 0; p < partitions; p++) n += log.endOffset(topic, p);
  return n;
}

function assertProblem(answer: HttpAnswer<Record<string, unknown>>, status: number, error: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.equal(answer.body['error'], error, answer.text);
  assert.equal(typeof answer.body['message'], 'string');
}

async function startBank(t: TestContext, dataDir = tempDir(t), overrides: Parameters<typeof startTestService>[3] = {}) {
  const started = await startTestService(t, bank, dataDir, overrides);
  await waitFor('/readyz 200', async () => (await fetch(`${started.base}/readyz`)).status === 200);
  return started;
}

test('Idempotency-Key: a retry appends nothing and gets the first answer', { timeout: 60_000 }, async (t) => {
  const dataDir = tempDir(t);
  const { service, base, log } = await startBank(t, dataDir);
  const count = (): number => appended(log, 'transactions', 4);
  const deposit = (key: string | undefined, body: unknown, type = 'bank.Deposit'): Promise<HttpAnswer<Record<string, unknown>>> =>
    postJson(`${base}/events/${type}`, body, key === undefined ? {} : { 'idempotency-key': key });

  await t.test('the same key twice: one append, the same answer, marked replayed', async () => {
    const before = count();
    const first = await deposit('deposit-1', { account: 'alice', amount: 10 });
    assert.equal(first.status, 202, first.text);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    assert.match(String(first.body['position']), /^transactions:\d:\d+$/);
    const again = await deposit('deposit-1', { account: 'alice', amount: 10 });
    assert.equal(again.status, 202);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, first.body);
    assert.equal(count(), before + 1);
    // The same request written differently (key order, a long as a string) is the same request.
    const reordered = await postJson(`${base}/events/Deposit`, '{"amount": "10", "account": "alice"}', { 'idempotency-key': 'deposit-1' });
    assert.equal(reordered.headers.get('idempotent-replayed'), 'true', reordered.text);
    assert.equal(count(), before + 1);
  });

  await t.test('20 concurrent requests with one key: exactly one append', async () => {
    const before = count();
    const answers = await Promise.all(Array.from({ length: 20 }, () => deposit('burst', [{ account: 'bob', amount: 1 }, { account: 'carol', amount: 2 }])));
    for (const answer of answers) assert.equal(answer.status, 202, answer.text);
    assert.equal(answers.filter((a) => a.headers.get('idempotent-replayed') === null).length, 1, 'one answer is the first');
    for (const answer of answers) assert.deepEqual(answer.body, answers[0]!.body);
    assert.equal(count(), before + 2, 'the array was appended once');
  });

  await t.test('the same key for another body or event type: 422, nothing appended', async () => {
    const before = count();
    assertProblem(await deposit('deposit-1', { account: 'alice', amount: 11 }), 422, 'idempotency_key_reused');
    assertProblem(await deposit('deposit-1', { account: 'alice', amount: 10 }, 'bank.Withdrawal'), 422, 'idempotency_key_reused');
    assert.equal(count(), before);
  });

  await t.test('a refused request is not remembered: its retry with the same key is appended', async () => {
    const before = count();
    assertProblem(await deposit('fix-me', { account: 'dave', amount: 'lots' }), 422, 'schema_validation');
    const fixed = await deposit('fix-me', { account: 'dave', amount: 5 });
    assert.equal(fixed.status, 202, fixed.text);
    assert.equal(fixed.headers.get('idempotent-replayed'), null);
    assert.equal(count(), before + 1);
  });

  await t.test('a malformed key: 400, nothing appended', async () => {
    const before = count();
    for (const key of ['', 'x'.repeat(256), 'caf\u00e9']) assertProblem(await deposit(key, { account: 'erin', amount: 1 }), 400, 'bad_idempotency_key');
    assert.equal(count(), before);
  });

  await t.test('replays are counted', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metricValue(text, 'farad_ingest_idempotent_replays_total', { event_type: 'bank.Deposit' }), 2 + 19);
  });

  await t.test('keys live in memory: after a restart the same key appends again', async () => {
    await service.stop();
    const restarted = await startBank(t, dataDir);
    const before = appended(restarted.log, 'transactions', 4);
    const answer = await postJson(`${restarted.base}/events/bank.Deposit`, { account: 'alice', amount: 10 }, { 'idempotency-key': 'deposit-1' });
    assert.equal(answer.status, 202);
    assert.equal(answer.headers.get('idempotent-replayed'), null);
    assert.equal(appended(restarted.log, 'transactions', 4), before + 1);
  });
});

test('Idempotency-Key: answers are kept for http.idempotencyWindowSeconds', { timeout: 30_000 }, async (t) => {
  const { base, log } = await startBank(t, tempDir(t), { http: { idempotencyWindowSeconds: 1 } });
  const send = () => postJson(`${base}/events/bank.Deposit`, { account: 'frank', amount: 3 }, { 'idempotency-key': 'short-lived' });
  assert.equal((await send()).headers.get('idempotent-replayed'), null);
  assert.equal((await send()).headers.get('idempotent-replayed'), 'true');
  await sleep(1_100);
  const late = await send();
  assert.equal(late.status, 202);
  assert.equal(late.headers.get('idempotent-replayed'), null, 'past the window the key is new again');
  assert.equal(appended(log, 'transactions', 4), 2);
});

test('reading your writes: a read with the position a 202 answered sees the write', { timeout: 60_000 }, async (t) => {
  // Batches commit 400 ms after their first record: a read that does not wait misses the write.
  const dataDir = tempDir(t);
  const settings = { commitLingerMs: 400, commitIntervalMs: 1_000 };
  const { service, base } = await startTestService(t, voter, dataDir, settings);
  await waitFor('/readyz 200', async () => (await fetch(`${base}/readyz`)).status === 200);
  let firstPosition = '';
  const vote = (phoneNumber: number, contestantNumber = 1) => ({ phoneNumber, contestantNumber });

  await t.test('a key read waits for the write', async () => {
    const phone = 6175550101;
    const posted = await postJson(`${base}/events/voter.Vote`, vote(phone));
    assert.equal(posted.status, 202, posted.text);
    const position = (firstPosition = String(posted.body['position']));
    assert.equal(position, `votes:${partitionForKey(String(phone), 8)}:1`);
    assert.equal((await http(`${base}/tables/votesByPhone/${phone}`)).status, 404, 'without waiting, the write is not visible yet');
    const read = await http<{ value: unknown }>(`${base}/tables/votesByPhone/${phone}?waitFor=${encodeURIComponent(position)}`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body.value, { accepted: 1 });
  });

  await t.test('scans and queries wait for every partition the write touched', async () => {
    const phones = Array.from({ length: 12 }, (_, i) => 6175550200 + i);
    const posted = await postJson(`${base}/events/voter.Vote`, phones.map((p) => vote(p, 2)));
    assert.equal(posted.status, 202, posted.text);
    const position = String(posted.body['position']);
    assert.equal(position.split(',').length, new Set(phones.map((p) => partitionForKey(String(p), 8))).size, 'one entry per partition written');
    const page = await http<{ items: Array<{ key: number }> }>(`${base}/tables/votesByPhone?limit=1000&waitFor=${encodeURIComponent(position)}`);
    assert.equal(page.status, 200, page.text);
    const keys = new Set(page.body.items.map((r) => r.key));
    for (const phone of phones) assert.ok(keys.has(phone), `scan sees ${phone}`);

    const more = await postJson(`${base}/events/voter.Vote`, phones.slice(0, 5).map((p) => vote(p, 3)));
    const board = await http<Array<{ contestantNumber: number; votes: number }>>(`${base}/queries/leaderboard?waitFor=${encodeURIComponent(String(more.body['position']))}`);
    assert.equal(board.status, 200, board.text);
    const votesFor = (n: number): number | undefined => board.body.find((r) => r.contestantNumber === n)?.votes;
    assert.equal(votesFor(3), 5, board.text);
    assert.equal(votesFor(2), 12, board.text);
  });

  await t.test('a write not processed within waitMs: 503 write_not_visible_yet with Retry-After', async () => {
    const posted = await postJson(`${base}/events/voter.Vote`, vote(6175550301));
    const answer = await http<Record<string, unknown>>(`${base}/tables/votesByPhone/6175550301?waitFor=${encodeURIComponent(String(posted.body['position']))}&waitMs=0`);
    assertProblem(answer, 503, 'write_not_visible_yet');
    assert.equal(answer.headers.get('retry-after'), '1');
  });

  await t.test('a position farad did not answer: 400 bad_wait_for', async () => {
    for (const query of ['waitFor=garbage', 'waitFor=votes:8:1', 'waitFor=nope:0:1', 'waitFor=votes:0:1&stale=true', 'waitFor=votes:0:1&waitFor=votes:1:1']) {
      assertProblem(await http<Record<string, unknown>>(`${base}/tables/votesByPhone/1?${query}`), 400, 'bad_wait_for');
      assertProblem(await http<Record<string, unknown>>(`${base}/tables/votesByPhone?${query}`), 400, 'bad_wait_for');
      assertProblem(await http<Record<string, unknown>>(`${base}/queries/leaderboard?${query}`), 400, 'bad_wait_for');
    }
  });

  await t.test('a position stays valid after a restart: the new owner knows what was committed before it', async () => {
    await service.stop();
    const restarted = await startTestService(t, voter, dataDir, settings);
    await waitFor('/readyz 200', async () => (await fetch(`${restarted.base}/readyz`)).status === 200);
    const started = Date.now();
    const read = await http<{ value: unknown }>(`${restarted.base}/tables/votesByPhone/6175550101?waitFor=${encodeURIComponent(firstPosition)}&waitMs=5000`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.body.value, { accepted: 1 });
    assert.ok(Date.now() - started < 2_000, 'answered from the log\'s committed offsets, without new input');
  });
});

test('reading your writes: a consistent query cannot wait for a write (400)', { timeout: 30_000 }, async (t) => {
  const { base } = await startBank(t);
  const posted = await postJson(`${base}/events/bank.Deposit`, { account: 'gina', amount: 4 });
  assertProblem(await http<Record<string, unknown>>(`${base}/queries/total?waitFor=${encodeURIComponent(String(posted.body['position']))}`), 400, 'bad_wait_for');
});
