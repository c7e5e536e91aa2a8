// StandbyManager: the copy of a partition that becomes active here survives the assignment that
// says so, until the executor takes it (the executor's restore asks for it after an await, while
// the transport reports the new assignment at about the same time).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import avsc from 'avsc';
import { createLogger } from '../../src/log.js';
import { StandbyManager, type ChangelogFollower } from '../../src/replication/index.js';
import { PartitionState, type TableSchema } from '../../src/state/index.js';

const COUNT = avsc.Type.forSchema({ type: 'record', name: 'Count', namespace: 'test', fields: [{ name: 'n', type: 'int' }] });
const TABLES: TableSchema[] = [{ name: 'counts', keyType: 'int', valueType: COUNT, scope: 'local' }];

/** A follower that records what it was asked to follow and moves positions on demand. */
class FakeFollower implements ChangelogFollower {
  following = new Map<number, number>();
  private sink: Parameters<ChangelogFollower['follow']>[1] | undefined;

  async follow(from: ReadonlyMap<number, number>, sink: Parameters<ChangelogFollower['follow']>[1]): Promise<void> {
    this.following = new Map(from);
    this.sink = sink;
  }

  /** The follower read up to `next` (e.g. past records of aborted transactions and markers). */
  advance(partition: number, next: number, end: number): void {
    this.sink?.position(partition, next, end);
  }

  async stop(): Promise<void> {
    this.sink = undefined;
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));

function manager(follower: FakeFollower): StandbyManager {
  return new StandbyManager({
    newState: (p) => new PartitionState(p, 4, TABLES),
    follower,
    logger: createLogger('silent'),
  });
}

describe('StandbyManager', () => {
  it('keeps the copy of a partition that became active here for take()', async () => {
    const follower = new FakeFollower();
    const standbys = manager(follower);
    standbys.assign([1, 2], new Set([0]));
    await settle();
    assert.deepEqual(standbys.partitions(), [1, 2]);
    follower.advance(1, 2, 2);
    assert.deepEqual(standbys.warm(), { 1: 2, 2: 0 });

    // Partition 1 fails over to this instance: the new assignment arrives before the executor takes the copy.
    standbys.assign([2, 3], new Set([0, 1]));
    await settle();
    const taken = standbys.take(1);
    assert.ok(taken, 'the warm copy of partition 1 is still there');
    assert.equal(taken.changelogOffset, 2);
    assert.deepEqual(standbys.partitions(), [2, 3]);
    await settle();
    assert.deepEqual([...follower.following.keys()].sort(), [2, 3], 'the taken copy is no longer followed');
    await standbys.close();
  });

  it('drops copies of partitions that are neither wanted nor active here', async () => {
    const follower = new FakeFollower();
    const standbys = manager(follower);
    standbys.assign([1, 2], new Set([0]));
    await settle();
    standbys.assign([2], new Set([0]));
    await settle();
    assert.deepEqual(standbys.partitions(), [2]);
    assert.equal(standbys.take(1), undefined);
    await standbys.close();
  });
});
