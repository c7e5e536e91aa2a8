import { HandlerContractError, type ErrorContext } from '../errors.js';
import {
  CommittedTable,
  GlobalTableView,
  HandlerTable,
  type PartitionState,
  type TableReader,
} from '../state/index.js';
import type { ProcedureDef } from './app.js';
import type { CompiledApp, CompiledEvent } from './compile.js';
import { eventSeed, seededRandom } from './determinism.js';
import { HandlerTimers, TimerIndex } from './timers.js';

/** An event a handler emitted, before the transport encodes and routes it. */
export interface Emitted {
  readonly event: CompiledEvent;
  readonly value: unknown;
  /** Explicit partition key, or undefined for the handled event's key. */
  readonly key: string | undefined;
}

/**
 * The `ctx` handed to handlers of one partition. One instance is reused for every event of the
 * partition (the batch processor moves it to each event with `moveTo`), so handling allocates nothing
 * unless the handler asks for randomness or emits.
 */
export class HandlerContext {
  readonly tables: Record<string, HandlerTable>;
  readonly globals: Record<string, GlobalTableView>;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly partition: number;
  readonly timers: HandlerTimers;
  eventType = '';
  offset = 0;
  timestamp = 0;
  private topic = '';
  private rng: (() => number) | undefined;
  private emitted: Emitted[] = [];
  /** True only while `invoke` runs a handler; writes and emits are refused at any other time. */
  private handling = false;

  constructor(
    private readonly app: CompiledApp,
    state: PartitionState,
    globals: Record<string, GlobalTableView>,
    /** Pending timers by due time; updated as handlers set timers. */
    timerIndex: TimerIndex = new TimerIndex(state),
  ) {
    this.partition = state.partition;
    this.settings = app.settings;
    const assertHandling = (operation: string): void => this.assertHandling(operation);
    this.timers = new HandlerTimers(app.timers, state, timerIndex, () => this.timestamp, assertHandling);
    this.tables = Object.fromEntries(userTables(app).map((name) => [name, new HandlerTable(state, name, assertHandling)]));
    this.globals = globals;
  }

  /** Points the context at the next event; clears what the previous one emitted. */
  moveTo(eventType: string, topic: string, offset: number, timestamp: number): void {
    this.eventType = eventType;
    this.topic = topic;
    this.offset = offset;
    this.timestamp = timestamp;
    this.rng = undefined;
    if (this.emitted.length > 0) this.emitted = [];
  }

  /**
   * Points the context at a firing timer: `timestamp` is the fire time, `offset` is -1 (a timer
   * has no input offset) and randomness is seeded from the timer's identity and due time.
   */
  moveToTimer(label: string, rowKey: string, dueAt: number, firedAt: number): void {
    this.moveTo(label, `timer:${rowKey}`, -1, firedAt);
    this.rng = seededRandom(eventSeed(`timer:${rowKey}`, this.partition, dueAt));
  }

  /**
   * Runs a procedure's handler on the current event. When it returns, the context closes: a
   * handler that kept `ctx` or a table for later (a Promise continuation, a timer) cannot write
   * or emit outside its transaction.
   */
  invoke(procedure: Pick<ProcedureDef<unknown, unknown>, 'handle'> | { handle(ctx: unknown, value: unknown): void }, event: unknown): unknown {
    this.handling = true;
    try {
      return procedure.handle(this, event);
    } finally {
      this.handling = false;
    }
  }

  private assertHandling(operation: string): void {
    if (this.handling) return;
    throw new HandlerContractError(
      `${operation} was called after the handler returned; handlers must be synchronous and must not keep ctx or its tables for later`,
      { partition: this.partition },
    );
  }

  random(): number {
    this.rng ??= seededRandom(eventSeed(this.topic, this.partition, this.offset));
    return this.rng();
  }

  emit(alias: string, value: unknown, options?: { key?: string }): void {
    this.assertHandling(`emit("${alias}")`);
    const event = emittable(this.app, alias, { eventType: this.eventType, partition: this.partition, offset: this.offset });
    // The value is validated when the batch processor encodes it, right after the handler returns.
    this.emitted.push({ event, value, key: options?.key });
  }

  /** What the current event emitted so far. */
  takeEmitted(): readonly Emitted[] {
    return this.emitted;
  }
}

/** The event `alias` names, when a handler may emit it (it exists and has an output topic); throws otherwise. */
export function emittable(app: CompiledApp, alias: string, context: ErrorContext): CompiledEvent {
  const event = app.events.get(alias);
  if (!event) throw new HandlerContractError(`emit("${alias}"): no such event in the app`, context);
  if (!event.outputTopic) throw new HandlerContractError(`emit("${alias}"): event has no output topic; add it to the app's outputs`, context);
  return event;
}

/**
 * Read-only views of one partition for queries: its committed state, or (`live`) its state with
 * the open batch's writes, which is what a multi-partition vote reads at its position.
 */
export function queryContext(app: CompiledApp, state: PartitionState, globals: Record<string, TableReader>, reads: 'committed' | 'live' = 'committed') {
  const refuse = (operation: string): void => {
    throw new HandlerContractError(`${operation}: queries are read-only`, { partition: state.partition });
  };
  return {
    tables: Object.fromEntries(userTables(app).map((name) => [name, reads === 'live' ? new HandlerTable(state, name, refuse) : new CommittedTable(state, name)])),
    globals,
    settings: app.settings,
    partition: state.partition,
  };
}

/** The global tables of an app as read-only views, shared by every partition. */
export function globalViews(app: CompiledApp): Record<string, GlobalTableView> {
  return Object.fromEntries([...app.globalTables].map(([name, table]) => [name, new GlobalTableView(table.rows)]));
}

/** The app's own tables (not farad's system tables). */
function userTables(app: CompiledApp): string[] {
  return [...app.tables.values()].filter((t) => !t.system).map((t) => t.name);
}
