/**
 * What the embedded log may drop, decided from the segments' statistics alone. Pure: the
 * cleaner (compactor.ts) does the file work.
 *
 * - Topics that are not compacted (inputs, outputs, dead letters) keep at most their newest
 *   `bytes`, and only records younger than `ms` (either limit expires them, as in Kafka); a
 *   topic's records in a sealed segment expire together, and input records never expire before
 *   the app's group has committed past them.
 * - Compacted topics (the changelog) keep the latest record per key; a delete marker that is the
 *   latest goes once it is older than `tombstoneMs`.
 * - The head segment is never cleaned.
 */

/** Retention of one topic. */
export interface TopicRetention {
  /** At most this many newest bytes are kept (all partitions together). */
  readonly bytes: number;
  /** Records older than this (by record timestamp) expire. */
  readonly ms: number;
}

/** Everything the embedded log's cleaning needs to know (compiled from the `retention` config). */
export interface RetentionOptions extends TopicRetention {
  /** Per-topic overrides of `bytes` and `ms`. */
  readonly topics: Readonly<Record<string, { readonly bytes?: number | undefined; readonly ms?: number | undefined }>>;
  /** Compacted topics: how long a delete marker stays after it became the latest record of its key. */
  readonly tombstoneMs: number;
  /** The head is sealed into a segment at this size. */
  readonly segmentBytes: number;
  /** How often retention by time and the group's progress are looked at, besides after every roll. */
  readonly checkIntervalMs: number;
}

export function retentionOf(options: RetentionOptions, topic: string): TopicRetention {
  const own = options.topics[topic];
  return { bytes: own?.bytes ?? options.bytes, ms: own?.ms ?? options.ms };
}

/** One topic as retention sees it. */
export interface TopicView {
  readonly id: number;
  readonly compacted: boolean;
  readonly retention: TopicRetention;
  /** Input topics: the app group's committed offset of a partition (records below it were processed). */
  readonly committed: ((partition: number) => number) | undefined;
}

/** One segment as retention sees it (SegmentStats satisfies it). */
export interface SegmentView {
  readonly number: number;
  readonly bytes: number;
  readonly deadBytes: number;
  readonly topics: ReadonlyMap<number, { readonly bytes: number; readonly maxTimestamp: number; readonly maxOffsets: readonly number[] }>;
}

/**
 * Per sealed segment, the topics whose records in it have expired. `segments` are every
 * segment, oldest first, the head last.
 */
export function expiredTopics(segments: readonly SegmentView[], topics: readonly TopicView[], now: number): Map<number, Set<number>> {
  const expired = new Map<number, Set<number>>(segments.map((s) => [s.number, new Set<number>()]));
  for (const topic of topics) {
    if (topic.compacted) continue;
    let newer = 0;
    for (let i = segments.length - 1; i >= 0; i--) {
      const segment = segments[i]!;
      const own = segment.topics.get(topic.id);
      if (!own) continue;
      if (i < segments.length - 1) {
        let gone = newer >= topic.retention.bytes || own.maxTimestamp < now - topic.retention.ms;
        if (gone && topic.committed) gone = own.maxOffsets.every((max, p) => max < topic.committed!(p));
        if (gone) expired.get(segment.number)!.add(topic.id);
      }
      newer += own.bytes;
    }
  }
  return expired;
}

/** Bytes of records in a segment still needed: records of unexpired topics, minus superseded ones. */
export function liveRecordBytes(segment: SegmentView, expired: ReadonlySet<number>): number {
  let live = -segment.deadBytes;
  for (const [id, own] of segment.topics) if (!expired.has(id)) live += own.bytes;
  return Math.max(0, live);
}

export type CleaningStep =
  | { readonly kind: 'delete'; readonly numbers: readonly number[] }
  | { readonly kind: 'rewrite'; readonly first: number; readonly last: number };

/**
 * The next thing worth doing to the sealed segments (oldest first, head excluded): delete every
 * segment with nothing live; else rewrite the first run of consecutive segments that are each
 * dirty (live records at most `maxLiveRatio` of its bytes) or small (under half a segment, e.g.
 * an earlier rewrite's output), whose live records fit one segment, and that holds a dirty
 * segment or several small ones; else nothing. A mostly live segment is never copied just to
 * merge it with a neighbour.
 */
export function planCleaning(
  sealed: readonly SegmentView[],
  expired: ReadonlyMap<number, ReadonlySet<number>>,
  segmentBytes: number,
  maxLiveRatio = 0.5,
): CleaningStep | undefined {
  const none = new Set<number>();
  const live = sealed.map((s) => liveRecordBytes(s, expired.get(s.number) ?? none));
  const dead = sealed.filter((_, i) => live[i] === 0).map((s) => s.number);
  if (dead.length > 0) return { kind: 'delete', numbers: dead };
  const dirty = sealed.map((s, i) => live[i]! <= maxLiveRatio * s.bytes);
  const small = sealed.map((s) => s.bytes < segmentBytes / 2);
  for (let i = 0; i < sealed.length; i++) {
    if (!dirty[i] && !small[i]) continue;
    let liveSum = live[i]!;
    let j = i;
    while (j + 1 < sealed.length && (dirty[j + 1] || small[j + 1]) && liveSum + live[j + 1]! <= segmentBytes) liveSum += live[++j]!;
    const run = sealed.slice(i, j + 1);
    if (run.some((_, k) => dirty[i + k]) || run.length > 1) return { kind: 'rewrite', first: sealed[i]!.number, last: sealed[j]!.number };
    i = j;
  }
  return undefined;
}
