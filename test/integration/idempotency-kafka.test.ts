// Idempotent ingest and reading your writes on Kafka, across two instances of two workers each:
// a request with an Idempotency-Key is kept by the one worker that owns the key's partition, so a
// retry that lands on the other instance, or on the other worker of the same instance, appends
// nothing and answers the first answer (the input topic's records are counted independently, with
// the admin client and a consumer of the test's own). Concurrent requests with one key append once,
// a reused key for another request is refused, keys expire, and a read with the position a 202
// answered sees the write through either instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { partitionForKey } from '../../src/state/index.js';
import { endOffsets, readTopic, sleep } from './helpers.js';
import { PARTITIONS, replicationFixture, settled, spawnInstance, waitWithLogs, describeView, total, type Instance } from './replication-helpers.js';

const SESSION_TIMEOUT_MS = 6000;
const WINDOW_SECONDS = 6;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
  readonly text: string;
}

/**
 * An HTTP request on a connection of its own (no keep-alive): an instance's primary hands each new
 * connection to one of its workers in turn, so consecutive requests reach different workers.
 */
function send(base: string, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, agent: false, headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON: the text says what it was
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

const vote = (phoneNumber: number, contestantNumber = 1) => ({ phoneNumber, contestantNumber });

test('Idempotency-Key across two instances of two workers, and reads of one\'s own writes', { timeout: 240_000 }, async (t) => {
  const cluster = await replicationFixture(t, SESSION_TIMEOUT_MS);
  const { suffix, names, kafka, admin, instances } = cluster;
  // Batches commit 300 ms after their first record: a read that does not wait misses a write.
  const env = {
    ...cluster.env,
    FARAD_WORKERS: '2',
    FARAD_HTTP_IDEMPOTENCY_WINDOW_SECONDS: String(WINDOW_SECONDS),
    FARAD_COMMIT_LINGER_MS: '300',
    FARAD_COMMIT_INTERVAL_MS: '600',
  };
  for (const id of ['a', 'b']) instances.push(await spawnInstance(`${id}-${suffix}`, env));
  const [a, b] = instances as [Instance, Instance];
  const view = await waitWithLogs('every partition active once', instances, () => settled(instances), { timeoutMs: 120_000, intervalMs: 250 });
  t.diagnostic(`settled: ${describeView(view)}`);
  const ownerOf = (partition: number): Instance => (view.active.get(a.id)!.includes(partition) ? a : b);
  const otherThan = (instance: Instance): Instance => (instance === a ? b : a);

  /** Records in the input topic now, by the broker's end offsets (nothing but the test writes to it). */
  const inputRecords = async (): Promise<number> => [...(await endOffsets(admin, names.input)).values()].reduce((x, y) => x + y, 0);
  const post = (instance: Instance, body: unknown, key?: string) => send(instance.base, 'POST', '/events/voter.Vote', body, key === undefined ? {} : { 'idempotency-key': key });

  // A key kept by a partition of instance b, first sent to a: the request is forwarded.
  const key = Array.from({ length: 100 }, (_, i) => `order-${suffix}-${i}`).find((k) => ownerOf(partitionForKey(k, PARTITIONS)) === b)!;
  const phone = 6175551000;

  await t.test('a retry on the other instance and on either worker appends nothing and answers the first answer', async () => {
    const before = await inputRecords();
    const first = await post(a, vote(phone), key);
    assert.equal(first.status, 202, first.text);
    assert.equal(first.headers['idempotent-replayed'], undefined);
    assert.match(String(first.body['position']), new RegExp(`^${names.input}:${partitionForKey(String(phone), PARTITIONS)}:\\d+$`));
    const [, written, offset] = String(first.body['position']).split(':');
    assert.equal(Number(offset), (await endOffsets(admin, names.input)).get(Number(written)), 'the position is the partition\'s end just after the write');
    // Each instance twice per round, on a new connection each time: both workers of both instances.
    for (let round = 0; round < 4; round++) {
      for (const instance of [b, a, b, a]) {
        const again = await post(instance, vote(phone), key);
        assert.equal(again.status, 202, `${instance.id}: ${again.text}`);
        assert.equal(again.headers['idempotent-replayed'], 'true', `${instance.id} answered a replay`);
        assert.deepEqual(again.body, first.body);
      }
    }
    assert.equal(await inputRecords(), before + 1, 'one record appended in all');
    const records = (await readTopic(kafka, names.input)).filter((r) => r.key === String(phone));
    assert.equal(records.length, 1, 'a consumer finds the vote once');
    const replays = (await total(a.base, 'farad_ingest_idempotent_replays_total')) + (await total(b.base, 'farad_ingest_idempotent_replays_total'));
    assert.equal(replays, 16, 'replays are counted where the key is kept');
  });

  await t.test('concurrent requests with one key on both instances: exactly one append', async () => {
    const burstKey = `burst-${suffix}`;
    const before = await inputRecords();
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => post(i % 2 === 0 ? a : b, [vote(6175552000), vote(6175552001)], burstKey)));
    for (const answer of answers) assert.equal(answer.status, 202, answer.text);
    assert.equal(answers.filter((x) => x.headers['idempotent-replayed'] === undefined).length, 1);
    for (const answer of answers) assert.deepEqual(answer.body, answers[0]!.body);
    assert.equal(await inputRecords(), before + 2);
  });

  await t.test('the same key for another body, through either instance: 422, nothing appended', async () => {
    const before = await inputRecords();
    for (const instance of [a, b]) {
      const reused = await post(instance, vote(phone, 2), key);
      assert.equal(reused.status, 422, reused.text);
      assert.equal(reused.body['error'], 'idempotency_key_reused');
    }
    assert.equal(await inputRecords(), before);
  });

  await t.test('a read with the returned position sees the write, through either instance', async () => {
    // Phones whose partitions each instance owns, written through the other instance.
    const phones = Array.from({ length: 200 }, (_, i) => 6175553000 + i);
    let written = 0;
    for (const writer of [a, b]) {
      const target = phones.find((p) => ownerOf(partitionForKey(String(p), PARTITIONS)) !== writer)!;
      phones.splice(phones.indexOf(target), 1);
      const posted = await post(writer, vote(target, 3));
      assert.equal(posted.status, 202, posted.text);
      written++;
      const position = encodeURIComponent(String(posted.body['position']));
      assert.equal((await send(writer.base, 'GET', `/tables/votesByPhone/${target}`)).status, 404, 'without waiting, the write is not visible yet');
      for (const reader of [writer, otherThan(writer)]) {
        const row = await send(reader.base, 'GET', `/tables/votesByPhone/${target}?waitFor=${position}`);
        assert.equal(row.status, 200, `${reader.id}: ${row.text}`);
        assert.deepEqual(row.body['value'], { accepted: 1 });
        // A query gathers every partition from its owner; the owners wait.
        const board = await send(reader.base, 'GET', `/queries/leaderboard?waitFor=${position}`);
        assert.equal(board.status, 200, board.text);
        const rows = JSON.parse(board.text) as Array<{ contestantNumber: number; votes: number }>;
        assert.equal(rows.find((r) => r.contestantNumber === 3)?.votes, written, board.text);
      }
    }
    const bad = await send(a.base, 'GET', `/tables/votesByPhone/${phone}?waitFor=${encodeURIComponent(`${names.input}:99:1`)}`);
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body['error'], 'bad_wait_for');
  });

  await t.test('past http.idempotencyWindowSeconds the key is new again', async () => {
    const lateKey = `late-${suffix}`;
    const before = await inputRecords();
    assert.equal((await post(b, vote(6175554000), lateKey)).status, 202);
    assert.equal((await post(a, vote(6175554000), lateKey)).headers['idempotent-replayed'], 'true');
    await sleep(WINDOW_SECONDS * 1000 + 500);
    const late = await post(a, vote(6175554000), lateKey);
    assert.equal(late.status, 202, late.text);
    assert.equal(late.headers['idempotent-replayed'], undefined);
    assert.equal(await inputRecords(), before + 2);
  });
});
