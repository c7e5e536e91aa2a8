import { from, lastValueFrom, mergeMap, Subject, takeUntil } from 'rxjs';
import { describeError, UnknownRowSchemaError } from '../errors.js';
import type { ChangelogFollower, EventLog, MembershipPolicy, PartitionLease } from '../streams/index.js';
import type { InputWaitOutcome } from './input-progress.js';
import { PartitionOwner, type OwnerContext } from './owner.js';
import type { InputWatch, PartitionDirectory, PartitionRole, PartitionStatus, ServiceHealth } from './status.js';

export interface HostOptions extends Omit<OwnerContext, 'stopped' | 'isStopping' | 'onCommitted' | 'partitionsOf'> {
  /** Base URL of another instance owning a partition (from the membership's group view). */
  readonly ownerUrl?: ((partition: number) => string | undefined) | undefined;
  /** True when other instances may hold partitions. */
  readonly clustered: boolean;
}

/** A committed batch, for observers that want them (demo, tests, bench). */
export interface BatchOutcome {
  readonly partition: number;
  readonly records: number;
}

const LEASED: ReadonlySet<PartitionRole> = new Set(['fencing', 'restoring', 'active', 'failed', 'closing']);

/**
 * Every partition this instance hosts, active or standby, each held by one PartitionOwner in
 * one map. Leases from the transport and standby placement from replication both land here;
 * reads, readiness, the role metric and snapshots ask the owners.
 */
export class PartitionHost implements PartitionDirectory, InputWatch, ServiceHealth {
  private readonly owners = new Map<number, PartitionOwner>();
  /** The previous lease's run per partition: a new lease waits for it to close. */
  private readonly runs = new Map<number, Promise<void>>();
  private standbysWanted = new Set<number>();
  private log: EventLog | undefined;
  private follower: ChangelogFollower | undefined;
  private refollowing: Promise<void> = Promise.resolve();
  private readonly stop$ = new Subject<void>();
  private stopping = false;
  private signalStop: () => void = () => undefined;
  private readonly ctx: OwnerContext;
  private running: Promise<void> | undefined;
  private failure_: unknown;
  readonly committed$ = new Subject<BatchOutcome>();

  constructor(private readonly options: HostOptions) {
    const stopped = new Promise<void>((resolve) => (this.signalStop = resolve));
    this.ctx = {
      ...options,
      stopped,
      isStopping: () => this.stopping,
      onCommitted: (partition, records) => this.committed$.next({ partition, records }),
      partitionsOf: (topic) => this.log!.partitionsOf(topic),
    };
  }

  get clustered(): boolean {
    return this.options.clustered;
  }

  /** Joins the app's group on `log` under `membership` and owns every partition leased here; settles when stopped. */
  start(log: EventLog, membership: MembershipPolicy): Promise<void> {
    this.log = log;
    this.follower = log.changelogFollower();
    this.running ??= lastValueFrom(
      log.leases(membership).pipe(
        takeUntil(this.stop$),
        mergeMap((lease) => from(this.own(lease))),
      ),
      { defaultValue: undefined },
    ).then(
      () => undefined,
      (err: unknown) => {
        this.failure_ = err;
        throw err;
      },
    );
    return this.running;
  }

  /** Stops taking leases and waits for every partition's current batch to commit. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.signalStop();
    this.stop$.next();
    await this.running?.catch(() => undefined);
    await Promise.all(this.runs.values());
    await this.refollowing;
    await this.follower?.stop();
    this.committed$.complete();
  }

  /** After the transport closed (partitions handed over): final snapshots, then every owner leaves. */
  async closeOwners(): Promise<void> {
    await Promise.all([...this.owners.values()].map((owner) => owner.writeFinalSnapshot()));
    for (const owner of this.owners.values()) owner.close();
    this.owners.clear();
  }

  /** Replication's placement after the group settled: keep warm copies of these partitions. */
  setStandbys(partitions: readonly number[], activeHere: ReadonlySet<number>): void {
    if (this.stopping) return;
    this.standbysWanted = new Set(partitions.filter((p) => !activeHere.has(p)));
    for (const [partition, owner] of this.owners) {
      // A copy whose partition just became active here waits for its lease (failover from it).
      if (owner.role === 'standby' && !this.standbysWanted.has(partition) && !activeHere.has(partition)) this.remove(owner);
    }
    this.refollow(() => this.addStandbys());
  }

  /** Creates a standby copy (seeded from the latest snapshot) of every wanted partition not hosted here. */
  private async addStandbys(): Promise<void> {
    for (const partition of this.standbysWanted) {
      if (this.owners.has(partition) || this.stopping) continue;
      const owner = await PartitionOwner.standby(partition, this.ctx);
      // A lease may have arrived while the snapshot loaded: it owns the partition now.
      if (!this.owners.has(partition) && this.standbysWanted.has(partition)) this.owners.set(partition, owner);
      else owner.close();
    }
  }

  // ---- PartitionDirectory ---------------------------------------------------------------------

  local(partition: number): { role: PartitionRole; state: ReturnType<PartitionOwner['readable']> } | undefined {
    const owner = this.owners.get(partition);
    return owner && { role: owner.role, state: owner.readable() };
  }

  ownerUrl(partition: number): string | undefined {
    return this.options.ownerUrl?.(partition);
  }

  // ---- InputWatch -----------------------------------------------------------------------------

  /**
   * Waits until `partition`, active here, has committed its input up to `targets` (offset per
   * input topic): `reached`; `moved` when it is not (or no longer) active here; `aborted` when
   * `signal` aborts first. Woken by the commit that gets there.
   */
  async awaitInput(partition: number, targets: ReadonlyMap<string, number>, signal: AbortSignal): Promise<InputWaitOutcome> {
    const log = this.log;
    for (;;) {
      // Each activation has its own progress; one that ended may have been followed by another
      // (an owner fenced while it still held the partition takes it back).
      const progress = this.owners.get(partition)?.inputProgress();
      if (!progress || !log) return 'moved';
      const outcome = await progress.until(targets, signal, () => log.committedOffsets(partition));
      if (outcome !== 'moved') return outcome;
    }
  }

  /** The committed input offset of `topic` that `partition`'s owner here knows (for messages). */
  committedInput(partition: number, topic: string): number | undefined {
    return this.owners.get(partition)?.inputProgress()?.offsetOf(topic);
  }

  // ---- ServiceHealth --------------------------------------------------------------------------

  failure(): string | undefined {
    return this.failure_ === undefined ? undefined : describeError(this.failure_);
  }

  readiness(): { ready: boolean; partitions: PartitionStatus[] } {
    const partitions = this.statuses();
    const leased = partitions.filter((p) => LEASED.has(p.role));
    return { ready: this.failure_ === undefined && leased.length > 0 && leased.every((p) => p.role === 'active'), partitions };
  }

  // ---- what others ask of the owners ----------------------------------------------------------

  statuses(): PartitionStatus[] {
    return [...this.owners.values()].map((o) => o.status()).sort((a, b) => a.partition - b.partition);
  }

  owner(partition: number): PartitionOwner | undefined {
    return this.owners.get(partition);
  }

  all(): IterableIterator<PartitionOwner> {
    return this.owners.values();
  }

  /** What membership reports: partitions held under a lease, and warm copies with their offsets. */
  holdings(): { active: number[]; warm: Record<number, number> } {
    const active: number[] = [];
    const warm: Record<number, number> = {};
    for (const [partition, owner] of this.owners) {
      const offset = owner.warmOffset();
      if (offset !== undefined) warm[partition] = offset;
      else if (owner.role !== 'closing' && owner.role !== 'failed') active.push(partition);
    }
    return { active, warm };
  }

  /** Owns one lease, after the partition's previous lease (if any) has closed. */
  private own(lease: PartitionLease): Promise<void> {
    const { partition } = lease;
    const previous = this.runs.get(partition) ?? Promise.resolve();
    const run = previous.then(async () => {
      let owner = this.owners.get(partition);
      if (!owner) {
        owner = PartitionOwner.forLease(partition, this.ctx, lease);
        this.owners.set(partition, owner);
      }
      const fromStandby = owner.role === 'standby';
      const done = owner.own(lease);
      if (fromStandby) {
        this.options.observer?.standbyLag(partition, undefined);
        this.refollow(); // the copy stops following: the lease's reads take over
      }
      try {
        await done;
      } finally {
        this.settle(owner);
      }
    });
    const tracked = run.catch((err: unknown) => this.options.logger.error({ partition, err: describeError(err) }, 'partition owner stopped on an error'));
    this.runs.set(partition, tracked);
    void tracked.then(() => {
      if (this.runs.get(partition) === tracked) this.runs.delete(partition);
    });
    return tracked;
  }

  /** After a lease ended: keep the partition as a warm copy if replication wants one here, else let it go. */
  private settle(owner: PartitionOwner): void {
    if (this.stopping) return; // closeOwners() finishes them after the final snapshots
    if (this.owners.get(owner.partition) !== owner) return;
    if (this.standbysWanted.has(owner.partition) && owner.state() !== undefined) {
      owner.keepAsStandby();
      this.refollow();
    } else {
      this.remove(owner);
      // Wanted here but its lease ended before it restored anything: start a copy afresh.
      if (this.standbysWanted.has(owner.partition)) this.refollow(() => this.addStandbys());
    }
  }

  private remove(owner: PartitionOwner): void {
    this.owners.delete(owner.partition);
    owner.close();
    this.options.observer?.standbyLag(owner.partition, undefined);
  }

  /**
   * A standby copy met a row it cannot apply. A schema registered since this instance started is
   * read and the copy follows on from that row; a row it can never read drops the copy (a
   * takeover would then restore from the changelog and fail the partition, saying why).
   */
  private standbyStalled(partition: number, err: unknown): void {
    const owner = this.owners.get(partition);
    if (!owner || owner.role !== 'standby') return;
    if (err instanceof UnknownRowSchemaError && this.options.refreshSchemas) {
      this.options.logger.info({ partition, err: describeError(err) }, 'standby copy: reading the table schema registry again');
      const refresh = this.options.refreshSchemas;
      this.refollow(() => refresh());
      return;
    }
    this.options.logger.error({ partition, err: describeError(err) }, 'standby copy dropped: it cannot apply the changelog');
    this.remove(owner);
    this.refollow();
  }

  /** Restarts the standby follower over the current standby copies (serialised). */
  private refollow(before?: () => Promise<void>): void {
    this.refollowing = this.refollowing
      .then(async () => {
        await before?.();
        if (this.stopping || !this.follower) return;
        const offsets = new Map<number, number>();
        for (const [partition, owner] of this.owners) {
          const offset = owner.warmOffset();
          if (offset === undefined) continue;
          owner.resumeFollowing();
          offsets.set(partition, offset);
          // Reported now too: a copy of an empty changelog partition never hears of a position.
          this.options.observer?.standbyLag(partition, owner.standbyLag() ?? 0);
        }
        this.options.logger.debug({ standbys: [...offsets.keys()] }, 'following standby changelogs');
        await this.follower.follow(offsets, {
          records: (partition, records) => {
            try {
              this.owners.get(partition)?.followed(records);
            } catch (err) {
              this.standbyStalled(partition, err);
            }
          },
          position: (partition, nextOffset, endOffset) => {
            const owner = this.owners.get(partition);
            owner?.followedTo(nextOffset, endOffset);
            const lag = owner?.standbyLag();
            if (lag !== undefined) this.options.observer?.standbyLag(partition, lag);
          },
        });
      })
      .catch((err: unknown) => this.options.logger.warn({ err: describeError(err) }, 'could not update standby copies'));
  }
}
