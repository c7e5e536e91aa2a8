/** A partition's tables as of a changelog offset, for fast restore. */
export interface PartitionSnapshot {
  readonly app: string;
  readonly partition: number;
  /** The next changelog offset to apply after loading this snapshot. */
  readonly changelogOffset: number;
  /** Encoded rows (see state's changelog codec): key/value pairs as in the changelog. */
  readonly rows: ReadonlyArray<{ readonly key: Buffer; readonly value: Buffer }>;
  readonly takenAt: number;
}

/** Where snapshots are kept (Redis in production). Writes publish atomically; reads verify checksums. */
export interface SnapshotStore {
  save(snapshot: PartitionSnapshot): Promise<void>;
  /** The latest valid snapshot, or undefined when there is none or it fails its checksum. */
  load(app: string, partition: number): Promise<PartitionSnapshot | undefined>;
}

/** What a group member reports to the assignor: which partitions it holds warm and how fresh. */
export interface MemberState {
  readonly memberId: string;
  readonly instanceId: string;
  readonly rack: string | undefined;
  /** Changelog offset each partition held by this member has reached. */
  readonly warm: ReadonlyMap<number, number>;
}

/** Active and standby partitions per instance. */
export interface AssignmentPlan {
  readonly active: ReadonlyMap<string, readonly number[]>;
  readonly standby: ReadonlyMap<string, readonly number[]>;
}
