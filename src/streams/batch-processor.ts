import { performance } from 'node:perf_hooks';
import {
  DecodeError,
  describeError,
  HandlerContractError,
  SchemaValidationError,
  UnknownSchemaError,
} from '../errors.js';
import { HandlerContext, isThenable, type CompiledApp, type Emitted } from '../procedures/index.js';
import { describeInvalid, describeNonUnicode, partitionForKey, type GlobalTableView, type PartitionState } from '../state/index.js';
import type { EventCodec, RowCodec } from '../codec/index.js';
import { DLQ_HEADERS, type CommitPlan, type DeadLetterReason, type LogRecord, type OutRecord } from './records.js';

/** Hooks for metrics, so this pure module needs no metrics library. */
export interface ProcessorObserver {
  /** Events of one type a committed batch handled (counted once durable, so retries never double count). */
  eventsHandled(eventType: string, partition: number, ok: number, failed: number): void;
  /** Time of one handler call. */
  handlerLatency(eventType: string, seconds: number): void;
  deadLettered(reason: DeadLetterReason, eventType: string, partition: number): void;
}

export interface ProcessorOptions {
  readonly app: CompiledApp;
  readonly state: PartitionState;
  readonly catalog: EventCodec;
  /** Encodes the batch's row changes for the changelog (current table schemas). */
  readonly rows: RowCodec;
  readonly globals: Record<string, GlobalTableView>;
  /** Partition count of an output topic. */
  readonly partitionsOf: (topic: string) => number;
  readonly observer?: ProcessorObserver | undefined;
}

const UNKNOWN_TYPE = '(unknown)';

/**
 * Applies input records of one partition to its state, one handler call per record, each
 * atomic on its own (savepoint), and accumulates what the batch must commit. Pure: no I/O.
 */
export class BatchProcessor {
  private readonly ctx: HandlerContext;
  private records: OutRecord[] = [];
  private readonly nextOffsets = new Map<string, number>();
  private inputCount = 0;
  private lastTimestamp = 0;
  private readonly tally = new Map<string, { ok: number; failed: number }>();

  constructor(private readonly options: ProcessorOptions) {
    this.ctx = new HandlerContext(options.app, options.state, options.globals);
  }

  /** Input records applied since the last commit or abort. */
  get pending(): number {
    return this.inputCount;
  }

  /** Applies records to the open batch, in order. Never throws for bad input: it dead-letters. */
  apply(records: readonly LogRecord[]): void {
    for (const record of records) this.applyOne(record);
  }

  /** What the open batch must commit atomically. */
  plan(): CommitPlan {
    const { app, state } = this.options;
    const changelog: OutRecord[] = this.options.rows.encodeChanges(state.changes()).map(({ key, value }) => ({
      topic: app.changelogTopic,
      partition: state.partition,
      timestamp: this.lastTimestamp,
      key,
      value,
    }));
    return {
      partition: state.partition,
      records: changelog.length === 0 ? this.records : [...this.records, ...changelog],
      offsets: [...this.nextOffsets].map(([topic, offset]) => ({ topic, partition: state.partition, offset })),
      inputCount: this.inputCount,
    };
  }

  /** The planned batch is durable. */
  committed(): void {
    this.options.state.markCommitted();
    const { observer, state } = this.options;
    if (observer) for (const [type, { ok, failed }] of this.tally) observer.eventsHandled(type, state.partition, ok, failed);
    this.reset();
  }

  /** The batch could not be committed: undo all of its effects. */
  abort(): void {
    this.options.state.rollbackBatch();
    this.reset();
  }

  private reset(): void {
    this.tally.clear();
    this.records = [];
    this.nextOffsets.clear();
    this.inputCount = 0;
  }

  private applyOne(record: LogRecord): void {
    const { app, state, catalog, observer } = this.options;
    this.nextOffsets.set(record.topic, record.offset + 1);
    this.inputCount++;
    this.lastTimestamp = record.timestamp;

    let decoded;
    try {
      if (record.value === null) throw new DecodeError('record has no value');
      decoded = catalog.decode(record.value);
    } catch (err) {
      this.deadLetter(record, err instanceof UnknownSchemaError ? 'unknown_schema' : 'decode_error', err, undefined);
      return;
    }
    const event = app.eventsByFullName.get(decoded.name);
    const procedure = event?.procedure;
    if (!procedure) {
      this.deadLetter(record, 'no_procedure', `no procedure handles event type "${decoded.name}"`, decoded.name);
      return;
    }

    const savepoint = state.savepoint();
    const ctx = this.ctx;
    ctx.moveTo(decoded.name, record.topic, record.offset, record.timestamp);
    state.position.eventType = decoded.name;
    state.position.offset = record.offset;
    const started = performance.now();
    let produced: OutRecord[] | undefined;
    try {
      const result = procedure.handle(ctx, decoded.value);
      if (isThenable(result)) {
        // Cannot be undone once running; reject so nothing it did in this call is kept.
        void Promise.resolve(result).catch(() => undefined);
        throw new HandlerContractError(
          `handler of "${decoded.name}" returned a Promise; handlers must be synchronous`,
          { eventType: decoded.name, partition: state.partition, offset: record.offset },
        );
      }
      const emitted = ctx.takeEmitted();
      if (emitted.length > 0) produced = this.encodeEmitted(emitted, procedure.partitionKey, decoded.value, record);
    } catch (err) {
      state.rollbackTo(savepoint);
      observer?.handlerLatency(decoded.name, (performance.now() - started) / 1000);
      this.count(decoded.name).failed++;
      this.deadLetter(record, 'handler_error', err, decoded.name);
      return;
    }
    if (produced) for (const out of produced) this.records.push(out);
    observer?.handlerLatency(decoded.name, (performance.now() - started) / 1000);
    this.count(decoded.name).ok++;
  }

  private count(eventType: string): { ok: number; failed: number } {
    let entry = this.tally.get(eventType);
    if (!entry) this.tally.set(eventType, (entry = { ok: 0, failed: 0 }));
    return entry;
  }

  private encodeEmitted(
    emitted: readonly Emitted[],
    partitionKey: (event: unknown) => string | number,
    input: unknown,
    record: LogRecord,
  ): OutRecord[] {
    const { catalog, partitionsOf } = this.options;
    let inputKey: string | undefined;
    const out: OutRecord[] = [];
    for (const { event, value, key } of emitted) {
      let bytes: Buffer;
      try {
        // avsc would write a lone surrogate as U+FFFD: refuse it like any other invalid value.
        const nonUnicode = describeNonUnicode(event.type, value);
        if (nonUnicode) throw new SchemaValidationError(nonUnicode.message, { field: nonUnicode.field });
        bytes = catalog.encode(event.fullName, value);
      } catch (err) {
        const invalid = describeInvalid(event.type, value);
        throw new SchemaValidationError(`emit("${event.alias}"): ${invalid?.message ?? describeError(err)}`, {
          eventType: event.fullName,
          partition: record.partition,
          offset: record.offset,
          field: invalid?.field,
        });
      }
      const routingKey = key ?? (inputKey ??= String(partitionKey(input)));
      const topic = event.outputTopic!;
      out.push({
        topic,
        partition: partitionForKey(routingKey, partitionsOf(topic)),
        timestamp: record.timestamp,
        key: Buffer.from(routingKey),
        value: bytes,
      });
    }
    return out;
  }

  private deadLetter(record: LogRecord, reason: DeadLetterReason, error: unknown, eventType: string | undefined): void {
    const { app, state, observer } = this.options;
    const headers: Record<string, string> = {
      ...record.headers,
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.error]: typeof error === 'string' ? error : describeError(error),
      [DLQ_HEADERS.sourceTopic]: record.topic,
      [DLQ_HEADERS.sourcePartition]: String(record.partition),
      [DLQ_HEADERS.sourceOffset]: String(record.offset),
    };
    if (eventType) headers[DLQ_HEADERS.eventType] = eventType;
    this.records.push({
      topic: app.deadLetterTopic,
      partition: state.partition,
      timestamp: record.timestamp,
      key: record.key,
      value: record.value,
      headers,
    });
    observer?.deadLettered(reason, eventType ?? UNKNOWN_TYPE, state.partition);
  }
}
