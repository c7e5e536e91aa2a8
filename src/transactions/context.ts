import { HandlerContractError } from '../errors.js';
import { emittable, eventSeed, seededRandom, type CompiledApp, type Emitted } from '../procedures/index.js';
import type { GlobalTableView, Key } from '../state/index.js';
import type { RoundRows } from './rows.js';

/** A table as a multi-partition handler sees it: the rows of its declared keys, on any partition. */
class RoundTable {
  constructor(
    private readonly ctx: TxnContext,
    private readonly table: string,
  ) {}

  get(key: Key): unknown {
    return this.ctx.rows.get(this.table, key, this.ctx.declared);
  }

  has(key: Key): boolean {
    return this.get(key) !== undefined;
  }

  scan(options: { after?: Key; limit?: number } = {}): Array<[Key, unknown]> {
    let rows = this.ctx.rows.scan(this.table);
    if (options.after !== undefined) rows = rows.filter(([k]) => k > options.after!);
    return options.limit === undefined ? rows : rows.slice(0, options.limit);
  }

  get size(): number {
    return this.ctx.rows.scan(this.table).length;
  }

  put(key: Key, value: unknown): void {
    this.ctx.assertHandling(`${this.table}.put()`);
    this.ctx.rows.put(this.table, key, value, this.ctx.declared);
  }

  delete(key: Key): boolean {
    this.ctx.assertHandling(`${this.table}.delete()`);
    return this.ctx.rows.delete(this.table, key, this.ctx.declared);
  }
}

/**
 * The `ctx` of a multi-partition procedure, run by the coordinator over the rows the participants
 * read: tables of every partition it declared keys of, emits, and the same determinism as a
 * single-partition handler (time and randomness of its input record).
 */
export class TxnContext {
  readonly tables: Record<string, RoundTable>;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly timers = {
    set: () => this.noTimers(),
    cancel: () => this.noTimers(),
    get: () => this.noTimers(),
  };
  eventType = '';
  /** The partition that read the event. */
  partition = 0;
  offset = 0;
  timestamp = 0;
  /** Keys the current transaction declared (undefined: every partition). */
  declared: ReadonlySet<string> | undefined;
  private topic = '';
  private rng: (() => number) | undefined;
  private emitted: Emitted[] = [];
  private handling = false;

  constructor(
    private readonly app: CompiledApp,
    readonly rows: RoundRows,
    readonly globals: Record<string, GlobalTableView>,
  ) {
    this.settings = app.settings;
    this.tables = Object.fromEntries(
      // Partition-local tables too: touching one says why it cannot be.
      [...app.tables.values()].filter((t) => !t.system).map((t) => [t.name, new RoundTable(this, t.name)]),
    );
  }

  moveTo(eventType: string, origin: { topic: string; partition: number; offset: number }, timestamp: number, declared: ReadonlySet<string> | undefined): void {
    this.eventType = eventType;
    this.topic = origin.topic;
    this.partition = origin.partition;
    this.offset = origin.offset;
    this.timestamp = timestamp;
    this.declared = declared;
    this.rng = undefined;
    this.emitted = [];
  }

  invoke(procedure: { handle(ctx: unknown, event: unknown): unknown }, event: unknown): unknown {
    this.handling = true;
    try {
      return procedure.handle(this, event);
    } finally {
      this.handling = false;
    }
  }

  assertHandling(operation: string): void {
    if (this.handling) return;
    throw new HandlerContractError(`${operation} was called after the handler returned; handlers must be synchronous`, { eventType: this.eventType });
  }

  random(): number {
    this.rng ??= seededRandom(eventSeed(this.topic, this.partition, this.offset));
    return this.rng();
  }

  emit(alias: string, value: unknown, options?: { key?: string }): void {
    this.assertHandling(`emit("${alias}")`);
    const event = emittable(this.app, alias, { eventType: this.eventType, partition: this.partition, offset: this.offset });
    this.emitted.push({ event, value, key: options?.key });
  }

  takeEmitted(): readonly Emitted[] {
    return this.emitted;
  }

  private noTimers(): never {
    throw new HandlerContractError('timers are not available in a multi-partition procedure (a timer lives on one partition: emit an event and set it there)', { eventType: this.eventType });
  }
}
