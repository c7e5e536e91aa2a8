// Every core: `farad run` with two worker processes per instance, two instances, replicas 1, on
// Kafka under a steady stream of votes. Each instance answers as one service (reads, /readyz and
// /metrics gathered from its workers, one port), standby copies never sit on the owner's instance,
// a worker killed with kill -9 is restarted by its instance, and the results are exactly once
// against an independent tally. SIGTERM stops every worker; kill -9 of the primary takes its
// workers down too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { allConsumed, makeVotes, readTopic, sleep, waitFor } from './helpers.js';
import {
  alive,
  assertResultsMatch,
  assertStateMatches,
  describeView,
  isRunning,
  kill9,
  processesWithEnv,
  readTopicTimed,
  replicationFixture,
  settled,
  settledWithStandbys,
  spawnInstance,
  SteadyProducer,
  terminate,
  total,
  waitWithLogs,
  workerPids,
  type Instance,
} from './replication-helpers.js';

const SESSION_TIMEOUT_MS = 6000;

test('two instances of two workers each: one service per instance, copies off the owner instance, a killed worker is restarted, exactly once', { timeout: 240_000 }, async (t) => {
  const cluster = await replicationFixture(t, SESSION_TIMEOUT_MS);
  const { suffix, names, kafka, admin, producer, instances } = cluster;
  const env = { ...cluster.env, FARAD_WORKERS: '2' };
  for (const id of ['a', 'b']) instances.push(await spawnInstance(`${id}-${suffix}`, env));
  const [a, b] = instances as [Instance, Instance];

  const votes = makeVotes(40_000, { phones: 4_000, seed: 23 });
  const steady = (cluster.steady = new SteadyProducer(producer, names.input, votes, { perTick: 25, tickMs: 50 }));

  const view = await waitWithLogs('every partition active once, each with a copy on the other instance', instances, () => settledWithStandbys(instances), {
    timeoutMs: 90_000,
    intervalMs: 250,
  });
  t.diagnostic(`settled: ${describeView(view)}`);
  assert.equal(workerPids(a).length, 2, 'instance a runs two workers');
  assert.equal(workerPids(b).length, 2, 'instance b runs two workers');
  for (const instance of instances) {
    const active = new Set(view.active.get(instance.id));
    const copiesHere = view.standby.get(instance.id)!.map((s) => s.partition);
    assert.deepEqual(copiesHere.filter((p) => active.has(p)), [], `${instance.id} keeps no copy of a partition its own workers own`);
    assert.ok(active.size > 0, `${instance.id} owns partitions`);
  }

  // One service: whichever worker takes the connection, /readyz tells the whole instance.
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${a.base}/readyz`);
    const body = (await res.json()) as { partitions: Array<{ partition: number; role: string }> };
    assert.equal(res.status, 200);
    assert.deepEqual(body.partitions.filter((p) => p.role === 'active').map((p) => p.partition), view.active.get(a.id), 'every answer lists both workers\' partitions');
  }

  // kill -9 of one worker: its instance restarts it; its partitions move and come back.
  const [victim] = workerPids(a);
  process.kill(victim!, 'SIGKILL');
  t.diagnostic(`kill -9 worker ${victim} of ${a.id} after ${steady.produced} votes`);
  await waitWithLogs('instance a to run two workers again', instances, async () => (workerPids(a).filter((pid) => pid !== victim).length === 2 ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  const after = await waitWithLogs('every partition active once again', instances, () => settled(instances), { timeoutMs: 60_000, intervalMs: 250 });
  t.diagnostic(`after the worker restart: ${describeView(after)}`);
  await sleep(2000);

  const sent = await steady.stop();
  await waitWithLogs('the group to commit all input', instances, () => allConsumed(admin, names.app, names.input), { timeoutMs: 60_000, intervalMs: 200 });
  const tally = assertResultsMatch(await readTopicTimed(kafka, names.output), sent);
  assert.equal((await readTopic(kafka, names.dlq)).length, 0, 'no dead letters');

  // Reads through either instance gather every partition, across workers and instances.
  await assertStateMatches(a.base, tally);
  await assertStateMatches(b.base, tally);
  for (let phone = 0; phone < 20; phone++) {
    const key = [...tally.acceptedByPhone.keys()][phone]!;
    const res = await fetch(`${a.base}/tables/votesByPhone/${key}`);
    assert.equal(res.status, 200, `GET votesByPhone/${key} through a`);
    assert.deepEqual(((await res.json()) as { value: unknown }).value, { accepted: tally.acceptedByPhone.get(key) });
  }

  // /metrics of an instance merges its workers' series: one sample per label set, summed.
  // (A worker's counters restart with it, as any process's do.)
  const exposition = await (await fetch(`${a.base}/metrics`)).text();
  const processedLines = exposition.split('\n').filter((line) => line.startsWith('farad_events_processed_total{'));
  const labelSets = processedLines.map((line) => line.slice(0, line.lastIndexOf(' ')));
  assert.equal(new Set(labelSets).size, labelSets.length, 'no series appears twice in an instance\'s /metrics');
  assert.ok(processedLines.some((line) => Number(line.slice(line.lastIndexOf(' ') + 1)) > 0), 'events are counted');
  assert.ok((await total(a.base, 'process_cpu_seconds_total')) > 0, 'process metrics are aggregated too');

  // SIGTERM: the instance stops its workers gracefully and exits 0.
  const pidsA = workerPids(a);
  const exit = await terminate(a);
  assert.equal(exit.code, 0, `${a.id} stops cleanly\n${a.output().slice(-3000)}`);
  await waitFor('a\'s workers to be gone', async () => (pidsA.every((pid) => !alive(pid)) ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });

  // kill -9 of the primary: its workers notice and stop by themselves.
  const pidsB = workerPids(b);
  assert.equal(pidsB.length, 2);
  await kill9(b);
  assert.ok(!isRunning(b));
  await waitFor('b\'s workers to stop after their primary died', async () => (pidsB.every((pid) => !alive(pid)) ? true : undefined), {
    timeoutMs: 40_000,
    intervalMs: 200,
  });
});

test('an instance whose workers cannot start exits as one process would: status 2, the setting named, no worker left', { timeout: 90_000 }, async (t) => {
  const cluster = await replicationFixture(t, SESSION_TIMEOUT_MS);
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as AddressInfo).port;
  const instance = await spawnInstance(`busy-${cluster.suffix}`, { ...cluster.env, FARAD_WORKERS: '2', FARAD_HTTP_PORT: String(port) });
  cluster.instances.push(instance);
  const exit = await instance.exited;
  assert.equal(exit.code, 2, instance.output().slice(-2000));
  assert.match(instance.output(), /http\.port .*FARAD_HTTP_PORT.*in use/);
  const id = `FARAD_INSTANCE_ID=busy-${cluster.suffix}`;
  await waitFor('no worker to outlive its primary', async () => (processesWithEnv(id).length === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 100 });
});
