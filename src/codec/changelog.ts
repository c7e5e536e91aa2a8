import { CorruptDataError } from '../errors.js';
import type { PartitionState, RowChange, TableSchema } from '../state/index.js';
import type { Key } from '../state/index.js';

/**
 * Changelog records: key = UTF-8 JSON `[table, key]` (unique per row, so log compaction keeps the
 * latest value of each row); value = the row's Avro binary, or null for a deleted row.
 */
export function encodeChangeKey(table: string, key: Key): Buffer {
  return Buffer.from(JSON.stringify([table, key]));
}

export function decodeChangeKey(bytes: Buffer): { table: string; key: Key } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CorruptDataError(`changelog key is not JSON: ${bytes.toString('hex').slice(0, 40)}`, {}, { cause: err });
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || !['string', 'number'].includes(typeof parsed[1])) {
    throw new CorruptDataError(`changelog key must be [table, key], got ${bytes.toString('utf8').slice(0, 80)}`);
  }
  return { table: parsed[0], key: parsed[1] as Key };
}

export function encodeRowValue(schema: TableSchema, value: unknown): Buffer | null {
  return value === undefined ? null : schema.valueType.toBuffer(value);
}

/** Encodes a batch's row changes as changelog key/value pairs. */
export function encodeChanges(state: PartitionState, changes: readonly RowChange[]): Array<{ key: Buffer; value: Buffer | null }> {
  return changes.map((change) => ({
    key: encodeChangeKey(change.table, change.key),
    value: encodeRowValue(state.schemaOf(change.table), change.value),
  }));
}

/** Applies one changelog record to a partition being restored. */
export function applyChangelogRecord(state: PartitionState, key: Buffer | null, value: Buffer | null): void {
  if (key === null) throw new CorruptDataError('changelog record without a key');
  const row = decodeChangeKey(key);
  let schema: TableSchema;
  try {
    schema = state.schemaOf(row.table);
  } catch {
    return; // the app no longer has this table
  }
  state.applyRestored(row.table, row.key, value === null ? undefined : schema.valueType.fromBuffer(value));
}
