/** Table keys: strings or safe integers, per the table's key type. */
export type Key = string | number;

/**
 * Ascending key order: numbers numerically, strings by UTF-16 code unit (JavaScript's `<`).
 * A table's keys are all of one type, so mixed comparisons never happen.
 */
export function compareKeys(a: Key, b: Key): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One table's rows in one partition. A hash map for point access plus a lazily rebuilt sorted
 * key array for ordered scans: point writes stay O(1), and the sort is paid only by the first
 * scan after keys were added or removed.
 */
export class TableStore<V = unknown> {
  private readonly rows = new Map<Key, V>();
  private sortedKeys: Key[] | undefined;

  get size(): number {
    return this.rows.size;
  }

  get(key: Key): V | undefined {
    return this.rows.get(key);
  }

  has(key: Key): boolean {
    return this.rows.has(key);
  }

  set(key: Key, value: V): void {
    if (this.sortedKeys && !this.rows.has(key)) this.sortedKeys = undefined;
    this.rows.set(key, value);
  }

  delete(key: Key): boolean {
    const existed = this.rows.delete(key);
    if (existed) this.sortedKeys = undefined;
    return existed;
  }

  clear(): void {
    this.rows.clear();
    this.sortedKeys = undefined;
  }

  /** All keys in ascending order. The array is shared: do not mutate it. */
  keys(): readonly Key[] {
    this.sortedKeys ??= [...this.rows.keys()].sort(compareKeys);
    return this.sortedKeys;
  }

  entries(): IterableIterator<[Key, V]> {
    return this.rows.entries();
  }
}

/** Index of the first key strictly greater than `after` in an ascending array. */
export function firstIndexAfter(keys: readonly Key[], after: Key | undefined): number {
  if (after === undefined) return 0;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid]!, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Rows of `keys` (ascending) after `after`, at most `limit`, read through `get`. */
export function scanSorted<V>(
  keys: readonly Key[],
  get: (key: Key) => V,
  options: { after?: Key | undefined; limit?: number | undefined } = {},
): Array<[Key, V]> {
  const limit = options.limit ?? Infinity;
  const out: Array<[Key, V]> = [];
  for (let i = firstIndexAfter(keys, options.after); i < keys.length && out.length < limit; i++) {
    const key = keys[i]!;
    out.push([key, get(key)]);
  }
  return out;
}
