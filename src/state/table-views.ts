import type { PartitionState, ScanRequest } from './partition-state.js';
import { compareKeys, scanSorted, type Key } from './table-store.js';
import { deepFreeze } from './validate.js';

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
  constructor(
    private readonly state: PartitionState,
    private readonly table: string,
    /** Throws when writes are not allowed now (the handler that holds this table returned). */
    private readonly assertWritable: (operation: string) => void = alwaysWritable,
  ) {}

  get(key: Key): unknown {
    return this.state.store(this.table).get(key);
  }

  has(key: Key): boolean {
    return this.state.store(this.table).has(key);
  }

  get size(): number {
    return this.state.store(this.table).size;
  }

  scan(options: ScanRequest = {}): Array<[Key, unknown]> {
    const store = this.state.store(this.table);
    return scanSorted(store.keys(), (key) => store.get(key), options);
  }

  put(key: Key, value: unknown): void {
    this.assertWritable(`${this.table}.put()`);
    const row = this.state.checkWrite(this.table, key, value);
    this.state.write(this.table, key, deepFreeze(row));
  }

  delete(key: Key): boolean {
    this.assertWritable(`${this.table}.delete()`);
    this.state.checkWritableKey(this.table, key);
    if (!this.state.store(this.table).has(key)) return false;
    this.state.write(this.table, key, undefined);
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
