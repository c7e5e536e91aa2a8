import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { firstValueFrom } from 'rxjs';
import { CorruptDataError } from '../../src/errors.js';
import { PartitionHost, type BatchOutcome } from '../../src/partition/index.js';
import type { MembershipPolicy } from '../../src/streams/index.js';
import { Gate, Ledger, LEDGER_PARTITIONS, RecordingObserver, waitFor } from './support/memory-log.js';
import { keysOf } from './support/partition-keys.js';

const [A0, B0] = keysOf(0, LEDGER_PARTITIONS, 2, 'acct-') as [string, string];
const [A2, B2, C2] = keysOf(2, LEDGER_PARTITIONS, 3, 'acct-') as [string, string, string];

const membership: MembershipPolicy = {
  report: () => Buffer.alloc(0),
  assign: () => new Map(),
  settled: () => undefined,
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function hostFixture() {
  const ledger = new Ledger();
  const { log } = ledger;
  const observer = new RecordingObserver();
  const { app, codec, rows, globals, processing, logger } = ledger.context();
  const host = new PartitionHost({ app, codec, rows, globals, processing, logger, observer, clustered: false });
  const running = host.start(log, membership);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await host.stop();
    await host.closeOwners();
    log.revokeAll();
    await running;
  };
  cleanups.push(stop);
  return { ledger, log, observer, host, stop, follower: log.follower };
}

type Fixture = ReturnType<typeof hostFixture>;

const roleOf = (f: Fixture, partition: number) => f.host.local(partition)?.role;

async function untilRole(f: Fixture, partition: number, role: string): Promise<void> {
  await waitFor(() => roleOf(f, partition) === role, () => `partition ${partition} to be ${role} (is ${roleOf(f, partition)})`);
}

/** Waits for the standby placement (which loads snapshots, serialised) to have settled. */
async function untilFollowing(f: Fixture, partitions: readonly number[]): Promise<void> {
  const want = [...partitions].sort().join(',');
  await waitFor(() => [...f.follower.following.keys()].sort().join(',') === want, `the follower to follow [${want}]`);
}

describe('PartitionHost: readiness and reads', () => {
  it('is ready only when every leased partition is active; lists standbys; reads only active and standby state', async () => {
    const f = hostFixture();
    const { host, log, ledger } = f;
    assert.deepEqual(host.readiness(), { ready: false, partitions: [] }, 'nothing leased: not ready');

    ledger.writeChangelog(2, [[A2, 3]]);
    host.setStandbys([2], new Set([0]));
    await untilRole(f, 2, 'standby');
    await untilFollowing(f, [2]);
    assert.deepEqual(host.readiness(), { ready: false, partitions: [{ partition: 2, role: 'standby' }] }, 'standbys alone do not make it ready');

    const lease = log.lease(0);
    const gate = (lease.script.fenceGate = new Gate());
    const restoring = (lease.script.readChangelogGate = new Gate());
    log.grant(lease);
    await gate.reached;
    assert.deepEqual(host.readiness(), {
      ready: false,
      partitions: [
        { partition: 0, role: 'fencing' },
        { partition: 2, role: 'standby' },
      ],
    });
    assert.deepEqual(host.local(0), { role: 'fencing', state: undefined }, 'no state to read while taking over');
    assert.equal(host.local(1), undefined, 'a partition not hosted here');

    gate.open();
    await restoring.reached;
    assert.deepEqual(host.local(0), { role: 'restoring', state: undefined });
    assert.equal(host.readiness().ready, false);
    restoring.open();
    await untilRole(f, 0, 'active');
    assert.deepEqual(host.readiness(), {
      ready: true,
      partitions: [
        { partition: 0, role: 'active' },
        { partition: 2, role: 'standby' },
      ],
    });
    assert.ok(host.local(0)?.state, 'an active partition is readable');
    f.follower.deliver();
    assert.deepEqual(Ledger.balances(host.local(2)?.state), { [A2]: 3 }, 'a standby is readable (stale)');
    assert.deepEqual(host.holdings(), { active: [0], warm: { 2: 1 } });
    assert.equal(host.failure(), undefined);
  });

  it('a failed partition keeps the instance unready and shows why', async () => {
    const f = hostFixture();
    const { host, log } = f;
    const good = log.grant(log.lease(0));
    const bad = log.lease(1);
    bad.script.readChangelogErrors.push(new CorruptDataError('changelog segment failed its checksum'));
    log.grant(bad);
    await untilRole(f, 0, 'active');
    await untilRole(f, 1, 'failed');
    assert.deepEqual(host.readiness(), {
      ready: false,
      partitions: [
        { partition: 0, role: 'active' },
        { partition: 1, role: 'failed', reason: 'changelog segment failed its checksum', code: 'corrupt_data' },
      ],
    });
    assert.deepEqual(host.local(1), { role: 'failed', state: undefined });
    assert.deepEqual(f.observer.failed, [{ partition: 1, code: 'corrupt_data' }]);

    bad.revoke();
    await waitFor(() => host.local(1) === undefined, 'the failed partition to leave once its lease ended');
    assert.deepEqual(host.readiness(), { ready: true, partitions: [{ partition: 0, role: 'active' }] });
    assert.deepEqual(f.observer.roleSequence(1), ['fencing', 'restoring', 'failed', 'closing', undefined]);
    good.revoke();
  });
});

describe('PartitionHost: standbys and failover', () => {
  it('a lease for a partition held as standby reuses its owner and state, replaying only the tail', async () => {
    const f = hostFixture();
    const { host, log, ledger, observer, follower } = f;
    ledger.writeChangelog(2, [
      [A2, 1],
      [B2, 2],
    ]);
    host.setStandbys([2], new Set());
    await untilFollowing(f, [2]);
    assert.equal(follower.following.get(2), 0, 'a new standby (no snapshot) follows from the start');
    follower.deliver();
    const standby = host.owner(2);
    const state = host.local(2)?.state;
    assert.deepEqual(Ledger.balances(state), { [A2]: 1, [B2]: 2 });
    assert.deepEqual(host.holdings(), { active: [], warm: { 2: 2 } });

    // The owner elsewhere commits more, then dies; the group moves partition 2 here.
    ledger.writeChangelog(2, [
      [C2, 3],
      [A2, 4],
    ]);
    host.setStandbys([], new Set([2]));
    assert.equal(host.owner(2), standby, 'the copy waits for its lease');
    const lease = log.grant(log.lease(2));
    await untilRole(f, 2, 'active');

    assert.equal(host.owner(2), standby, 'same owner');
    assert.equal(host.local(2)?.state, state, 'same state object');
    assert.deepEqual(lease.compactTrace().slice(0, 5), ['fence', 'changelogEnd', 'readChangelog:2', 'resume', 'poll']);
    assert.deepEqual(Ledger.balances(state), ledger.changelogRows(2));
    assert.deepEqual(observer.failovers, [2]);
    assert.deepEqual(observer.roleSequence(2), ['standby', 'fencing', 'restoring', 'active']);
    await untilFollowing(f, []); // the lease's reads took over from the follower
  });

  it('after its lease ends, a partition still wanted as standby becomes a standby again; otherwise it leaves', async () => {
    const f = hostFixture();
    const { host, log, ledger, observer, follower } = f;
    const kept = log.grant(log.lease(0));
    const dropped = log.grant(log.lease(2));
    await untilRole(f, 0, 'active');
    await untilRole(f, 2, 'active');
    ledger.deposit(0, A0, 5);
    ledger.deposit(0, B0, 6);
    await waitFor(() => log.committedOffset('deposits', 0) === 2, 'partition 0 to commit');
    const state = host.local(0)?.state;

    // A rebalance: partition 0 stays here as a standby, partition 2 goes elsewhere entirely.
    host.setStandbys([0], new Set());
    kept.revoke();
    dropped.revoke();
    await untilRole(f, 0, 'standby');
    await waitFor(() => host.local(2) === undefined, 'partition 2 to leave');

    assert.deepEqual(host.statuses(), [{ partition: 0, role: 'standby' }]);
    assert.equal(host.local(0)?.state, state, 'the active state became the warm copy');
    assert.deepEqual(Ledger.balances(state), { [A0]: 5, [B0]: 6 });
    await untilFollowing(f, [0]);
    assert.equal(follower.following.get(0), log.changelog(0).length, 'follows from where the active copy had got to');
    assert.deepEqual(host.readiness(), { ready: false, partitions: [{ partition: 0, role: 'standby' }] });
    assert.deepEqual(observer.roleSequence(0), ['fencing', 'restoring', 'active', 'closing', 'standby']);
    assert.deepEqual(observer.roleSequence(2), ['fencing', 'restoring', 'active', 'closing', undefined]);

    // Replication stops wanting the copy: it leaves too.
    host.setStandbys([], new Set());
    assert.deepEqual(host.statuses(), []);
    await untilFollowing(f, []);
  });

  it('a partition wanted as standby whose lease ended before it restored anything becomes a standby', async () => {
    const f = hostFixture();
    const { host, log } = f;
    const lease = log.lease(0);
    const gate = (lease.script.fenceGate = new Gate());
    log.grant(lease);
    await gate.reached;
    host.setStandbys([0], new Set());
    lease.revoke();
    gate.open();
    await untilRole(f, 0, 'standby');
    await untilFollowing(f, [0]);
    assert.deepEqual(host.statuses(), [{ partition: 0, role: 'standby' }]);
    assert.deepEqual(host.holdings(), { active: [], warm: { 0: 0 } });
    assert.equal(f.follower.following.get(0), 0, 'a fresh copy (no snapshot) follows from the start');
  });

  it('a new lease of a partition waits until its previous lease has closed', async () => {
    const f = hostFixture();
    const { host, log, ledger } = f;
    ledger.writeChangelog(0, [[A0, 1]]);
    const first = log.lease(0);
    const gate = (first.script.readChangelogGate = new Gate());
    log.grant(first);
    await gate.reached;
    first.revoke();
    const second = log.grant(log.lease(0));
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(second.trace, [], 'the second lease has not started');
    gate.open();
    await untilRole(f, 0, 'active');
    assert.deepEqual(first.trace, ['fence', 'changelogEnd', 'readChangelog:0']);
    assert.deepEqual(second.compactTrace().slice(0, 5), ['fence', 'changelogEnd', 'readChangelog:0', 'resume', 'poll']);
    assert.deepEqual(Ledger.balances(host.local(0)?.state), { [A0]: 1 });
  });
});

describe('PartitionHost: processing and stop', () => {
  it('reports committed batches and stops every owner after its batch', async () => {
    const f = hostFixture();
    const { host, log, ledger } = f;
    const lease = log.grant(log.lease(0));
    await untilRole(f, 0, 'active');
    const committed = firstValueFrom(host.committed$);
    ledger.deposit(0, A0, 5);
    assert.deepEqual(await committed, { partition: 0, records: 1 } satisfies BatchOutcome);
    assert.deepEqual(ledger.outputs(), [{ account: A0, balance: 5 }]);

    await host.stop();
    assert.equal(roleOf(f, 0), 'closing', 'owners stay until closeOwners()');
    assert.equal(lease.active, true, 'the transport ends the leases, not the host');
    assert.equal(f.follower.stopped, true);
    await host.closeOwners();
    assert.deepEqual(host.statuses(), []);
    assert.deepEqual(f.observer.roleSequence(0), ['fencing', 'restoring', 'active', 'closing', undefined]);
    await f.stop();
  });
});
