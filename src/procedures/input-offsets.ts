import type { PartitionState } from '../state/index.js';
import type { RecordSchema } from './schema.js';

/**
 * The input offsets a partition has consumed, as rows of a system table: every batch writes the
 * next offset of each input topic it read, in the same transaction as its other rows. A new
 * owner resumes input from its restored copy's rows, which its fence made final, instead of
 * asking the group coordinator, whose answer can lag a transaction that committed (fault B in
 * RELIABILITY.md: a new owner processed its predecessor's last batch again).
 */
export const INPUT_OFFSETS_TABLE = '__input_offsets';

/** One row per input topic (the key): the next offset to read. */
export const INPUT_OFFSET_ROW_SCHEMA: RecordSchema = { type: 'record', name: 'FaradInputOffset', fields: [{ name: 'next', type: 'long' }] };

interface InputOffsetRow {
  readonly next: number;
}

/** Writes the batch's next offsets into the open batch (undone with it if it rolls back). */
export function recordInputOffsets(state: PartitionState, nextOffsets: ReadonlyMap<string, number>): void {
  for (const [topic, next] of nextOffsets) state.write(INPUT_OFFSETS_TABLE, topic, Object.freeze({ next }));
}

/** The committed next offset per input topic that the copy holds rows for. */
export function inputOffsetsOf(state: PartitionState): Map<string, number> {
  const out = new Map<string, number>();
  for (const name of state.tableNames()) {
    if (name !== INPUT_OFFSETS_TABLE) continue;
    for (const [topic, row] of state.scanCommitted(INPUT_OFFSETS_TABLE)) out.set(topic as string, (row as InputOffsetRow).next);
  }
  return out;
}
