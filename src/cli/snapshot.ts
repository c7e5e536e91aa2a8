import type { Config } from '../config/index.js';
import { ConfigError, TransportError } from '../errors.js';
import type { Logger } from '../log.js';
import { restorePartition } from '../partition/index.js';
import { compileApp, type App, type CompiledApp } from '../procedures/index.js';
import { createSnapshotStore, Snapshots, type SnapshotStore } from '../replication/index.js';
import { loadTableSchemas, openTransport, schemaTopicOf } from '../service/index.js';
import { encodeSnapshot, type RowCodec } from '../codec/index.js';
import type { PartitionState } from '../state/index.js';
import type { EventLog } from '../streams/index.js';

/** Operator commands on snapshots: list, take (from the changelog) and restore (verify, optionally publish). */
export interface SnapshotCommand {
  readonly action: 'list' | 'take' | 'restore';
  readonly partitions: number[] | undefined;
  /** restore: the snapshot to verify and publish as current (default: verify the current one). */
  readonly id?: string | undefined;
}

export async function snapshotCommand(app: App, config: Config, command: SnapshotCommand, logger: Logger, out: (line: string) => void): Promise<void> {
  const compiled = compileApp(app, config.settings);
  const store = await createSnapshotStore(compiled.name, config.redis, logger);
  if (!store) throw new ConfigError('snapshots need Redis: set redis.url (FARAD_REDIS_URL)', { field: 'redis.url' });
  const partitions = command.partitions ?? Array.from({ length: compiled.partitions }, (_, p) => p);
  try {
    if (command.action === 'list') return await list(store, command.partitions, out);
    const log = await openTransport(compiled, config, logger);
    try {
      await log.ensureTopics([schemaTopicOf(compiled)]);
      const { rows } = await loadTableSchemas(compiled, log, logger);
      const snapshots = new Snapshots(compiled.name, store, rows, 0, logger);
      for (const partition of partitions) {
        if (command.action === 'take') await take(compiled, log, snapshots, store, rows, partition, logger, out);
        else await restore(compiled, log, snapshots, store, rows, partition, command.id, logger, out);
      }
    } finally {
      await log.close();
    }
  } finally {
    await store.close();
  }
}

async function list(store: SnapshotStore, partitions: number[] | undefined, out: (line: string) => void): Promise<void> {
  const infos = (await store.list()).filter((i) => !partitions || partitions.includes(i.partition));
  out('partition  current  id                          taken at                  changelog offset        rows       bytes');
  for (const i of infos) {
    out(
      `${String(i.partition).padStart(9)}  ${(i.current ? 'yes' : '').padEnd(7)}  ${i.id.padEnd(26)}  ${new Date(i.takenAt).toISOString().padEnd(24)}  ${String(i.changelogOffset).padStart(16)}  ${String(i.rows).padStart(10)}  ${String(i.bytes).padStart(10)}`,
    );
  }
  if (infos.length === 0) out('(no snapshots)');
}

/**
 * Rebuilds a partition the way its owner restores it at a takeover (restorePartition): the
 * current (or the named) snapshot, then the changelog after it, with progress.
 */
async function rebuild(
  app: CompiledApp,
  log: EventLog,
  snapshots: Snapshots,
  store: SnapshotStore,
  rows: RowCodec,
  partition: number,
  id: string | undefined,
  logger: Logger,
  out: (line: string) => void,
): Promise<{ state: PartitionState; offset: number; fromSnapshot: number; seconds: number }> {
  if (id && !(await store.list(partition)).some((i) => i.id === id)) {
    throw new TransportError(`partition ${partition} has no snapshot ${id} (see: farad snapshot list)`, { partition });
  }
  let last = 0;
  const restored = await restorePartition({
    app,
    partition,
    end: await log.endOffset(app.changelogTopic, partition),
    readChangelog: (from) => log.readRange(app.changelogTopic, partition, from),
    rows,
    snapshots,
    snapshotId: id,
    logger,
    onProgress: (done) => {
      if (Date.now() - last < 500) return;
      last = Date.now();
      out(`  partition ${partition}: changelog offset ${done}…`);
    },
  });
  return { state: restored.copy.state, offset: restored.copy.offset, fromSnapshot: restored.fromOffset, seconds: restored.seconds };
}

async function take(app: CompiledApp, log: EventLog, snapshots: Snapshots, store: SnapshotStore, codec: RowCodec, partition: number, logger: Logger, out: (line: string) => void): Promise<void> {
  const { state, offset, seconds } = await rebuild(app, log, snapshots, store, codec, partition, undefined, logger, out);
  const takenAt = Date.now();
  const bytes = encodeSnapshot(state, { app: app.name, changelogOffset: offset, takenAt }, codec);
  const rows = [...state.sizes().values()].reduce((a, b) => a + b, 0);
  const id = await store.save(partition, bytes, { partition, changelogOffset: offset, takenAt, rows });
  out(`partition ${partition}: snapshot ${id} at changelog offset ${offset}, ${rows} rows, ${bytes.length} bytes (${seconds.toFixed(2)} s)`);
}

async function restore(
  app: CompiledApp,
  log: EventLog,
  snapshots: Snapshots,
  store: SnapshotStore,
  codec: RowCodec,
  partition: number,
  id: string | undefined,
  logger: Logger,
  out: (line: string) => void,
): Promise<void> {
  const { state, offset, fromSnapshot, seconds } = await rebuild(app, log, snapshots, store, codec, partition, id, logger, out);
  const rows = [...state.sizes().values()].reduce((a, b) => a + b, 0);
  out(`partition ${partition}: restored ${rows} rows from snapshot (offset ${fromSnapshot}) + ${offset - fromSnapshot} changelog records in ${seconds.toFixed(2)} s`);
  if (id) {
    await store.publish(partition, id);
    out(`partition ${partition}: snapshot ${id} is now current`);
  }
}
