/** Checks what a caller names in a read: the table, a key, a page size. */
import { InvalidParameterError, UnknownTableError } from '../errors.js';
import type { CompiledApp, CompiledTable } from '../procedures/index.js';
import type { Key } from '../state/index.js';

/** Largest page a caller may ask for. */
export const MAX_PAGE = 1000;
/** Page size when the caller names none. */
export const DEFAULT_PAGE = 100;

/** A partitioned, partition-local or global table of the app, by name. */
export function findTable(app: CompiledApp, name: string): CompiledTable {
  const table = app.tables.get(name) ?? app.globalTables.get(name);
  if (table) return table;
  const known = [...app.tables.values(), ...app.globalTables.values()]
    .filter((t) => t.system !== true)
    .map((t) => t.name)
    .join(', ');
  throw new UnknownTableError(`no table "${name}"; tables: ${known || 'none'}`, { table: name });
}

/** A key as text (a path segment, `after`), typed as the table's keys are. */
export function parseKey(table: CompiledTable, text: string): Key {
  if (table.keyType === 'string') return text;
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new InvalidParameterError('bad_key', `table "${table.name}" has ${table.keyType} keys; "${text}" is not an integer`, { table: table.name });
  }
  return n;
}

/** A page size from 1 to `max` (MAX_PAGE; internal scans ask for one row more than a page). */
export function parseLimit(text: string | undefined, max = MAX_PAGE): number {
  if (text === undefined) return DEFAULT_PAGE;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidParameterError('bad_limit', `limit must be an integer from 1 to ${max}`, { field: 'limit' });
  return n;
}
