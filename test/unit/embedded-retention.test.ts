/**
 * The embedded log's pure parts of bounded storage: which segments' topics expire, which
 * cleaning step comes next, segment headers and records frames, and the sparse offset index
 * that keeps offsets unchanged when records around them go.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkFrame,
  encodeRecordsFrame,
  encodeSegmentHeader,
  KIND_RECORDS,
  parseFrame,
} from '../../src/streams/embedded/frames.js';
import { PartitionLog } from '../../src/streams/embedded/partition-log.js';
import { expiredTopics, planCleaning, retentionOf, type RetentionOptions, type SegmentView, type TopicView } from '../../src/streams/embedded/retention.js';
import { parseSegmentFileName, positionOf, segmentFileName, segmentOfPosition, SegmentStats } from '../../src/streams/embedded/segments.js';

const MiB = 1024 * 1024;

function segment(number: number, bytes: number, topics: Record<number, { bytes: number; ts?: number; maxOffsets?: number[] }>, deadBytes = 0): SegmentView {
  return {
    number,
    bytes,
    deadBytes,
    topics: new Map(Object.entries(topics).map(([id, t]) => [Number(id), { bytes: t.bytes, maxTimestamp: t.ts ?? 1_000, maxOffsets: t.maxOffsets ?? [0] }])),
  };
}

const plain = (id: number, bytes: number, ms = 1e12, committed?: (p: number) => number): TopicView => ({ id, compacted: false, retention: { bytes, ms }, committed });

describe('expiredTopics', () => {
  it('keeps a topic\'s newest retention.bytes and expires older sealed segments; the head never expires', () => {
    const segments = [segment(0, 4 * MiB, { 0: { bytes: 3 * MiB } }), segment(1, 4 * MiB, { 0: { bytes: 3 * MiB } }), segment(2, 4 * MiB, { 0: { bytes: 3 * MiB } })];
    const expired = expiredTopics(segments, [plain(0, 3 * MiB)], 0);
    assert.deepEqual([...expired.get(0)!], [0], 'segment 0 has 6 MiB newer than it');
    assert.deepEqual([...expired.get(1)!], [0], 'segment 1 has 3 MiB newer than it: at least retention.bytes kept without it');
    assert.deepEqual([...expired.get(2)!], [], 'the head');
  });

  it('expires by record time', () => {
    const segments = [segment(0, MiB, { 0: { bytes: 100, ts: 1_000 } }), segment(1, MiB, { 0: { bytes: 100, ts: 9_000 } }), segment(2, MiB, {})];
    const expired = expiredTopics(segments, [plain(0, 1e12, 5_000)], 10_000);
    assert.deepEqual([...expired.get(0)!], [0]);
    assert.deepEqual([...expired.get(1)!], []);
  });

  it('never expires input the app has not committed past', () => {
    const segments = [segment(0, MiB, { 0: { bytes: MiB, ts: 0, maxOffsets: [99, 10] } }), segment(1, MiB, { 0: { bytes: MiB } })];
    const committed = [100, 10];
    assert.deepEqual([...expiredTopics(segments, [plain(0, 1, 1, (p) => committed[p]!)], 1e9).get(0)!], [], 'partition 1 is at 10: offset 10 is unprocessed');
    committed[1] = 11;
    assert.deepEqual([...expiredTopics(segments, [plain(0, 1, 1, (p) => committed[p]!)], 1e9).get(0)!], [0]);
  });

  it('leaves compacted topics to compaction', () => {
    const segments = [segment(0, MiB, { 0: { bytes: MiB, ts: 0 } }), segment(1, MiB, { 0: { bytes: MiB } })];
    const topic: TopicView = { id: 0, compacted: true, retention: { bytes: 1, ms: 1 }, committed: undefined };
    assert.deepEqual([...expiredTopics(segments, [topic], 1e9).get(0)!], []);
  });
});

describe('planCleaning', () => {
  const none = new Map<number, Set<number>>();

  it('deletes every sealed segment with nothing live first', () => {
    const sealed = [segment(0, MiB, { 0: { bytes: 900_000 } }), segment(3, MiB, { 1: { bytes: 500 } }, 500), segment(4, MiB, { 0: { bytes: 900_000 } })];
    const expired = new Map([[0, new Set([0])], [3, new Set<number>()], [4, new Set<number>()]]);
    assert.deepEqual(planCleaning(sealed, expired, 8 * MiB), { kind: 'delete', numbers: [0, 3] });
  });

  it('rewrites a run of dirty and small segments whose live records fit one segment', () => {
    const sealed = [segment(0, 200_000, { 0: { bytes: 190_000 } }), segment(1, 4 * MiB, { 0: { bytes: 4 * MiB - 100 } }, 4 * MiB - 50_000), segment(2, 4 * MiB, { 0: { bytes: 4 * MiB - 100 } })];
    assert.deepEqual(planCleaning(sealed, none, 8 * MiB), { kind: 'rewrite', first: 0, last: 1 });
  });

  it('never copies a mostly live segment just to merge it', () => {
    const sealed = [segment(0, 4 * MiB, { 0: { bytes: 4 * MiB } }, 4 * MiB - 1000), segment(1, 4 * MiB, { 0: { bytes: 4 * MiB - 100 } })];
    assert.deepEqual(planCleaning(sealed, none, 8 * MiB), { kind: 'rewrite', first: 0, last: 0 });
  });

  it('merges small segments, but not a lone small clean one', () => {
    const small = (n: number): SegmentView => segment(n, 100_000, { 0: { bytes: 99_000 } });
    assert.deepEqual(planCleaning([small(0), small(3), segment(5, 4 * MiB, { 0: { bytes: 4 * MiB - 100 } })], none, 8 * MiB), { kind: 'rewrite', first: 0, last: 3 });
    assert.equal(planCleaning([small(0), segment(5, 4 * MiB, { 0: { bytes: 4 * MiB - 100 } })], none, 8 * MiB), undefined);
  });

  it('leaves clean segments alone', () => {
    const sealed = [segment(0, 4 * MiB, { 0: { bytes: 4 * MiB - 100 } }), segment(1, 4 * MiB, { 0: { bytes: 3 * MiB } }, MiB / 2)];
    assert.equal(planCleaning(sealed, none, 8 * MiB), undefined);
  });

  it('does not merge beyond one segment of live records', () => {
    const sealed = [segment(0, 4 * MiB, { 0: { bytes: 4 * MiB } }, 2 * MiB), segment(1, 4 * MiB, { 0: { bytes: 4 * MiB } }, 2 * MiB), segment(2, 4 * MiB, { 0: { bytes: 4 * MiB } }, 2 * MiB)];
    assert.deepEqual(planCleaning(sealed, none, 4 * MiB), { kind: 'rewrite', first: 0, last: 1 });
  });
});

describe('retentionOf', () => {
  it('takes a topic\'s own values over the defaults', () => {
    const options: RetentionOptions = { bytes: 10, ms: 20, topics: { a: { bytes: 1 }, b: { ms: 2 } }, tombstoneMs: 0, segmentBytes: 1, checkIntervalMs: 1 };
    assert.deepEqual(retentionOf(options, 'a'), { bytes: 1, ms: 20 });
    assert.deepEqual(retentionOf(options, 'b'), { bytes: 10, ms: 2 });
    assert.deepEqual(retentionOf(options, 'c'), { bytes: 10, ms: 20 });
  });
});

describe('segments', () => {
  it('names and positions', () => {
    assert.equal(segmentFileName(42), 'segment-0000000042.log');
    assert.equal(parseSegmentFileName('segment-0000000042.log'), 42);
    assert.equal(parseSegmentFileName('segment-0000000042.log.tmp'), undefined);
    assert.equal(parseSegmentFileName('journal.log'), undefined);
    assert.equal(segmentOfPosition(positionOf(7, 123_456)), 7);
    assert.ok(positionOf(3, 4_000_000_000) < positionOf(4, 0));
  });

  it('counts what a segment holds per topic', () => {
    const stats = new SegmentStats(1);
    stats.addRecord(0, 2, 1, 5, 100, 50);
    stats.addRecord(0, 2, 0, 7, 10, 40);
    assert.deepEqual(stats.topics.get(0), { bytes: 110, records: 2, maxTimestamp: 50, maxOffsets: [7, 5] });
  });
});

describe('frames', () => {
  it('a segment header carries topics, next offsets and commits', () => {
    const header = { number: 5, coversThrough: 9, topics: [{ id: 0, name: 'in', partitions: 2, compacted: false, next: [10, 20] }, { id: 1, name: 'cl', partitions: 1, compacted: true, next: [3] }], commits: [{ group: 'g', topicId: 0, partition: 1, offset: 17 }] };
    const frame = encodeSegmentHeader(header);
    assert.equal(checkFrame(frame, 0), frame.length);
    assert.deepEqual(parseFrame(frame), { kind: 3, ...header });
  });

  it('a records frame keeps explicit offsets and the records\' bytes as they were', () => {
    // A record as a batch frame holds it: topic 1, partition 0, timestamp 7, key "k", value "v", no headers.
    const record = Buffer.alloc(4 + 4 + 8 + 4 + 1 + 4 + 1 + 2);
    let p = record.writeUInt32LE(1, 0);
    p = record.writeUInt32LE(0, p);
    p = record.writeDoubleLE(7, p);
    p = record.writeInt32LE(1, p);
    p += record.write('k', p);
    p = record.writeInt32LE(1, p);
    p += record.write('v', p);
    record.writeUInt16LE(0, p);
    const frame = encodeRecordsFrame([{ offset: 41, bytes: record }, { offset: 99, bytes: record }]);
    const parsed = parseFrame(frame);
    assert.equal(parsed.kind, KIND_RECORDS);
    if (parsed.kind !== KIND_RECORDS) return;
    assert.deepEqual(parsed.records.map((r) => [r.offset, r.topicId, r.timestamp, frame.toString('latin1', r.keyAt, r.keyAt + r.keyLength), r.tombstone]), [
      [41, 1, 7, 'k', false],
      [99, 1, 7, 'k', false],
    ]);
    assert.deepEqual(frame.subarray(parsed.records[1]!.start, parsed.records[1]!.start + parsed.records[1]!.length), record);
  });
});

describe('PartitionLog', () => {
  /** A log of `n` records at positions 100·offset, 30 bytes each. */
  function logOf(n: number): { log: PartitionLog } {
    const log = new PartitionLog('t', 0);
    for (let o = 0; o < n; o++) log.append(o * 100, 30, undefined);
    return { log };
  }
  // All zeros decode as a record with empty key and value: offsets come from the index.
  const bytesAt = (_position: number, length: number): Buffer => Buffer.alloc(length);

  it('keeps offsets when a range of positions is replaced by its survivors', () => {
    const { log } = logOf(10);
    log.replaceRange(200, 600, { offsets: [3, 5], positions: [250, 290], lengths: [30, 30] });
    assert.deepEqual(log.read(0, 100, bytesAt).map((r) => r.offset), [0, 1, 3, 5, 6, 7, 8, 9]);
    assert.equal(log.end, 10);
    assert.equal(log.positionOf(5), 290);
    assert.equal(log.entry(4), undefined);
    assert.deepEqual(log.read(4, 2, bytesAt).map((r) => r.offset), [5, 6], 'a read from a gone offset starts at the next held one');
    assert.equal(log.offsetAt(250), 3);
  });

  it('moves its start when the oldest records go, and its end only forward', () => {
    const { log } = logOf(10);
    log.replaceRange(0, 500, { offsets: [], positions: [], lengths: [] });
    assert.equal(log.start, 5);
    assert.equal(log.size, 5);
    log.replaceRange(0, 10_000, { offsets: [], positions: [], lengths: [] });
    assert.equal(log.start, 10);
    assert.equal(log.end, 10);
    log.advanceTo(20);
    log.append(5_000, 30, undefined);
    assert.equal(log.start, 20);
    assert.equal(log.end, 21);
  });

  it('grows after trimming without losing entries', () => {
    const { log } = logOf(3000);
    log.replaceRange(0, 100 * 2500, { offsets: [10, 20], positions: [1000, 2000], lengths: [30, 30] });
    for (let o = 3000; o < 6000; o++) log.append(o * 100, 30, undefined);
    const offsets = log.read(0, 10_000, bytesAt).map((r) => r.offset);
    assert.equal(offsets.length, 2 + 500 + 3000);
    assert.deepEqual(offsets.slice(0, 3), [10, 20, 2500]);
    assert.equal(offsets[offsets.length - 1], 5999);
  });
});
