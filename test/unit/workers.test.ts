/**
 * Several worker processes per instance: the primary's Router (questions fanned out, answers
 * gathered, timeouts and exits answered as failures), WorkerLinks talking through a real Router
 * over in-memory IPC channels (serve/ask, fetch of a sibling's HTTP API, stop), the core count
 * under a cgroup CPU quota, and the membership view that sends a read to a sibling worker or
 * another instance.
 */
import { EventEmitter } from 'node:events';
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationMembership } from '../../src/replication/index.js';
import type { GroupMember } from '../../src/streams/index.js';
import {
  availableCores,
  cgroupQuota,
  coresFrom,
  HTTP_KIND,
  Router,
  WorkerLink,
  workerOfUrl,
  workerUrl,
  type Channel,
  type ToPrimary,
  type ToWorker,
  type WorkerAnswer,
} from '../../src/workers/index.js';

// ---- the primary's relay --------------------------------------------------------------------

/** A Router whose sends are recorded, over a changeable set of live workers. */
function router(live: number[] = [0, 1, 2]): { router: Router; sent: Array<[number, ToWorker]>; live: number[] } {
  const sent: Array<[number, ToWorker]> = [];
  return { router: new Router((worker, message) => sent.push([worker, message]), () => live), sent, live };
}

const ask = (id: number, to: number | 'all', timeoutMs = 1_000): ToPrimary => ({ farad: 'ask', id, to, kind: 'health', payload: { q: 1 }, timeoutMs });
const ok = (worker: number, payload: unknown = `from ${worker}`): WorkerAnswer => ({ worker, ok: true, payload });
/** The router's own id of the question it sent `worker`. */
const askedId = (sent: Array<[number, ToWorker]>, worker: number): number => {
  const found = sent.find(([to, m]) => to === worker && m.farad === 'asked');
  assert.ok(found, `worker ${worker} was asked`);
  return (found[1] as { id: number }).id;
};

describe('Router', () => {
  it('fans a question out to every live worker and answers the asker once, with every answer sorted by worker', () => {
    const { router: r, sent } = router();
    r.receive(1, ask(7, 'all'));
    assert.deepEqual(
      sent.map(([to, m]) => [to, m.farad, (m as { kind?: string }).kind, (m as { payload?: unknown }).payload]),
      [0, 1, 2].map((w) => [w, 'asked', 'health', { q: 1 }]),
    );
    const id = askedId(sent, 0);
    sent.length = 0;
    r.receive(2, { farad: 'answer', id, answer: ok(2) });
    r.receive(0, { farad: 'answer', id, answer: { worker: 0, ok: false, error: 'boom' } });
    assert.deepEqual(sent, [], 'no answer before every worker answered');
    r.receive(1, { farad: 'answer', id, answer: ok(1) });
    assert.deepEqual(sent, [[1, { farad: 'answered', id: 7, answers: [{ worker: 0, ok: false, error: 'boom' }, ok(1), ok(2)] }]]);
  });

  it('keeps questions of different askers apart, though each numbers its own from 1', () => {
    const { router: r, sent } = router([0, 1]);
    r.receive(0, ask(1, 1));
    r.receive(1, ask(1, 0));
    const toOne = askedId(sent, 1);
    const toZero = askedId(sent, 0);
    assert.notEqual(toOne, toZero);
    r.receive(0, { farad: 'answer', id: toZero, answer: ok(0, 'zero') });
    r.receive(1, { farad: 'answer', id: toOne, answer: ok(1, 'one') });
    const answered = sent.filter(([, m]) => m.farad === 'answered');
    assert.deepEqual(answered, [
      [1, { farad: 'answered', id: 1, answers: [ok(0, 'zero')] }],
      [0, { farad: 'answered', id: 1, answers: [ok(1, 'one')] }],
    ]);
  });

  it('a worker that does not answer in time counts as a failed answer; its late answer is ignored', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { router: r, sent } = router();
      r.receive(0, ask(3, 'all', 100));
      const id = askedId(sent, 0);
      sent.length = 0;
      r.receive(0, { farad: 'answer', id, answer: ok(0) });
      r.receive(2, { farad: 'answer', id, answer: ok(2) });
      mock.timers.tick(99);
      assert.deepEqual(sent, []);
      mock.timers.tick(1);
      assert.deepEqual(sent, [[0, { farad: 'answered', id: 3, answers: [ok(0), { worker: 1, ok: false, error: 'worker 1 did not answer in time' }, ok(2)] }]]);
      r.receive(1, { farad: 'answer', id, answer: ok(1) });
      r.exited(1);
      mock.timers.tick(1_000);
      assert.equal(sent.length, 1, 'nothing more after the answer went out');
    } finally {
      mock.timers.reset();
    }
  });

  it('answers once all answered, even before the time runs out, and ignores a second answer or one from a worker not asked', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { router: r, sent } = router();
      r.receive(0, ask(4, 2, 100));
      const id = askedId(sent, 2);
      r.receive(1, { farad: 'answer', id, answer: ok(1) });
      assert.equal(sent.filter(([, m]) => m.farad === 'answered').length, 0, 'worker 1 was not asked');
      r.receive(2, { farad: 'answer', id, answer: ok(2) });
      r.receive(2, { farad: 'answer', id, answer: ok(2, 'again') });
      mock.timers.tick(1_000);
      assert.deepEqual(sent.filter(([, m]) => m.farad === 'answered'), [[0, { farad: 'answered', id: 4, answers: [ok(2)] }]]);
    } finally {
      mock.timers.reset();
    }
  });

  it('a worker that exits owing an answer counts as a failed answer', () => {
    const { router: r, sent, live } = router();
    r.receive(0, ask(5, 'all'));
    const id = askedId(sent, 0);
    r.receive(0, { farad: 'answer', id, answer: ok(0) });
    r.receive(1, { farad: 'answer', id, answer: ok(1) });
    live.splice(live.indexOf(2), 1);
    r.exited(2);
    const answered = sent.filter(([, m]) => m.farad === 'answered');
    assert.deepEqual(answered, [[0, { farad: 'answered', id: 5, answers: [ok(0), ok(1), { worker: 2, ok: false, error: 'worker 2 exited' }] }]]);
    r.exited(1);
    assert.equal(sent.filter(([, m]) => m.farad === 'answered').length, 1, 'a worker that owes nothing changes nothing');
  });

  it('a question for a worker that is not running is answered at once, as a failure', () => {
    const { router: r, sent } = router([0, 2]);
    r.receive(0, ask(6, 1));
    assert.deepEqual(sent, [[0, { farad: 'answered', id: 6, answers: [{ worker: 1, ok: false, error: 'worker 1 is not running' }] }]]);
    sent.length = 0;
    const { router: empty, sent: emptySent } = router([]);
    empty.receive(0, ask(8, 'all'));
    assert.deepEqual(emptySent, [[0, { farad: 'answered', id: 8, answers: [] }]], '"all" with no one running: no answers');
  });
});

// ---- worker links through a real Router, over in-memory channels ------------------------------

/** One worker's IPC end: what it sends reaches the primary later, as over a real channel (copied). */
class MemoryChannel extends EventEmitter implements Channel {
  readonly sent: ToPrimary[] = [];
  constructor(private readonly toPrimary: (message: ToPrimary) => void) {
    super();
  }

  send(message: ToPrimary): boolean {
    this.sent.push(message);
    const copy = structuredClone(message);
    setImmediate(() => this.toPrimary(copy));
    return true;
  }

  deliver(message: unknown): void {
    const copy = structuredClone(message);
    setImmediate(() => this.emit('message', copy));
  }
}

/** An instance of `count` workers: a primary's Router and each worker's WorkerLink. */
function instance(count: number): { links: WorkerLink[]; channels: MemoryChannel[]; exit(worker: number): void } {
  const live = new Set(Array.from({ length: count }, (_, w) => w));
  const channels: MemoryChannel[] = [];
  const relay = new Router(
    (worker, message) => {
      if (live.has(worker)) channels[worker]!.deliver(message);
    },
    () => [...live].sort((a, b) => a - b),
  );
  const links = Array.from({ length: count }, (_, w) => {
    const channel = new MemoryChannel((message) => {
      if (live.has(w)) relay.receive(w, message);
    });
    channels.push(channel);
    return new WorkerLink(w, count, channel);
  });
  return {
    links,
    channels,
    exit(worker) {
      live.delete(worker);
      relay.exited(worker);
    },
  };
}

describe('WorkerLink', () => {
  it('asks one sibling or every worker (itself included) and gets each answer, async handlers awaited', async () => {
    const { links } = instance(3);
    links.forEach((link, w) => link.serve('whoami', async (payload) => ({ worker: w, echo: payload })));
    assert.deepEqual(await links[0]!.ask(2, 'whoami', { n: 1 }), [{ worker: 2, ok: true, payload: { worker: 2, echo: { n: 1 } } }]);
    assert.deepEqual(
      await links[1]!.ask('all', 'whoami', 'hi'),
      [0, 1, 2].map((w) => ({ worker: w, ok: true, payload: { worker: w, echo: 'hi' } })),
    );
    // Several questions in flight at once each get their own answers.
    const both = await Promise.all([links[0]!.ask(1, 'whoami', 'a'), links[0]!.ask(2, 'whoami', 'b'), links[2]!.ask(0, 'whoami', 'c')]);
    assert.deepEqual(both.map(([a]) => a?.ok === true && (a.payload as { echo: string }).echo), ['a', 'b', 'c']);
  });

  it('a handler that throws, or a kind no handler serves, is a failed answer naming why', async () => {
    const { links } = instance(2);
    links[1]!.serve('fail', () => {
      throw new Error('state is restoring');
    });
    links[1]!.serve('reject', () => Promise.reject(new Error('later')));
    assert.deepEqual(await links[0]!.ask(1, 'fail', null), [{ worker: 1, ok: false, error: 'state is restoring' }]);
    assert.deepEqual(await links[0]!.ask(1, 'reject', null), [{ worker: 1, ok: false, error: 'later' }]);
    assert.deepEqual(await links[0]!.ask(1, 'nope', null), [{ worker: 1, ok: false, error: 'worker 1 does not answer "nope" yet' }]);
  });

  it('a sibling that never answers, or exits, or is not running, is a failed answer, not a hang', async () => {
    const { links, exit } = instance(3);
    links[1]!.serve('slow', () => new Promise(() => undefined));
    links[2]!.serve('slow', () => new Promise(() => undefined));
    // The Router's timer is unref'd (the IPC channel keeps a real process alive): keep this one alive.
    const alive = setInterval(() => undefined, 1_000);
    try {
      assert.deepEqual(await links[0]!.ask(1, 'slow', null, 30), [{ worker: 1, ok: false, error: 'worker 1 did not answer in time' }]);
      const pending = links[0]!.ask(2, 'slow', null, 60_000);
      await new Promise((resolve) => setTimeout(resolve, 10));
      exit(2);
      assert.deepEqual(await pending, [{ worker: 2, ok: false, error: 'worker 2 exited' }]);
      assert.deepEqual(await links[0]!.ask(2, 'slow', null), [{ worker: 2, ok: false, error: 'worker 2 is not running' }]);
    } finally {
      clearInterval(alive);
    }
  });

  it('fetch of a workerUrl runs a GET on the sibling\'s HTTP API and relays its status, headers and body', async () => {
    const { links } = instance(2);
    const seen: unknown[] = [];
    links[1]!.serve(HTTP_KIND, (payload) => {
      seen.push(payload);
      return { status: 404, headers: { 'content-type': 'application/json', 'x-farad-stale': 'true' }, body: '{"error":"not_found"}' };
    });
    const response = await links[0]!.fetch(`${workerUrl(1)}/tables/balances/acct%201?stale=true`, {
      headers: { 'x-farad-forwarded': 'worker', Authorization: 'Bearer t' },
    });
    assert.equal(response.status, 404);
    assert.equal(response.headers.get('x-farad-stale'), 'true');
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.deepEqual(await response.json(), { error: 'not_found' });
    assert.deepEqual(seen, [{ path: '/tables/balances/acct%201?stale=true', headers: { 'x-farad-forwarded': 'worker', authorization: 'Bearer t' } }]);
    // A URL object works as well as a string.
    assert.equal((await links[0]!.fetch(new URL(`${workerUrl(1)}/x`))).status, 404);
  });

  it('fetch of a sibling that cannot answer rejects (the caller turns it into a 503)', async () => {
    const { links, exit } = instance(3);
    links[1]!.serve(HTTP_KIND, () => {
      throw new Error('inject failed');
    });
    await assert.rejects(links[0]!.fetch(`${workerUrl(1)}/tables/t/k`), /inject failed/);
    exit(2);
    await assert.rejects(links[0]!.fetch(`${workerUrl(2)}/tables/t/k`), /worker 2 is not running/);
  });

  it('fetch of any other URL goes to the network', async (t) => {
    const { links } = instance(2);
    const network = t.mock.method(globalThis, 'fetch', async () => new Response('from the network', { status: 201 }));
    const response = await links[0]!.fetch('http://b:8080/tables/t/k', { headers: { 'x-farad-forwarded': '1' } });
    assert.equal(response.status, 201);
    assert.equal(network.mock.callCount(), 1);
    assert.equal(network.mock.calls[0]!.arguments[0], 'http://b:8080/tables/t/k');
  });

  it('calls each stop listener once, when the primary asks it to stop', async () => {
    const { links, channels } = instance(2);
    const calls: string[] = [];
    links[0]!.onStop((why) => calls.push(`first: ${why}`));
    links[0]!.onStop((why) => calls.push(`second: ${why}`));
    channels[0]!.emit('message', { farad: 'stop' });
    channels[0]!.emit('message', { farad: 'stop' });
    channels[0]!.emit('disconnect');
    assert.deepEqual(calls, ['first: the instance is stopping', 'second: the instance is stopping']);
  });

  it('calls each stop listener once, when the primary is gone', async () => {
    const { links, channels } = instance(2);
    const calls: string[] = [];
    links[1]!.onStop((why) => calls.push(why));
    channels[1]!.emit('disconnect');
    channels[1]!.emit('message', { farad: 'stop' });
    channels[1]!.emit('disconnect');
    assert.deepEqual(calls, ['the primary process is gone']);
  });

  it('tells the primary it started, and ignores messages that are not farad\'s', async () => {
    const { links, channels } = instance(2);
    links[0]!.started();
    assert.deepEqual(channels[0]!.sent, [{ farad: 'started' }]);
    const calls: string[] = [];
    links[0]!.onStop((why) => calls.push(why));
    for (const other of [{ cmd: 'NODE_CLUSTER', act: 'listening' }, 'text', null, 42]) channels[0]!.emit('message', other);
    assert.deepEqual(calls, []);
    assert.deepEqual(channels[0]!.sent, [{ farad: 'started' }], 'nothing answered');
  });
});

describe('workerUrl', () => {
  it('names a sibling worker, with or without a path; any other URL names none', () => {
    assert.equal(workerUrl(3), 'farad-worker://3');
    assert.equal(workerOfUrl(workerUrl(3)), 3);
    assert.equal(workerOfUrl(`${workerUrl(12)}/internal/partials/tables/t?partitions=1`), 12);
    for (const other of ['http://farad-worker:8080/x', 'farad-worker://x/y', 'farad-worker://-1', 'farad-worker://1.5', 'farad-worker:/1']) {
      assert.equal(workerOfUrl(other), undefined, other);
    }
  });
});

// ---- cores ----------------------------------------------------------------------------------

/** A file system holding just `files`. */
const filesOf = (files: Record<string, string>) => (path: string): string | undefined => files[path];
const V2 = '/sys/fs/cgroup/cpu.max';
const V1_QUOTA = '/sys/fs/cgroup/cpu/cpu.cfs_quota_us';
const V1_PERIOD = '/sys/fs/cgroup/cpu/cpu.cfs_period_us';

describe('cores', () => {
  it('reads the cgroup v2 CPU quota; "max" is no limit', () => {
    assert.deepEqual(cgroupQuota(filesOf({ [V2]: '200000 100000\n' })), { quota: 200_000, period: 100_000 });
    assert.deepEqual(cgroupQuota(filesOf({ [V2]: '150000 100000' })), { quota: 150_000, period: 100_000 });
    assert.equal(cgroupQuota(filesOf({ [V2]: 'max 100000\n' })), undefined);
    // cgroup v2 says unlimited: the v1 files (if any are visible) do not count.
    assert.equal(cgroupQuota(filesOf({ [V2]: 'max 100000', [V1_QUOTA]: '100000', [V1_PERIOD]: '100000' })), undefined);
  });

  it('reads the cgroup v1 CFS quota and period; -1 is no limit', () => {
    assert.deepEqual(cgroupQuota(filesOf({ [V1_QUOTA]: '50000\n', [V1_PERIOD]: '100000\n' })), { quota: 50_000, period: 100_000 });
    assert.equal(cgroupQuota(filesOf({ [V1_QUOTA]: '-1\n', [V1_PERIOD]: '100000\n' })), undefined);
    assert.equal(cgroupQuota(filesOf({ [V1_QUOTA]: '50000' })), undefined, 'no period: unknown');
  });

  it('no cgroup files, or unreadable ones, mean no quota', () => {
    assert.equal(cgroupQuota(filesOf({})), undefined);
    for (const garbage of ['abc 100000', '0 100000', '100000 0', '']) assert.equal(cgroupQuota(filesOf({ [V2]: garbage })), undefined, JSON.stringify(garbage));
    assert.equal(cgroupQuota(filesOf({ [V1_QUOTA]: 'x', [V1_PERIOD]: '100000' })), undefined);
  });

  it('caps the CPUs by the quota, rounding up, never below one', () => {
    assert.equal(coresFrom(8, undefined), 8);
    assert.equal(coresFrom(8, { quota: 200_000, period: 100_000 }), 2);
    assert.equal(coresFrom(8, { quota: 150_000, period: 100_000 }), 2, '1.5 CPUs round up');
    assert.equal(coresFrom(8, { quota: 50_000, period: 100_000 }), 1, 'half a CPU is one');
    assert.equal(coresFrom(8, { quota: 1, period: 100_000 }), 1);
    assert.equal(coresFrom(4, { quota: 1_600_000, period: 100_000 }), 4, 'a quota above the CPUs there are changes nothing');
    assert.equal(coresFrom(0, undefined), 1);
    assert.equal(coresFrom(0, { quota: 200_000, period: 100_000 }), 1);
    assert.equal(coresFrom(8, { quota: 0, period: 100_000 }), 8, 'a zero quota is no quota');
  });

  it('availableCores applies the quota it reads', () => {
    assert.equal(availableCores(filesOf({ [V2]: '100000 100000' })), 1);
    assert.ok(availableCores(filesOf({})) >= 1);
    assert.equal(availableCores(filesOf({ [V2]: 'max 100000' })), availableCores(filesOf({})));
  });
});

// ---- membership: where a partition owned elsewhere is read --------------------------------------

interface Node {
  readonly memberId: string;
  readonly instanceId: string;
  readonly worker?: number;
  readonly url: string;
  readonly partitions: number[];
}

/** Each node's ReplicationMembership after the group settled with every node in it, and the copies each was given. */
function settle(nodes: readonly Node[], partitions: number, replicas = 1): Map<string, { membership: ReplicationMembership; standbys: readonly number[]; activeHere: ReadonlySet<number> }> {
  const out = new Map<string, { membership: ReplicationMembership; standbys: readonly number[]; activeHere: ReadonlySet<number> }>();
  const memberships = nodes.map((node) => {
    const membership = new ReplicationMembership({
      partitions,
      instanceId: node.instanceId,
      worker: node.worker,
      replicas,
      advertisedUrl: () => node.url,
      holdings: () => ({ active: node.partitions, warm: {} }),
      onStandbys: (standbys, activeHere) => out.set(node.memberId, { membership, standbys, activeHere }),
    });
    return membership;
  });
  const members: GroupMember[] = nodes.map((node, i) => ({ memberId: node.memberId, report: memberships[i]!.report(), partitions: node.partitions }));
  nodes.forEach((node, i) => memberships[i]!.settled(members, node.memberId));
  return out;
}

describe('ReplicationMembership with workers', () => {
  const A = 'http://a:8080';
  const B = 'http://b:8080';
  // Instance a runs two workers, b two, c one (no worker index: a single-process instance).
  const nodes: Node[] = [
    { memberId: 'a-w0', instanceId: 'a', worker: 0, url: A, partitions: [0, 1] },
    { memberId: 'a-w1', instanceId: 'a', worker: 1, url: A, partitions: [2, 3] },
    { memberId: 'b-w0', instanceId: 'b', worker: 0, url: B, partitions: [4] },
    { memberId: 'b-w1', instanceId: 'b', worker: 1, url: B, partitions: [5] },
    { memberId: 'c', instanceId: 'c', url: 'http://c:8080', partitions: [6, 7] },
  ];

  it('reports its worker index only when it has one', () => {
    const [a0, , , , c] = nodes;
    const report = (node: Node): Record<string, unknown> => {
      const view = settle([node], 8).get(node.memberId)!;
      return JSON.parse(view.membership.report().toString('utf8')) as Record<string, unknown>;
    };
    assert.deepEqual(report(a0!), { instanceId: 'a', active: [0, 1], warm: {}, url: A, worker: 0 });
    assert.equal('worker' in report(c!), false);
  });

  it('ownerUrl: a sibling worker\'s partition is read at its workerUrl, another instance\'s at its URL, its own nowhere', () => {
    const views = settle(nodes, 9);
    const a0 = views.get('a-w0')!.membership;
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map((p) => a0.ownerUrl(p)), [
      undefined, undefined, // its own
      workerUrl(1), workerUrl(1), // its sibling's
      B, B, // both of b's workers: b's one URL
      'http://c:8080', 'http://c:8080',
      undefined, // no one owns 8
    ]);
    const a1 = views.get('a-w1')!.membership;
    assert.deepEqual([0, 2, 4].map((p) => a1.ownerUrl(p)), [workerUrl(0), undefined, B]);
    const b1 = views.get('b-w1')!.membership;
    assert.deepEqual([0, 2, 4, 5, 6].map((p) => b1.ownerUrl(p)), [A, A, workerUrl(0), undefined, 'http://c:8080']);
    const c = views.get('c')!.membership;
    assert.deepEqual([0, 3, 5, 6].map((p) => c.ownerUrl(p)), [A, A, B, undefined]);
  });

  it('each member gets its own standby copies, never of partitions its instance owns, on distinct instances', () => {
    for (const replicas of [1, 2]) {
      const views = settle(nodes, 8, replicas);
      const holders = new Map<number, string[]>();
      for (const node of nodes) {
        const view = views.get(node.memberId)!;
        assert.deepEqual([...view.activeHere].sort(), node.partitions, `${node.memberId} is told what is active here`);
        const mine = nodes.filter((n) => n.instanceId === node.instanceId).flatMap((n) => n.partitions);
        for (const p of view.standbys) {
          assert.ok(!mine.includes(p), `k=${replicas}: ${node.memberId} holds no copy of ${p}, which its instance owns`);
          holders.set(p, [...(holders.get(p) ?? []), node.instanceId]);
        }
      }
      for (let p = 0; p < 8; p++) {
        const on = holders.get(p) ?? [];
        assert.equal(on.length, replicas, `k=${replicas}: partition ${p} has ${replicas} copies (${on.join(',')})`);
        assert.equal(new Set(on).size, on.length, `k=${replicas}: copies of ${p} on distinct instances`);
      }
      // Two workers of one instance are two members: they do not both get the instance's copies.
      const a0 = views.get('a-w0')!.standbys;
      const a1 = views.get('a-w1')!.standbys;
      assert.ok(a0.every((p) => !a1.includes(p)), `k=${replicas}: a's workers hold different copies (${a0} / ${a1})`);
    }
  });
});
