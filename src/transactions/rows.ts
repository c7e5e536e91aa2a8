import { HandlerContractError, SchemaValidationError } from '../errors.js';
import type { CompiledApp } from '../procedures/index.js';
import { checkKey, deepFreeze, describeInvalid, type Key, type TableKeyType } from '../state/index.js';

const ABSENT: unique symbol = Symbol('absent');
type Slot = unknown | typeof ABSENT;

/** Identifies one row across tables (table names have no NUL; keys may). */
export function rowId(table: string, key: Key): string {
  return `${table}\u0000${typeof key}\u0000${key}`;
}

/**
 * The rows a round of multi-partition transactions may touch: what the participants read at
 * their positions, plus the writes of the round's transactions in order, each undoable on its
 * own (a transaction that throws leaves no trace).
 */
export class RoundRows {
  private readonly read = new Map<string, { table: string; key: Key; value: Slot }>();
  private readonly written = new Map<string, { table: string; key: Key; value: Slot }>();
  private undo: Array<{ id: string; prev: { table: string; key: Key; value: Slot } | undefined }> = [];

  constructor(
    private readonly app: CompiledApp,
    /** True when every row of every partition was read (`all` procedures): a missing row is absent. */
    private readonly complete: boolean,
  ) {}

  /** A row a participant read (value undefined: it has none). */
  addRead(table: string, key: Key, value: unknown): void {
    this.read.set(rowId(table, key), { table, key, value: value === undefined ? ABSENT : deepFreeze(value) });
  }

  get(table: string, key: Key, declared: ReadonlySet<string> | undefined): unknown {
    this.checkAccess(table, key, declared, 'get');
    const id = rowId(table, key);
    const written = this.written.get(id);
    const slot = written ? written.value : this.read.get(id)?.value;
    return slot === ABSENT || slot === undefined ? undefined : slot;
  }

  /** Rows of a table in ascending key order (`all` procedures only). */
  scan(table: string): Array<[Key, unknown]> {
    if (!this.complete) throw new HandlerContractError(`table "${table}": scan() needs every partition (multiPartition: 'all'); a keyed transaction sees only its keys' rows`, { table });
    const keys = new Map<string, Key>();
    for (const [id, r] of this.read) if (r.table === table) keys.set(id, r.key);
    for (const [id, w] of this.written) if (w.table === table) keys.set(id, w.key);
    const out: Array<[Key, unknown]> = [];
    for (const key of [...keys.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      const value = this.get(table, key, undefined);
      if (value !== undefined) out.push([key, value]);
    }
    return out;
  }

  put(table: string, key: Key, value: unknown, declared: ReadonlySet<string> | undefined): void {
    this.checkAccess(table, key, declared, 'put');
    const type = this.app.tables.get(table)!.valueType;
    const invalid = describeInvalid(type, value);
    if (invalid) throw new SchemaValidationError(`table "${table}", key ${JSON.stringify(key)}: ${invalid.message}`, { table, field: invalid.field });
    this.set(table, key, deepFreeze(type.clone(value)));
  }

  delete(table: string, key: Key, declared: ReadonlySet<string> | undefined): boolean {
    const existed = this.get(table, key, declared) !== undefined;
    this.set(table, key, ABSENT);
    return existed;
  }

  savepoint(): number {
    return this.undo.length;
  }

  rollbackTo(savepoint: number): void {
    for (let i = this.undo.length - 1; i >= savepoint; i--) {
      const { id, prev } = this.undo[i]!;
      if (prev === undefined) this.written.delete(id);
      else this.written.set(id, prev);
    }
    this.undo.length = savepoint;
  }

  /** The round's writes: the final value of every row written (undefined: deleted). */
  writes(): Array<{ table: string; key: Key; value: unknown }> {
    return [...this.written.values()].map(({ table, key, value }) => ({ table, key, value: value === ABSENT ? undefined : value }));
  }

  private set(table: string, key: Key, value: Slot): void {
    const id = rowId(table, key);
    this.undo.push({ id, prev: this.written.get(id) });
    this.written.set(id, { table, key, value });
  }

  private checkAccess(table: string, key: Key, declared: ReadonlySet<string> | undefined, operation: string): void {
    const schema = this.app.tables.get(table);
    if (!schema || schema.system || schema.scope !== 'partitioned') {
      throw new HandlerContractError(`${operation}: table "${table}" is not a partitioned table of the app (multi-partition transactions see partitioned tables)`, { table });
    }
    const problem = checkKey(schema.keyType as TableKeyType, key);
    if (problem) throw new HandlerContractError(`table "${table}": key ${JSON.stringify(key)} ${problem}`, { table });
    if (declared && !declared.has(String(key))) {
      throw new HandlerContractError(
        `table "${table}": key ${JSON.stringify(key)} is not one of the keys this transaction declared (${[...declared].map((k) => JSON.stringify(k)).join(', ')}); add it to multiPartition.keys`,
        { table },
      );
    }
  }
}

/** The key of `table` a declared partition key names, or undefined when it cannot be one. */
export function tableKeyFor(keyType: TableKeyType, key: string): Key | undefined {
  if (keyType === 'string') return key;
  if (!/^-?\d+$/.test(key)) return undefined;
  const n = Number(key);
  return checkKey(keyType, n) ? undefined : n;
}
