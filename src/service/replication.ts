import { performance } from 'node:perf_hooks';
import type { Config } from '../config/index.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FaradMetrics } from '../metrics/index.js';
import type { CompiledApp } from '../procedures/index.js';
import { RedisSnapshotStore, type SnapshotStore } from '../replication/index.js';
import { type PartitionState } from '../state/index.js';
import { encodeSnapshot, loadSnapshot } from '../codec/index.js';
import type { Snapshotter } from '../streams/index.js';

/** The Redis snapshot store, when `redis.url` is configured. */
export function createSnapshotStore(app: CompiledApp, config: Config, logger: Logger): SnapshotStore | undefined {
  if (!config.redis.url) return undefined;
  return new RedisSnapshotStore({
    url: config.redis.url,
    password: config.redis.password,
    tls: config.redis.tls,
    keep: config.redis.keep,
    app: app.name,
    logger,
  });
}

/** Writes partition snapshots to the store, counting outcomes; Redis down = skipped, not stopped. */
export function createSnapshotter(app: CompiledApp, store: SnapshotStore, intervalMs: number, metrics: FaradMetrics): Snapshotter {
  return {
    intervalMs,
    async save(partition: number, state: PartitionState, changelogOffset: number): Promise<void> {
      const started = performance.now();
      const takenAt = Date.now();
      const bytes = encodeSnapshot(state, { app: app.name, changelogOffset, takenAt });
      try {
        await store.save(partition, bytes, { partition, changelogOffset, takenAt, rows: countRows(state) });
      } catch (err) {
        metrics.snapshots.inc({ outcome: /ECONNREFUSED|writeable|closed|ETIMEDOUT|Connection/i.test(describeError(err)) ? 'skipped' : 'failed' });
        throw err;
      }
      metrics.snapshotTaken(partition, bytes.length, (performance.now() - started) / 1000);
    },
  };
}

function countRows(state: PartitionState): number {
  let rows = 0;
  for (const table of state.tableNames()) rows += state.store(table).size;
  return rows;
}

/**
 * Loads the current snapshot of a partition into an empty state; returns the changelog offset it
 * reflects, or undefined when there is none. A damaged snapshot throws (the caller falls back).
 */
export async function loadSnapshotInto(
  store: SnapshotStore,
  partition: number,
  state: PartitionState,
  logger: Logger,
  id?: string,
): Promise<number | undefined> {
  let bytes: Buffer | undefined;
  try {
    bytes = await store.load(partition, id);
  } catch (err) {
    logger.warn({ partition, err: describeError(err) }, 'snapshot store unavailable; restoring from the changelog alone');
    return undefined;
  }
  if (!bytes) return undefined;
  const started = performance.now();
  const header = loadSnapshot(state, bytes);
  logger.info({ partition, rows: header.rows, changelogOffset: header.changelogOffset, seconds: (performance.now() - started) / 1000 }, 'loaded snapshot');
  return header.changelogOffset;
}
