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
 * This instance's exclusive right to process one partition: read its input, restore its
 * changelog and commit batches. A transport hands out leases and may end them (rebalance,
 * shutdown); a worker stops at the next batch boundary once `active` is false.
 */
export interface PartitionLease {
  readonly partition: number;
  /** False once the lease was revoked or the log is closing. */
  readonly active: boolean;
  /** The changelog partition's end offset now (what a full restore reads up to). */
  changelogEnd(): Promise<number>;
  /** The changelog partition from `fromOffset` up to its end as of the call, in chunks. */
  readChangelog(fromOffset: number): AsyncIterable<readonly LogRecord[]>;
  /**
   * Next input records in log order, at most `maxRecords`. Waits up to `maxWaitMs` when none
   * are ready; returns [] on timeout or when the lease ends.
   */
  poll(maxRecords: number, maxWaitMs: number): Promise<readonly LogRecord[]>;
  /** Atomically writes the plan's records and moves its input offsets; throws on failure. */
  commit(plan: CommitPlan): Promise<void>;
  /** After a failed commit: the next poll starts again at the last committed offsets. */
  rewind(): Promise<void>;
}

/** What the executor needs of a transport (embedded log, Kafka). */
export interface EventLog {
  /** Creates missing topics; fails naming the topic when an existing one has another partition count. */
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  /** Partition count of a known topic. */
  partitionsOf(topic: string): number;
  /** Durably appends records (ingest); resolves once they are acknowledged. */
  append(records: readonly OutRecord[]): Promise<void>;
  /** A topic partition from `fromOffset` to its end as of the call (operator tools, e.g. snapshots). */
  readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]>;
  /** Input records not yet committed, per partition this instance processes. */
  consumerLag(): Array<{ partition: number; lag: number }>;
  /** Leases granted to this instance, as they are granted. */
  leases(): Observable<PartitionLease>;
  close(): Promise<void>;
}
