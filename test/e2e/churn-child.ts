/**
 * Child process of compaction-crash.test.ts: churns an embedded log with tiny segments and
 * retention so that segments are rolled, rewritten and deleted all the time, and prints every
 * acknowledged write on stdout (one line each, after the write resolved) for the parent's tally.
 *
 *   node --import tsx test/e2e/churn-child.ts <dataDir> <firstSeq>
 *
 * Worker w owns input partition w and changelog partition w. Each round it appends one input
 * record (`in w <offset> <seq>`), then announces (`try w <key>=<seq|del>,...`) and commits a batch
 * of changelog records for its keys plus output records and the input offset of the record from
 * 3 rounds back (`commit w <inputCommitted> <changelogNext> <key>=<seq|del>,...`).
 */
import { createLogger, EmbeddedLog } from '../../src/index.js';

export const WORKERS = 3;
export const KEYS_PER_WORKER = 40;
export const BATCH = 12;
export const CHURN_TOPICS = { input: 'in', output: 'out', changelog: 'g-changelog', group: 'g' } as const;

/** Key of worker `w`'s key number `k` (keys are disjoint per worker, as per-partition state is). */
export const churnKey = (w: number, k: number): string => `w${w}-k${k}`;

async function main(): Promise<void> {
  const [dataDir, firstSeqText] = process.argv.slice(2);
  if (!dataDir || !firstSeqText) throw new Error('usage: churn-child.ts <dataDir> <firstSeq>');
  let seq = Number(firstSeqText);
  const log = await EmbeddedLog.open({
    dataDir,
    logger: createLogger('warn'),
    group: CHURN_TOPICS.group,
    inputTopics: [CHURN_TOPICS.input],
    changelogTopic: CHURN_TOPICS.changelog,
    partitions: WORKERS,
    retention: { bytes: 65_536, ms: 1e12, topics: {}, tombstoneMs: 0, segmentBytes: 65_536, checkIntervalMs: 20 },
  });
  await log.ensureTopics([
    { name: CHURN_TOPICS.input, partitions: WORKERS },
    { name: CHURN_TOPICS.output, partitions: WORKERS },
    { name: CHURN_TOPICS.changelog, partitions: WORKERS, compacted: true },
  ]);
  process.stdout.write('ready\n');
  const worker = async (w: number): Promise<void> => {
    const inputs: number[] = [];
    for (;;) {
      const inSeq = seq++;
      await log.append([{ topic: CHURN_TOPICS.input, partition: w, timestamp: Date.now(), key: Buffer.from(`i${w}`), value: Buffer.from(String(inSeq)) }]);
      const inOffset = log.endOffset(CHURN_TOPICS.input, w) - 1;
      process.stdout.write(`in ${w} ${inOffset} ${inSeq}\n`);
      inputs.push(inOffset);
      const committed = inputs.length > 3 ? inputs[inputs.length - 4]! + 1 : log.committedOffset(CHURN_TOPICS.group, CHURN_TOPICS.input, w);
      const changes: string[] = [];
      const records = [];
      for (let i = 0; i < BATCH; i++) {
        const s = seq++;
        const key = churnKey(w, (s * 7919) % KEYS_PER_WORKER);
        const del = s % 11 === 0;
        changes.push(`${key}=${del ? 'del' : s}`);
        records.push({ topic: CHURN_TOPICS.changelog, partition: w, timestamp: Date.now(), key: Buffer.from(key), value: del ? null : Buffer.from(String(s)) });
        records.push({ topic: CHURN_TOPICS.output, partition: w, timestamp: Date.now(), key: Buffer.from(key), value: Buffer.alloc(200, s % 251) });
      }
      process.stdout.write(`try ${w} ${changes.join(',')}\n`); // in flight: may be on disk without an ack
      const result = await log.commitPlan({ partition: w, records, offsets: [{ topic: CHURN_TOPICS.input, partition: w, offset: committed }], inputCount: 1 });
      process.stdout.write(`commit ${w} ${committed} ${result.changelogNext ?? -1} ${changes.join(',')}\n`);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
}

if (process.argv[1]?.endsWith('churn-child.ts')) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
    process.exit(1);
  });
}
