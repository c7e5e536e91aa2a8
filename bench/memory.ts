/**
 * memory: heap bytes per key of 1M Voter phones in farad's PartitionState (filled through the
 * real handler path: BatchProcessor → Voter's Vote handler → HandlerTable.put) against the same
 * phones in a plain Map<number, {accepted}>. heapUsed deltas after forced full GCs.
 */
import { AREA_CODE_STATES } from '../examples/voter/area-codes.js';
import voter from '../examples/voter/index.js';
import { defineApp, loadConfig } from '../src/index.js';
import { compileApp, globalViews } from '../src/procedures/index.js';
import { RowCodec } from '../src/codec/index.js';
import { createCodec } from '../src/service/index.js';
import { PartitionState } from '../src/state/index.js';
import { BatchProcessor, type LogRecord } from '../src/streams/index.js';
import { progress, progressEvery, ratio, round, type BenchContext, type ScenarioReport } from './lib.js';

const BATCH = 10_000;

function fullGc(): void {
  for (let i = 0; i < 4; i++) global.gc!();
}

function heapUsed(): number {
  fullGc();
  return process.memoryUsage().heapUsed;
}

/** n distinct Voter phone numbers (valid area codes), as a typed array (off the JS heap). */
export function distinctPhones(n: number): Float64Array {
  const phones = new Float64Array(n);
  const codes = AREA_CODE_STATES.length;
  for (let i = 0; i < n; i++) {
    const [areaCode] = AREA_CODE_STATES[i % codes]!;
    // Spread the line numbers so keys are not consecutive.
    phones[i] = areaCode * 10_000_000 + ((Math.floor(i / codes) * 7_919) % 10_000_000);
  }
  return phones;
}

export async function memory(ctx: BenchContext): Promise<ScenarioReport> {
  if (!global.gc) throw new Error('memory needs global.gc: run node with --expose-gc (npm run bench does)');
  const n = ctx.size('memory', 1_000_000, 50_000);
  const phones = distinctPhones(n);
  if (new Set(phones).size !== n) throw new Error('phone numbers are not distinct');

  // Plain Map: what a hand-written service would hold.
  progress(`memory: ${n.toLocaleString('en-US')} phones in a plain Map`);
  const mapBefore = heapUsed();
  let map: Map<number, { accepted: number }> | undefined = new Map();
  for (let i = 0; i < n; i++) map.set(phones[i]!, { accepted: 1 });
  const mapBytes = (heapUsed() - mapBefore) / n;
  if (map.size !== n) throw new Error('map lost keys');
  map = undefined;

  // farad: the same phones voted once each through the Vote handler, committed in batches.
  progress(`memory: ${n.toLocaleString('en-US')} phones through farad's BatchProcessor into a PartitionState`);
  const app = defineApp({ ...voter.spec, name: 'voter_memory', partitions: 1 });
  const compiled = compileApp(app);
  const catalog = await createCodec(compiled, loadConfig({ env: {} }));
  const globals = globalViews(compiled);
  const report = progressEvery('memory: votes handled');
  const faradBefore = heapUsed();
  let state: PartitionState | undefined = new PartitionState(0, 1, compiled.tables.values());
  let processor: BatchProcessor | undefined = new BatchProcessor({ app: compiled, state, catalog, rows: new RowCodec(compiled.tables.values(), compiled.droppedTables), globals, partitionsOf: () => 1 });
  const timestamp = Date.now();
  for (let start = 0; start < n; start += BATCH) {
    const records: LogRecord[] = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) {
      const phoneNumber = phones[i]!;
      records.push({
        topic: compiled.inputTopics[0]!,
        partition: 0,
        offset: i,
        timestamp,
        key: Buffer.from(String(phoneNumber)),
        value: catalog.encode('voter.Vote', { phoneNumber, contestantNumber: 1 + (i % 6) }),
        headers: {},
      });
    }
    processor.apply(records);
    processor.plan();
    processor.committed();
    report(Math.min(n, start + BATCH), n);
  }
  const faradBytes = (heapUsed() - faradBefore) / n;
  const rows = state.store('votesByPhone').size;
  if (rows !== n) throw new Error(`farad holds ${rows} phones, expected ${n}`);
  // The first ordered scan builds the table's sorted key array, kept until keys change.
  state.scanCommitted('votesByPhone', { limit: 1 });
  const withScanBytes = (heapUsed() - faradBefore) / n;
  processor = undefined;
  state = undefined;
  fullGc();

  const r = ratio(faradBytes, mapBytes);
  progress(`memory: farad ${faradBytes.toFixed(1)} B/key, plain Map ${mapBytes.toFixed(1)} B/key (${r}x)`);
  return {
    rows: [
      {
        scenario: 'memory',
        eventsPerSec: round(faradBytes, 1),
        p50Ms: null,
        p99Ms: null,
        baseline: 'plain-map',
        baselineEventsPerSec: round(mapBytes, 1),
        ratio: r,
      },
    ],
    details: [
      `${n.toLocaleString('en-US')} distinct phones. **Here \`eventsPerSec\` and \`baselineEventsPerSec\` carry heap bytes per key** (farad, plain Map); \`ratio\` = farad / Map.`,
      `farad: one PartitionState (Voter's tables, 1 partition), every phone voted once through BatchProcessor and Voter's handler, committed every ${BATCH.toLocaleString('en-US')} votes (so the undo log and batch delta are empty when measured). Baseline: Map<number, {accepted: number}>. heapUsed after 4 forced full GCs, before and after.`,
      `After the first ordered scan (\`GET /tables/votesByPhone\`, a query) the table also keeps a sorted key array: ${withScanBytes.toFixed(1)} B/key in all (${(withScanBytes / mapBytes).toFixed(2)}x the Map).`,
    ],
  };
}
