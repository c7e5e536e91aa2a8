import { compareKeys, type Key } from '../state/index.js';
import type { ScannedRow } from './wire.js';

/** One page of a table scan; `next` is the `after` that resumes it, null on the last page. */
export interface Page {
  readonly rows: ScannedRow[];
  readonly next: Key | null;
}

/**
 * Cuts a page of `limit` rows from the rows gathered after the previous page (each source gave
 * up to `limit + 1`, so a longer list means there is more).
 *
 * A partition-local table holds a key in several partitions, and `after` resumes past a whole
 * key; so such a page ends on a key boundary and holds every row of its last key, or it would
 * skip rows.
 */
export function pageOf(gathered: readonly ScannedRow[], limit: number, partitionLocal: boolean): Page {
  const rows = [...gathered].sort((a, b) => compareKeys(a.key, b.key) || (a.partition ?? 0) - (b.partition ?? 0));
  let page = rows.slice(0, limit);
  let next: Key | null = rows.length > limit ? page[page.length - 1]!.key : null;
  if (next !== null && partitionLocal) {
    const lastKey = next;
    const cut = page.findIndex((r) => r.key === lastKey);
    if (cut > 0) {
      page.length = cut;
      next = page[cut - 1]!.key;
    } else {
      // The page is all one key: return all of its rows (at most one per partition, and each
      // partition's scan began with it), even if that is more than `limit`.
      page = rows.filter((r) => r.key === lastKey);
      next = rows.length > page.length ? lastKey : null;
    }
  }
  return { rows: page, next };
}
