// Records farad cannot process go to `<app>-dlq` over Kafka, with headers saying why and where
// they came from, counted by farad_dead_letters_total{reason}; processing goes on around them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DLQ_HEADERS, type Service } from '../../src/index.js';
import {
  allConsumed,
  baseUrl,
  cleanUpVoter,
  createTopic,
  diffOutcomes,
  leaderboard,
  makeVotes,
  metricValue,
  outcomesFromResults,
  plainProducer,
  produceVotes,
  readTopic,
  singleObject,
  startKafkaService,
  sum,
  testKafka,
  uid,
  unknownFingerprintObject,
  voterCopy,
  voterNames,
  VoterTally,
  waitFor,
} from './helpers.js';

/** Votes of this phone make the handler throw after it has written state and emitted. */
const CURSED_PHONE = 4_155_550_000;

interface Bad {
  readonly reason: 'decode_error' | 'unknown_schema' | 'no_procedure' | 'handler_error';
  readonly key: string;
  readonly value: Buffer;
  readonly eventType?: string;
  readonly error: RegExp;
}

test('dead letters over Kafka: decode_error, unknown_schema, no_procedure, handler_error; good records still processed', { timeout: 90_000 }, async (t) => {
  const suffix = uid();
  const names = voterNames(suffix);
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  let service: Service | undefined;
  t.after(async () => {
    await service?.stop().catch(() => undefined);
    await cleanUpVoter(admin, names);
    await admin.disconnect();
  });
  await createTopic(admin, names.input, 8);

  const app = voterCopy(suffix, (original) => (ctx, vote) => {
    original(ctx, vote);
    if (vote.phoneNumber === CURSED_PHONE) throw new Error(`boom: phone ${vote.phoneNumber} is cursed`);
  });
  service = await startKafkaService(app);
  const base = baseUrl(service);
  await waitFor('all partitions ready', async () => (await fetch(`${base}/readyz`)).status === 200);

  const validVote = singleObject('Vote', { phoneNumber: 2_125_550_001, contestantNumber: 1 });
  const bad: Bad[] = [
    { reason: 'decode_error', key: 'garbage', value: Buffer.from('this is not avro at all'), error: /not an Avro single-object encoding/ },
    { reason: 'decode_error', key: 'trailing', value: Buffer.concat([validVote, Buffer.from([1, 2, 3])]), error: /trailing bytes/ },
    { reason: 'unknown_schema', key: 'unknown', value: unknownFingerprintObject(), error: /unknown schema fingerprint/ },
    {
      reason: 'no_procedure',
      key: '2125550002',
      value: singleObject('VoteAccepted', { phoneNumber: 2_125_550_002, contestantNumber: 2, state: 'NY' }),
      eventType: 'voter.VoteAccepted',
      error: /no procedure handles event type "voter.VoteAccepted"/,
    },
    {
      reason: 'handler_error',
      key: String(CURSED_PHONE),
      value: singleObject('Vote', { phoneNumber: CURSED_PHONE, contestantNumber: 3 }),
      eventType: 'voter.Vote',
      error: /boom: phone 4155550000 is cursed/,
    },
    {
      reason: 'handler_error',
      key: String(CURSED_PHONE),
      value: singleObject('Vote', { phoneNumber: CURSED_PHONE, contestantNumber: 4 }),
      eventType: 'voter.Vote',
      error: /boom/,
    },
  ];

  const before = makeVotes(1_000, { phones: 300, seed: 3 });
  const after = makeVotes(1_000, { phones: 300, seed: 4 });
  const tally = new VoterTally([...before, ...after]);
  const producer = await plainProducer(kafka);
  const where: Array<{ partition: number; offset: number }> = [];
  try {
    await produceVotes(producer, names.input, before);
    for (const b of bad) {
      const [meta] = await producer.send({ topic: names.input, acks: -1, messages: [{ key: b.key, value: b.value, headers: { 'x-test': b.reason } }] });
      where.push({ partition: meta!.partition, offset: Number(meta!.baseOffset) });
    }
    await produceVotes(producer, names.input, after);
  } finally {
    await producer.disconnect();
  }

  await waitFor('the whole input to be committed', () => allConsumed(admin, names.app, names.input), { timeoutMs: 45_000, intervalMs: 200 });
  const board = await waitFor('the leaderboard', () => leaderboard(base));
  assert.equal(sum(board), tally.acceptedTotal);
  assert.deepEqual(board, tally.leaderboard(), 'good votes before and after the bad records all count; the cursed ones do not');
  assert.equal((await fetch(`${base}/tables/votesByPhone/${CURSED_PHONE}`)).status, 404, 'the throwing handler’s writes were rolled back');

  const dlq = await readTopic(kafka, names.dlq);
  assert.equal(dlq.length, bad.length, `one dead letter per bad record: ${JSON.stringify(dlq.map((r) => r.headers))}`);
  for (const [i, b] of bad.entries()) {
    const { partition, offset } = where[i]!;
    const letter = dlq.find((r) => r.headers[DLQ_HEADERS.sourceOffset] === String(offset) && r.headers[DLQ_HEADERS.sourcePartition] === String(partition));
    assert.ok(letter, `dead letter of ${b.reason} record at ${partition}/${offset}`);
    assert.equal(letter.headers[DLQ_HEADERS.reason], b.reason);
    assert.equal(letter.headers[DLQ_HEADERS.sourceTopic], names.input);
    assert.match(letter.headers[DLQ_HEADERS.error] ?? '', b.error);
    assert.equal(letter.headers[DLQ_HEADERS.eventType], b.eventType);
    assert.equal(letter.headers['x-test'], b.reason, 'the original headers are kept');
    assert.equal(letter.partition, partition, 'a dead letter stays in its partition');
    assert.equal(letter.key, b.key);
    assert.ok(letter.value?.equals(b.value), 'the original bytes are kept');
  }

  for (const [reason, count] of [['decode_error', 2], ['unknown_schema', 1], ['no_procedure', 1], ['handler_error', 2]] as const) {
    assert.equal(await metricValue(base, 'farad_dead_letters_total', { reason }), count, `farad_dead_letters_total{reason="${reason}"}`);
  }

  // Results: one per good vote, none for the bad records (the cursed handler's emit was rolled back).
  const results = await readTopic(kafka, names.output);
  assert.equal(results.length, tally.total);
  const { byPhone, problems } = outcomesFromResults(results);
  assert.deepEqual(problems, []);
  assert.equal(byPhone.has(CURSED_PHONE), false);
  assert.deepEqual(diffOutcomes(tally.outcomesByPhone, byPhone), []);
});
