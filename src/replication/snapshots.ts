import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { encodeSnapshot, loadSnapshot, type RowCodec } from '../codec/index.js';
import { describeError, SnapshotStoreUnavailableError } from '../errors.js';
import type { PartitionState } from '../state/index.js';
import type { SnapshotStore } from './interfaces.js';
import { RedisSnapshotStore } from './redis-snapshots.js';

/** Where snapshots go: Redis when `redis.url` is set (see config's `redis` slice). */
export interface SnapshotStoreSettings {
  readonly url?: string | undefined;
  readonly password?: string | undefined;
  readonly tls: boolean;
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly keep: number;
}

/**
 * The Redis snapshot store once Redis has answered (or is found down: snapshots wait for it), or
 * undefined when no Redis is configured. A refused password or certificate is a ConfigError.
 */
export async function createSnapshotStore(app: string, settings: SnapshotStoreSettings, logger: Logger): Promise<SnapshotStore | undefined> {
  const { url, ...rest } = settings;
  if (!url) return undefined;
  return RedisSnapshotStore.open({ ...rest, url, app, logger });
}

/** Counts snapshot outcomes (the metrics implement it). */
export interface SnapshotObserver {
  snapshotTaken(partition: number, bytes: number, seconds: number): void;
  snapshotNotTaken(outcome: 'skipped' | 'failed'): void;
}

/**
 * Writes and loads partition snapshots. A store that is down means a skipped snapshot, never a
 * stopped partition; a snapshot that cannot be read means a restore from the changelog alone.
 */
export class Snapshots {
  constructor(
    private readonly app: string,
    private readonly store: SnapshotStore,
    /** Rows in and out with the app's table schemas. */
    private readonly rows: RowCodec,
    /** How often an active partition writes one; 0 disables periodic snapshots. */
    readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly observer?: SnapshotObserver,
  ) {}

  /** Writes the committed state at `changelogOffset` (call between batches). */
  async save(partition: number, state: PartitionState, changelogOffset: number): Promise<void> {
    const started = performance.now();
    const takenAt = Date.now();
    const bytes = encodeSnapshot(state, { app: this.app, changelogOffset, takenAt }, this.rows);
    try {
      await this.store.save(partition, bytes, { partition, changelogOffset, takenAt, rows: countRows(state) });
    } catch (err) {
      this.observer?.snapshotNotTaken(err instanceof SnapshotStoreUnavailableError ? 'skipped' : 'failed');
      throw err;
    }
    this.observer?.snapshotTaken(partition, bytes.length, (performance.now() - started) / 1000);
  }

  /**
   * Loads the current (or the named) snapshot of a partition into an empty state; returns the
   * changelog offset it reflects, or undefined when there is none or the store is down. A
   * damaged snapshot throws CorruptDataError (the caller falls back to the changelog). `moved`
   * gets the keys of rows filed under a former or dropped table name.
   */
  async loadInto(partition: number, state: PartitionState, id?: string, moved?: (key: Buffer) => void): Promise<number | undefined> {
    let bytes: Buffer | undefined;
    try {
      bytes = await this.store.load(partition, id);
    } catch (err) {
      this.logger.warn({ partition, err: describeError(err) }, 'snapshot store unavailable; restoring from the changelog alone');
      return undefined;
    }
    if (!bytes) return undefined;
    const started = performance.now();
    const header = loadSnapshot(state, bytes, this.rows, moved ? { moved } : {});
    this.logger.info({ partition, rows: header.rows, changelogOffset: header.changelogOffset, seconds: (performance.now() - started) / 1000 }, 'loaded snapshot');
    return header.changelogOffset;
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

function countRows(state: PartitionState): number {
  let rows = 0;
  for (const table of state.tableNames()) rows += state.store(table).size;
  return rows;
}
