import type { LogRecord, OutRecord } from '../streams/records.js';

/**
 * The test driver's log: every topic partition as an array in memory, offsets from 0, and the
 * order records were appended across topics (a partition reads its topics in that order, as the
 * embedded log's journal gives them).
 */
export class MemoryLog {
  private readonly topics = new Map<string, LogRecord[][]>();
  private readonly sequence = new WeakMap<LogRecord, number>();
  /** Every record, in append order. */
  private readonly journal: LogRecord[] = [];

  append(out: OutRecord): LogRecord {
    let partitions = this.topics.get(out.topic);
    if (!partitions) this.topics.set(out.topic, (partitions = []));
    const list = (partitions[out.partition] ??= []);
    const record: LogRecord = {
      topic: out.topic,
      partition: out.partition,
      offset: list.length,
      timestamp: out.timestamp,
      key: out.key,
      value: out.value,
      headers: out.headers ?? {},
    };
    list.push(record);
    this.sequence.set(record, this.journal.length);
    this.journal.push(record);
    return record;
  }

  /** How many records were appended so far (a mark for `since`). */
  get size(): number {
    return this.journal.length;
  }

  /** Records appended after `mark` (a `size` read earlier), in append order. */
  since(mark: number): readonly LogRecord[] {
    return this.journal.slice(mark);
  }

  /** Records of one topic partition, in offset order. */
  partition(topic: string, partition: number): readonly LogRecord[] {
    return this.topics.get(topic)?.[partition] ?? [];
  }

  /** Records of a topic, in append order across its partitions. */
  topic(topic: string): LogRecord[] {
    const all = (this.topics.get(topic) ?? []).flatMap((list) => list ?? []);
    return all.sort((a, b) => this.sequence.get(a)! - this.sequence.get(b)!);
  }

  topicNames(): string[] {
    return [...this.topics.keys()];
  }

  /** When a record was appended, relative to the others (merges topics in log order). */
  sequenceOf(record: LogRecord): number {
    return this.sequence.get(record)!;
  }
}
