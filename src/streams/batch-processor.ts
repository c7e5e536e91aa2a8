import { performance } from 'node:perf_hooks';
import {
  DecodeError,
  describeError,
  HandlerContractError,
  SchemaValidationError,
  UnknownSchemaError,
} from '../errors.js';
import {
  HandlerContext,
  hasTimers,
  isThenable,
  recordInputOffsets,
  SCHEDULE_KIND_PREFIX,
  timerRow,
  timerRowKey,
  TimerIndex,
  TIMERS_TABLE,
  type CompiledApp,
  type CompiledProcedure,
  type CompiledTimer,
  type Emitted,
  type TimerRow,
} from '../procedures/index.js';
import { describeInvalid, describeNonUnicode, partitionForKey, type GlobalTableView, type PartitionState } from '../state/index.js';
import { toJson, type EventCodec, type RowCodec } from '../codec/index.js';
import { DLQ_HEADERS, type CommitPlan, type DeadLetterReason, type LogRecord, type OutRecord } from './records.js';

/** Hooks for metrics, so this pure module needs no metrics library. */
export interface ProcessorObserver {
  /** Events of one type a committed batch handled (counted once durable, so retries never double count). */
  eventsHandled(eventType: string, partition: number, ok: number, failed: number): void;
  /** Time of one handler call. */
  handlerLatency(eventType: string, seconds: number): void;
  deadLettered(reason: DeadLetterReason, eventType: string, partition: number): void;
  /** A committed batch fired a timer `lateSeconds` after its due time (`label`: timer:<name> or schedule:<name>). */
  timerFired?(label: string, partition: number, lateSeconds: number): void;
  /**
   * A handler threw (or broke its contract) and its event goes to the dead-letter topic. Called
   * when it happens, before the batch commits (a batch retried after a failed commit calls it
   * again); logging it is the observer's business.
   */
  handlerFailed?(failure: HandlerFailure): void;
}

/** A handler that failed: which event (or timer), where, and what it threw. */
export interface HandlerFailure {
  /** The event type, or `timer:<name>` / `schedule:<name>`. */
  readonly eventType: string;
  readonly partition: number;
  /** The input record's offset; undefined for a timer. */
  readonly offset: number | undefined;
  /** What the handler threw (any value). */
  readonly error: unknown;
}

/** Changelog header on a fired timer's tombstone: the fire time, ms since the epoch. */
export const FIRED_AT_HEADER = 'farad.timer.fired-at';

/** What a multi-partition protocol needs of the batch it runs in (see transactions/protocol.ts). */
export interface ProtocolHost {
  readonly app: CompiledApp;
  readonly state: PartitionState;
  readonly rows: RowCodec;
  readonly catalog: EventCodec;
  readonly globals: Record<string, GlobalTableView>;
  /** Adds a record to the open batch (committed with it, atomically). */
  out(record: OutRecord): void;
  /** Encodes what a handler emitted (throws when a value does not fit its schema). */
  encodeEmitted(emitted: readonly Emitted[], defaultKey: () => string, where: { partition: number; offset: number; timestamp: number }): OutRecord[];
  /** A forwarded record whose transaction failed goes to the dead-letter topic. */
  deadLetter(record: LogRecord, eventType: string, error: unknown): void;
  handled(eventType: string, ok: boolean): void;
}

/** A multi-partition protocol as the batch processor drives it. */
export interface BatchProtocol {
  /** Its topic: records of it go to `receive`. */
  readonly topic: string;
  /** True while an undecided round may write here: input waits. */
  readonly held: boolean;
  /** The open batch exchanged protocol messages (commit at once). */
  urgent: boolean;
  /** Re-reads its state from the partition (after an aborted batch). */
  load(): void;
  /** Writes its state into the open batch. */
  flush(): void;
  /** A multi-partition procedure's event read here. */
  forward(record: LogRecord, eventType: string, procedure: CompiledProcedure, value: unknown): void;
  receive(record: LogRecord): void;
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
  /** Makes the protocol of multi-partition transactions (apps that have them). */
  readonly protocol?: ((host: ProtocolHost) => BatchProtocol) | undefined;
}

const UNKNOWN_TYPE = '(unknown)';

/**
 * Applies input records of one partition to its state, one handler call per record, each
 * atomic on its own (savepoint), and accumulates what the batch must commit. Pure: no I/O.
 */
export class BatchProcessor {
  private readonly ctx: HandlerContext;
  private readonly timers: TimerIndex;
  /** Scheduled procedures of this partition still to be checked against their timer rows. */
  private schedulesChecked = false;
  private readonly hasSchedules: boolean;
  /** Timers the open batch fired: row key → fire time (for the changelog) and lateness. */
  private readonly fired = new Map<string, { label: string; firedAt: number; late: number }>();
  /** Timer work in the open batch (fired, scheduled): the batch commits even with no input. */
  private timerWork = 0;
  private records: OutRecord[] = [];
  private readonly nextOffsets = new Map<string, number>();
  private inputCount = 0;
  private lastTimestamp = 0;
  /** Highest input record timestamp applied (committed, and in the open batch). */
  private committedInputTime = 0;
  private inputTime = 0;
  private readonly tally = new Map<string, { ok: number; failed: number }>();

  constructor(private readonly options: ProcessorOptions) {
    this.timers = new TimerIndex(options.state);
    this.hasSchedules = [...options.app.timers.values()].some((timer) => timer.schedule);
    this.ctx = new HandlerContext(options.app, options.state, options.globals, this.timers);
    this.timers.rebuild();
    this.mp =
      options.app.multiPartition && options.protocol
        ? options.protocol({
            app: options.app,
            state: options.state,
            rows: options.rows,
            catalog: options.catalog,
            globals: options.globals,
            out: (record) => this.records.push(record),
            encodeEmitted: (emitted, defaultKey, where) => this.encodeEmitted(emitted, defaultKey, where),
            deadLetter: (record, eventType, error) => this.deadLetter(record, 'handler_error', error, eventType),
            handled: (eventType, ok) => this.count(eventType)[ok ? 'ok' : 'failed']++,
          })
        : undefined;
  }

  /** Multi-partition transactions (apps that have them): the protocol's view of this partition. */
  private readonly mp: BatchProtocol | undefined;

  /**
   * Topics the next poll may return: only the protocol's while this partition is held by an
   * undecided multi-partition round (its other input waits), else every input topic.
   */
  pollTopics(): readonly string[] | undefined {
    return this.mp?.held ? [this.mp.topic] : undefined;
  }

  /** True while an undecided multi-partition round may write here: nothing else runs meanwhile. */
  get held(): boolean {
    return this.mp?.held ?? false;
  }

  /** The open batch exchanged protocol messages: commit it now, others wait for it. */
  get urgent(): boolean {
    return this.mp?.urgent ?? false;
  }

  /** Input records applied since the last commit or abort. */
  get pending(): number {
    return this.inputCount;
  }

  /** True when the open batch has anything to commit (input, fired or scheduled timers). */
  get hasWork(): boolean {
    return this.inputCount > 0 || this.timerWork > 0;
  }

  /** When the next timer is due (ms since the epoch), or undefined when none is pending. */
  nextDueAt(): number | undefined {
    if (!this.schedulesChecked && this.hasSchedules) return 0;
    return this.timers.next()?.row.dueAt;
  }

  /**
   * The latest due time timers may fire for now (ms since the epoch): the wall clock when the
   * partition's input has been read to its end, else no later than the input read so far
   * (a timer does not overtake input already in the log that was written before it came due).
   */
  fireHorizon(now: number, inputIdle: boolean): number {
    return inputIdle ? now : Math.min(now, this.inputTime);
  }

  /**
   * Fires, in due order, up to `max` timers due by `dueBy` at `firedAt` (the wall clock,
   * recorded as each handler's `ctx.timestamp`), after the batch's input records. Each runs as
   * its own transaction inside the batch; one that throws is dead-lettered and still counts as
   * fired. Returns how many fired.
   */
  fireDue(firedAt: number, max: number, dueBy = firedAt): number {
    const workBefore = this.timerWork;
    if (!this.schedulesChecked) this.planSchedules(firedAt);
    let count = 0;
    // A timer its own handler set again for a time already due fires in the next batch, not in a
    // loop in this one.
    const firedNow = new Set<string>();
    const deferred: TimerRow[] = [];
    while (count < max) {
      const next = this.timers.next();
      if (!next || next.row.dueAt > dueBy) break;
      this.timers.pop();
      if (firedNow.has(next.rowKey)) {
        deferred.push(next.row);
        continue;
      }
      firedNow.add(next.rowKey);
      this.fireOne(next.rowKey, next.row, firedAt);
      count++;
    }
    for (const row of deferred) this.timers.push(row.dueAt, timerRowKey(row.kind, row.key, row.id));
    // The batch's changelog records carry the time of its last step.
    if (this.timerWork > workBefore) this.lastTimestamp = Math.max(this.lastTimestamp, firedAt);
    return count;
  }

  /**
   * Applies records to the open batch, in order; returns how many. Never throws for bad input: it
   * dead-letters. It stops before an input record once a multi-partition round holds the
   * partition: the caller gives the rest back to the log.
   */
  apply(records: readonly LogRecord[]): number {
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (this.mp?.held && record.topic !== this.mp.topic) return i;
      this.applyOne(record);
    }
    return records.length;
  }

  /** What the open batch must commit atomically. */
  plan(): CommitPlan {
    const { app, state } = this.options;
    this.mp?.flush();
    recordInputOffsets(state, this.nextOffsets);
    const changes = state.changes();
    const changelog: OutRecord[] = this.options.rows.encodeChanges(changes).map(({ key, value }, i) => {
      const change = changes[i]!;
      const fired = change.table === TIMERS_TABLE && value === null ? this.fired.get(change.key as string) : undefined;
      if (!fired) return { topic: app.changelogTopic, partition: state.partition, timestamp: this.lastTimestamp, key, value };
      // The fire time is part of the log: standbys, restores and readers of the changelog see it.
      return { topic: app.changelogTopic, partition: state.partition, timestamp: fired.firedAt, key, value, headers: { [FIRED_AT_HEADER]: String(fired.firedAt) } };
    });
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
    if (this.mp) this.mp.urgent = false;
    this.committedInputTime = this.inputTime;
    const { observer, state } = this.options;
    if (observer) for (const [type, { ok, failed }] of this.tally) observer.eventsHandled(type, state.partition, ok, failed);
    if (observer?.timerFired) for (const { label, late } of this.fired.values()) observer.timerFired(label, state.partition, late / 1000);
    this.reset();
  }

  /** The batch could not be committed: undo all of its effects. */
  abort(): void {
    this.options.state.rollbackBatch();
    this.mp?.load();
    this.inputTime = this.committedInputTime;
    // Fired timers are pending again, and scheduled rows written by the batch are gone.
    this.timers.rebuild();
    this.schedulesChecked = false;
    this.reset();
  }

  private reset(): void {
    this.fired.clear();
    this.timerWork = 0;
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
    if (record.timestamp > this.inputTime) this.inputTime = record.timestamp;
    if (this.mp && record.topic === this.mp.topic) {
      // The protocol's own records; a failure here fails the batch (they are farad's, not input).
      this.mp.receive(record);
      return;
    }

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

    if (procedure.multiPartition) {
      try {
        if (!this.mp) throw new HandlerContractError(`"${decoded.name}" is a multi-partition procedure, and this processor runs none`, { eventType: decoded.name });
        this.mp.forward(record, decoded.name, procedure, decoded.value);
      } catch (err) {
        this.count(decoded.name).failed++;
        this.deadLetter(record, 'handler_error', err, decoded.name);
      }
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
      if (emitted.length > 0) {
        let inputKey: string | undefined;
        produced = this.encodeEmitted(emitted, () => (inputKey ??= String(procedure.partitionKey(decoded.value))), record);
      }
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
    defaultKey: () => string,
    record: { readonly partition: number; readonly offset: number; readonly timestamp: number },
  ): OutRecord[] {
    const { catalog, partitionsOf } = this.options;
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
      const routingKey = key ?? defaultKey();
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

  /**
   * Gives every scheduled procedure of this partition a timer row for its next run, re-plans
   * one whose rhythm changed and drops rows of schedules the app no longer has. Runs once per
   * activation, inside the first batch.
   */
  private planSchedules(now: number): void {
    this.schedulesChecked = true;
    const { app, state } = this.options;
    if (!hasTimers(state)) return;
    const store = state.store(TIMERS_TABLE);
    const wanted = new Set<string>();
    for (const timer of app.timers.values()) {
      const schedule = timer.schedule;
      if (!schedule || (schedule.runOn === 'app' && state.partition !== 0)) continue;
      const rowKey = timerRowKey(timer.kind, '', '');
      wanted.add(rowKey);
      const row = store.get(rowKey) as TimerRow | undefined;
      if (row?.schedule === schedule.spec) continue;
      this.writeScheduleRow(timer, rowKey, schedule.next(now), now);
    }
    for (const [rowKey, row] of store.entries()) {
      if ((row as TimerRow).kind.startsWith(SCHEDULE_KIND_PREFIX) && !wanted.has(rowKey as string)) {
        state.write(TIMERS_TABLE, rowKey, undefined);
        this.timerWork++;
      }
    }
  }

  private writeScheduleRow(timer: CompiledTimer, rowKey: string, dueAt: number, now: number): void {
    const row = timerRow(this.options.app.timers, { kind: timer.kind, key: '', id: '', dueAt, setAt: now, schedule: timer.schedule!.spec });
    this.options.state.write(TIMERS_TABLE, rowKey, Object.freeze(row));
    this.timers.push(dueAt, rowKey);
    this.timerWork++;
  }

  private fireOne(rowKey: string, row: TimerRow, firedAt: number): void {
    const { app, state, observer } = this.options;
    const timer = app.timers.get(row.kind);
    const label = timer?.label ?? (row.kind.startsWith(SCHEDULE_KIND_PREFIX) ? `schedule:${row.kind.slice(1)}` : `timer:${row.kind}`);
    this.timerWork++;
    this.fired.set(rowKey, { label, firedAt, late: Math.max(0, firedAt - row.dueAt) });
    state.write(TIMERS_TABLE, rowKey, undefined);
    if (!timer) {
      this.deadLetterTimer(row, 'no_procedure', `no timer or schedule named "${row.kind}" in the app (it was removed while timers were pending)`, label, firedAt);
      return;
    }
    const savepoint = state.savepoint();
    const ctx = this.ctx;
    ctx.moveToTimer(label, rowKey, row.dueAt, firedAt);
    state.position.eventType = label;
    state.position.offset = undefined;
    const started = performance.now();
    let produced: OutRecord[] | undefined;
    let failed = false;
    try {
      const payload = timer.payloadField ? row[timer.payloadField] : null;
      const result = timer.run(ctx, { key: row.key, id: row.id, dueAt: row.dueAt, payload });
      if (isThenable(result)) {
        void Promise.resolve(result).catch(() => undefined);
        throw new HandlerContractError(`handler of ${label} returned a Promise; handlers must be synchronous`, { eventType: label, partition: state.partition });
      }
      const emitted = ctx.takeEmitted();
      if (emitted.length > 0) {
        const defaultKey = (): string => {
          if (timer.schedule) throw new HandlerContractError(`${label}: a scheduled procedure has no key of its own; emit with { key }`, { eventType: label, partition: state.partition });
          return row.key;
        };
        produced = this.encodeEmitted(emitted, defaultKey, { partition: state.partition, offset: -1, timestamp: firedAt });
      }
    } catch (err) {
      state.rollbackTo(savepoint);
      failed = true;
      this.deadLetterTimer(row, 'handler_error', err, label, firedAt);
    }
    observer?.handlerLatency(label, (performance.now() - started) / 1000);
    if (produced) for (const out of produced) this.records.push(out);
    if (failed) this.count(label).failed++;
    else this.count(label).ok++;
    // A scheduled procedure plans its next run whatever this one did (missed runs are skipped).
    if (timer.schedule) this.writeScheduleRow(timer, rowKey, timer.schedule.next(Math.max(firedAt, row.dueAt)), firedAt);
  }

  /** A timer whose handler failed (or that nothing handles) goes to the dead-letter topic as JSON. */
  private deadLetterTimer(row: TimerRow, reason: DeadLetterReason, error: unknown, label: string, firedAt: number): void {
    const { app, state, observer } = this.options;
    const json = toJson(app.tables.get(TIMERS_TABLE)!.valueType, row);
    this.records.push({
      topic: app.deadLetterTopic,
      partition: state.partition,
      timestamp: firedAt,
      key: Buffer.from(row.key),
      value: Buffer.from(JSON.stringify(json)),
      headers: {
        [DLQ_HEADERS.reason]: reason,
        [DLQ_HEADERS.error]: typeof error === 'string' ? error : describeError(error),
        [DLQ_HEADERS.eventType]: label,
        [DLQ_HEADERS.timerDueAt]: String(row.dueAt),
        [DLQ_HEADERS.timerFiredAt]: String(firedAt),
      },
    });
    observer?.deadLettered(reason, label, state.partition);
    if (reason === 'handler_error') observer?.handlerFailed?.({ eventType: label, partition: state.partition, offset: undefined, error });
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
    if (reason === 'handler_error') observer?.handlerFailed?.({ eventType: eventType ?? UNKNOWN_TYPE, partition: record.partition, offset: record.offset, error });
  }
}
