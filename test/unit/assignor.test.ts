import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignPartitions, placeStandbys, type MemberReport } from '../../src/replication/index.js';
import { seededRandom } from '../../src/procedures/index.js';

const members = (ids: string[], active: Record<string, number[]> = {}, warm: Record<string, Record<number, number>> = {}): MemberReport[] =>
  ids.map((id) => ({ memberId: `m-${id}`, instanceId: id, active: active[id] ?? [], ...(warm[id] ? { warm: warm[id] } : {}) }));

const byInstance = (plan: Map<string, number[]>): Map<string, number[]> =>
  new Map([...plan].map(([memberId, ps]) => [memberId.replace(/^m-/, ''), ps]));

function assertBalancedCover(plan: Map<string, number[]>, partitions: number): void {
  const all = [...plan.values()].flat().sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: partitions }, (_, p) => p), 'every partition exactly once');
  const counts = [...plan.values()].map((ps) => ps.length);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `balanced: ${counts.join(',')}`);
}

test('active assignment covers every partition once and is balanced for 1..8 members', () => {
  for (let n = 1; n <= 8; n++) {
    assertBalancedCover(assignPartitions(8, members(Array.from({ length: n }, (_, i) => `i${i}`))), 8);
  }
  assertBalancedCover(assignPartitions(8, members(['a', 'b', 'c'])), 8);
});

test('sticky: a joining member takes only its share; survivors keep what they held', () => {
  const first = byInstance(assignPartitions(8, members(['a', 'b'])));
  const joined = byInstance(assignPartitions(8, members(['a', 'b', 'c'], Object.fromEntries(first))));
  let moved = 0;
  for (const id of ['a', 'b']) moved += first.get(id)!.filter((p) => !joined.get(id)!.includes(p)).length;
  assert.equal(moved, joined.get('c')!.length, 'only what c takes moves');
  const left = byInstance(assignPartitions(8, members(['a', 'c'], { a: joined.get('a')!, c: joined.get('c')! })));
  for (const id of ['a', 'c']) for (const p of joined.get(id)!) assert.ok(left.get(id)!.includes(p), `${id} keeps ${p}`);
});

test('an orphaned partition goes to the member holding it warm, the warmest first', () => {
  const plan = byInstance(assignPartitions(4, members(['a', 'b', 'c'], { a: [0], b: [1] }, { b: { 2: 10 }, c: { 2: 50, 3: 5 } })));
  assert.ok(plan.get('c')!.includes(2), 'warmest copy of 2 is on c');
  assert.ok(plan.get('c')!.includes(3));
});

test('standbys: k copies per partition on distinct instances, never on the owner, on other racks when possible', () => {
  const active = new Map([['a', [0, 1, 2]], ['b', [3, 4, 5]], ['c', [6, 7]]]);
  const racks = [{ instanceId: 'a', rack: 'r1' }, { instanceId: 'b', rack: 'r1' }, { instanceId: 'c', rack: 'r2' }];
  const standby = placeStandbys(8, racks, active, 1);
  for (let p = 0; p < 8; p++) {
    const holders = [...standby].filter(([, ps]) => ps.includes(p)).map(([id]) => id);
    assert.equal(holders.length, 1, `partition ${p} has one standby`);
    const owner = [...active].find(([, ps]) => ps.includes(p))![0];
    assert.notEqual(holders[0], owner);
    if (owner !== 'c') assert.equal(holders[0], 'c', `partition ${p} of rack r1 is backed up on rack r2`);
  }
  const two = placeStandbys(8, ['a', 'b', 'c'].map((instanceId) => ({ instanceId })), active, 2);
  for (let p = 0; p < 8; p++) assert.equal([...two].filter(([, ps]) => ps.includes(p)).length, 2, `partition ${p} has two standbys`);
  const capped = placeStandbys(8, [{ instanceId: 'a' }], new Map([['a', [0, 1, 2, 3, 4, 5, 6, 7]]]), 1);
  assert.deepEqual(capped.get('a'), [], 'a lone instance keeps no copy of its own partitions');
});

test('failover finds a warm copy: each owner\'s partitions go where their standby copies are', () => {
  const random = seededRandom(7);
  for (let round = 0; round < 200; round++) {
    const n = 2 + Math.floor(random() * 5);
    const partitions = n + Math.floor(random() * 12);
    const ids = Array.from({ length: n }, (_, i) => `i${i}`);
    // A sticky history: random prior ownership, then the assignor's balanced result.
    const prior: Record<string, number[]> = {};
    for (let p = 0; p < partitions; p++) (prior[ids[Math.floor(random() * n)]!] ??= []).push(p);
    const active = byInstance(assignPartitions(partitions, members(ids, prior)));
    const standby = placeStandbys(partitions, ids.map((instanceId) => ({ instanceId })), active, 1);
    for (const dead of ids) {
      const survivors = ids.filter((id) => id !== dead);
      const warm: Record<string, Record<number, number>> = {};
      for (const id of survivors) warm[id] = Object.fromEntries(standby.get(id)!.map((p) => [p, 100]));
      const after = byInstance(assignPartitions(partitions, members(survivors, Object.fromEntries(active), warm)));
      assertBalancedCover(after, partitions);
      for (const p of active.get(dead)!) {
        const newOwner = [...after].find(([, ps]) => ps.includes(p))![0];
        assert.ok(standby.get(newOwner)!.includes(p), `round ${round}: ${dead} died, partition ${p} went to ${newOwner}, which holds no copy`);
      }
    }
  }
});

test('the scenario where balance used to beat warmth', () => {
  // a owns 3,5,7; b owns 0,1,2; c owns 4,6 (from a failover test run). When a dies, b has room for
  // one more partition only, so the copies of a's partitions must be where they will go.
  const active = new Map([['a', [3, 5, 7]], ['b', [0, 1, 2]], ['c', [4, 6]]]);
  const standby = placeStandbys(8, ['a', 'b', 'c'].map((instanceId) => ({ instanceId })), active, 1);
  const warm = Object.fromEntries(['b', 'c'].map((id) => [id, Object.fromEntries(standby.get(id)!.map((p) => [p, 1]))]));
  const after = byInstance(assignPartitions(8, members(['b', 'c'], { b: [0, 1, 2], c: [4, 6] }, warm)));
  for (const p of [3, 5, 7]) {
    const owner = [...after].find(([, ps]) => ps.includes(p))![0];
    assert.ok(standby.get(owner)!.includes(p), `partition ${p} went to ${owner} with its copy`);
  }
});

// ---- instances running several workers: one member per worker, one failure domain per instance ----

/** Members `a/0`, `a/1`, ... : `workers` worker processes on each instance of `instances`. */
function workerMembers(instances: string[], workers: number): Array<{ memberId: string; instanceId: string }> {
  return instances.flatMap((instanceId) => Array.from({ length: workers }, (_, w) => ({ memberId: `${instanceId}/${w}`, instanceId })));
}

const instanceOfMember = (memberId: string): string => memberId.split('/')[0]!;

/** Checks every rule copies follow when members are workers of instances; returns the copies per member. */
function assertWorkerStandbys(instances: string[], workers: number, partitions: number, k: number): Map<string, number[]> {
  const candidates = workerMembers(instances, workers);
  const active = assignPartitions(partitions, candidates.map((m) => ({ ...m, active: [] })));
  const standby = placeStandbys(partitions, candidates, active, k);
  const label = `${instances.length} instances × ${workers} workers, k=${k}`;
  assert.deepEqual([...standby.keys()].sort(), candidates.map((m) => m.memberId).sort(), `${label}: keyed by member id`);
  for (let p = 0; p < partitions; p++) {
    const owner = instanceOfMember([...active].find(([, ps]) => ps.includes(p))![0]);
    const holders = [...standby].filter(([, ps]) => ps.includes(p)).map(([memberId]) => instanceOfMember(memberId));
    assert.equal(holders.length, Math.min(k, instances.length - 1), `${label}: partition ${p} has min(k, instances - 1) copies`);
    assert.ok(!holders.includes(owner), `${label}: no copy of ${p} on any worker of its owner ${owner}`);
    assert.equal(new Set(holders).size, holders.length, `${label}: copies of ${p} on distinct instances (${holders.join(',')})`);
  }
  for (const instanceId of instances) {
    const counts = Array.from({ length: workers }, (_, w) => standby.get(`${instanceId}/${w}`)!.length);
    const total = counts.reduce((a, b) => a + b, 0);
    if (total >= 2) assert.ok(Math.max(...counts) < total, `${label}: not every copy on ${instanceId} is on one worker (${counts.join(',')})`);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${label}: ${instanceId}'s workers share its copies evenly (${counts.join(',')})`);
  }
  return standby;
}

test('standbys with workers: never on the owner\'s instance, on distinct instances, spread over each instance\'s workers', () => {
  for (const k of [1, 2]) {
    for (const partitions of [8, 12]) {
      assertWorkerStandbys(['a', 'b'], 2, partitions, k);
      assertWorkerStandbys(['a', 'b', 'c'], 2, partitions, k);
    }
  }
  // 2 instances: k=2 cannot place more than one copy without putting one beside its owner.
  const two = assertWorkerStandbys(['a', 'b'], 2, 8, 2);
  assert.equal([...two.values()].flat().length, 8);
});

test('standbys with workers: an instance with one worker still backs up every worker of a bigger one', () => {
  const candidates = [...workerMembers(['a'], 3), { memberId: 'b/0', instanceId: 'b' }];
  const active = new Map([['a/0', [0, 1]], ['a/1', [2, 3]], ['a/2', [4]], ['b/0', [5, 6, 7]]]);
  const standby = placeStandbys(8, candidates, active, 1);
  assert.deepEqual(standby.get('b/0'), [0, 1, 2, 3, 4], 'b is the only other instance: it holds a copy of all of a');
  const onA = ['a/0', 'a/1', 'a/2'].map((m) => standby.get(m)!);
  assert.deepEqual(onA.flat().sort(), [5, 6, 7], 'b\'s partitions are copied on a, once each');
  assert.ok(onA.every((ps) => ps.length <= 1), `spread over a's workers: ${JSON.stringify(onA)}`);
});

test('standbys with workers are deterministic: the same whatever order the members come in', () => {
  const random = seededRandom(11);
  const candidates = workerMembers(['a', 'b', 'c'], 2);
  const active = assignPartitions(12, candidates.map((m) => ({ ...m, active: [] })));
  for (const k of [1, 2]) {
    const expected = placeStandbys(12, candidates, active, k);
    assert.deepEqual(placeStandbys(12, candidates, active, k), expected);
    for (let round = 0; round < 20; round++) {
      const shuffled = [...candidates].sort(() => random() - 0.5);
      const activeShuffled = new Map([...active].sort(() => random() - 0.5));
      assert.deepEqual(new Map([...placeStandbys(12, shuffled, activeShuffled, k)].sort(([a], [b]) => a.localeCompare(b))), new Map([...expected].sort(([a], [b]) => a.localeCompare(b))));
    }
  }
});

test('failover with workers: when an instance dies with all its workers, its partitions go to the workers holding their copies', () => {
  const random = seededRandom(13);
  for (let round = 0; round < 200; round++) {
    const instances = Array.from({ length: 2 + Math.floor(random() * 3) }, (_, i) => `i${i}`);
    const workers = 1 + Math.floor(random() * 3);
    const candidates = workerMembers(instances, workers);
    const partitions = candidates.length + Math.floor(random() * 12);
    const prior = new Map<string, number[]>();
    for (let p = 0; p < partitions; p++) {
      const m = candidates[Math.floor(random() * candidates.length)]!.memberId;
      prior.set(m, [...(prior.get(m) ?? []), p]);
    }
    const active = assignPartitions(partitions, candidates.map((m) => ({ ...m, active: prior.get(m.memberId) ?? [] })));
    const standby = placeStandbys(partitions, candidates, active, 1);
    for (const dead of instances) {
      const survivors = candidates.filter((m) => m.instanceId !== dead);
      const after = assignPartitions(
        partitions,
        survivors.map((m) => ({
          ...m,
          active: active.get(m.memberId)!,
          warm: Object.fromEntries(standby.get(m.memberId)!.map((p) => [p, 100])),
        })),
      );
      assertBalancedCover(after, partitions);
      const orphaned = candidates.filter((m) => m.instanceId === dead).flatMap((m) => active.get(m.memberId)!);
      for (const p of orphaned) {
        const newOwner = [...after].find(([, ps]) => ps.includes(p))![0];
        assert.ok(standby.get(newOwner)!.includes(p), `round ${round}: ${dead} died, partition ${p} went to ${newOwner}, which holds no copy`);
      }
    }
  }
});
