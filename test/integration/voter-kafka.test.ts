// Voter end to end over a real Kafka broker, in-process: votes written by a plain kafkajs
// producer (key = phone, murmur2 partitioning, Avro single-object values encoded here), processed
// by farad's Kafka transport, checked against a tally computed independently in this test.
// Every case runs twice: on the main broker (KAFKA_BROKERS, the newest Kafka 4.x) and on a
// Kafka 3.9 broker (KAFKA39_BROKERS); `npm test` starts both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppDefinitionError, type Service } from '../../src/index.js';
import {
  allConsumed,
  baseUrl,
  brokers,
  cleanUpVoter,
  createTopic,
  diffOutcomes,
  endOffsets,
  kafka39Brokers,
  kafka39Skip,
  leaderboard,
  makeVotes,
  metricValue,
  outcomesFromResults,
  plainProducer,
  produceVotes,
  readTopic,
  startKafkaService,
  sum,
  testKafka,
  uid,
  voterCopy,
  voterNames,
  VoterTally,
  waitFor,
} from './helpers.js';

const VOTES = 10_000;

const BROKERS: ReadonlyArray<{ name: string; brokers: () => string[]; skip: string | undefined }> = [
  { name: 'Kafka 4', brokers, skip: undefined },
  { name: 'Kafka 3.9', brokers: kafka39Brokers, skip: kafka39Skip() },
];

for (const line of BROKERS) {
  const config = () => ({ kafka: { brokers: line.brokers() } });

  test(`Voter over ${line.name}: 10k votes from a plain producer, leaderboard and results match an independent tally`, { timeout: 90_000, skip: line.skip }, async (t) => {
    const suffix = uid();
    const names = voterNames(suffix);
    const kafka = testKafka(undefined, line.brokers());
    const admin = kafka.admin();
    await admin.connect();
    let service: Service | undefined;
    t.after(async () => {
      await service?.stop().catch(() => undefined);
      await cleanUpVoter(admin, names);
      await admin.disconnect();
    });

    const votes = makeVotes(VOTES, { phones: 2_500, seed: 42 });
    const tally = new VoterTally(votes);
    // The data set must exercise every rule.
    const outcomes = [...tally.outcomesByPhone.values()].flat();
    assert.ok(outcomes.some((o) => o.endsWith('OVER_VOTE_LIMIT')) && outcomes.some((o) => o.endsWith('INVALID_CONTESTANT')) && outcomes.some((o) => o.endsWith(':XX')));

    const started = Date.now();
    service = await startKafkaService(voterCopy(suffix), config());
    const base = baseUrl(service);
    await waitFor('all 8 partitions to be ready', async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 30_000 });

    const producer = await plainProducer(kafka);
    try {
      await produceVotes(producer, names.input, votes);
    } finally {
      await producer.disconnect();
    }
    const ends = await endOffsets(admin, names.input);
    assert.equal([...ends.values()].reduce((a, b) => a + b, 0), VOTES, 'every vote is on the input topic');
    assert.equal(ends.size, 8);

    await waitFor('the group to commit the whole input', () => allConsumed(admin, names.app, names.input), { timeoutMs: 45_000, intervalMs: 200 });
    const board = await waitFor('the leaderboard to reach the tally', async () => {
      const b = await leaderboard(base);
      return b && sum(b) === tally.acceptedTotal ? b : undefined;
    });
    const processedMs = Date.now() - started;
    assert.deepEqual(board, tally.leaderboard());
    // Also straight from the reads module (no HTTP).
    const direct = (await service.reads.query('leaderboard')).body as Array<{ contestantNumber: number; votes: number }>;
    assert.deepEqual(Object.fromEntries(direct.map((r) => [r.contestantNumber, r.votes])), tally.leaderboard());

    // A phone's row in votesByPhone.
    const [somePhone, accepted] = [...tally.acceptedByPhone][0]!;
    const row = (await (await fetch(`${base}/tables/votesByPhone/${somePhone}`)).json()) as { value: { accepted: number } };
    assert.equal(row.value.accepted, accepted);

    // Exactly one result per vote, the right one, in the phone's order.
    const results = await readTopic(kafka, names.output);
    assert.equal(results.length, VOTES, `one result per vote (got ${results.length})`);
    const { byPhone, problems } = outcomesFromResults(results);
    assert.deepEqual(problems, []);
    assert.deepEqual(diffOutcomes(tally.outcomesByPhone, byPhone), []);

    assert.equal(await metricValue(base, 'farad_events_processed_total', { outcome: 'ok' }), VOTES);
    assert.equal(await metricValue(base, 'farad_dead_letters_total'), 0);
    assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');
    t.diagnostic(`10k votes produced and processed in ${processedMs} ms (from service start)`);
  });

  test(`Voter over ${line.name}: start-up fails naming the input topic and both partition counts`, { timeout: 60_000, skip: line.skip }, async (t) => {
    const suffix = uid();
    const names = voterNames(suffix);
    const kafka = testKafka(undefined, line.brokers());
    const admin = kafka.admin();
    await admin.connect();
    t.after(async () => {
      await cleanUpVoter(admin, names);
      await admin.disconnect();
    });
    await createTopic(admin, names.input, 3);

    const err = await startKafkaService(voterCopy(suffix), config()).then(
      (service) => {
        void service.stop();
        return undefined;
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppDefinitionError, `expected an AppDefinitionError, got ${String(err)}`);
    assert.match(err.message, new RegExp(`"${names.input}" has 3 partitions but the app has 8`));
    assert.equal(err.context.topic, names.input);
    // Nothing consumed the wrong topic.
    assert.equal((await groupOffsetsOrEmpty(admin, names.app, names.input)).length, 0);
  });
}

async function groupOffsetsOrEmpty(admin: ReturnType<ReturnType<typeof testKafka>['admin']>, group: string, topic: string): Promise<number[]> {
  const [entry] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return (entry?.partitions ?? []).map((p) => Number(p.offset)).filter((o) => o >= 0);
}
