import type { Config } from '../config/index.js';
import { RepartitionError } from '../errors.js';
import type { Logger } from '../log.js';
import { restorePartition } from '../partition/index.js';
import { compileApp, type App } from '../procedures/index.js';
import { relayout, type RelayoutReport, type StateRow } from '../repartition/relayout.js';
import { createSnapshotStore, Snapshots } from '../replication/index.js';
import { loadTableSchemas, openTransport, schemaTopicOf } from '../service/index.js';

export interface RepartitionCommand {
  readonly partitions: number;
  /** Only say what the move would do (the only mode this version has). */
  readonly plan: boolean;
}

/** The plan's answer: what the move would write, per new partition and table. */
export interface RepartitionPlan {
  readonly app: string;
  readonly from: number;
  readonly to: number;
  readonly rowsRead: number;
  /** Per new partition: table → rows. */
  readonly partitions: ReadonlyArray<Readonly<Record<string, number>>>;
  readonly report: RelayoutReport;
}

/**
 * `farad repartition --app <dir> --partitions N --plan`: reads every partition's state the way
 * its owner restores it (snapshot when Redis is configured, then the changelog), lays it out for
 * N partitions and reports where the rows would go. It changes nothing; reads only, so it is safe
 * while farad runs on Kafka (the embedded log's data directory is locked by a running farad).
 */
export async function repartitionCommand(app: App, config: Config, command: RepartitionCommand, logger: Logger, out: (line: string) => void): Promise<RepartitionPlan> {
  const compiled = compileApp(app, config.settings);
  if (!command.plan) {
    throw new RepartitionError(
      `moving "${compiled.name}" to ${command.partitions} partitions is not available in this version: \`--plan\` shows what the move would do (docs/repartition.md describes the move)`,
    );
  }
  // Refusals that need no state come first (a smaller count, a local table without regroup).
  relayout(compiled, compiled.partitions, command.partitions, () => []);
  const store = await createSnapshotStore(compiled.name, config.redis, logger);
  const log = await openTransport(compiled, config, logger);
  try {
    await log.ensureTopics([schemaTopicOf(compiled)]);
    const { rows } = await loadTableSchemas(compiled, log, logger);
    const snapshots = store ? new Snapshots(compiled.name, store, rows, 0, logger) : undefined;
    const old: StateRow[][] = [];
    let rowsRead = 0;
    for (let partition = 0; partition < compiled.partitions; partition++) {
      const restored = await restorePartition({
        app: compiled,
        partition,
        end: await log.endOffset(compiled.changelogTopic, partition),
        readChangelog: (from) => log.readRange(compiled.changelogTopic, partition, from),
        rows,
        snapshots,
        logger,
      });
      const state = restored.copy.state;
      const list: StateRow[] = [];
      for (const table of state.tableNames()) for (const [key, value] of state.scanCommitted(table)) list.push({ table, key, value });
      old.push(list);
      rowsRead += list.length;
      out(`read partition ${partition + 1}/${compiled.partitions}: ${list.length} rows (${restored.source}, ${restored.records} changelog records)`);
    }
    const { partitions, report } = relayout(compiled, compiled.partitions, command.partitions, (p) => old[p]!);
    const counts = partitions.map((tables) => Object.fromEntries([...tables].map(([table, rowsOf]) => [table, rowsOf.size])));
    const plan: RepartitionPlan = { app: compiled.name, from: compiled.partitions, to: command.partitions, rowsRead, partitions: counts, report };
    out(`plan: ${compiled.name} from ${plan.from} to ${plan.to} partitions: ${report.moved} rows move, ${report.stayed} stay, ${report.merged} local rows merged, ${report.reset} reset, ${report.schedulesReplanned} schedules re-planned, ${report.offsetsDropped} input offset rows not carried (new topic generations start at 0)`);
    counts.forEach((tables, p) => out(`  new partition ${p}: ${Object.entries(tables).map(([t, n]) => `${t} ${n}`).join(', ') || 'no rows'}`));
    out('nothing was changed (--plan)');
    out(JSON.stringify(plan));
    return plan;
  } finally {
    await log.close();
    await store?.close();
  }
}
