/**
 * Reading an app's topics record by record, for people: pages of RecordLines by position
 * (`GET /topics/:topic/records`), over any log that can read a partition range — the running
 * EventLog (embedded or Kafka), the embedded log's files read-only, or a Kafka reader without a
 * group (the CLI's).
 */
import { UnknownTopicError } from '../errors.js';
import type { LogRecord } from './records.js';
import type { RecordDescriber, RecordLine, TopicRole } from './topic-records.js';

/** What reading a topic needs of a log (an EventLog has it). */
export interface TopicSource {
  /** Partition count of a topic that exists (throws for one that does not). */
  partitionsOf(topic: string): number;
  /** The next offset to be written (read_committed on Kafka: what a read reaches). */
  endOffset(topic: string, partition: number): Promise<number> | number;
  /** A partition from `fromOffset` (or the first record after it) to its end as of the call, in chunks. */
  readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]>;
}

/** Where reading a topic continues: the next offset per partition (partitions not named: from the beginning). */
export type TopicPosition = ReadonlyMap<number, number>;

/** `0:12,1:0,2:7`: a position as text (`next` of a page over every partition). */
export function formatPosition(position: TopicPosition): string {
  return [...position].sort(([a], [b]) => a - b).map(([p, o]) => `${p}:${o}`).join(',');
}

/** Reads `formatPosition`'s text; undefined when it is not one for a topic of `partitions` partitions. */
export function parsePosition(text: string, partitions: number): Map<number, number> | undefined {
  const out = new Map<number, number>();
  if (text.trim() === '') return out;
  for (const part of text.split(',')) {
    const match = /^\s*(\d+):(\d+)\s*$/.exec(part);
    if (!match) return undefined;
    const partition = Number(match[1]);
    const offset = Number(match[2]);
    if (partition >= partitions || !Number.isSafeInteger(offset) || out.has(partition)) return undefined;
    out.set(partition, offset);
  }
  return out;
}

/** Where a page starts: the beginning, the end (now), an offset of the one partition asked, or a position. */
export type PageStart = { readonly kind: 'beginning' } | { readonly kind: 'end' } | { readonly kind: 'offset'; readonly offset: number } | { readonly kind: 'position'; readonly position: TopicPosition };

export interface PageRequest {
  /** One partition, or every partition (in partition order) when undefined. */
  readonly partition: number | undefined;
  readonly from: PageStart;
  readonly limit: number;
}

/** A page of records: `next` is where the following page starts (null: this one reached the end); `position` is where to continue later either way. */
export interface RecordsPage {
  readonly topic: string;
  readonly items: RecordLine[];
  /** An offset when one partition was asked, else a position (`formatPosition`). */
  readonly next: number | string | null;
  readonly position: number | string;
}

/**
 * Pages over the topics of `roles` (HTTP: outputs and dead letters), decoded by `describer`.
 * Works on the service's own log, so on both transports.
 */
export class TopicRecords {
  constructor(
    private readonly source: TopicSource,
    private readonly describer: RecordDescriber,
    private readonly roles: ReadonlySet<TopicRole>,
  ) {}

  /** The topics served, for messages. */
  served(): string[] {
    return this.describer.topics().filter((t) => this.isServed(t));
  }

  /** The topic's partition count; UnknownTopicError for a topic not served. */
  partitionsOf(topic: string): number {
    if (!this.isServed(topic)) {
      throw new UnknownTopicError(`no topic "${topic}" to read here; GET /topics/:topic/records reads ${this.served().map((t) => `"${t}"`).join(', ')}`, { topic });
    }
    return this.source.partitionsOf(topic);
  }

  async page(topic: string, request: PageRequest): Promise<RecordsPage> {
    const partitions = this.partitionsOf(topic);
    const wanted = request.partition === undefined ? Array.from({ length: partitions }, (_, p) => p) : [request.partition];
    const position = new Map<number, number>();
    for (const p of wanted) position.set(p, await startOf(this.source, topic, p, request.from));
    const records: LogRecord[] = [];
    let more = false;
    for (const p of wanted) {
      const end = await this.source.endOffset(topic, p);
      const from = position.get(p)!;
      if (from >= end) continue;
      if (records.length >= request.limit) {
        more = true;
        continue;
      }
      const read = await readAtMost(this.source, topic, p, from, request.limit - records.length, end);
      records.push(...read.records);
      position.set(p, read.complete ? Math.max(from, end) : read.next);
      if (!read.complete) more = true;
    }
    await this.describer.prepare(records);
    const items = records.map((r) => this.describer.describe(r));
    const at: number | string = request.partition === undefined ? formatPosition(position) : position.get(request.partition)!;
    return { topic, items, next: more ? at : null, position: at };
  }

  /** The newest `limit` records of the topic across its partitions, newest first (by timestamp). */
  async newest(topic: string, limit: number): Promise<RecordLine[]> {
    const partitions = this.partitionsOf(topic);
    const records: LogRecord[] = [];
    for (let p = 0; p < partitions; p++) {
      const end = await this.source.endOffset(topic, p);
      if (end === 0) continue;
      // Kafka's transaction markers take offsets too: a partition may give fewer than asked.
      records.push(...(await readAtMost(this.source, topic, p, Math.max(0, end - limit), limit, end)).records);
    }
    const chosen = records.sort((a, b) => b.timestamp - a.timestamp || b.offset - a.offset).slice(0, limit);
    await this.describer.prepare(chosen);
    return chosen.map((r) => this.describer.describe(r));
  }

  private isServed(topic: string): boolean {
    const role = this.describer.roleOf(topic);
    return role !== undefined && this.roles.has(role);
  }
}

async function startOf(source: TopicSource, topic: string, partition: number, from: PageStart): Promise<number> {
  switch (from.kind) {
    case 'beginning':
      return 0;
    case 'end':
      return source.endOffset(topic, partition);
    case 'offset':
      return from.offset;
    case 'position':
      return from.position.get(partition) ?? 0;
  }
}

/**
 * Up to `max` records of a partition from `from`: `complete` when the read reached the end it
 * had when it began (then the partition is read up to that end), else `next` is the offset after
 * the last record taken.
 */
export async function readAtMost(
  source: TopicSource,
  topic: string,
  partition: number,
  from: number,
  max: number,
  /** Reads stop here: records appended since the caller took the end belong to the next page. */
  end = Infinity,
): Promise<{ records: LogRecord[]; complete: boolean; next: number }> {
  const records: LogRecord[] = [];
  let next = from;
  // Leaving the loop early ends the read (a Kafka reader disconnects).
  for await (const chunk of source.readRange(topic, partition, from)) {
    for (const record of chunk) {
      if (record.offset >= end) return { records, complete: true, next };
      if (records.length >= max) return { records, complete: false, next };
      records.push(record);
      next = record.offset + 1;
    }
  }
  return { records, complete: true, next };
}

/** Every record of a partition from `from` to its end as of the call. */
export async function readAll(source: TopicSource, topic: string, partition: number, from = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const chunk of source.readRange(topic, partition, from)) out.push(...chunk);
  return out;
}
