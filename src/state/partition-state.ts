import type avro from 'avsc';
import { HandlerContractError, SchemaValidationError, WrongPartitionError } from '../errors.js';
import { partitionForKey } from './partitioner.js';
import { compareKeys, firstIndexAfter, TableStore, type Key } from './table-store.js';
import { checkKey, describeInvalid, fitsSchema, freezerFor, type TableKeyType } from './validate.js';

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

/**
 * One table of the partition, looked up once (a handler's table view keeps it): its rows,
 * schema and the open batch's changed keys.
 */
export interface TableSlot {
  readonly schema: TableSchema;
  readonly store: TableStore;
  /** Keys the open batch changed → index in the undo log of the write that saw their committed value. */
  readonly dirty: Map<Key, number>;
  /** Freezes a row of this table (compiled from its schema). */
  readonly freeze: (row: unknown) => unknown;
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
  private readonly slots = new Map<string, TableSlot>();
  // The undo log as parallel arrays: a write allocates no object.
  private undoSlots: TableSlot[] = [];
  private undoKeys: Key[] = [];
  private undoPrev: Prior[] = [];
  /** Position of the event being handled; set by the batch processor for error context. */
  readonly position: EventPosition = {};

  constructor(
    readonly partition: number,
    readonly partitionCount: number,
    tables: Iterable<TableSchema>,
  ) {
    for (const table of tables) {
      this.slots.set(table.name, { schema: table, store: new TableStore(), dirty: new Map(), freeze: freezerFor(table.valueType) });
    }
  }

  tableNames(): IterableIterator<string> {
    return this.slots.keys();
  }

  slot(table: string): TableSlot {
    const slot = this.slots.get(table);
    if (!slot) throw new HandlerContractError(`no table "${table}"`, { table, partition: this.partition });
    return slot;
  }

  schemaOf(table: string): TableSchema {
    return this.slot(table).schema;
  }

  store(table: string): TableStore {
    return this.slot(table).store;
  }

  /** Rows per table, for metrics. */
  sizes(): Map<string, number> {
    return new Map([...this.slots].map(([name, slot]) => [name, slot.store.size]));
  }

  // ---- transactional writes -------------------------------------------------------------

  /** Writes (value) or deletes (undefined) a row inside the open transaction. */
  write(table: string, key: Key, value: unknown): void {
    this.writeTo(this.slot(table), key, value);
  }

  writeTo(slot: TableSlot, key: Key, value: unknown): void {
    const { store, dirty } = slot;
    // Stored rows are never undefined: undefined means absent.
    const stored = store.get(key);
    const at = this.undoKeys.length;
    if (!dirty.has(key)) dirty.set(key, at);
    this.undoSlots.push(slot);
    this.undoKeys.push(key);
    this.undoPrev.push(stored === undefined ? ABSENT : stored);
    if (value === undefined) store.delete(key);
    else store.set(key, value);
  }

  savepoint(): number {
    return this.undoKeys.length;
  }

  /** Undoes every write made after `savepoint`, newest first. */
  rollbackTo(savepoint: number): void {
    for (let i = this.undoKeys.length - 1; i >= savepoint; i--) {
      const slot = this.undoSlots[i]!;
      const key = this.undoKeys[i]!;
      const prev = this.undoPrev[i];
      if (prev === ABSENT) slot.store.delete(key);
      else slot.store.set(key, prev);
      if (slot.dirty.get(key) === i) slot.dirty.delete(key);
    }
    this.undoSlots.length = savepoint;
    this.undoKeys.length = savepoint;
    this.undoPrev.length = savepoint;
  }

  /** Undoes the whole open batch. */
  rollbackBatch(): void {
    this.rollbackTo(0);
  }

  /** Rows changed by the open batch with their current values: the changelog delta. */
  changes(): RowChange[] {
    const out: RowChange[] = [];
    for (const [table, { store, dirty }] of this.slots) {
      for (const key of dirty.keys()) out.push({ table, key, value: store.get(key) });
    }
    return out;
  }

  /** The open batch is durable: its writes become the committed state. */
  markCommitted(): void {
    this.undoSlots = [];
    this.undoKeys = [];
    this.undoPrev = [];
    for (const slot of this.slots.values()) slot.dirty.clear();
  }

  get inTransaction(): boolean {
    return this.undoKeys.length > 0;
  }

  /** Applies a row from the changelog or a snapshot, outside any transaction. */
  applyRestored(table: string, key: Key, value: unknown): void {
    const slot = this.slots.get(table);
    if (!slot) return; // a table the app no longer has
    if (value === undefined) slot.store.delete(key);
    else slot.store.set(key, slot.freeze(value));
  }

  clear(): void {
    this.markCommitted();
    for (const slot of this.slots.values()) slot.store.clear();
  }

  /** The committed value of a key the open batch changed (ABSENT: it had none); undefined if unchanged. */
  private committedPrior(slot: TableSlot, key: Key): Prior | undefined {
    const at = slot.dirty.get(key);
    return at === undefined ? undefined : this.undoPrev[at];
  }

  // ---- read-committed reads ---------------------------------------------------------------

  readCommitted(table: string, key: Key): unknown {
    const slot = this.slot(table);
    const prior = this.committedPrior(slot, key);
    if (prior !== undefined) return prior === ABSENT ? undefined : prior;
    return slot.store.get(key);
  }

  /** Committed rows in ascending key order. */
  scanCommitted(table: string, request: ScanRequest = {}): Array<[Key, unknown]> {
    const slot = this.slot(table);
    const { store, dirty } = slot;
    const limit = request.limit ?? Infinity;
    const live = store.keys();
    // Keys deleted by the open batch are committed rows the live store no longer has.
    const deleted = dirty.size === 0 ? [] : [...dirty.keys()].filter((k) => this.committedPrior(slot, k) !== ABSENT && !store.has(k)).sort(compareKeys);
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
    const slot = this.slot(table);
    let size = slot.store.size;
    for (const key of slot.dirty.keys()) {
      const wasPresent = this.committedPrior(slot, key) !== ABSENT;
      const nowPresent = slot.store.has(key);
      if (!wasPresent && nowPresent) size--;
      else if (wasPresent && !nowPresent) size++;
    }
    return size;
  }

  // ---- checks made on every handler write --------------------------------------------------

  /**
   * Validates a handler's put (throws a typed error naming the table, key and field) and returns
   * the row to store: with the defaults of fields it left out filled in, as the changelog round
   * trip would give them, so a restored or standby copy equals the active one.
   */
  checkWrite(slot: TableSlot, key: Key, value: unknown): unknown {
    this.checkWritableKey(slot, key);
    const type = slot.schema.valueType;
    if (!fitsSchema(type, value)) {
      const name = slot.schema.name;
      const invalid = describeInvalid(type, value) ?? { field: '', message: `value does not match schema ${type.name ?? type.typeName}` };
      throw new SchemaValidationError(`table "${name}", key ${JSON.stringify(key)}: ${invalid.message}`, { ...this.errorContext(name), field: invalid.field });
    }
    return hasDefaults(type) ? type.clone(value) : value;
  }

  /** Validates the key of a handler's put or delete: its type and its partition. */
  checkWritableKey({ schema }: TableSlot, key: Key): void {
    const keyProblem = checkKey(schema.keyType, key);
    if (keyProblem) throw new HandlerContractError(`table "${schema.name}": key ${JSON.stringify(key)} ${keyProblem}`, this.errorContext(schema.name));
    if (schema.scope === 'partitioned') {
      const owner = partitionForKey(String(key), this.partitionCount);
      if (owner !== this.partition) {
        throw new WrongPartitionError(
          `table "${schema.name}": key ${JSON.stringify(key)} belongs to partition ${owner}, not ${this.partition}; ` +
            'a handler may only write keys of its own partition (emit an event keyed by that key instead)',
          this.errorContext(schema.name),
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
