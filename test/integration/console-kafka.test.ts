/**
 * The console gathers from every instance on Kafka: two instances (replicas 1, two workers in
 * one of them) each serve the same view (every partition active on one, standby on the other;
 * votes counted across both, checked against what was produced), and after kill -9 of one, the
 * survivor's view follows the failover: the dead one unreachable or gone, every partition
 * active on the survivor, the "no active owner" alert cleared.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterView } from '../../src/console/web/api.js';
import { makeVotes, sleep } from './helpers.js';
import { ALL_PARTITIONS, describeView, kill9, replicationFixture, settled, settledWithStandbys, spawnInstance, SteadyProducer, waitWithLogs } from './replication-helpers.js';

async function consoleView(base: string): Promise<ClusterView> {
  const response = await fetch(`${base}/console/api/cluster`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(response.status, 200, `${base}/console/api/cluster answered ${response.status}`);
  return (await response.json()) as ClusterView;
}

/** partition -> [owner, role, standbys] as the view shows it. */
function placementOf(view: ClusterView): Array<[number, string | undefined, string, string[]]> {
  return view.partitionRows.map((r) => [r.partition, r.owner, r.role, [...r.standbys]]);
}

test('the console on Kafka: one view gathered from every instance, following a kill -9', { timeout: 150_000 }, async (t) => {
  const cluster = await replicationFixture(t, 6000);
  const { suffix, names, producer, instances, env } = cluster;
  const a = await spawnInstance(`a-${suffix}`, env);
  const b = await spawnInstance(`b-${suffix}`, { ...env, FARAD_WORKERS: '2' });
  instances.push(a, b);
  const before = await waitWithLogs('two instances, every partition active once with a standby', instances, () => settledWithStandbys(instances), { timeoutMs: 60_000, intervalMs: 250 });
  t.diagnostic(`settled: ${describeView(before)}`);

  const votes = makeVotes(600, { phones: 200, seed: 5 });
  const steady = (cluster.steady = new SteadyProducer(producer, names.input, votes, { perTick: 50, tickMs: 50 }));
  while (!steady.exhausted) await sleep(50);
  const sent = await steady.stop();
  t.diagnostic(`produced ${sent.length} votes`);

  // Both instances answer the same placement, the one the instances' /readyz give.
  const views = await waitWithLogs(
    'both consoles to count every vote, with every partition active once and a standby on the other instance',
    instances,
    async () => {
      const both = await Promise.all([consoleView(a.base), consoleView(b.base)]);
      const counted = both.map((v) => v.events.reduce((sum, e) => sum + e.total, 0));
      const placed = both.every((v) => v.partitionRows.every((r) => r.role === 'active' && r.standbys.length === 1 && r.standbys[0] !== r.owner));
      return counted.every((n) => n === sent.length) && placed ? both : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const [fromA, fromB] = views;
  assert.deepEqual(placementOf(fromA), placementOf(fromB));
  for (const p of ALL_PARTITIONS) {
    const owner = [...before.active].find(([, ps]) => ps.includes(p))?.[0];
    assert.equal(fromA.partitionRows[p]!.owner, owner, `partition ${p}: the console and /readyz agree on the owner`);
  }
  assert.deepEqual(fromA.instances.map((i) => [i.instanceId, i.workers, i.ready]), [[a.id, 1, true], [b.id, 2, true]]);
  assert.deepEqual(fromA.unreachable, []);
  assert.equal(fromA.partitionRows.reduce((sum, r) => sum + r.eventsTotal, 0), sent.length);
  assert.deepEqual(fromA.alerts, []);

  // kill -9 of b (two workers): a's console follows the failover.
  await kill9(b);
  const afterKill = Date.now();
  await waitWithLogs('the survivor to own every partition', [a], () => settled([a]), { timeoutMs: 45_000, intervalMs: 200 });
  const after = await waitWithLogs(
    "a's console to show every partition active on a",
    [a],
    async () => {
      const view = await consoleView(a.base);
      return view.partitionRows.every((r) => r.owner === a.id && r.role === 'active') ? view : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
  t.diagnostic(`console followed the failover ${Date.now() - afterKill} ms after the kill; instances ${after.instances.map((i) => i.instanceId).join(',')}; unreachable ${JSON.stringify(after.unreachable)}`);
  assert.deepEqual(after.instances.map((i) => i.instanceId), [a.id]);
  assert.ok(!after.alerts.some((x) => x.name === 'FaradPartitionWithoutActiveOwner'), 'every partition has its owner again');
  await sleep(100);
});
