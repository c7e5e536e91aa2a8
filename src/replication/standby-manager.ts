import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { type PartitionState } from '../state/index.js';
import { applyChangelogRecord } from '../codec/index.js';

/** A changelog record as a follower delivers it. */
export interface FollowedRecord {
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** Tails changelog partitions from given offsets (Kafka: a private read_committed consumer). */
export interface ChangelogFollower {
  follow(
    from: ReadonlyMap<number, number>,
    sink: {
      records(partition: number, records: readonly FollowedRecord[]): void;
      position(partition: number, nextOffset: number, endOffset: number): void;
    },
  ): Promise<void>;
  stop(): Promise<void>;
}

interface Copy {
  readonly state: PartitionState;
  /** Next changelog offset to apply. */
  offset: number;
  /** Changelog end as last seen. */
  end: number;
}

export interface StandbyManagerOptions {
  readonly newState: (partition: number) => PartitionState;
  readonly follower: ChangelogFollower;
  /** Seeds a new copy from the latest snapshot; returns its changelog offset. */
  readonly loadSnapshot?: (partition: number, into: PartitionState) => Promise<number | undefined>;
  readonly logger: Logger;
  readonly onLag?: (partition: number, lag: number | undefined) => void;
}

/**
 * Warm standby copies of partitions active on other instances: each follows its changelog
 * partition, so on failover the new owner only catches up the tail. A copy is handed over
 * with `take` when its partition becomes active here.
 */
export class StandbyManager {
  private readonly copies = new Map<number, Copy>();
  private wanted = new Set<number>();
  /** Partitions active here as of the last assignment: their copies wait for `take`. */
  private activeHere = new Set<number>();
  private refollow: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: StandbyManagerOptions) {}

  /** Sets the partitions this instance keeps standby copies of. */
  assign(partitions: readonly number[], activeHere: ReadonlySet<number>): void {
    this.wanted = new Set(partitions.filter((p) => !activeHere.has(p)));
    this.activeHere = new Set(activeHere);
    this.refollow = this.refollow.then(() => this.sync()).catch((err: unknown) =>
      this.options.logger.warn({ err: describeError(err) }, 'could not update standby copies'),
    );
  }

  /** Hands over the copy of a partition becoming active here (it stops being followed). */
  take(partition: number): { state: PartitionState; changelogOffset: number } | undefined {
    const copy = this.copies.get(partition);
    if (!copy) return undefined;
    this.copies.delete(partition);
    this.options.onLag?.(partition, undefined);
    this.refollow = this.refollow.then(() => this.follow());
    return { state: copy.state, changelogOffset: copy.offset };
  }

  /** Changelog offsets reached per copy (reported to the assignor: warmest standby wins). */
  warm(): Record<number, number> {
    return Object.fromEntries([...this.copies].map(([p, c]) => [p, c.offset]));
  }

  /** A copy's state, for stale reads while the partition moves. */
  state(partition: number): PartitionState | undefined {
    return this.copies.get(partition)?.state;
  }

  partitions(): number[] {
    return [...this.copies.keys()].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.refollow;
    await this.options.follower.stop();
  }

  private async sync(): Promise<void> {
    if (this.closed) return;
    for (const partition of [...this.copies.keys()]) {
      // A copy of a partition that just became active here is kept for the executor's `take`:
      // the assignment arrives while the new lease restores, and dropping the copy first would
      // turn a failover from the warm copy into a restore of the whole changelog.
      if (!this.wanted.has(partition) && !this.activeHere.has(partition)) {
        this.copies.delete(partition);
        this.options.onLag?.(partition, undefined);
      }
    }
    for (const partition of this.wanted) {
      if (this.copies.has(partition)) continue;
      const state = this.options.newState(partition);
      let offset = 0;
      try {
        offset = (await this.options.loadSnapshot?.(partition, state)) ?? 0;
      } catch (err) {
        state.clear();
        this.options.logger.warn({ partition, err: describeError(err) }, 'standby: snapshot unusable; following the changelog from the start');
      }
      this.copies.set(partition, { state, offset, end: offset });
    }
    await this.follow();
  }

  private async follow(): Promise<void> {
    if (this.closed) return;
    const from = new Map([...this.copies].map(([p, c]) => [p, c.offset]));
    this.options.logger.debug({ standbys: [...from.keys()] }, 'following standby changelogs');
    await this.options.follower.follow(from, {
      records: (partition, records) => {
        const copy = this.copies.get(partition);
        if (!copy) return;
        for (const record of records) {
          if (record.offset < copy.offset) continue;
          applyChangelogRecord(copy.state, record.key, record.value);
          copy.offset = record.offset + 1;
        }
      },
      position: (partition, nextOffset, endOffset) => {
        const copy = this.copies.get(partition);
        if (!copy) return;
        copy.offset = Math.max(copy.offset, nextOffset);
        copy.end = Math.max(copy.end, endOffset);
        this.options.onLag?.(partition, Math.max(0, copy.end - copy.offset));
      },
    });
  }
}
