import { isDeepStrictEqual } from 'node:util';
import { DeterminismError } from '../errors.js';
import type { PartitionState } from '../state/index.js';
import type { LogRecord } from '../streams/records.js';

/** The driver's checks: the same input must give the same records and the same state. */

export function firstDifference(a: readonly LogRecord[], b: readonly LogRecord[]): number | undefined {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) return i;
    if (x.timestamp !== y.timestamp || !sameBytes(x.key, y.key) || !sameBytes(x.value, y.value) || !isDeepStrictEqual({ ...x.headers }, { ...y.headers })) return i;
  }
  return undefined;
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}

export function describeRecord(record: LogRecord | undefined): string {
  if (!record) return 'no record';
  return `{key: ${JSON.stringify(record.key?.toString('utf8') ?? null)}, timestamp: ${record.timestamp}, ${record.value?.length ?? 0} value bytes}`;
}

export function assertSameState(expected: PartitionState, actual: PartitionState, what: string): void {
  for (const table of expected.tableNames()) {
    const a = expected.scanCommitted(table);
    const b = actual.scanCommitted(table);
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const [ka, va] = a[i] ?? [];
      const [kb, vb] = b[i] ?? [];
      if (ka !== kb || !isDeepStrictEqual(plain(va), plain(vb))) {
        throw new DeterminismError(`${what}: table ${table} differs at key ${JSON.stringify(ka ?? kb)}: ${JSON.stringify(va)} then ${JSON.stringify(vb)}`, { partition: expected.partition });
      }
    }
  }
}

/** A row as a plain, mutable copy (stored rows are frozen, restored ones Avro records). */
export function plain<V>(value: V): V {
  return value === undefined ? value : structuredClone(value);
}
