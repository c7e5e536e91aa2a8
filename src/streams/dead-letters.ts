/**
 * Dead letters as data, and the plan of a replay: which dead letters go back to their input,
 * which were replayed already, which cannot be (timers), and the records a replay writes. Pure:
 * the reading and the atomic writing are the transports' (see dlq-replay.ts).
 */
import type { TopicSpec } from './event-log.js';
import { DLQ_HEADERS, type DeadLetterReason, type LogRecord, type OutRecord } from './records.js';

/** Headers of a re-injected record: the dead letter it is a replay of (its source is in the record's place). */
export const REPLAY_HEADERS = {
  dlqTopic: 'farad.replay.dlq-topic',
  dlqPartition: 'farad.replay.dlq-partition',
  dlqOffset: 'farad.replay.dlq-offset',
  /** Where the record was read before it was dead-lettered (`topic/partition/offset`). */
  source: 'farad.replay.source',
  /** ms since the epoch. */
  replayedAt: 'farad.replay.replayed-at',
} as const;

export const DEAD_LETTER_REASONS: readonly DeadLetterReason[] = ['decode_error', 'unknown_schema', 'no_procedure', 'handler_error'];

/** The app's replay log: one record per replayed dead letter, keyed `dlqPartition:dlqOffset`. Compacted, so it never expires. */
export function replayLogTopicOf(app: { readonly name: string }): TopicSpec {
  return { name: `${app.name}-dlq-replays`, partitions: 1, compacted: true };
}

/** The transactional id of `farad dlq replay` on Kafka: one replay at a time per app (a second fences the first). */
export function replayTransactionalId(app: { readonly name: string }): string {
  return `${app.name}-dlq-replay`;
}

/** Where a record is (or was). */
export interface RecordAddress {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** A record of `<app>-dlq`, read back: why it failed, where it came from, and what it held. */
export interface DeadLetter {
  readonly record: LogRecord;
  /** Its key in the replay log. */
  readonly id: string;
  readonly reason: string;
  readonly error: string;
  /** The event type, when it was known (decoded). */
  readonly eventType: string | undefined;
  /** The input record it was, when it was one. */
  readonly source: RecordAddress | undefined;
  /** A timer whose handler failed (its value is the timer as JSON), with when it was due and fired. */
  readonly timer: { readonly dueAt: number; readonly firedAt: number } | undefined;
  /** The headers the input record had (the dead-letter headers left out). */
  readonly originalHeaders: Readonly<Record<string, string>>;
  /** A replayed record that failed again: the id of the dead letter it replayed. */
  readonly replayOf: string | undefined;
}

/** The replay log's key of a dead letter. */
export function deadLetterId(partition: number, offset: number): string {
  return `${partition}:${offset}`;
}

const DLQ_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(DLQ_HEADERS));
const REPLAY_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(REPLAY_HEADERS));

/** Reads a dead letter's headers. */
export function parseDeadLetter(record: LogRecord): DeadLetter {
  const h = record.headers;
  const sourceTopic = h[DLQ_HEADERS.sourceTopic];
  const sourcePartition = integer(h[DLQ_HEADERS.sourcePartition]);
  const sourceOffset = integer(h[DLQ_HEADERS.sourceOffset]);
  const dueAt = integer(h[DLQ_HEADERS.timerDueAt]);
  const firedAt = integer(h[DLQ_HEADERS.timerFiredAt]);
  const replayPartition = integer(h[REPLAY_HEADERS.dlqPartition]);
  const replayOffset = integer(h[REPLAY_HEADERS.dlqOffset]);
  const originalHeaders: Record<string, string> = {};
  // A replay that failed again carries the previous replay's headers: they are replaced, not kept.
  for (const [name, value] of Object.entries(h)) if (!DLQ_HEADER_NAMES.has(name) && !REPLAY_HEADER_NAMES.has(name)) originalHeaders[name] = value;
  return {
    record,
    id: deadLetterId(record.partition, record.offset),
    reason: h[DLQ_HEADERS.reason] ?? '(none)',
    error: h[DLQ_HEADERS.error] ?? '',
    eventType: h[DLQ_HEADERS.eventType],
    source:
      sourceTopic !== undefined && sourcePartition !== undefined && sourceOffset !== undefined
        ? { topic: sourceTopic, partition: sourcePartition, offset: sourceOffset }
        : undefined,
    timer: dueAt !== undefined && firedAt !== undefined ? { dueAt, firedAt } : undefined,
    originalHeaders,
    replayOf: replayPartition !== undefined && replayOffset !== undefined ? deadLetterId(replayPartition, replayOffset) : undefined,
  };
}

function integer(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** One record of the replay log: when a dead letter was replayed, and where it went. */
export interface ReplayEntry {
  /** ms since the epoch. */
  readonly replayedAt: number;
  readonly dlq: RecordAddress;
  /** The input record the dead letter was. */
  readonly source: RecordAddress;
  /** The input topic partition it was written to again. */
  readonly to: { readonly topic: string; readonly partition: number };
  readonly reason: string;
  readonly eventType: string | null;
  readonly error: string;
}

/** A replay log record's entry; undefined for a record that is not one. */
export function parseReplayEntry(record: LogRecord): ReplayEntry | undefined {
  if (record.value === null) return undefined;
  try {
    const entry = JSON.parse(record.value.toString('utf8')) as Partial<ReplayEntry>;
    if (typeof entry.replayedAt !== 'number' || !entry.dlq || !entry.to) return undefined;
    return entry as ReplayEntry;
  } catch {
    return undefined;
  }
}

/** The dead letters a command is about. */
export interface DeadLetterFilter {
  readonly reason?: string | undefined;
  /** Only dead letters whose record timestamp is at or after this (ms since the epoch). */
  readonly since?: number | undefined;
  /**
   * Only dead letters below these offsets of the dead-letter topic's partitions (none of a
   * partition not named): the end a replay run began at, so that replayed records that fail
   * again are not replayed again within the same run.
   */
  readonly before?: ReadonlyMap<number, number> | undefined;
}

export function matches(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.reason !== undefined && letter.reason !== filter.reason) return false;
  if (filter.since !== undefined && letter.record.timestamp < filter.since) return false;
  if (filter.before !== undefined && letter.record.offset >= (filter.before.get(letter.record.partition) ?? 0)) return false;
  return true;
}

/** What a replay does with one dead letter. */
export type ReplayVerdict =
  | { readonly kind: 'replay'; readonly to: { readonly topic: string; readonly partition: number } }
  | { readonly kind: 'replayed'; readonly entry: ReplayEntry }
  | { readonly kind: 'not_replayable'; readonly why: string };

/** What the app must have for a replay: its inputs (a dead letter goes back to one of them). */
export interface ReplayApp {
  readonly name: string;
  readonly partitions: number;
  readonly inputTopics: readonly string[];
}

/**
 * Decides a dead letter's fate: replayed already (its id is in the replay log), not replayable
 * (a timer, which is no input record; a record of a topic that is not, or no longer, an input),
 * or replayed to its source topic partition.
 */
export function verdictOf(app: ReplayApp, letter: DeadLetter, replayed: ReadonlyMap<string, ReplayEntry>): ReplayVerdict {
  const entry = replayed.get(letter.id);
  if (entry) return { kind: 'replayed', entry };
  if (letter.timer) {
    return {
      kind: 'not_replayable',
      why: `a timer (${letter.eventType ?? 'unknown'}, due ${new Date(letter.timer.dueAt).toISOString()}), not an input record: its handler ran once and its row is gone; set it again from a handler if it must run`,
    };
  }
  const source = letter.source;
  if (!source) return { kind: 'not_replayable', why: 'it names no source input record (no farad.dlq.source.* headers)' };
  if (!app.inputTopics.includes(source.topic)) {
    return { kind: 'not_replayable', why: `its source topic "${source.topic}" is not an input of app "${app.name}" (inputs: ${app.inputTopics.join(', ')})` };
  }
  if (source.partition < 0 || source.partition >= app.partitions) {
    return { kind: 'not_replayable', why: `its source partition ${source.partition} does not exist (the app has ${app.partitions})` };
  }
  return { kind: 'replay', to: { topic: source.topic, partition: source.partition } };
}

/** A dead letter with its verdict. */
export interface PlannedLetter {
  readonly letter: DeadLetter;
  readonly verdict: ReplayVerdict;
}

/** The dead letters matching `filter`, oldest first (by partition, then offset), each with its verdict. */
export function planReplay(app: ReplayApp, letters: readonly DeadLetter[], replayed: ReadonlyMap<string, ReplayEntry>, filter: DeadLetterFilter = {}): PlannedLetter[] {
  return letters
    .filter((letter) => matches(letter, filter))
    .sort((a, b) => a.record.partition - b.record.partition || a.record.offset - b.record.offset)
    .map((letter) => ({ letter, verdict: verdictOf(app, letter, replayed) }));
}

/**
 * The two records that replay one dead letter, to be written atomically: the original key and
 * value (and headers) back on the source input topic partition, with headers naming the dead
 * letter; and its entry in the replay log. The re-injected record keeps its original timestamp
 * (the handler sees the event's own time).
 */
export function replayRecords(letter: DeadLetter, to: { readonly topic: string; readonly partition: number }, replayLog: string, now: number): [OutRecord, OutRecord] {
  const { record, source } = letter;
  const entry: ReplayEntry = {
    replayedAt: now,
    dlq: { topic: record.topic, partition: record.partition, offset: record.offset },
    source: source!,
    to,
    reason: letter.reason,
    eventType: letter.eventType ?? null,
    error: letter.error,
  };
  const input: OutRecord = {
    topic: to.topic,
    partition: to.partition,
    timestamp: record.timestamp,
    key: record.key,
    value: record.value,
    headers: {
      ...letter.originalHeaders,
      [REPLAY_HEADERS.dlqTopic]: record.topic,
      [REPLAY_HEADERS.dlqPartition]: String(record.partition),
      [REPLAY_HEADERS.dlqOffset]: String(record.offset),
      [REPLAY_HEADERS.source]: `${source!.topic}/${source!.partition}/${source!.offset}`,
      [REPLAY_HEADERS.replayedAt]: String(now),
    },
  };
  const log: OutRecord = { topic: replayLog, partition: 0, timestamp: now, key: Buffer.from(letter.id), value: Buffer.from(JSON.stringify(entry)) };
  return [input, log];
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * `--since`: an ISO 8601 time (`2024-05-01T12:00:00Z`, `2024-05-01`) or a duration back from
 * `now` (`90s`, `15m`, `1h`, `2d`, combinable: `1h30m`). Undefined when it is neither.
 */
export function parseSince(text: string, now: number): number | undefined {
  const trimmed = text.trim();
  if (/^(\d+(?:\.\d+)?(ms|s|m|h|d|w))+$/.test(trimmed)) {
    let ms = 0;
    for (const part of trimmed.match(/\d+(?:\.\d+)?(?:ms|s|m|h|d|w)/g) ?? []) {
      const [, amount, unit] = DURATION.exec(part)!;
      ms += Number(amount) * UNIT_MS[unit!]!;
    }
    return now - ms;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : at;
}
