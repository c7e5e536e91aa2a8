import { RepartitionError } from '../errors.js';
import { INPUT_OFFSETS_TABLE, MP_TABLE, SCHEDULE_KIND_PREFIX, TIMERS_TABLE, type CompiledApp, type CompiledTable, type TimerRow } from '../procedures/index.js';
import { partitionForKey, type Key } from '../state/index.js';

/** One committed row of a partition's state. */
export interface StateRow {
  readonly table: string;
  readonly key: Key;
  readonly value: unknown;
}

/** The rows of each new partition, table by table, and what became of the old ones. */
export interface Relayout {
  readonly partitions: ReadonlyArray<ReadonlyMap<string, ReadonlyMap<Key, unknown>>>;
  readonly report: RelayoutReport;
}

export interface RelayoutReport {
  /** Rows of partitioned tables (and keyed timers) now in another partition than before. */
  readonly moved: number;
  /** Rows of partitioned tables that stay in the partition they were in. */
  readonly stayed: number;
  /** Rows of local tables folded with their `merge` (one per old partition holding the key). */
  readonly merged: number;
  /** Rows of local tables declared `regroup: 'reset'`. */
  readonly reset: number;
  /** Scheduled procedures' timers: each new partition plans its own on its first batch. */
  readonly schedulesReplanned: number;
  /** Input offset rows: the new layout reads new topic generations from their start. */
  readonly offsetsDropped: number;
}

/**
 * Where every committed row of an app's `from` partitions goes when the app moves to `to`
 * partitions (pure; `farad repartition` writes the result as the new layout's changelog):
 * a partitioned table's row, and a keyed timer, to the partition its key hashes to among `to`;
 * a local table's rows as its `regroup` declares; scheduled timers and input offsets are not
 * carried (the new partitions plan their schedules and read the new topic generations from the
 * start). Refuses (RepartitionError) a smaller count, a local table without `regroup`, and a
 * multi-partition round in flight (its rows name the old partitions).
 */
export function relayout(app: CompiledApp, from: number, to: number, rowsOf: (partition: number) => Iterable<StateRow>): Relayout {
  checkCounts(app, from, to);
  for (const table of app.tables.values()) {
    if (table.scope === 'local' && !table.system && table.regroup === undefined) {
      throw new RepartitionError(
        `table "${table.name}" is local: its rows are per-partition aggregates and no key says where they belong; declare what becomes of them in its table(): regroup: { merge(a, b) } (folded into the partition the key hashes to) or regroup: 'reset' (dropped, rebuilt from new input)`,
        { table: table.name },
      );
    }
  }
  const out = Array.from({ length: to }, () => new Map<string, Map<Key, unknown>>());
  const place = (partition: number, table: string, key: Key, value: unknown): void => {
    let rows = out[partition]!.get(table);
    if (!rows) out[partition]!.set(table, (rows = new Map()));
    rows.set(key, value);
  };
  let moved = 0;
  let stayed = 0;
  let merged = 0;
  let reset = 0;
  let schedulesReplanned = 0;
  let offsetsDropped = 0;
  // Local rows folded across old partitions, in partition order: table → key → value.
  const folded = new Map<string, Map<Key, unknown>>();
  for (let p = 0; p < from; p++) {
    for (const row of rowsOf(p)) {
      const table = tableOf(app, row.table, p);
      if (table.name === INPUT_OFFSETS_TABLE) {
        offsetsDropped++;
        continue;
      }
      if (table.name === MP_TABLE) {
        throw new RepartitionError(
          `partition ${p} holds a multi-partition round in flight (row ${JSON.stringify(row.key)} of ${MP_TABLE}); the move waits until every round is decided, so run it again then`,
          { partition: p, table: MP_TABLE },
        );
      }
      if (table.name === TIMERS_TABLE) {
        const timer = row.value as TimerRow;
        if (timer.kind.startsWith(SCHEDULE_KIND_PREFIX)) {
          schedulesReplanned++;
          continue;
        }
        const target = partitionForKey(timer.key, to);
        if (target === p) stayed++;
        else moved++;
        place(target, table.name, row.key, row.value);
        continue;
      }
      if (table.scope === 'partitioned') {
        const target = partitionForKey(String(row.key), to);
        if (target === p) stayed++;
        else moved++;
        place(target, table.name, row.key, row.value);
        continue;
      }
      const regroup = table.regroup!;
      if (regroup === 'reset') {
        reset++;
        continue;
      }
      merged++;
      let rows = folded.get(table.name);
      if (!rows) folded.set(table.name, (rows = new Map()));
      rows.set(row.key, rows.has(row.key) ? regroup.merge(rows.get(row.key), row.value) : row.value);
    }
  }
  for (const [table, rows] of folded) for (const [key, value] of rows) place(partitionForKey(String(key), to), table, key, value);
  return { partitions: out, report: { moved, stayed, merged, reset, schedulesReplanned, offsetsDropped } };
}

function checkCounts(app: CompiledApp, from: number, to: number): void {
  if (from !== app.partitions) throw new RepartitionError(`app "${app.name}" has ${app.partitions} partitions, not ${from}`);
  if (!Number.isInteger(to) || to <= from) {
    throw new RepartitionError(`--partitions must be an integer larger than today's ${from} (farad grows an app; it does not shrink one), got ${to}`);
  }
}

function tableOf(app: CompiledApp, name: string, partition: number): CompiledTable {
  const table = app.tables.get(name);
  if (!table) throw new RepartitionError(`partition ${partition} holds rows of table "${name}", which the app does not declare; restore the app's tables first`, { partition, table: name });
  return table;
}
