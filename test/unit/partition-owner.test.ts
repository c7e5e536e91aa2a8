import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CorruptDataError, IllegalTransitionError, TransportError } from '../../src/errors.js';
import { ALLOWED_MOVES, isAllowedMove, PARTITION_ROLES, PartitionOwner, type PartitionRole } from '../../src/partition/index.js';
import { Gate, Ledger, LEDGER_PARTITIONS, RecordingObserver, waitFor, type MemoryLease } from './support/memory-log.js';
import { keysOf } from './support/partition-keys.js';

const P = 1;
const [ALICE, BOB, CAROL, DAVE] = keysOf(P, LEDGER_PARTITIONS, 4, 'acct-') as [string, string, string, string];

/** The moves the lifecycle allows, written out independently of ALLOWED_MOVES (from → to). */
const EXPECTED_MOVES: ReadonlyArray<readonly [PartitionRole, PartitionRole]> = [
  ['standby', 'fencing'],
  ['standby', 'closing'],
  ['fencing', 'restoring'],
  ['fencing', 'fencing'],
  ['fencing', 'closing'],
  ['fencing', 'failed'],
  ['restoring', 'active'],
  ['restoring', 'fencing'],
  ['restoring', 'closing'],
  ['restoring', 'failed'],
  ['active', 'fencing'],
  ['active', 'closing'],
  ['active', 'failed'],
  ['failed', 'closing'],
  ['closing', 'standby'],
  ['closing', 'fencing'],
];

/** Every fixture's clean-up: a failed test leaves no owner polling. */
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function fixture(options: { chunkSize?: number } = {}) {
  const ledger = new Ledger(options);
  const observer = new RecordingObserver();
  const ctx = ledger.context(observer);
  cleanups.push(() => {
    ctx.stop();
    ledger.log.revokeAll();
  });
  return { ledger, log: ledger.log, observer, ctx };
}

/** Waits until the owner is active and has polled input at least once. */
async function untilProcessing(owner: PartitionOwner, lease: MemoryLease): Promise<void> {
  await waitFor(() => owner.role === 'active' && lease.trace.includes('poll'), `partition ${owner.partition} to process`);
}

function assertIllegal(fn: () => void, current: PartitionRole, target: PartitionRole): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IllegalTransitionError, `expected IllegalTransitionError, got ${String(err)}`);
    assert.equal(err.code, 'illegal_transition');
    assert.match(err.message, new RegExp(`cannot go from ${current} to ${target}`));
    assert.match(err.message, new RegExp(`allowed from ${current}: `));
    return true;
  });
}

describe('partition lifecycle: allowed moves', () => {
  it('isAllowedMove answers all 36 pairs of roles as the lifecycle table says', () => {
    assert.equal(PARTITION_ROLES.length, 6);
    const expected = new Set(EXPECTED_MOVES.map(([from, to]) => `${from}->${to}`));
    let pairs = 0;
    for (const from of PARTITION_ROLES) {
      for (const to of PARTITION_ROLES) {
        pairs++;
        assert.equal(isAllowedMove(from, to), expected.has(`${from}->${to}`), `${from} -> ${to}`);
      }
    }
    assert.equal(pairs, 36);
    const tableMoves = Object.entries(ALLOWED_MOVES).flatMap(([from, tos]) => tos.map((to) => `${from}->${to}`));
    assert.deepEqual(new Set(tableMoves), expected, 'ALLOWED_MOVES lists exactly the expected moves');
  });

  it('an illegal move through the owner throws IllegalTransitionError naming the current state, and changes nothing', async () => {
    const { ledger, log, observer, ctx } = fixture();
    ledger.writeChangelog(P, [[ALICE, 1]]);

    const standby = await PartitionOwner.standby(P, ctx);
    assertIllegal(() => standby.keepAsStandby(), 'standby', 'standby');
    assert.equal(standby.role, 'standby');

    // fencing (blocked in fence), restoring (blocked in readChangelog), active
    const lease = log.lease(P);
    const fence = (lease.script.fenceGate = new Gate());
    const read = (lease.script.readChangelogGate = new Gate());
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await fence.reached;
    assertIllegal(() => owner.keepAsStandby(), 'fencing', 'standby');
    fence.open();
    await read.reached;
    assert.equal(owner.role, 'restoring');
    assertIllegal(() => owner.keepAsStandby(), 'restoring', 'standby');
    read.open();
    await untilProcessing(owner, lease);
    assertIllegal(() => owner.keepAsStandby(), 'active', 'standby');
    assert.equal(owner.role, 'active', 'the refused move left the owner active');
    lease.revoke();
    await run;
    assert.equal(owner.role, 'closing');

    // failed
    const broken = log.lease(2);
    broken.script.readChangelogErrors.push(new CorruptDataError('bad checksum'));
    const failed = PartitionOwner.forLease(2, ctx, broken);
    const failedRun = failed.own(broken);
    await waitFor(() => failed.role === 'failed', 'partition 2 to fail');
    assertIllegal(() => failed.keepAsStandby(), 'failed', 'standby');
    broken.revoke();
    await failedRun;

    const refused = observer.roles.filter((r) => r.to === 'standby' && r.from !== 'closing' && r.from !== undefined);
    assert.deepEqual(refused, [], 'no refused move was reported to the observer');
  });

  it('legal moves outside own(): closing → standby (keepAsStandby), closing → fencing (a new lease), standby → closing (close)', async () => {
    const { ledger, log, observer, ctx } = fixture();
    ledger.writeChangelog(P, [[ALICE, 4]]);
    const first = log.lease(P);
    const owner = PartitionOwner.forLease(P, ctx, first);
    const run = owner.own(first);
    await untilProcessing(owner, first);
    first.revoke();
    await run;
    assert.equal(owner.role, 'closing');

    const second = log.lease(P);
    const again = owner.own(second); // closing → fencing: granted again while closing
    await untilProcessing(owner, second);
    second.revoke();
    await again;

    owner.keepAsStandby();
    assert.equal(owner.role, 'standby');
    assert.deepEqual(Ledger.balances(owner.readable()), { [ALICE]: 4 }, 'the kept copy is readable');
    owner.close();
    assert.deepEqual(observer.roleSequence(P), [
      'fencing', 'restoring', 'active', 'closing',
      'fencing', 'restoring', 'active', 'closing',
      'standby', 'closing', undefined,
    ]);
  });
});

describe('PartitionOwner: takeover', () => {
  it('fences, then catches up the changelog, then resumes input, then polls; the restored state equals the changelog', async () => {
    const { ledger, log, observer, ctx } = fixture({ chunkSize: 2 });
    ledger.writeChangelog(P, [
      [ALICE, 1],
      [BOB, 2],
      [ALICE, 5],
      [CAROL, 3],
      [CAROL, undefined],
      [DAVE, 9],
    ]);
    const lease = log.lease(P);
    const owner = PartitionOwner.forLease(P, ctx, lease);
    assert.equal(owner.readable(), undefined, 'nothing to read before the restore');
    const run = owner.own(lease);
    await untilProcessing(owner, lease);

    assert.deepEqual(lease.compactTrace().slice(0, 5), ['fence', 'changelogEnd', 'readChangelog:0', 'resume', 'poll']);
    const rows = Ledger.balances(owner.readable());
    assert.deepEqual(rows, ledger.changelogRows(P), 'restored rows = rows the changelog records wrote');
    assert.deepEqual(rows, { [ALICE]: 5, [BOB]: 2, [DAVE]: 9 });
    assert.deepEqual(observer.restores, [{ partition: P, records: 6 }]);
    assert.deepEqual(observer.failovers, [], 'no failover: there was no standby copy');

    lease.revoke();
    await run;
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'active', 'closing']);
    assert.equal(log.epoch(P), 1, 'fenced once');
  });

  it('fails over from a standby copy: restores only the tail after the copy, keeps the same state object', async () => {
    const { ledger, log, observer, ctx } = fixture();
    ledger.writeChangelog(P, [
      [ALICE, 1],
      [BOB, 2],
      [ALICE, 3],
    ]);
    const owner = await PartitionOwner.standby(P, ctx);
    assert.equal(owner.warmOffset(), 0);
    owner.followed(log.changelog(P));
    owner.followed(log.changelog(P).slice(1)); // a duplicate delivery changes nothing
    owner.followedTo(3, 5);
    assert.equal(owner.warmOffset(), 3);
    assert.equal(owner.standbyLag(), 2);
    const copy = owner.readable();
    assert.deepEqual(Ledger.balances(copy), { [ALICE]: 3, [BOB]: 2 }, 'the standby copy is readable (stale)');

    // The owner elsewhere commits more before it dies.
    ledger.writeChangelog(P, [
      [BOB, 7],
      [CAROL, 4],
    ]);
    const lease = log.lease(P);
    const run = owner.own(lease);
    owner.followed([{ ...ledger.changeRecord(P, DAVE, 1), offset: 5, headers: {} }]); // ignored once leased
    await untilProcessing(owner, lease);

    assert.deepEqual(lease.compactTrace().slice(0, 5), ['fence', 'changelogEnd', 'readChangelog:3', 'resume', 'poll']);
    assert.equal(owner.readable(), copy, 'the standby copy became the active state');
    assert.deepEqual(Ledger.balances(owner.readable()), ledger.changelogRows(P));
    assert.deepEqual(observer.restores, [{ partition: P, records: 2 }], 'only the tail was replayed');
    assert.deepEqual(observer.failovers, [P]);
    assert.equal(owner.warmOffset(), undefined, 'an active partition is no warm copy');

    lease.revoke();
    await run;
    assert.deepEqual(observer.roleSequence(P), ['standby', 'fencing', 'restoring', 'active', 'closing']);
  });

  it('a lease revoked while the partition restores stops without resuming or processing', async () => {
    const { ledger, log, observer, ctx } = fixture();
    ledger.writeChangelog(P, [[ALICE, 1]]);
    ledger.deposit(P, ALICE, 5);
    const lease = log.lease(P);
    const gate = (lease.script.readChangelogGate = new Gate());
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await gate.reached;
    assert.equal(owner.role, 'restoring');
    lease.revoke();
    gate.open();
    await run;

    assert.equal(owner.role, 'closing');
    assert.deepEqual(lease.trace, ['fence', 'changelogEnd', 'readChangelog:0'], 'no resume, no poll, no commit');
    assert.equal(log.committedOffset('deposits', P), 0);
    assert.deepEqual(ledger.outputs(), []);
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'closing']);
  });

  it('a lease revoked before fencing never fences', async () => {
    const { log, observer, ctx } = fixture();
    const lease = log.lease(P);
    const owner = PartitionOwner.forLease(P, ctx, lease);
    lease.revoke();
    await owner.own(lease);
    assert.deepEqual(lease.trace, []);
    assert.equal(log.epoch(P), 0);
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'closing']);

    // A standby copy whose lease ended before it was owned, likewise.
    const standby = await PartitionOwner.standby(2, ctx);
    const late = log.lease(2);
    late.revoke();
    await standby.own(late);
    assert.deepEqual(late.trace, []);
    assert.deepEqual(observer.roleSequence(2), ['standby', 'fencing', 'closing']);
  });

  it('a lease revoked while fencing stops before catching up', async () => {
    const { log, observer, ctx } = fixture();
    const lease = log.lease(P);
    const gate = (lease.script.fenceGate = new Gate());
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await gate.reached;
    lease.revoke();
    gate.open();
    await run;
    assert.deepEqual(lease.trace, ['fence']);
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'closing']);
  });
});

describe('PartitionOwner: fenced while owning', () => {
  /** An active owner that committed one batch, then a zombie commits another batch and fences it. */
  async function fencedByZombie(confirm: boolean) {
    const f = fixture();
    const { ledger, log, ctx } = f;
    const lease = log.lease(P);
    lease.script.confirmOwnership.push(confirm);
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await untilProcessing(owner, lease);
    ledger.deposit(P, ALICE, 10);
    await waitFor(() => log.committedOffset('deposits', P) === 1, 'the first batch to commit');

    // In one tick: the next input arrives, and a zombie (which still thinks it owns the partition)
    // processes it, commits it and its changelog row, and bumps the epoch past this owner's.
    ledger.deposit(P, ALICE, 7);
    log.fenceByOther(P);
    log.writeAsZombie({
      records: [ledger.changeRecord(P, ALICE, 17)],
      offsets: [{ topic: 'deposits', partition: P, offset: 2 }],
    });
    return { ...f, lease, owner, run };
  }

  it('still the owner: fences again, catches up what the zombie wrote, and keeps processing without double-applying', async () => {
    const { ledger, log, observer, lease, owner, run } = await fencedByZombie(true);
    await waitFor(() => lease.trace.filter((t) => t === 'fence').length === 2 && owner.role === 'active', 'the owner to take the partition back');
    ledger.deposit(P, BOB, 5);
    await waitFor(() => log.committedOffset('deposits', P) === 3, 'the next batch to commit');

    const trace = lease.compactTrace();
    const fenced = trace.indexOf('confirmOwnership');
    assert.ok(fenced > 0, 'ownership was confirmed');
    assert.deepEqual(trace.slice(fenced - 3, fenced + 6), ['poll', 'commit', 'rewind', 'confirmOwnership', 'fence', 'changelogEnd', 'readChangelog:2', 'resume', 'poll']);
    const tally = { [ALICE]: 17, [BOB]: 5 };
    assert.deepEqual(Ledger.balances(owner.readable()), tally, 'the zombie’s batch is in the state once; the failed batch is not');
    assert.deepEqual(ledger.changelogRows(P), tally);
    assert.deepEqual(
      ledger.outputs().map((o) => [o.account, o.balance]),
      [
        [ALICE, 10],
        [BOB, 5],
      ],
      'the fenced batch wrote nothing (the zombie’s output is its own business)',
    );
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'active', 'fencing', 'restoring', 'active']);
    assert.deepEqual(observer.commitFailures, [], 'a fence is no commit failure to retry');
    lease.revoke();
    await run;
    assert.equal(owner.role, 'closing');
  });

  it('a log that answers committed offsets from before the last commit: input resumes from the copy’s offset rows, nothing applied twice (fault B)', async () => {
    const { ledger, log, ctx } = fixture();
    const first = log.lease(P);
    const before = PartitionOwner.forLease(P, ctx, first);
    const running = before.own(first);
    await untilProcessing(before, first);
    ledger.deposit(P, ALICE, 10);
    ledger.deposit(P, ALICE, 5);
    await waitFor(() => log.committedOffset('deposits', P) === 2, 'the deposits to commit');
    first.revoke();
    await running;

    // The new owner's log still answers the offset from before the last commit.
    const second = log.lease(P);
    second.script.staleCommittedOffsets = new Map([['deposits', 1]]);
    const after = PartitionOwner.forLease(P, ctx, second);
    const run = after.own(second);
    await untilProcessing(after, second);
    ledger.deposit(P, BOB, 3);
    await waitFor(() => log.committedOffset('deposits', P) === 3, 'the next deposit to commit');
    assert.deepEqual(Ledger.balances(after.readable()), { [ALICE]: 15, [BOB]: 3 }, 'the last deposit before the handover is applied once');
    assert.deepEqual(ledger.changelogRows(P), { [ALICE]: 15, [BOB]: 3 });
    second.revoke();
    await run;
  });

  it('no longer the owner: closes without fencing again', async () => {
    const { observer, lease, owner, run } = await fencedByZombie(false);
    await run;
    assert.equal(owner.role, 'closing');
    assert.equal(lease.trace.filter((t) => t === 'fence').length, 1);
    assert.deepEqual(lease.compactTrace().slice(-4), ['poll', 'commit', 'rewind', 'confirmOwnership']);
    assert.deepEqual(Ledger.balances(owner.state()), { [ALICE]: 10 }, 'the fenced batch was rolled back');
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'active', 'closing']);
  });
});

describe('PartitionOwner: failures', () => {
  it('a failure retrying cannot heal leaves the partition failed, without retries, until the lease ends', async () => {
    const { ledger, log, observer, ctx } = fixture();
    ledger.writeChangelog(P, [[ALICE, 1]]);
    const lease = log.lease(P);
    lease.script.readChangelogErrors.push(new CorruptDataError('changelog record failed its checksum', { partition: P, offset: 0 }));
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await waitFor(() => owner.role === 'failed', 'the partition to fail');

    assert.deepEqual(owner.status(), { partition: P, role: 'failed', reason: 'changelog record failed its checksum', code: 'corrupt_data' });
    assert.deepEqual(observer.failed, [{ partition: P, code: 'corrupt_data' }]);
    assert.equal(owner.readable(), undefined);
    await new Promise((resolve) => setTimeout(resolve, 20)); // many backoffs' worth
    assert.deepEqual(lease.trace, ['fence', 'changelogEnd', 'readChangelog:0'], 'no retry');

    lease.revoke();
    await run;
    assert.equal(owner.role, 'closing');
    assert.deepEqual(owner.status(), { partition: P, role: 'closing' });
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'failed', 'closing']);
  });

  it('a changelog record that is not a changelog key fails the partition with corrupt_data', async () => {
    const { log, observer, ctx } = fixture();
    log.appendNow([{ topic: 'ledger-changelog', partition: P, timestamp: 0, key: Buffer.from('not json'), value: null }]);
    const lease = log.lease(P);
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await waitFor(() => owner.role === 'failed', 'the partition to fail');
    assert.equal(owner.status().code, 'corrupt_data');
    assert.match(owner.status().reason ?? '', /changelog key is not JSON/);
    assert.deepEqual(observer.failed, [{ partition: P, code: 'corrupt_data' }]);
    lease.revoke();
    await run;
    assert.equal(owner.role, 'closing');
  });

  it('a retriable failure during the restore backs off, fences again and succeeds', async () => {
    const { ledger, log, observer, ctx } = fixture();
    ledger.writeChangelog(P, [
      [ALICE, 1],
      [BOB, 2],
    ]);
    const lease = log.lease(P);
    lease.script.readChangelogErrors.push(new TransportError('broker not available'));
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await untilProcessing(owner, lease);

    assert.deepEqual(lease.compactTrace().slice(0, 8), [
      'fence', 'changelogEnd', 'readChangelog:0',
      'fence', 'changelogEnd', 'readChangelog:0', 'resume', 'poll',
    ]);
    assert.deepEqual(Ledger.balances(owner.readable()), { [ALICE]: 1, [BOB]: 2 });
    assert.deepEqual(observer.failed, []);
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'fencing', 'restoring', 'active']);
    lease.revoke();
    await run;
  });

  it('a retriable failure while fencing retries the fence', async () => {
    const { log, observer, ctx } = fixture();
    const lease = log.lease(P);
    lease.script.fenceErrors.push(new TransportError('coordinator moved'));
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await untilProcessing(owner, lease);
    assert.deepEqual(lease.compactTrace().slice(0, 3), ['fence', 'fence', 'changelogEnd']);
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'active']);
    lease.revoke();
    await run;
  });

  it('a failure retrying cannot heal while active (a commit) fails the partition', async () => {
    const { ledger, log, observer, ctx } = fixture();
    const lease = log.lease(P);
    lease.script.commitErrors.push(new CorruptDataError('record too large'));
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await untilProcessing(owner, lease);
    ledger.deposit(P, ALICE, 3);
    await waitFor(() => owner.role === 'failed', 'the partition to fail');
    assert.equal(log.committedOffset('deposits', P), 0);
    assert.deepEqual(Ledger.balances(owner.state()), {}, 'the batch was rolled back');
    lease.revoke();
    await run;
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'active', 'failed', 'closing']);
  });
});

describe('PartitionOwner: batches', () => {
  it('processes input, commits outputs, changelog rows and offsets together', async () => {
    const { ledger, log, observer, ctx } = fixture();
    const lease = log.lease(P);
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await untilProcessing(owner, lease);
    ledger.deposit(P, ALICE, 5);
    ledger.deposit(P, BOB, 3);
    ledger.deposit(P, ALICE, 2);
    await waitFor(() => log.committedOffset('deposits', P) === 3, 'the input to be committed');

    assert.deepEqual(
      ledger.outputs().map((o) => [o.account, o.balance]),
      [
        [ALICE, 5],
        [BOB, 3],
        [ALICE, 7],
      ],
    );
    assert.deepEqual(ledger.changelogRows(P), { [ALICE]: 7, [BOB]: 3 });
    assert.deepEqual(Ledger.balances(owner.readable()), { [ALICE]: 7, [BOB]: 3 });
    assert.equal(observer.batches.reduce((n, b) => n + b.records, 0), 3);
    assert.equal(observer.handled.reduce((n, h) => n + h.ok, 0), 3);

    // The copy's changelog offset follows the commits: a later takeover replays nothing.
    lease.revoke();
    await run;
    const next = log.lease(P);
    const again = owner.own(next);
    await untilProcessing(owner, next);
    assert.ok(next.trace.includes(`readChangelog:${log.changelog(P).length}`), `replays from the changelog end: ${next.trace.join(' ')}`);
    next.revoke();
    await again;
  });

  it('a commit that fails with a retriable error rolls back and retries without double-applying', async () => {
    const { ledger, log, observer, ctx } = fixture();
    ledger.writeChangelog(P, [[CAROL, 100]]);
    const lease = log.lease(P);
    lease.script.commitErrors.push(new TransportError('transaction aborted'), new TransportError('request timed out'));
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await untilProcessing(owner, lease);

    const tally = new Map<string, number>([[CAROL, 100]]);
    const deposits: Array<[string, number]> = [
      [ALICE, 5],
      [BOB, 3],
      [CAROL, 1],
      [ALICE, 2],
      [DAVE, 8],
      [BOB, 4],
    ];
    for (const [account, amount] of deposits) {
      ledger.deposit(P, account, amount);
      tally.set(account, (tally.get(account) ?? 0) + amount);
    }
    await waitFor(() => log.committedOffset('deposits', P) === deposits.length, 'every deposit to be committed');

    const expected = Object.fromEntries(tally);
    assert.deepEqual(Ledger.balances(owner.readable()), expected, 'state = independent tally');
    assert.deepEqual(ledger.changelogRows(P), expected, 'changelog = independent tally');
    assert.equal(ledger.outputs().length, deposits.length, 'one output per deposit: failed commits wrote nothing');
    assert.deepEqual(observer.commitFailures, [P, P]);
    const trace = lease.compactTrace();
    const firstCommit = trace.indexOf('commit');
    assert.deepEqual(trace.slice(firstCommit, firstCommit + 3), ['commit', 'rewind', 'poll']);
    assert.equal(owner.role, 'active');
    lease.revoke();
    await run;
  });

  it('stops after its batch when the instance stops', async () => {
    const { ledger, log, observer, ctx } = fixture();
    const lease = log.lease(P);
    const owner = PartitionOwner.forLease(P, ctx, lease);
    const run = owner.own(lease);
    await untilProcessing(owner, lease);
    ledger.deposit(P, ALICE, 1);
    await waitFor(() => log.committedOffset('deposits', P) === 1, 'the deposit to be committed');
    ctx.stop();
    await run;
    assert.equal(owner.role, 'closing');
    assert.equal(lease.active, true, 'the lease itself is the transport’s to end');
    assert.deepEqual(observer.roleSequence(P), ['fencing', 'restoring', 'active', 'closing']);
  });
});
