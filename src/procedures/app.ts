import type { Typed, ValueOf } from './schema.js';

/** Key types a table may use. Keys are routed to partitions by their decimal/string form. */
export type TableKeyType = 'string' | 'int' | 'long';
type KeyValue<K extends TableKeyType> = K extends 'string' ? string : number;

/**
 * Where a table's rows live:
 * - `partitioned` (default): each key lives in the partition its key hashes to; a handler may only
 *   write keys of its own partition.
 * - `local`: every partition keeps its own rows under any key (per-partition aggregates, like a
 *   VoltDB partitioned view); queries merge them.
 */
export type TableScope = 'partitioned' | 'local';

export interface TableDef<K extends string | number = string | number, V = unknown> {
  readonly key: TableKeyType;
  readonly value: Typed<V>;
  readonly scope: TableScope;
  /** Names this table had before; their rows become this table's on restore. */
  readonly formerly?: readonly string[];
  /** Rewrites rows of old schema versions Avro cannot resolve (see TableMigration). */
  readonly migrate?: TableMigration<V>;
  /** A `local` table's rows when the app moves to another partition count (see LocalRegroup). */
  readonly regroup?: LocalRegroup<V>;
  /** Compile-time only. */
  readonly __key?: K;
}

/**
 * A deterministic rewrite of old rows into the current value schema, for changes Avro's rules
 * cannot resolve (a field's type changed, a required field without default). Rows written by
 * schema version `fromVersion` or earlier (versions are numbered as farad registered them; the
 * refusal at start names them) are decoded with their own schema (resolved to `fromVersion`'s),
 * then passed to `up`. It runs on restore, on standby copies and on snapshots.
 */
export interface TableMigration<V> {
  readonly fromVersion: number;
  // The old row's shape is the old schema's: the app knows it, the types do not.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  up(oldRow: any): V;
}

/**
 * What becomes of a `local` table's rows when `farad repartition` moves the app to another
 * partition count (a local row is a per-partition aggregate; no key says where it belongs):
 * - `{ merge }`: the rows every old partition holds under one key are folded with `merge` (in
 *   partition order; deterministic) into one row, kept in the new partition that key hashes to,
 *   so what queries merge over all partitions is unchanged when `merge` is what they merge with;
 * - `'reset'`: the rows are dropped; the app builds them again from new input.
 * A partitioned table needs none: each row goes to the partition its key now hashes to.
 */
export type LocalRegroup<V> = 'reset' | { merge(a: V, b: V): V };

export interface GlobalTableDef<K extends string | number = string | number, V = unknown>
  extends TableDef<K, V> {
  /** Rows loaded into every partition at start; validated against the value schema. */
  readonly load: (settings: Readonly<Record<string, unknown>>) => Iterable<readonly [K, V]>;
}

/** Declares a table: `table({ key: 'string', value: record<PhoneVotes>(...) })`. */
export function table<K extends TableKeyType, V>(def: {
  key: K;
  value: Typed<V>;
  scope?: TableScope;
  /** Former names of this table (a rename): `formerly: 'votes'` or a list. */
  formerly?: string | readonly string[];
  migrate?: TableMigration<V>;
  regroup?: LocalRegroup<V>;
}): TableDef<KeyValue<K>, V> {
  const formerly = def.formerly === undefined ? undefined : typeof def.formerly === 'string' ? [def.formerly] : [...def.formerly];
  return {
    key: def.key,
    value: def.value,
    scope: def.scope ?? 'partitioned',
    ...(formerly ? { formerly } : {}),
    ...(def.migrate ? { migrate: def.migrate } : {}),
    ...(def.regroup ? { regroup: def.regroup } : {}),
  };
}

/** Declares a global (read-only, present in every partition) table loaded at start. */
export function globalTable<K extends TableKeyType, V>(def: {
  key: K;
  value: Typed<V>;
  load: (settings: Readonly<Record<string, unknown>>) => Iterable<readonly [KeyValue<K>, V]>;
}): GlobalTableDef<KeyValue<K>, V> {
  return { key: def.key, value: def.value, scope: 'partitioned', load: def.load };
}

type KeyOfTable<T> = T extends TableDef<infer K, unknown> ? K : never;
type ValueOfTable<T> = T extends TableDef<string | number, infer V> ? V : never;

/** Options of an ordered scan. Keys ascend: numbers numerically, strings by UTF-16 code unit. */
export interface ScanOptions<K> {
  /** Start strictly after this key (paging). */
  after?: K;
  /** At most this many rows. */
  limit?: number;
}

/** What every reader of a table can do. */
export interface ReadonlyTable<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  /** Rows in ascending key order. */
  scan(options?: ScanOptions<K>): Array<[K, V]>;
  readonly size: number;
}

/** A table inside a handler: writes are part of the handler's transaction. Values are frozen. */
export interface Table<K, V> extends ReadonlyTable<K, V> {
  put(key: K, value: V): void;
  delete(key: K): boolean;
}

export type EventMap = Record<string, Typed<unknown>>;
export type TableMap = Record<string, TableDef>;
export type GlobalTableMap = Record<string, GlobalTableDef>;
export type Settings = Record<string, unknown>;
export type OutputMap<E extends EventMap> = { [K in keyof E]?: string };

/** Payload types of an app's timers, by timer name. */
export type TimerMap = Record<string, unknown>;

/** A timer that fired: what its handler receives. */
export interface FiredTimer<P> {
  /** The partition key it was set on. */
  readonly key: string;
  /** Tells apart several timers of one name on one key ('' unless set). */
  readonly id: string;
  /** When it was due (ms since epoch); `ctx.timestamp` is when it fired. */
  readonly dueAt: number;
  readonly payload: P;
}

/** Where and when a timer fires, and what it carries. */
export interface TimerSetting<P> {
  /** Due time, ms since the epoch. A time in the past fires at the end of the current batch. */
  at: number;
  /** Required when the timer declares a payload schema; validated against it. */
  payload?: P;
  /** Several timers of one name on one key need distinct ids; the same id replaces. */
  id?: string;
}

/** A pending timer as `ctx.timers.get` shows it. */
export interface PendingTimer<P> {
  readonly at: number;
  readonly payload: P;
}

/**
 * Durable timers of the handler's partition (`ctx.timers`). Timers are state: set, replaced and
 * cancelled inside the handler's transaction, replicated, snapshotted, and fired exactly once.
 */
export interface Timers<Tm extends TimerMap> {
  /** Sets (or replaces) the timer `name` on `key`, a partition key of this partition. */
  set<N extends keyof Tm & string>(name: N, key: string, setting: TimerSetting<Tm[N]>): void;
  /** Cancels a pending timer; false when there was none. */
  cancel<N extends keyof Tm & string>(name: N, key: string, options?: { id?: string }): boolean;
  get<N extends keyof Tm & string>(name: N, key: string, options?: { id?: string }): PendingTimer<Tm[N]> | undefined;
}

/**
 * A timer kind: what runs when a timer of this name fires. The handler runs as a transaction like
 * a procedure's; `ctx.timestamp` is the fire time, recorded with the batch that fired it.
 */
export interface TimerDef<P, Ctx> {
  /** Avro schema of the payload (omit for timers that carry nothing). */
  payload?: Typed<P>;
  handle(ctx: Ctx, timer: FiredTimer<P>): void;
  /** Event names this timer may emit; checked against the app's outputs at start. */
  emits?: readonly string[];
}

/**
 * A scheduled procedure (VoltDB's `CREATE TASK`): runs every interval or on a cron expression,
 * on every partition (`runOn: 'partitions'`, the default) or once for the app (`'app'`, on
 * partition 0). Missed runs are not made up: after downtime it runs once, then keeps the rhythm.
 */
export interface ScheduleDef<Ctx> {
  /** Interval: milliseconds, or a duration like '30s', '5m', '1h'. */
  every?: number | string;
  /** Five- or six-field cron expression (seconds optional), evaluated in `timezone`. */
  cron?: string;
  /** IANA time zone of `cron` (default UTC). */
  timezone?: string;
  runOn?: 'partitions' | 'app';
  /**
   * `ctx.timestamp` is when this run fired; `run.scheduledFor` the slot it runs for. Emitted events
   * need an explicit `{ key }`: a schedule has no key of its own.
   */
  handle(ctx: Ctx, run: ScheduledRun): void;
  emits?: readonly string[];
}

/** The run of a scheduled procedure. */
export interface ScheduledRun {
  /** The slot this run is for (ms since epoch): a multiple of `every`, or the cron time. */
  readonly scheduledFor: number;
}

export interface EmitOptions {
  /** Partition key of the emitted event; defaults to the handled event's partition key. */
  key?: string;
}

/** The handler's view of the world while it handles one event. */
export interface ProcedureContext<
  E extends EventMap,
  T extends TableMap,
  G extends GlobalTableMap,
  S extends Settings,
  O extends OutputMap<E>,
  Tm extends TimerMap = Record<never, never>,
> {
  readonly tables: { readonly [N in keyof T]: Table<KeyOfTable<T[N]>, ValueOfTable<T[N]>> };
  readonly globals: { readonly [N in keyof G]: ReadonlyTable<KeyOfTable<G[N]>, ValueOfTable<G[N]>> };
  readonly settings: Readonly<S>;
  /** Full Avro name of the event being handled. */
  readonly eventType: string;
  readonly partition: number;
  readonly offset: number;
  /** The record's timestamp (ms since epoch); in a timer or schedule, its recorded fire time. Use this, never `Date.now()`. */
  readonly timestamp: number;
  /** Durable timers of this partition. */
  readonly timers: Timers<Tm>;
  /** Deterministic randomness seeded from topic, partition and offset. Use this, never `Math.random()`. */
  random(): number;
  /** Emits a derived event to its output topic, atomically with the handler's state writes. */
  emit<K extends keyof O & keyof E & string>(type: K, value: ValueOf<E[K]>, options?: EmitOptions): void;
}

/** A read-only context for queries: no `put`, no `emit`. */
export interface QueryContext<T extends TableMap, G extends GlobalTableMap, S extends Settings> {
  readonly tables: { readonly [N in keyof T]: ReadonlyTable<KeyOfTable<T[N]>, ValueOfTable<T[N]>> };
  readonly globals: { readonly [N in keyof G]: ReadonlyTable<KeyOfTable<G[N]>, ValueOfTable<G[N]>> };
  readonly settings: Readonly<S>;
  readonly partition: number;
}

export interface ProcedureDef<Ev, Ctx> {
  /** The key that routes this event to its partition (Kafka murmur2 over its UTF-8 form). */
  partitionKey(event: Ev): string | number;
  /** Synchronous and deterministic: a function of (ctx, event) only. Throwing rolls back. */
  handle(ctx: Ctx, event: Ev): void;
  /** Event names this procedure may emit; checked against the app's outputs at start. */
  emits?: readonly string[];
  /**
   * Makes this a multi-partition transaction: its handler reads and writes the rows of every key
   * `keys` names (on whatever partitions they live), or of every partition (`'all'`: every row is
   * read, so keep it for small state or rare jobs), atomically and serializably. See the README's
   * "Multi-partition transactions" for what it costs.
   */
  multiPartition?: { keys(event: Ev): ReadonlyArray<string | number> } | 'all';
}

export interface QueryDef<Partial, Result, QCtx> {
  /**
   * Runs as a read-only multi-partition transaction: every partition answers at one serializable
   * cut (no multi-partition transaction half seen). Partial answers must be JSON. Any query can
   * also be asked this way with `?consistent=true`.
   */
  consistent?: boolean;
  /** Runs on every partition's committed state. */
  partition(ctx: QCtx, params: Readonly<Record<string, string>>): Partial;
  /** Combines the partitions' answers into the response. */
  merge(parts: Partial[], params: Readonly<Record<string, string>>): Result;
}

export interface InputDef<E extends EventMap> {
  topic: string;
  events: ReadonlyArray<keyof E & string>;
}

/** What a user writes: the whole app in one object. */
export interface AppSpec<
  E extends EventMap,
  T extends TableMap,
  G extends GlobalTableMap,
  S extends Settings,
  O extends OutputMap<E>,
  Tm extends TimerMap = Record<never, never>,
> {
  /** Names the consumer group, transactional ids and internal topics (`<name>-changelog`, `<name>-dlq`). */
  name: string;
  /** Number of partitions; every input topic must have exactly this many. */
  partitions: number;
  /** Event types by short name; each value is an Avro record schema whose full name is the event type. */
  events: E;
  tables?: T;
  /** Tables the app had and no longer has: their rows are dropped (an undeclared missing table is refused at start). */
  droppedTables?: readonly string[];
  globalTables?: G;
  /** App settings with their defaults; overridable in config (`settings:`) and by `FARAD_SETTINGS_<NAME>`. */
  settings?: S;
  inputs: ReadonlyArray<InputDef<E>>;
  /** Output topic per emitted event. */
  outputs?: O;
  procedures: {
    [K in keyof E]?: ProcedureDef<ValueOf<E[K]>, ProcedureContext<E, T, G, S, O, Tm>>;
  };
  /** Timer kinds by name: what runs when a timer set with `ctx.timers.set(name, …)` fires. */
  timers?: { [K in keyof Tm]: TimerDef<Tm[K], ProcedureContext<E, T, G, S, O, Tm>> };
  /** Scheduled procedures by name. */
  schedules?: Record<string, ScheduleDef<ProcedureContext<E, T, G, S, O, Tm>>>;
  /**
   * Named queries, run on every partition's committed state and merged:
   * `queries: (query) => ({ top: query({ partition: (ctx) => ..., merge: (parts) => ... }) })`.
   */
  queries?: (query: QueryBuilder<QueryContext<T, G, S>>) => Record<string, AnyQueryDef<QueryContext<T, G, S>>>;
}

/** Typed constructor of queries, handed to `AppSpec.queries`. */
export type QueryBuilder<QCtx> = <P, R>(def: QueryDef<P, R, QCtx>) => QueryDef<P, R, QCtx>;
// Each query has its own partial type; the map can only say "some".
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyQueryDef<QCtx> = QueryDef<any, unknown, QCtx>;

/** A defined app: the spec, erased to its runtime shape. */
export interface App<E extends EventMap = EventMap, T extends TableMap = TableMap> {
  readonly spec: AppSpec<EventMap, TableMap, GlobalTableMap, Settings, OutputMap<EventMap>, TimerMap>;
  /** Compile-time only: the declared events and tables, for typed tools such as `farad/testing`. */
  readonly __types?: { readonly events: E; readonly tables: T };
}

/** Defines a farad app. Handlers are typed from the declared events, tables and outputs. */
export function defineApp<
  E extends EventMap,
  T extends TableMap = Record<never, TableDef>,
  G extends GlobalTableMap = Record<never, GlobalTableDef>,
  S extends Settings = Record<never, never>,
  O extends OutputMap<E> = Record<never, never>,
  Tm extends TimerMap = Record<never, never>,
>(spec: AppSpec<E, T, G, S, O, Tm>): App<E, T> {
  return { spec: spec as unknown as App['spec'] };
}

/** Identity helper that keeps a procedure's types when it is written outside `defineApp`. */
export function procedure<Ev, Ctx>(def: ProcedureDef<Ev, Ctx>): ProcedureDef<Ev, Ctx> {
  return def;
}

/** Identity helper for a named query (per-partition step + merge). */
export function query<P, R, QCtx>(def: QueryDef<P, R, QCtx>): QueryDef<P, R, QCtx> {
  return def;
}
