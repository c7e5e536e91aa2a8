import { TIMERS_TABLE } from '../procedures/index.js';
import type { PartitionHost } from '../partition/index.js';

const SIZE_SAMPLE = 32;

/** Rows and approximate bytes per table and partition hosted here: Avro size of a sample of rows, scaled. */
export function* stateSizes(host: PartitionHost | undefined): Generator<{ table: string; partition: number; keys: number; bytes: number }> {
  for (const owner of host?.all() ?? []) {
    const state = owner.state();
    if (!state) continue;
    for (const table of state.tableNames()) {
      const store = state.store(table);
      const type = state.schemaOf(table).valueType;
      let sampled = 0;
      let sampleBytes = 0;
      for (const [key, value] of store.entries()) {
        sampleBytes += String(key).length + type.toBuffer(value).length;
        if (++sampled === SIZE_SAMPLE) break;
      }
      yield { table, partition: owner.partition, keys: store.size, bytes: sampled === 0 ? 0 : Math.round((sampleBytes / sampled) * store.size) };
    }
  }
}

/** Pending timers per partition active here (standby copies hold the same rows; not counted twice). */
export function* timersPending(host: PartitionHost | undefined): Generator<{ partition: number; pending: number }> {
  for (const owner of host?.all() ?? []) {
    const state = owner.state();
    if (owner.role !== 'active' || !state) continue;
    for (const table of state.tableNames()) if (table === TIMERS_TABLE) yield { partition: owner.partition, pending: state.store(table).size };
  }
}
