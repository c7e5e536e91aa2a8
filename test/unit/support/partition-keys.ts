import { partitionForKey } from '../../../src/state/index.js';

/** The first `n` keys `prefix0, prefix1, ...` that hash to `partition` of `count` partitions. */
export function keysOf(partition: number, count: number, n: number, prefix = 'k'): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const key = `${prefix}${i}`;
    if (partitionForKey(key, count) === partition) out.push(key);
  }
  return out;
}

/** The first `n` non-negative integers whose decimal form hashes to `partition` of `count`. */
export function intKeysOf(partition: number, count: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; out.length < n; i++) if (partitionForKey(String(i), count) === partition) out.push(i);
  return out;
}
