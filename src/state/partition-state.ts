import type avro from 'avsc';
import { HandlerContractError, SchemaValidationError, WrongPartitionError } from '../errors.js';
import { partitionForKey } from './partitioner.js';
import { compareKeys, firstIndexAfter, TableStore, type Key } from './table-store.js';
import { checkKey, deepFreeze, describeInvalid, type TableKeyType } from './validate.js';

/** What the state layer needs to know about a table. */
export interface TableSchema {
  readonly name: string;
  readonly keyType: TableKeyType;
  readonly valueType: avro.Type;
  /** `partitioned`: keys must hash to the partition; `local`: any key, per-partition rows. */
  readonly scope: 'partitioned' | 'local';
}

/** One changed row of a batch: the value it has now, or `undefined` when deleted (a tombstone). */
export interface RowChange {
  readonly table: string;
  readonly key: Key;
  readonly value: unknown;
}

export interface ScanRequest {
  after?: Key | undefined;
  limit?: number | undefined;
}

const ABSENT: unique symbol = Symbol('absent');
type Prior = unknown | typeof ABSENT;

interface UndoEntry {
  readonly table: string;
  readonly store: TableStore;
  readonly key: Key;
  readonly prev: Prior;
}

interface CommittedRow {
  readonly prev: Prior;
  /** Index in the undo log of the write that captured `prev`. */
  readonly undoIndex: number;
}

/** Where the handler currently is, for error messages. */
export interface EventPosition {
  eventType?: string | undefined;
  offset?: number | undefined;
}

/**
 * The tables of one partition plus the open transaction. Every write in a batch is recorded in
 * an undo log, so one event (`savepoint`/`rollbackTo`) or the whole batch (`rollbackBatch`) can be
 * undone. The first value each key had in the batch is kept as its committed value, which gives
 * queries read-committed reads while a batch is open and gives the changelog its batch delta.
 */
export class PartitionState {
  private readonly stores = new Map<string, TableStore>();
  private readonly schemas = new Map<string, TableSchema>();
  private undo: UndoEntry[] = [];
  private readonly committed = new Map<string, Map<Key, CommittedRow>>();
  /** Position of the event being handled; set by the batch processor for error context. */
  readonly position: EventPosition = {};

  constructor(
    readonly partition: number,
    readonly partitionCount: number,
    tables: Iterable<TableSchema>,
  ) {
    for (const table of tables) {
      this.stores.set(table.name, new TableStore());
      this.schemas.set(table.name, table);
      this.committed.set(table.name, new Map());
    }
  }

  tableNames(): IterableIterator<string> {
    return this.stores.keys();
  }

  schemaOf(table: string): TableSchema {
    const schema = this.schemas.get(table);
    if (!schema) throw new HandlerContractError(`no table "${table}"`, { table, partition: this.partition });
    return schema;
  }

  store(table: string): TableStore {
    const store = this.stores.get(table);
    if (!store) throw new HandlerContractError(`no table "${table}"`, { table, partition: this.partition });
    return store;
  }

  /** Rows per table, for metrics. */
  sizes(): Map<string, number> {
    return new Map([...this.stores].map(([name, store]) => [name, store.size]));
  }

  // ---- transactional writes -------------------------------------------------------------

  /** Writes (value) or deletes (undefined) a row inside the open transaction. */
  write(table: string, key: Key, value: unknown): void {
    const store = this.store(table);
    const prev = store.has(key) ? store.get(key) : ABSENT;
    const dirty = this.committed.get(table)!;
    if (!dirty.has(key)) dirty.set(key, { prev, undoIndex: this.undo.length });
    this.undo.push({ table, store, key, prev });
    if (value === undefined) store.delete(key);
    else store.set(key, value);
  }

  savepoint(): number {
    return this.undo.length;
  }

  /** Undoes every write made after `savepoint`, newest first. */
  rollbackTo(savepoint: number): void {
    for (let i = this.undo.length - 1; i >= savepoint; i--) {
      const entry = this.undo[i]!;
      if (entry.prev === ABSENT) entry.store.delete(entry.key);
      else entry.store.set(entry.key, entry.prev);
      const dirty = this.committed.get(entry.table)!;
      if (dirty.get(entry.key)?.undoIndex === i) dirty.delete(entry.key);
    }
    this.undo.length = savepoint;
  }

  /** Undoes the whole open batch. */
  rollbackBatch(): void {
    this.rollbackTo(0);
  }

  /** Rows changed by the open batch with their current values: the changelog delta. */
  changes(): RowChange[] {
    const out: RowChange[] = [];
    for (const [table, dirty] of this.committed) {
      const store = this.stores.get(table)!;
      for (const key of dirty.keys()) out.push({ table, key, value: store.get(key) });
    }
    return out;
  }

  /** The open batch is durable: its writes become the committed state. */
  markCommitted(): void {
    this.undo = [];
    for (const dirty of this.committed.values()) dirty.clear();
  }

  get inTransaction(): boolean {
    return this.undo.length > 0;
  }

  /** Applies a row from the changelog or a snapshot, outside any transaction. */
  applyRestored(table: string, key: Key, value: unknown): void {
    const store = this.stores.get(table);
    if (!store) return; // a table the app no longer has
    if (value === undefined) store.delete(key);
    else store.set(key, deepFreeze(value));
  }

  clear(): void {
    this.undo = [];
    for (const store of this.stores.values()) store.clear();
    for (const dirty of this.committed.values()) dirty.clear();
  }

  // ---- read-committed reads ---------------------------------------------------------------

  readCommitted(table: string, key: Key): unknown {
    const row = this.committed.get(table)?.get(key);
    if (row) return row.prev === ABSENT ? undefined : row.prev;
    return this.store(table).get(key);
  }

  /** Committed rows in ascending key order. */
  scanCommitted(table: string, request: ScanRequest = {}): Array<[Key, unknown]> {
    const store = this.store(table);
    const dirty = this.committed.get(table)!;
    const limit = request.limit ?? Infinity;
    const live = store.keys();
    // Keys deleted by the open batch are committed rows the live store no longer has.
    const deleted = dirty.size === 0 ? [] : [...dirty].filter(([k, r]) => r.prev !== ABSENT && !store.has(k)).map(([k]) => k).sort(compareKeys);
    const out: Array<[Key, unknown]> = [];
    let i = firstIndexAfter(live, request.after);
    let j = firstIndexAfter(deleted, request.after);
    while (out.length < limit && (i < live.length || j < deleted.length)) {
      let key: Key;
      if (j >= deleted.length || (i < live.length && compareKeys(live[i]!, deleted[j]!) < 0)) key = live[i++]!;
      else key = deleted[j++]!;
      const value = this.readCommitted(table, key);
      if (value !== undefined) out.push([key, value]);
    }
    return out;
  }

  committedSize(table: string): number {
    const store = this.store(table);
    let size = store.size;
    for (const [key, row] of this.committed.get(table)!) {
      const nowPresent = store.has(key);
      if (row.prev === ABSENT && nowPresent) size--;
      else if (row.prev !== ABSENT && !nowPresent) size++;
    }
    return size;
  }

  // ---- checks made on every handler write --------------------------------------------------

  /**
   * Validates a handler's put (throws a typed error naming the table, key and field) and returns
   * the row to store: with the defaults of fields it left out filled in, as the changelog round
   * trip would give them, so a restored or standby copy equals the active one.
   */
  checkWrite(table: string, key: Key, value: unknown): unknown {
    this.checkWritableKey(table, key);
    const type = this.schemaOf(table).valueType;
    const invalid = describeInvalid(type, value);
    if (invalid) {
      throw new SchemaValidationError(`table "${table}", key ${JSON.stringify(key)}: ${invalid.message}`, {
        ...this.errorContext(table),
        field: invalid.field,
      });
    }
    return hasDefaults(type) ? type.clone(value) : value;
  }

  /** Validates the key of a handler's put or delete: its type and its partition. */
  checkWritableKey(table: string, key: Key): void {
    const schema = this.schemaOf(table);
    const keyProblem = checkKey(schema.keyType, key);
    if (keyProblem) throw new HandlerContractError(`table "${table}": key ${JSON.stringify(key)} ${keyProblem}`, this.errorContext(table));
    if (schema.scope === 'partitioned') {
      const owner = partitionForKey(String(key), this.partitionCount);
      if (owner !== this.partition) {
        throw new WrongPartitionError(
          `table "${table}": key ${JSON.stringify(key)} belongs to partition ${owner}, not ${this.partition}; ` +
            'a handler may only write keys of its own partition (emit an event keyed by that key instead)',
          this.errorContext(table),
        );
      }
    }
  }

  private errorContext(table: string) {
    return { table, partition: this.partition, ...this.position };
  }
}

const withDefaults = new WeakMap<avro.Type, boolean>();

/** True when a value of `type` may leave out fields that have defaults (records, at any depth). */
function hasDefaults(type: avro.Type): boolean {
  const known = withDefaults.get(type);
  if (known !== undefined) return known;
  withDefaults.set(type, false); // recursive types: assume none while looking
  let found = false;
  const inner = type as unknown as { fields?: Array<{ type: avro.Type; defaultValue(): unknown }>; types?: avro.Type[]; itemsType?: avro.Type; valuesType?: avro.Type };
  for (const field of inner.fields ?? []) if (field.defaultValue() !== undefined || hasDefaults(field.type)) found = true;
  for (const branch of inner.types ?? []) if (hasDefaults(branch)) found = true;
  if (inner.itemsType && hasDefaults(inner.itemsType)) found = true;
  if (inner.valuesType && hasDefaults(inner.valuesType)) found = true;
  withDefaults.set(type, found);
  return found;
}
