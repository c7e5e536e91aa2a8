import { AppDefinitionError, HandlerContractError } from '../errors.js';
import { table, type EmitOptions, type TableDef, type TimerDef } from './app.js';
import { parseInterval } from './schedules.js';
import { schema as typed, type AvroSchema, type Typed } from './schema.js';

/** One closed window's final result. */
export interface WindowResult<A> {
  /** The partition key the window aggregates. */
  readonly key: string;
  /** Window bounds, ms since the epoch: [start, end). */
  readonly start: number;
  readonly end: number;
  readonly value: A;
}

/** What a window's `closed` callback may do: emit the result (one transaction with the close). */
export interface WindowCloseContext {
  /** When the window closed (the recorded fire time of its timer). */
  readonly timestamp: number;
  readonly partition: number;
  emit(type: string, value: unknown, options?: EmitOptions): void;
}

/** The handler context as a window sees it (any procedure's `ctx`). */
export interface WindowHostContext {
  readonly timestamp: number;
}

export interface WindowSpec<V, A> {
  /** Names the window's table and timer; register both under this name (see `Window`). */
  name: string;
  /** Window length: ms or a duration like '1m'. */
  size: number | string;
  /** Hop between window starts (hopping windows); defaults to `size` (tumbling windows). */
  advance?: number | string;
  /** How long after its end a window still accepts events (by their timestamp); default 0. */
  grace?: number | string;
  /** Avro schema of the aggregate. */
  aggregate: Typed<A>;
  init(): A;
  /** Folds one event into a window's aggregate; pure and deterministic. */
  add(aggregate: A, event: V): A;
  /** Runs once per window, when it closes (end + grace, by wall clock): emit the result here. */
  closed(ctx: WindowCloseContext, result: WindowResult<A>): void;
}

/** Where an event went. */
export interface WindowAdd {
  /** Windows the event was added to. */
  readonly added: number;
  /** Windows it belonged to that had closed already (the event was not counted in them). */
  readonly late: number;
}

/** A window's stored state for one key: its open windows and how far it has closed. */
export interface WindowRow<A> {
  /** Highest end of a window closed for this key: events of earlier windows are late. */
  closedThrough: number;
  /** Highest event timestamp seen for this key (stream time): windows past their grace by it are late. */
  streamTime: number;
  open: Array<{ start: number; value: A }>;
}

export interface Window<V, A> {
  readonly name: string;
  /** Register as `tables: { [name]: window.table }`. */
  readonly table: TableDef<string, WindowRow<A>>;
  /** Register as `timers: { [name]: window.timer }`. */
  // The timer's handler takes any app's ctx.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly timer: TimerDef<any, any>;
  /** Adds an event (at `timestamp`, default `ctx.timestamp`) to every window of `key` it falls in. */
  add(ctx: WindowHostContext, key: string, event: V, timestamp?: number): WindowAdd;
}

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function duration(spec: string, field: string, value: number | string | undefined, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  const ms = value === undefined ? undefined : parseInterval(value);
  if (ms === undefined) throw new AppDefinitionError(`window "${spec}": ${field} must be a positive number of ms or a duration like '30s', '1m'; got ${JSON.stringify(value)}`);
  return ms;
}

/**
 * Event-time windows keyed by a partition key, closed by a timer at end + grace with one final
 * result each (Kafka Streams' `suppress(untilWindowCloses)`): tumbling when `advance` is left
 * out, hopping otherwise. Late events (their window closed, or past its grace by the key's stream
 * time) are not counted; `add` says how many windows they missed.
 */
export function windowed<V, A>(spec: WindowSpec<V, A>): Window<V, A> {
  const { name } = spec;
  if (typeof name !== 'string' || !AVRO_NAME.test(name)) throw new AppDefinitionError(`window name ${JSON.stringify(name)} must match ${AVRO_NAME}`);
  const size = duration(name, 'size', spec.size);
  const advance = duration(name, 'advance', spec.advance, size);
  const grace = spec.grace === 0 ? 0 : duration(name, 'grace', spec.grace, 0);
  if (advance > size) throw new AppDefinitionError(`window "${name}": advance (${advance} ms) must not exceed size (${size} ms); events would fall between windows`);
  for (const fn of ['init', 'add', 'closed'] as const) {
    if (typeof spec[fn] !== 'function') throw new AppDefinitionError(`window "${name}": ${fn} must be a function`);
  }

  const rowSchema: AvroSchema = {
    type: 'record',
    name,
    namespace: 'farad.windows',
    fields: [
      { name: 'closedThrough', type: 'long', default: 0 },
      { name: 'streamTime', type: 'long', default: 0 },
      {
        name: 'open',
        type: { type: 'array', items: { type: 'record', name: `${name}_window`, fields: [{ name: 'start', type: 'long' }, { name: 'value', type: spec.aggregate.schema }] } },
      },
    ],
  };
  const windowTable = table({ key: 'string', value: typed<WindowRow<A>>(rowSchema) });

  interface Host {
    readonly timestamp: number;
    readonly tables: Record<string, { get(key: string): WindowRow<A> | undefined; put(key: string, row: WindowRow<A>): void } | undefined>;
    readonly timers: { set(name: string, key: string, setting: { at: number; id: string }): void };
  }
  const host = (ctx: unknown): Host => {
    const h = ctx as Host;
    if (!h.tables?.[name]) throw new HandlerContractError(`window "${name}": register its table and timer in the app as tables: { ${name}: window.table }, timers: { ${name}: window.timer }`);
    return h;
  };

  return {
    name,
    table: windowTable,
    timer: {
      handle(ctx: WindowCloseContext, fired: { key: string; id: string }) {
        const h = host(ctx);
        const start = Number(fired.id);
        const row = h.tables[name]!.get(fired.key);
        const window = row?.open.find((w) => w.start === start);
        if (!row || !window) return;
        spec.closed(ctx, { key: fired.key, start, end: start + size, value: window.value });
        h.tables[name]!.put(fired.key, {
          closedThrough: Math.max(row.closedThrough, start + size),
          streamTime: row.streamTime,
          open: row.open.filter((w) => w.start !== start),
        });
      },
    },
    add(ctx, key, event, timestamp = ctx.timestamp) {
      const h = host(ctx);
      const row = h.tables[name]!.get(key) ?? { closedThrough: 0, streamTime: 0, open: [] };
      const open = [...row.open];
      let added = 0;
      let late = 0;
      // Every window [s, s + size) with s a multiple of `advance` that contains the timestamp.
      const first = (Math.floor((timestamp - size) / advance) + 1) * advance;
      for (let start = first; start <= timestamp; start += advance) {
        const end = start + size;
        if (end <= row.closedThrough || end + grace <= row.streamTime) {
          late++;
          continue;
        }
        const i = open.findIndex((w) => w.start === start);
        if (i < 0) {
          open.push({ start, value: spec.add(spec.init(), event) });
          h.timers.set(name, key, { at: end + grace, id: String(start) });
        } else {
          open[i] = { start, value: spec.add(open[i]!.value, event) };
        }
        added++;
      }
      if (added > 0 || timestamp > row.streamTime) {
        open.sort((a, b) => a.start - b.start);
        h.tables[name]!.put(key, { closedThrough: row.closedThrough, streamTime: Math.max(row.streamTime, timestamp), open });
      }
      return { added, late };
    },
  };
}
