/** A record read from a topic partition. */
export interface LogRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Milliseconds since the epoch; the handler's `ctx.timestamp`. */
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

/** A record to write. */
export interface OutRecord {
  readonly topic: string;
  readonly partition: number;
  readonly timestamp: number;
  readonly key: Buffer | null;
  /** null is a tombstone (deletes the key from a compacted topic). */
  readonly value: Buffer | null;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The next offset to read of an input topic partition, committed with the batch. */
export interface OffsetCommit {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/**
 * Everything one partition batch must make durable atomically: derived events, changelog
 * deltas and dead letters (`records`), and the input offsets that move past the batch.
 */
export interface CommitPlan {
  readonly partition: number;
  readonly records: readonly OutRecord[];
  readonly offsets: readonly OffsetCommit[];
  /** Number of input records the batch consumed. */
  readonly inputCount: number;
}

/** Dead-letter headers: why a record could not be processed and where it came from. */
export const DLQ_HEADERS = {
  reason: 'farad.dlq.reason',
  error: 'farad.dlq.error',
  eventType: 'farad.dlq.event-type',
  sourceTopic: 'farad.dlq.source.topic',
  sourcePartition: 'farad.dlq.source.partition',
  sourceOffset: 'farad.dlq.source.offset',
  /** On a dead-lettered timer (its value is the timer as JSON): when it was due and when it fired. */
  timerDueAt: 'farad.dlq.timer.due-at',
  timerFiredAt: 'farad.dlq.timer.fired-at',
} as const;

/** Why a record was dead-lettered (the `reason` label of `farad_dead_letters_total`). */
export type DeadLetterReason = 'decode_error' | 'unknown_schema' | 'no_procedure' | 'handler_error';
