import type { Observable } from 'rxjs';
import type { CommitPlan, LogRecord, OutRecord } from './records.js';

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  /** Keep only the last record per key (changelogs). */
  readonly compacted?: boolean;
  /** Set for topics whose partition count must equal `partitions` (inputs, changelog); names their role. */
  readonly exactPartitions?: 'input' | 'changelog';
}

/**
 * A point in one topic partition: `offset` is the offset just past the records it follows (the
 * next offset). `append` answers one per topic partition it wrote; an input partition's committed
 * offset is the same kind of offset, so "the committed offset has reached the append's" means
 * every record of the append was processed and committed.
 */
export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** What a commit made durable that the partition's owner needs to know. */
export interface CommitResult {
  /** The changelog offset after the batch's last changelog record, when the batch wrote any. */
  readonly changelogNext: number | undefined;
}

/**
 * This instance's right to own one partition, granted by the transport and ended by it
 * (rebalance, shutdown). The transport only moves bytes: the partition's owner drives the
 * sequence fence → catch up the changelog → resume input → poll/commit, and stops once
 * `active` is false.
 */
export interface PartitionLease {
  readonly partition: number;
  /** False once the lease was revoked or the log is closing. */
  readonly active: boolean;
  /** Settles when the lease ends (wakes an owner that waits: backing off, or failed). */
  readonly revoked: Promise<void>;
  /**
   * Takes over the partition's transactional identity: aborts any open transaction of a
   * previous owner and bars it from committing again. Refuses (LeaseRevokedError) once revoked.
   */
  fence(): Promise<void>;
  /** The changelog partition's end offset now, as read_committed consumers see it. */
  changelogEnd(): Promise<number>;
  /** The changelog partition from `fromOffset` up to its end as of the call, in chunks. */
  readChangelog(fromOffset: number): AsyncIterable<readonly LogRecord[]>;
  /**
   * After fence and catch-up: input flows from `startAt`, the next offsets the restored copy
   * records (written in the same transactions as its rows, so final once fenced), or from the
   * log's committed offsets where those are later (written by an owner that kept no rows).
   */
  resume(startAt: ReadonlyMap<string, number>): Promise<void>;
  /**
   * Next input records in log order, at most `maxRecords`, of `topics` only when given (the
   * others stay queued). Waits up to `maxWaitMs` when none are ready; returns [] on timeout or
   * when the lease ends.
   */
  poll(maxRecords: number, maxWaitMs: number, topics?: readonly string[]): Promise<readonly LogRecord[]>;
  /** Gives back the tail of the last poll, unapplied: the next poll returns these records first. */
  unpoll(records: readonly LogRecord[]): void;
  /**
   * True when, as far as the lease knows, no input is waiting to be read: nothing queued and
   * every input topic read up to its end (or not heard of since resume for a moment). Timers
   * that came due fire only after the input that was already there.
   */
  inputIdle(): boolean;
  /** Atomically writes the plan's records and moves its input offsets; throws on failure. */
  commit(plan: CommitPlan): Promise<CommitResult>;
  /** After a failed commit: the next poll starts again at the last committed offsets. */
  rewind(): Promise<void>;
  /**
   * After this owner was fenced while the lease still looked live: resolves true when the
   * settled group still gives this partition to this instance (it must fence again), false
   * when the lease ended meanwhile. Waits out rebalances and transient errors itself.
   */
  confirmOwnership(): Promise<boolean>;
}

/** One member of the app's group as the transport sees it: its report and what it was assigned. */
export interface GroupMember {
  readonly memberId: string;
  /** The member's own report (opaque to the transport; see MembershipPolicy.report). */
  readonly report: Buffer;
  readonly partitions: readonly number[];
}

/**
 * Membership policy, decided in replication and carried by a transport (Kafka: the consumer
 * group protocol; embedded: a group of one). Who is primary, where standbys go and how to reach
 * another instance are the policy's business; the transport only delivers reports and results.
 */
export interface MembershipPolicy {
  /** What this member tells the group about itself when it (re)joins. */
  report(): Buffer;
  /** On the member that assigns (Kafka's group leader): active partitions per member id. */
  assign(members: ReadonlyArray<{ readonly memberId: string; readonly report: Buffer }>): Map<string, number[]>;
  /** Every member and its assignment, once a generation of the group has settled. */
  settled(members: readonly GroupMember[], self: string): void;
  /** Called at every rebalance this member takes part in (a metric). */
  rebalanced?(): void;
}

/** Receives a followed changelog: records in order, and positions (next offset, log end). */
export interface ChangelogSink {
  records(partition: number, records: readonly LogRecord[]): void;
  position(partition: number, nextOffset: number, endOffset: number): void;
}

/** Tails changelog partitions from given offsets (standby copies; read_committed on Kafka). */
export interface ChangelogFollower {
  /** Replaces what is followed: these partitions, from these offsets. */
  follow(from: ReadonlyMap<number, number>, sink: ChangelogSink): Promise<void>;
  stop(): Promise<void>;
}

/** What the partition core needs of a transport (embedded log, Kafka). */
export interface EventLog {
  /** Creates missing topics; fails naming the topic when an existing one has another partition count. */
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  /** Partition count of a known topic. */
  partitionsOf(topic: string): number;
  /**
   * Durably appends records (ingest); resolves once they are acknowledged, with the offset just
   * past the last record written to each topic partition (one entry per topic partition written).
   */
  append(records: readonly OutRecord[]): Promise<readonly TopicPartitionOffset[]>;
  /**
   * The app group's committed (next) offset of every input topic's partition `partition` now:
   * everything before it was processed and committed by an owner (reads that wait for a write).
   */
  committedOffsets(partition: number): Promise<ReadonlyMap<string, number>>;
  /** A topic partition from `fromOffset` to its end as of the call (operator tools, e.g. snapshots). */
  readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]>;
  /** A topic partition's end offset now (read_committed: what readRange reads up to). */
  endOffset(topic: string, partition: number): Promise<number> | number;
  /** Input records not yet committed, per partition this instance processes. */
  consumerLag(): Array<{ partition: number; lag: number }>;
  /** Bytes this instance keeps on disk per topic (the embedded log; Kafka brokers keep their own). */
  diskUsage?(): Array<{ topic: string; bytes: number }>;
  /** Joins the app's group under `membership`; emits a lease for every partition granted here. */
  leases(membership: MembershipPolicy): Observable<PartitionLease>;
  /** A follower of the app's changelog, for standby copies. */
  changelogFollower(): ChangelogFollower;
  /** A follower of any topic's partitions (read_committed on Kafka): answers written to the log. */
  followerOf(topic: string): ChangelogFollower;
  close(): Promise<void>;
}
