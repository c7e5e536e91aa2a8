/**
 * The HTTP API against the Voter app on the embedded log: every bad request gets the right 4xx
 * with a JSON reason and appends nothing; bearer-token protection; ordered arrays; paging;
 * 404s; metrics; health and readiness.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import voter from '../../examples/voter/index.js';
import { partitionForKey } from '../../src/state/index.js';
import {
  catalogOf,
  decodeAll,
  http,
  metricValue,
  postJson,
  readPartition,
  scanTableHttp,
  startTestService,
  tempDir,
  waitFor,
  waitProcessed,
  type HttpAnswer,
} from './helpers.js';

/** A 4xx answer with a JSON body `{ error, message }`. */
function assertProblem(answer: HttpAnswer<Record<string, unknown>>, status: number, error?: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof answer.body['error'], 'string', answer.text);
  assert.equal(typeof answer.body['message'], 'string', answer.text);
  assert.ok((answer.body['message'] as string).length > 0);
  if (error !== undefined) assert.equal(answer.body['error'], error, answer.text);
}

test('HTTP API', { timeout: 60_000 }, async (t: TestContext) => {
  const { service, base, log } = await startTestService(t, voter, tempDir(t), { http: { bodyLimitBytes: 2048 } });
  const url = `${base}/events/voter.Vote`;
  const appended = (): number => {
    let n = 0;
    for (let p = 0; p < 8; p++) n += log.endOffset('votes', p);
    return n;
  };
  const journal = join(service.config.dataDir, 'journal.log');
  /** Runs `request` and checks it appended nothing: no vote, no byte of the journal. */
  const nothingAppended = async <T>(request: () => Promise<T>): Promise<T> => {
    await waitProcessed(service, log, base); // the executor is idle: it writes nothing on its own
    const before = appended();
    const bytes = statSync(journal).size;
    const result = await request();
    assert.equal(appended(), before, 'nothing may be appended');
    assert.equal(statSync(journal).size, bytes, 'nothing may be written to the journal');
    return result;
  };

  await t.test('/healthz and /readyz', async () => {
    assert.equal((await http(`${base}/healthz`)).status, 200);
    const ready = await waitFor('/readyz 200', async () => {
      const answer = await http<{ status: string; partitions: Array<{ partition: number; role: string }> }>(`${base}/readyz`);
      return answer.status === 200 ? answer : undefined;
    });
    assert.equal(ready.body.status, 'ready');
    assert.deepEqual(ready.body.partitions, Array.from({ length: 8 }, (_, partition) => ({ partition, role: 'active' })));
  });

  await t.test('malformed JSON → 400', async () => {
    for (const body of ['{"phoneNumber": 2015550100,', 'not json', '']) {
      const answer = await nothingAppended(() => postJson(url, body));
      assertProblem(answer, 400);
    }
    assertProblem(await nothingAppended(() => postJson(url, '{"x":')), 400, 'bad_json');
  });

  await t.test('body that is not an object or array, or an empty array → 400', async () => {
    for (const body of ['42', '"vote"', 'null', '[]']) assertProblem(await nothingAppended(() => postJson(url, body)), 400);
  });

  await t.test('a body that is not JSON by content type → 4xx; JSON with a charset is fine', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream']) {
      const answer = await nothingAppended(() =>
        http<Record<string, unknown>>(url, { method: 'POST', headers: { 'content-type': type }, body: '{"phoneNumber": 2015550100, "contestantNumber": 1}' }),
      );
      assert.ok([400, 415].includes(answer.status), `${type}: ${answer.status} ${answer.text}`);
      assertProblem(answer, answer.status);
    }
    const before = appended();
    const ok = await http(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ phoneNumber: 2015550100, contestantNumber: 1 }),
    });
    assert.equal(ok.status, 202, ok.text);
    assert.equal(appended(), before + 1);
  });

  await t.test('unknown event type → 404', async () => {
    for (const type of ['voter.Nope', 'Nope', 'other.Vote']) {
      const answer = await nothingAppended(() => postJson(`${base}/events/${type}`, { phoneNumber: 2015550100, contestantNumber: 1 }));
      assertProblem(answer, 404, 'unknown_event_type');
      assert.match(answer.body['message'] as string, new RegExp(type.replace('.', '\\.')));
    }
  });

  await t.test('a known event type that is not an input → 400', async () => {
    for (const type of ['voter.VoteAccepted', 'VoteRejected']) {
      const answer = await nothingAppended(() =>
        postJson(`${base}/events/${type}`, { phoneNumber: 2015550100, contestantNumber: 1, state: 'NJ' }),
      );
      assertProblem(answer, 400);
      assert.match(answer.body['message'] as string, /not read from any input topic/);
    }
  });

  await t.test('schema violation → 422 naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ phoneNumber: 'abc', contestantNumber: 1 }, 'phoneNumber'],
      [{ phoneNumber: 2015550100 }, 'contestantNumber'],
      [{ phoneNumber: 2015550100, contestantNumber: 1.5 }, 'contestantNumber'],
      [{ phoneNumber: 2015550100, contestantNumber: 2 ** 40 }, 'contestantNumber'],
      [{ phoneNumber: 2015550100, contestantNumber: 1, extra: true }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const answer = await nothingAppended(() => postJson(url, body));
      assertProblem(answer, 422, 'schema_validation');
      assert.equal(answer.body['field'], field, answer.text);
      assert.match(answer.body['message'] as string, new RegExp(field));
      assert.equal(answer.body['index'], undefined);
    }
  });

  await t.test('schema violation in an array → 422 naming index and field; none of the array appended', async () => {
    const body = [
      { phoneNumber: 2015550101, contestantNumber: 1 },
      { phoneNumber: 2015550102, contestantNumber: 2 },
      { phoneNumber: 2015550103, contestantNumber: 'three' },
      { phoneNumber: 2015550104, contestantNumber: 4 },
    ];
    const answer = await nothingAppended(() => postJson(url, body));
    assertProblem(answer, 422, 'schema_validation');
    assert.equal(answer.body['index'], 2);
    assert.equal(answer.body['field'], 'contestantNumber');
    assert.match(answer.body['message'] as string, /\[2\]/);
  });

  await t.test('body over http.bodyLimitBytes → 413', async () => {
    const body = Array.from({ length: 100 }, (_, i) => ({ phoneNumber: 2015550200 + i, contestantNumber: 1 }));
    assert.ok(JSON.stringify(body).length > 2048);
    const answer = await nothingAppended(() => postJson(url, body));
    assertProblem(answer, 413);
    assert.match(answer.body['message'] as string, /2048/);
  });

  await t.test('an array is applied in order: the third vote of a phone is rejected OVER_VOTE_LIMIT', async () => {
    const phone = 2125550123;
    const before = appended();
    const answer = await postJson(url, [1, 2, 3].map((contestantNumber) => ({ phoneNumber: phone, contestantNumber })));
    assert.equal(answer.status, 202, answer.text);
    const written = partitionForKey(String(phone), 8);
    assert.deepEqual(answer.body, { accepted: 3, eventType: 'voter.Vote', topic: 'votes', position: `votes:${written}:${log.endOffset('votes', written)}` });
    assert.equal(appended(), before + 3);
    await waitProcessed(service, log, base);
    const partition = partitionForKey(String(phone), 8);
    const results = decodeAll(catalogOf(voter), readPartition(log, 'vote-results', partition)).filter((r) => r['phoneNumber'] === phone);
    assert.deepEqual(results, [
      { type: 'voter.VoteAccepted', phoneNumber: phone, contestantNumber: 1, state: 'NY' },
      { type: 'voter.VoteAccepted', phoneNumber: phone, contestantNumber: 2, state: 'NY' },
      { type: 'voter.VoteRejected', phoneNumber: phone, contestantNumber: 3, reason: 'OVER_VOTE_LIMIT' },
    ]);
    const row = await http(`${base}/tables/votesByPhone/${phone}`);
    assert.equal(row.status, 200);
    assert.deepEqual(row.body, { table: 'votesByPhone', key: phone, partition, value: { accepted: 2 } });
    // A long key may also be sent as a decimal string.
    const again = await postJson(url, { phoneNumber: String(phone), contestantNumber: 4 });
    assert.equal(again.status, 202, again.text);
    await waitProcessed(service, log, base);
    const last = decodeAll(catalogOf(voter), readPartition(log, 'vote-results', partition)).at(-1);
    assert.deepEqual(last, { type: 'voter.VoteRejected', phoneNumber: phone, contestantNumber: 4, reason: 'OVER_VOTE_LIMIT' });
  });

  await t.test('GET /tables/:table pages with limit and after', async () => {
    const phones = Array.from({ length: 257 }, (_, i) => 4155550000 + i * 7);
    for (let i = 0; i < phones.length; i += 20) {
      const chunk = phones.slice(i, i + 20).map((phoneNumber, j) => ({ phoneNumber, contestantNumber: 1 + ((i + j) % 6) }));
      assert.equal((await postJson(url, chunk)).status, 202);
    }
    await waitProcessed(service, log, base);
    const all = await scanTableHttp(base, 'votesByPhone', 1000);
    assert.ok(all.length >= phones.length);
    const keys = all.map((r) => r.key as number);
    assert.deepEqual(keys, [...keys].sort((a, b) => a - b), 'keys ascend');
    assert.equal(new Set(keys).size, keys.length);
    for (const phone of phones) assert.ok(keys.includes(phone));

    for (const limit of [1, 7, 100]) {
      const pages: Array<{ items: Array<{ key: number }>; next: number | null }> = [];
      let after: number | null = null;
      do {
        const query: string = `limit=${limit}${after === null ? '' : `&after=${after}`}`;
        const page = await http<{ table: string; items: Array<{ key: number }>; next: number | null }>(`${base}/tables/votesByPhone?${query}`);
        assert.equal(page.status, 200, page.text);
        assert.equal(page.body.table, 'votesByPhone');
        assert.ok(page.body.items.length <= limit);
        if (page.body.next !== null) {
          assert.equal(page.body.items.length, limit, 'only the last page is short');
          assert.equal(page.body.next, page.body.items.at(-1)!.key, 'next is the last key of the page');
        }
        pages.push(page.body);
        after = page.body.next;
        assert.ok(pages.length <= keys.length + 1, 'paging terminates');
      } while (after !== null);
      assert.deepEqual(pages.flatMap((p) => p.items.map((i) => i.key)), keys, `limit=${limit}`);
    }
    // after= a key in the middle starts strictly after it.
    const mid = keys[100]!;
    const rest = await http<{ items: Array<{ key: number }> }>(`${base}/tables/votesByPhone?after=${mid}&limit=3`);
    assert.deepEqual(rest.body.items.map((i) => i.key), keys.slice(101, 104));
    // Default page size is 100.
    const first = await http<{ items: unknown[]; next: number | null }>(`${base}/tables/votesByPhone`);
    assert.equal(first.body.items.length, 100);
    assert.equal(first.body.next, keys[99]);
  });

  await t.test('GET /tables/:table pages a partition-local table without losing rows', async () => {
    // votesByContestant keeps a row per contestant in every partition that counted one.
    const full = await scanTableHttp(base, 'votesByContestant', 1000);
    const rowId = (r: { key: string | number; partition?: number }): string => `${r.key}@${r.partition}`;
    assert.ok(full.length > 6, 'the same key lives in several partitions');
    for (const limit of [1, 2, 5, 9]) {
      const paged = await scanTableHttp(base, 'votesByContestant', limit);
      assert.deepEqual(paged.map(rowId), full.map(rowId), `limit=${limit}`);
    }
  });

  await t.test('bad limit or key → 400; unknown table, row or query → 404', async () => {
    for (const q of ['limit=0', 'limit=abc', 'limit=1001', 'limit=1.5', 'after=abc']) {
      assertProblem((await http(`${base}/tables/votesByPhone?${q}`)) as HttpAnswer<Record<string, unknown>>, 400);
    }
    assertProblem((await http(`${base}/tables/votesByPhone/not-a-number`)) as HttpAnswer<Record<string, unknown>>, 400);
    assertProblem((await http(`${base}/tables/nope`)) as HttpAnswer<Record<string, unknown>>, 404, 'unknown_table');
    assertProblem((await http(`${base}/tables/nope/1`)) as HttpAnswer<Record<string, unknown>>, 404, 'unknown_table');
    assertProblem((await http(`${base}/tables/votesByPhone/1234567`)) as HttpAnswer<Record<string, unknown>>, 404, 'not_found');
    assertProblem((await http(`${base}/queries/nope`)) as HttpAnswer<Record<string, unknown>>, 404, 'unknown_query');
    assertProblem((await http(`${base}/no/such/route`)) as HttpAnswer<Record<string, unknown>>, 404);
    // Global tables read too.
    const contestant = await http(`${base}/tables/contestants/2`);
    assert.equal(contestant.status, 200);
    assert.deepEqual(contestant.body, { table: 'contestants', key: 2, value: { contestantNumber: 2, name: 'Tabatha Gehling' } });
  });

  await t.test('/metrics exposes farad_events_processed_total and farad_handler_duration_seconds', async () => {
    await waitProcessed(service, log, base);
    const answer = await http<string>(`${base}/metrics`);
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /text\/plain/);
    const text = answer.body;
    assert.match(text, /# TYPE farad_events_processed_total counter/);
    assert.match(text, /# TYPE farad_handler_duration_seconds histogram/);
    assert.equal(metricValue(text, 'farad_events_processed_total', { event_type: 'voter.Vote', outcome: 'ok' }), appended());
    assert.equal(metricValue(text, 'farad_handler_duration_seconds_count', { event_type: 'voter.Vote' }), appended());
    assert.equal(metricValue(text, 'farad_dead_letters_total', { reason: 'handler_error' }), 0);
    assert.ok((metricValue(text, 'farad_ingest_rejected_total', { reason: 'invalid' }) ?? 0) >= 6);
    assert.ok((metricValue(text, 'farad_ingest_rejected_total', { reason: 'too_large' }) ?? 0) >= 1);
    assert.ok((metricValue(text, 'farad_ingest_rejected_total', { reason: 'bad_json' }) ?? 0) >= 1);
  });
});

test('HTTP API with http.token', { timeout: 60_000 }, async (t: TestContext) => {
  const token = 's3cret-token';
  const { service, base, log } = await startTestService(t, voter, tempDir(t), { http: { token, bodyLimitBytes: 2048 } });
  const appended = (): number => {
    let n = 0;
    for (let p = 0; p < 8; p++) n += log.endOffset('votes', p);
    return n;
  };
  const vote = { phoneNumber: 2015550999, contestantNumber: 3 };
  const variants: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['wrong token', { authorization: 'Bearer wrong-token!' }],
    ['wrong scheme', { authorization: `Basic ${token}` }],
    ['token with a suffix', { authorization: `Bearer ${token}x` }],
  ];
  const protectedGets = ['/tables/votesByPhone', '/tables/votesByPhone/2015550999', '/tables/contestants/1', '/queries/leaderboard'];

  for (const [name, headers] of variants) {
    const post = await postJson(`${base}/events/voter.Vote`, [vote], headers);
    assertProblem(post, 401, 'unauthorized');
    assert.equal(post.headers.get('www-authenticate'), 'Bearer', name);
    // Nothing about the body is looked at before the caller is authenticated.
    assertProblem(await postJson(`${base}/events/voter.Vote`, '{"broken', headers), 401, 'unauthorized');
    assertProblem(await postJson(`${base}/events/voter.Vote`, { phoneNumber: 'x' }, headers), 401, 'unauthorized');
    assertProblem(await postJson(`${base}/events/voter.Vote`, 'x'.repeat(4096), headers), 401, 'unauthorized');
    for (const path of protectedGets) {
      assertProblem((await http(`${base}${path}`, { headers })) as HttpAnswer<Record<string, unknown>>, 401, 'unauthorized');
    }
  }
  assert.equal(appended(), 0, 'unauthorized requests append nothing');

  for (const path of ['/healthz', '/metrics']) assert.equal((await http(`${base}${path}`)).status, 200, path);
  await waitFor('/readyz 200 without a token', async () => (await http(`${base}/readyz`)).status === 200);

  const auth = { authorization: `Bearer ${token}` };
  assertProblem(await postJson(`${base}/events/voter.Vote`, 'x'.repeat(4096), auth), 413);
  assertProblem(await postJson(`${base}/events/voter.Vote`, { phoneNumber: 'x', contestantNumber: 1 }, auth), 422, 'schema_validation');
  const post = await postJson(`${base}/events/voter.Vote`, [vote], auth);
  assert.equal(post.status, 202, post.text);
  assert.equal(appended(), 1);
  await waitProcessed(service, log, base);
  for (const path of protectedGets) {
    const answer = await http(`${base}${path}`, { headers: auth });
    assert.equal(answer.status, 200, `${path}: ${answer.text}`);
  }
  const board = await http<Array<{ contestantNumber: number; votes: number }>>(`${base}/queries/leaderboard`, { headers: auth });
  assert.equal(board.body.find((r) => r.contestantNumber === 3)?.votes, 1);
  const metrics = await http<string>(`${base}/metrics`);
  assert.ok((metricValue(metrics.body, 'farad_ingest_rejected_total', { reason: 'unauthorized' }) ?? 0) >= 12);
});
