/**
 * Review findings on commit 9cfec3f (Issue 14) and its follow-ups: each test states the
 * behaviour promised and fails where the code does otherwise.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SchemaCatalog } from '../../src/codec/index.js';
import { InputProgress } from '../../src/partition/index.js';
import { compileApp, defineApp, record } from '../../src/procedures/index.js';
import {
  DeadLetterReplays,
  DLQ_HEADERS,
  RecordDescriber,
  TopicRecords,
  parsePosition,
  type EventLog,
  type LogRecord,
  type OutRecord,
} from '../../src/streams/index.js';

interface Op {
  id: string;
  amount: number;
}
const Op = record<Op>({ type: 'record', name: 'Op', namespace: 'r', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] });
const Applied = record<Op>({ type: 'record', name: 'Applied', namespace: 'r', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] });
const app = defineApp({
  name: 'r',
  partitions: 1,
  events: { Op, Applied },
  tables: {},
  inputs: [{ topic: 'ops', events: ['Op'] }],
  outputs: { Applied: 'applied' },
  procedures: {
    Op: {
      partitionKey: (op) => op.id,
      emits: ['Applied'],
      handle(ctx, op) {
        ctx.emit('Applied', op);
      },
    },
  },
});
const compiled = compileApp(app);
const catalog = new SchemaCatalog([...compiled.events.values()].map((e) => e.type));

/** One growing topic partition, read the way KafkaTopicReader reads it: endOffset and readRange each ask for the end on their own. */
class GrowingSource {
  readonly records: LogRecord[] = [];
  /** Called between the page's endOffset and the readRange that follows (a producer appending meanwhile). */
  between: (() => void) | undefined;
  add(n: number): void {
    for (let i = 0; i < n; i++) {
      const offset = this.records.length;
      this.records.push({ topic: 'applied', partition: 0, offset, timestamp: offset, key: Buffer.from(`k${offset}`), value: catalog.encode('r.Applied', { id: `k${offset}`, amount: offset }), headers: {} });
    }
  }
  partitionsOf(): number {
    return 1;
  }
  async endOffset(): Promise<number> {
    const end = this.records.length;
    const between = this.between;
    this.between = undefined;
    between?.();
    return end;
  }
  async *readRange(_topic: string, _partition: number, from: number): AsyncIterable<readonly LogRecord[]> {
    const end = this.records.length; // its own end, as of the call (KafkaTopicReader.readRange asks again)
    const chunk = this.records.slice(from, end);
    if (chunk.length > 0) yield chunk;
  }
}

describe('found in review', () => {
  it('GET /topics/:topic/records: a record appended while a page is read comes on the next page only, once', async () => {
    const source = new GrowingSource();
    source.add(3);
    const pages = new TopicRecords(source, new RecordDescriber(compiled, catalog, undefined), new Set(['output']));
    source.between = () => source.add(2); // two more records land while the page is being read
    const first = await pages.page('applied', { partition: undefined, from: { kind: 'beginning' }, limit: 100 });
    const seen = first.items.map((l) => l.offset);
    const second = await pages.page('applied', { partition: undefined, from: { kind: 'position', position: parsePosition(String(first.position), 1)! }, limit: 100 });
    seen.push(...second.items.map((l) => l.offset));
    assert.deepEqual(seen, [0, 1, 2, 3, 4], `each record once across pages; got offsets ${seen.join(',')} (first page's position ${first.position})`);
  });

  it('waitFor: a log answer that arrived during a commit that then failed does not count; the retried commit does', async () => {
    const progress = new InputProgress();
    progress.commitStarted(); // a batch ending at ops offset 5 is being committed
    let answer: (offsets: ReadonlyMap<string, number>) => void = () => undefined;
    const learnt = new Promise<ReadonlyMap<string, number>>((resolve) => (answer = resolve));
    const wait = progress.until(new Map([['ops', 5]]), new AbortController().signal, () => learnt);
    // The broker's committed offsets, read while the commit was in flight (e.g. the transaction
    // reached the coordinator but the client saw a timeout and rolled its state back).
    answer(new Map([['ops', 5]]));
    await new Promise((resolve) => setImmediate(resolve));
    progress.commitFailed(); // processor.abort() rolled the batch's state back
    const outcome = await Promise.race([wait, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 50))]);
    assert.equal(outcome, 'still waiting', 'a failed commit must not make the write count as visible: its state was rolled back');
    progress.commitStarted(); // the batch is retried and commits
    progress.commitEnded([{ topic: 'ops', offset: 5 }]);
    assert.equal(await wait, 'reached');
  });
});
