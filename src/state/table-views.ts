import type { PartitionState, ScanRequest, TableSlot } from './partition-state.js';
import { compareKeys, scanSorted, type Key } from './table-store.js';

/** The read side every table view offers (matches the authoring API's `ReadonlyTable`). */
export interface TableReader {
  get(key: Key): unknown;
  has(key: Key): boolean;
  scan(options?: ScanRequest): Array<[Key, unknown]>;
  readonly size: number;
}

export interface TableWriter extends TableReader {
  put(key: Key, value: unknown): void;
  delete(key: Key): boolean;
}

const alwaysWritable = (): void => {};

/** A table as a handler sees it: live reads, writes checked and recorded in the undo log. */
export class HandlerTable implements TableWriter {
  private readonly slot: TableSlot;
  private readonly putCall: string;
  private readonly deleteCall: string;

  constructor(
    private readonly state: PartitionState,
    table: string,
    /** Throws when writes are not allowed now (the handler that holds this table returned). */
    private readonly assertWritable: (operation: string) => void = alwaysWritable,
  ) {
    this.slot = state.slot(table);
    this.putCall = `${table}.put()`;
    this.deleteCall = `${table}.delete()`;
  }

  get(key: Key): unknown {
    return this.slot.store.get(key);
  }

  has(key: Key): boolean {
    return this.slot.store.has(key);
  }

  get size(): number {
    return this.slot.store.size;
  }

  scan(options: ScanRequest = {}): Array<[Key, unknown]> {
    const { store } = this.slot;
    return scanSorted(store.keys(), (key) => store.get(key), options);
  }

  put(key: Key, value: unknown): void {
    this.assertWritable(this.putCall);
    const row = this.state.checkWrite(this.slot, key, value);
    this.state.writeTo(this.slot, key, this.slot.freeze(row));
  }

  delete(key: Key): boolean {
    this.assertWritable(this.deleteCall);
    this.state.checkWritableKey(this.slot, key);
    if (!this.slot.store.has(key)) return false;
    this.state.writeTo(this.slot, key, undefined);
    return true;
  }
}

/** A table as a query sees it: committed rows only, no writes. */
export class CommittedTable implements TableReader {
  constructor(
    private readonly state: PartitionState,
    private readonly table: string,
  ) {}

  get(key: Key): unknown {
    return this.state.readCommitted(this.table, key);
  }

  has(key: Key): boolean {
    return this.state.readCommitted(this.table, key) !== undefined;
  }

  get size(): number {
    return this.state.committedSize(this.table);
  }

  scan(options: ScanRequest = {}): Array<[Key, unknown]> {
    return this.state.scanCommitted(this.table, options);
  }
}

/** A global table: the same frozen rows in every partition, read-only. */
export class GlobalTableView implements TableReader {
  private sorted: Key[] | undefined;

  constructor(private readonly rows: ReadonlyMap<Key, unknown>) {}

  get(key: Key): unknown {
    return this.rows.get(key);
  }

  has(key: Key): boolean {
    return this.rows.has(key);
  }

  get size(): number {
    return this.rows.size;
  }

  scan(options: ScanRequest = {}): Array<[Key, unknown]> {
    this.sorted ??= [...this.rows.keys()].sort(compareKeys);
    return scanSorted(this.sorted, (key) => this.rows.get(key), options);
  }
}
