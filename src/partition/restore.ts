import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { isMovedRow, type RowCodec } from '../codec/index.js';
import { describeError } from '../errors.js';
import type { CompiledApp } from '../procedures/index.js';
import type { Snapshots } from '../replication/index.js';
import { PartitionState } from '../state/index.js';
import type { LogRecord } from '../streams/index.js';

/** A partition's tables and how far into its changelog they reach. */
export interface PartitionCopy {
  readonly state: PartitionState;
  /** Next changelog offset to apply: the state reflects everything before it. */
  offset: number;
  /** Changelog end as last seen (standby lag). */
  end: number;
}

export interface RestoreRequest {
  readonly app: CompiledApp;
  readonly partition: number;
  /** The changelog end to restore up to. */
  readonly end: number;
  readonly readChangelog: (fromOffset: number) => AsyncIterable<readonly LogRecord[]>;
  /** Decodes rows of any registered schema into the current ones. */
  readonly rows: RowCodec;
  /** A copy this instance already holds (a standby, or its state before it was fenced). */
  readonly copy?: PartitionCopy | undefined;
  readonly snapshots?: Snapshots | undefined;
  /** A named snapshot to start from (operators); an unusable one then throws instead of falling back. */
  readonly snapshotId?: string | undefined;
  readonly logger: Logger;
  /** Every second or so, and at the end. */
  readonly onProgress?: ((restored: number, total: number) => void) | undefined;
}

export type RestoreSource = 'own copy' | 'snapshot' | 'changelog';

export interface Restored {
  readonly copy: PartitionCopy;
  readonly source: RestoreSource;
  /** Changelog offset the replay started at. */
  readonly fromOffset: number;
  readonly records: number;
  readonly seconds: number;
  /** Changelog keys of rows filed under a former or dropped table name (to move or delete). */
  readonly moved: readonly Buffer[];
}

/**
 * Brings a partition copy to the changelog's end: from the copy this instance holds when there
 * is one, else from the latest (or the named) snapshot, else from nothing. Used by partition
 * owners at every takeover and by `farad snapshot`.
 */
export async function restorePartition(request: RestoreRequest): Promise<Restored> {
  const { partition, end, logger } = request;
  const started = performance.now();
  let copy = request.copy;
  let source: RestoreSource = 'changelog';
  const moved = new Map<string, Buffer>();
  const noteMoved = (key: Buffer): void => void moved.set(key.toString('latin1'), key);
  // A tombstone under the old name means the row was moved already (by an earlier takeover).
  const noteDeleted = (key: Buffer): void => void moved.delete(key.toString('latin1'));
  if (copy && copy.offset <= end) {
    source = 'own copy';
  } else {
    if (copy) logger.warn({ partition, copyOffset: copy.offset, changelogEnd: end }, 'copy is ahead of the changelog (another cluster?); restoring afresh');
    copy = { state: emptyState(request.app, partition), offset: 0, end };
    if (await loadSnapshot(request, copy, noteMoved)) source = 'snapshot';
  }
  const fromOffset = copy.offset;
  let records = 0;
  let next = fromOffset;
  let lastReport = started;
  for await (const chunk of request.readChangelog(fromOffset)) {
    for (const record of chunk) {
      const fate = request.rows.apply(copy.state, record.key, record.value);
      if (isMovedRow(fate) && record.key) (record.value === null ? noteDeleted : noteMoved)(record.key);
    }
    records += chunk.length;
    if (chunk.length > 0) next = chunk[chunk.length - 1]!.offset + 1;
    const now = performance.now();
    if (now - lastReport > 1000) {
      lastReport = now;
      request.onProgress?.(fromOffset + records, end);
      logger.info({ partition, source, restored: records, remaining: end - fromOffset - records }, 'restoring partition');
    }
  }
  // The log may have grown past `end` meanwhile (an operator tool beside a running service).
  copy.offset = Math.max(copy.offset, end, next);
  copy.end = Math.max(end, next);
  request.onProgress?.(end, end);
  return { copy, source, fromOffset, records, seconds: (performance.now() - started) / 1000, moved: [...moved.values()] };
}

/** A partition's tables with no rows yet. */
export function emptyState(app: CompiledApp, partition: number): PartitionState {
  return new PartitionState(partition, app.partitions, app.tables.values());
}

/** Seeds an empty copy from a snapshot; false (copy left empty) when there is none or it is unusable. */
async function loadSnapshot(request: RestoreRequest, copy: PartitionCopy, moved: (key: Buffer) => void): Promise<boolean> {
  const { partition, end, logger, snapshots, snapshotId } = request;
  if (!snapshots) return false;
  try {
    const offset = await snapshots.loadInto(partition, copy.state, snapshotId, moved);
    if (offset === undefined) return false;
    if (offset <= end) {
      copy.offset = offset;
      return true;
    }
    logger.warn({ partition, snapshotOffset: offset, changelogEnd: end }, 'snapshot is ahead of the changelog (another cluster?); restoring from the changelog alone');
  } catch (err) {
    if (snapshotId !== undefined) throw err;
    logger.warn({ partition, err: describeError(err) }, 'snapshot unusable; restoring from the changelog alone');
  }
  copy.state.clear();
  return false;
}
