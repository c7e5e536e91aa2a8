import type avro from 'avsc';
import { HandlerContractError, SchemaValidationError, WrongPartitionError } from '../errors.js';
import { deepFreeze, describeInvalid, partitionForKey, type PartitionState } from '../state/index.js';
import type { FiredTimer, PendingTimer, TimerSetting } from './app.js';
import type { RecordSchema } from './schema.js';

/**
 * Timers are rows of this per-partition system table, so they are written with the batch,
 * changelogged, replicated to standbys and kept in snapshots like any other row.
 */
export const TIMERS_TABLE = '__timers';
/** Kinds of scheduled procedures' timers start with this (timer names cannot). */
export const SCHEDULE_KIND_PREFIX = '@';

/** One pending timer as stored. Each payload-carrying kind has its own nullable field. */
export interface TimerRow {
  readonly kind: string;
  readonly key: string;
  readonly id: string;
  readonly dueAt: number;
  readonly setAt: number;
  /** For a scheduled procedure: its rhythm, so a changed declaration re-plans it. */
  readonly schedule: string | null;
  readonly [payloadField: string]: unknown;
}

/** What runs a timer's handler with `ctx` open (the handler context, structurally). */
export interface TimerInvoker {
  invoke(def: { handle(ctx: unknown, value: unknown): void }, value: unknown): unknown;
}

/** A timer kind (or scheduled procedure) after compilation. */
export interface CompiledTimer {
  readonly kind: string;
  /** The `event_type` of its metrics and dead letters: `timer:<name>` or `schedule:<name>`. */
  readonly label: string;
  readonly payloadType: avro.Type | undefined;
  /** The row field that holds this kind's payload. */
  readonly payloadField: string | undefined;
  readonly run: (ctx: TimerInvoker, fired: FiredTimer<unknown>) => unknown;
  readonly schedule?: CompiledSchedule;
}

export interface CompiledSchedule {
  readonly name: string;
  readonly runOn: 'partitions' | 'app';
  /** Canonical form of the rhythm ("every 60000ms", "cron 0 * * * * UTC"). */
  readonly spec: string;
  /** The first run strictly after `after` (ms since epoch). */
  next(after: number): number;
}

/**
 * A timer row of the app's timers table: every kind's payload field is null except the one
 * `payload` fills (the table's record has a field per payload-carrying kind).
 */
export function timerRow(
  kinds: ReadonlyMap<string, CompiledTimer>,
  fields: Pick<TimerRow, 'kind' | 'key' | 'id' | 'dueAt' | 'setAt' | 'schedule'>,
  payload?: { readonly field: string; readonly value: unknown },
): TimerRow {
  const row: Record<string, unknown> = { ...fields };
  for (const kind of kinds.values()) if (kind.payloadField) row[kind.payloadField] = null;
  if (payload) row[payload.field] = payload.value;
  return row as TimerRow;
}

export function payloadFieldOf(kind: string): string {
  return `p_${kind}`;
}

/** The row key of a timer: unambiguous for any key and id. */
export function timerRowKey(kind: string, key: string, id: string): string {
  return JSON.stringify([kind, key, id]);
}

/**
 * The value schema of the timers table for these kinds' payloads (as `Type.schema()` gives them:
 * fully qualified names). A named type several payloads use is defined once, then referred to by
 * name; two different definitions of one name are refused. The record has no namespace, so
 * payload types without one keep theirs empty.
 */
export function timerTableSchema(payloads: ReadonlyArray<{ kind: string; schema: unknown }>): RecordSchema {
  const defined = new Map<string, string>();
  return {
    type: 'record',
    name: 'FaradTimer',
    fields: [
      { name: 'kind', type: 'string' },
      { name: 'key', type: 'string' },
      { name: 'id', type: 'string' },
      { name: 'dueAt', type: 'long' },
      { name: 'setAt', type: 'long' },
      { name: 'schedule', type: ['null', 'string'], default: null },
      ...payloads.map(({ kind, schema }) => ({ name: payloadFieldOf(kind), type: ['null', defineOnce(schema, defined, kind)], default: null })),
    ],
  } as RecordSchema;
}

const NAMED = new Set(['record', 'error', 'enum', 'fixed']);

function defineOnce(schema: unknown, defined: Map<string, string>, kind: string): unknown {
  if (Array.isArray(schema)) return schema.map((branch) => defineOnce(branch, defined, kind));
  if (schema === null || typeof schema !== 'object') return schema;
  const s = schema as Record<string, unknown>;
  if (NAMED.has(s['type'] as string) && typeof s['name'] === 'string') {
    const json = JSON.stringify(s);
    const prior = defined.get(s['name']);
    if (prior !== undefined) {
      if (prior !== json) throw new TypeError(`timer "${kind}": its payload defines Avro type "${s['name']}" differently from another timer's payload`);
      return s['name'];
    }
    defined.set(s['name'], json);
    if (!Array.isArray(s['fields'])) return s;
    return { ...s, fields: (s['fields'] as Array<Record<string, unknown>>).map((f) => ({ ...f, type: defineOnce(f['type'], defined, kind) })) };
  }
  if (s['type'] === 'array') return { ...s, items: defineOnce(s['items'], defined, kind) };
  if (s['type'] === 'map') return { ...s, values: defineOnce(s['values'], defined, kind) };
  return s;
}

interface Entry {
  readonly dueAt: number;
  readonly rowKey: string;
}

function before(a: Entry, b: Entry): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.rowKey < b.rowKey);
}

/**
 * Pending timers of one partition by due time (a binary heap). Entries are never removed when a
 * timer is cancelled or replaced: `next` drops the ones whose row no longer matches.
 */
export class TimerIndex {
  private heap: Entry[] = [];

  constructor(private readonly state: PartitionState) {}

  /** Re-reads every pending timer from the partition's state (after restore, after an abort). */
  rebuild(): void {
    this.heap = [];
    if (!hasTimers(this.state)) return;
    for (const [rowKey, row] of this.state.store(TIMERS_TABLE).entries()) this.push((row as TimerRow).dueAt, rowKey as string);
  }

  push(dueAt: number, rowKey: string): void {
    const heap = this.heap;
    heap.push({ dueAt, rowKey });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** The earliest pending timer (dropping stale entries), or undefined. */
  next(): { readonly rowKey: string; readonly row: TimerRow } | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      const row = this.state.store(TIMERS_TABLE).get(top.rowKey) as TimerRow | undefined;
      if (row && row.dueAt === top.dueAt) return { rowKey: top.rowKey, row };
      this.pop();
    }
    return undefined;
  }

  /** Removes the earliest entry (after `next` returned it). */
  pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  }
}

export function hasTimers(state: PartitionState): boolean {
  for (const name of state.tableNames()) if (name === TIMERS_TABLE) return true;
  return false;
}

/** `ctx.timers`: sets, cancels and reads timers inside the handler's transaction. */
export class HandlerTimers {
  constructor(
    private readonly kinds: ReadonlyMap<string, CompiledTimer>,
    private readonly state: PartitionState,
    private readonly index: TimerIndex,
    /** The handler's ctx.timestamp (recorded as the timer's setAt). */
    private readonly now: () => number,
    private readonly assertHandling: (operation: string) => void,
  ) {}

  set(name: string, key: string, setting: TimerSetting<unknown>): void {
    this.assertHandling(`timers.set("${name}")`);
    const timer = this.kind(name);
    this.checkKey(name, key);
    const id = this.idOf(name, setting?.id);
    const at = setting?.at;
    if (typeof at !== 'number' || !Number.isFinite(at)) {
      throw new HandlerContractError(`timers.set("${name}", ${JSON.stringify(key)}): at must be a time in ms since the epoch, got ${String(at)}`, this.context());
    }
    const dueAt = Math.ceil(at);
    let payload: { field: string; value: unknown } | undefined;
    if (timer.payloadType) {
      const invalid = describeInvalid(timer.payloadType, setting.payload);
      if (invalid) {
        throw new SchemaValidationError(`timers.set("${name}", ${JSON.stringify(key)}): payload ${invalid.message}`, { ...this.context(), field: invalid.field });
      }
      payload = { field: timer.payloadField!, value: timer.payloadType.clone(setting.payload) };
    } else if (setting.payload !== undefined && setting.payload !== null) {
      throw new HandlerContractError(`timers.set("${name}"): this timer declares no payload schema; add one to carry a payload`, this.context());
    }
    const row = timerRow(this.kinds, { kind: name, key, id, dueAt, setAt: this.now(), schedule: null }, payload);
    const rowKey = timerRowKey(name, key, id);
    this.state.write(TIMERS_TABLE, rowKey, deepFreeze(row));
    this.index.push(dueAt, rowKey);
  }

  cancel(name: string, key: string, options?: { id?: string }): boolean {
    this.assertHandling(`timers.cancel("${name}")`);
    this.kind(name);
    this.checkKey(name, key);
    const rowKey = timerRowKey(name, key, this.idOf(name, options?.id));
    if (!this.state.store(TIMERS_TABLE).has(rowKey)) return false;
    this.state.write(TIMERS_TABLE, rowKey, undefined);
    return true;
  }

  get(name: string, key: string, options?: { id?: string }): PendingTimer<unknown> | undefined {
    const timer = this.kind(name);
    const row = this.state.store(TIMERS_TABLE).get(timerRowKey(name, key, this.idOf(name, options?.id))) as TimerRow | undefined;
    if (!row) return undefined;
    return { at: row.dueAt, payload: timer.payloadField ? row[timer.payloadField] : null };
  }

  private kind(name: string): CompiledTimer {
    const timer = this.kinds.get(name);
    if (!timer || timer.schedule) {
      const known = [...this.kinds.values()].filter((k) => !k.schedule).map((k) => k.kind);
      throw new HandlerContractError(`timers: no timer named ${JSON.stringify(name)} in the app (declared: ${known.join(', ') || 'none'})`, this.context());
    }
    return timer;
  }

  private idOf(name: string, id: unknown): string {
    if (id === undefined) return '';
    if (typeof id !== 'string') throw new HandlerContractError(`timers("${name}"): id must be a string, got ${typeof id}`, this.context());
    return id;
  }

  private checkKey(name: string, key: unknown): void {
    if (typeof key !== 'string') throw new HandlerContractError(`timers("${name}"): key must be a string (a partition key), got ${typeof key}`, this.context());
    const owner = partitionForKey(key, this.state.partitionCount);
    if (owner !== this.state.partition) {
      throw new WrongPartitionError(
        `timers("${name}"): key ${JSON.stringify(key)} belongs to partition ${owner}, not ${this.state.partition}; ` +
          'a timer lives on its key\'s partition (emit an event keyed by that key and set the timer there)',
        this.context(),
      );
    }
  }

  private context() {
    return { partition: this.state.partition, ...this.state.position };
  }
}
