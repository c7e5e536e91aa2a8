/** What is known about a stored snapshot without loading it. */
export interface SnapshotInfo {
  readonly id: string;
  readonly partition: number;
  readonly changelogOffset: number;
  readonly takenAt: number;
  readonly bytes: number;
  readonly rows: number;
  /** True for the one restores use. */
  readonly current: boolean;
}

/**
 * Where partition snapshots are kept (Redis in production). `save` writes under a new id and
 * then publishes it atomically as the partition's current snapshot; readers never see half of one.
 */
export interface SnapshotStore {
  save(partition: number, bytes: Buffer, info: Omit<SnapshotInfo, 'id' | 'current' | 'bytes'>): Promise<string>;
  /** The current snapshot's bytes, or undefined when there is none. */
  load(partition: number, id?: string): Promise<Buffer | undefined>;
  list(partition?: number): Promise<SnapshotInfo[]>;
  /** Makes a stored snapshot the current one (restore then replays more changelog, to the same end). */
  publish(partition: number, id: string): Promise<void>;
  close(): Promise<void>;
}
