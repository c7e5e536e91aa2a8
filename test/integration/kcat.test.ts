// Records written by kcat (librdkafka, a non-farad client) are decoded and processed by farad:
// Avro single-object values encoded in this test, keyed by phone number, partitioned either by
// kcat itself (librdkafka's Java-compatible murmur2_random) or explicitly with -p.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Service } from '../../src/index.js';
import {
  allConsumed,
  baseUrl,
  brokers,
  cleanUpVoter,
  createTopic,
  diffOutcomes,
  kafkaPartition,
  leaderboard,
  makeVotes,
  metricValue,
  outcomesFromResults,
  readTopic,
  requireKcat,
  singleObject,
  startKafkaService,
  testKafka,
  uid,
  voterCopy,
  voterNames,
  VoterTally,
  waitFor,
  type Vote,
} from './helpers.js';

const PARTITIONS = 8;
const KEY_DELIM = '|FARAD-KEY|';
const MSG_DELIM = '|FARAD-MSG|';

function kcat(args: string[]): void {
  const res = spawnSync('kcat', ['-P', '-b', brokers().join(','), '-X', 'enable.idempotence=true', ...args], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(res.error, undefined, `kcat could not run: ${String(res.error)}`);
  assert.equal(res.status, 0, `kcat ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
}

test('kcat-produced records are decoded and processed by farad', { timeout: 90_000 }, async (t) => {
  requireKcat();
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const dir = mkdtempSync(join(tmpdir(), 'farad-kcat-'));
  let service: Service | undefined;
  t.after(async () => {
    await service?.stop().catch(() => undefined);
    await cleanUpVoter(admin, names);
    await admin.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });
  await createTopic(admin, names.input, PARTITIONS);
  service = await startKafkaService(voterCopy(suffix));
  const base = baseUrl(service);
  await waitFor('all partitions ready', async () => (await fetch(`${base}/readyz`)).status === 200);

  // 1. One kcat run over a file of key/value pairs split by delimiters that the binary values do
  //    not contain; kcat partitions by key with murmur2_random (what Java clients do).
  const bulk = makeVotes(2_000, { phones: 500, seed: 11 });
  const parts: Buffer[] = [];
  for (const vote of bulk) parts.push(Buffer.from(String(vote.phoneNumber)), Buffer.from(KEY_DELIM), singleObject('Vote', vote), Buffer.from(MSG_DELIM));
  const file = Buffer.concat(parts);
  assert.equal(countOccurrences(file, MSG_DELIM), bulk.length, 'the message delimiter occurs only between messages');
  assert.equal(countOccurrences(file, KEY_DELIM), bulk.length, 'the key delimiter occurs only after keys');
  writeFileSync(join(dir, 'bulk.bin'), file);
  kcat(['-t', names.input, '-D', MSG_DELIM, '-K', KEY_DELIM, '-X', 'topic.partitioner=murmur2_random', '-l', join(dir, 'bulk.bin')]);

  // 2. One message per file, explicit partition and key (-p, -k), several votes per phone.
  const single: Vote[] = [];
  for (let i = 0; i < 20; i++) {
    const phoneNumber = 6_505_550_100 + i;
    const votes = [1, 2, (i % 6) + 1, 8].map((contestantNumber) => ({ phoneNumber, contestantNumber }));
    const files = votes.map((vote, j) => {
      const path = join(dir, `vote-${i}-${j}.bin`);
      writeFileSync(path, singleObject('Vote', vote));
      return path;
    });
    kcat(['-t', names.input, '-p', String(kafkaPartition(String(phoneNumber), PARTITIONS)), '-k', String(phoneNumber), ...files]);
    single.push(...votes);
  }
  const tally = new VoterTally([...bulk, ...single]);

  // kcat put every record where Kafka's default partitioner would.
  const input = await readTopic(kafka, names.input, { readUncommitted: true });
  assert.equal(input.length, bulk.length + single.length, 'every kcat record is on the input topic');
  const misplaced = input.filter((r) => r.partition !== kafkaPartition(r.key ?? '', PARTITIONS));
  assert.deepEqual(misplaced.map((r) => `${r.key}@${r.partition}`), []);

  await waitFor('the whole input to be committed', () => allConsumed(admin, names.app, names.input), { timeoutMs: 45_000, intervalMs: 200 });
  const board = await waitFor('the leaderboard to reach the tally', async () => {
    const b = await leaderboard(base);
    return b && Object.values(b).reduce((x, y) => x + y, 0) === tally.acceptedTotal ? b : undefined;
  });
  assert.deepEqual(board, tally.leaderboard());
  for (const phone of [6_505_550_100, 6_505_550_107, bulk[0]!.phoneNumber]) {
    const res = await fetch(`${base}/tables/votesByPhone/${phone}`);
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { value: unknown }).value, { accepted: tally.acceptedByPhone.get(phone) });
  }
  assert.equal(await metricValue(base, 'farad_events_processed_total', { outcome: 'ok' }), tally.total);
  assert.equal(await metricValue(base, 'farad_dead_letters_total'), 0, 'farad decoded every kcat record');

  const results = await readTopic(kafka, names.output);
  assert.equal(results.length, tally.total);
  const { byPhone, problems } = outcomesFromResults(results);
  assert.deepEqual(problems, []);
  assert.deepEqual(diffOutcomes(tally.outcomesByPhone, byPhone), []);
});

function countOccurrences(haystack: Buffer, needle: string): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) count++;
  return count;
}
