import type avro from 'avsc';
import { AppDefinitionError } from '../errors.js';
import type { App, GlobalTableDef, LocalRegroup, ProcedureDef, QueryDef, ScheduleDef, TableDef, TableKeyType, TableMigration, TableScope, TimerDef } from './app.js';
import { isAsyncFunction, isGeneratorFunction } from './determinism.js';
import { compileSchedule } from './schedules.js';
import { parseType, type RecordSchema } from './schema.js';
import { INPUT_OFFSET_ROW_SCHEMA, INPUT_OFFSETS_TABLE } from './input-offsets.js';
import { payloadFieldOf, SCHEDULE_KIND_PREFIX, timerTableSchema, TIMERS_TABLE, type CompiledTimer } from './timers.js';
import { checkKey, deepFreeze, describeInvalid } from '../state/index.js';

/** An event type after compilation: its alias in the app, its Avro full name and parsed type. */
export interface CompiledEvent {
  readonly alias: string;
  readonly fullName: string;
  readonly type: avro.Type;
  /** Input topic that carries it, if any. */
  readonly inputTopic: string | undefined;
  /** Output topic it is emitted to, if any. */
  readonly outputTopic: string | undefined;
  readonly procedure: CompiledProcedure | undefined;
}

/** What runs a handler: the handler context (structurally; context.ts builds on these compiled types). */
export interface ProcedureInvoker {
  invoke(def: ProcedureDef<unknown, unknown>, event: unknown): unknown;
}

export interface CompiledProcedure {
  readonly eventAlias: string;
  readonly partitionKey: (event: unknown) => string | number;
  /** Runs the handler with `ctx` open for writes and emits only until it returns. */
  readonly handle: (ctx: ProcedureInvoker, event: unknown) => unknown;
  /** Set for multi-partition procedures: the keys they touch, or every partition. */
  readonly multiPartition?: { readonly all: boolean; readonly keys?: (event: unknown) => ReadonlyArray<string | number> };
}

export interface CompiledTable {
  readonly name: string;
  readonly keyType: TableKeyType;
  readonly valueType: avro.Type;
  readonly scope: TableScope;
  readonly global: boolean;
  /** Names this table had before (a rename). */
  readonly formerly: readonly string[];
  readonly migrate?: TableMigration<unknown> | undefined;
  /** A local table's rows on a repartition (see LocalRegroup). */
  readonly regroup?: LocalRegroup<unknown> | undefined;
  /** farad's own table (timers): not in handlers' `ctx.tables`. */
  readonly system?: boolean;
}

export interface CompiledGlobalTable extends CompiledTable {
  /** Validated rows, loaded once and shared read-only by every partition. */
  readonly rows: ReadonlyMap<string | number, unknown>;
}

export type CompiledQuery = QueryDef<unknown, unknown, unknown>;

/** The runtime form of an app: everything resolved, checked and indexed. */
export interface CompiledApp {
  readonly name: string;
  readonly partitions: number;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly events: ReadonlyMap<string, CompiledEvent>;
  readonly eventsByFullName: ReadonlyMap<string, CompiledEvent>;
  readonly tables: ReadonlyMap<string, CompiledTable>;
  readonly globalTables: ReadonlyMap<string, CompiledGlobalTable>;
  /** Tables declared dropped: their rows are skipped on restore and deleted from the changelog. */
  readonly droppedTables: ReadonlySet<string>;
  readonly inputTopics: readonly string[];
  readonly outputTopics: readonly string[];
  readonly changelogTopic: string;
  readonly deadLetterTopic: string;
  readonly queries: ReadonlyMap<string, CompiledQuery>;
  /** Timer kinds and scheduled procedures (kind `@<name>`), by kind. */
  readonly timers: ReadonlyMap<string, CompiledTimer>;
  /** True when the app has multi-partition procedures or consistent queries. */
  readonly multiPartition: boolean;
  /** The multi-partition protocol's topic (`<name>-mp`, `partitions` partitions), when it has them. */
  readonly protocolTopic: string | undefined;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** Timer names become Avro field names (their payload's field in the timers table). */
const TIMER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

function fail(message: string): never {
  throw new AppDefinitionError(message);
}

/**
 * Checks an app definition for everything the type system cannot catch and builds its
 * runtime indexes. `settingsOverride` comes from configuration.
 */
export function compileApp(app: App, settingsOverride: Record<string, unknown> = {}): CompiledApp {
  const spec = app.spec;
  if (typeof spec.name !== 'string' || !NAME.test(spec.name)) {
    fail(`app name ${JSON.stringify(spec.name)} must match ${NAME} (it names topics and the consumer group)`);
  }
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > 10_000) {
    fail(`app "${spec.name}": partitions must be an integer from 1 to 10000, got ${String(spec.partitions)}`);
  }

  const settings = compileSettings(spec.name, spec.settings ?? {}, settingsOverride);

  const inputTopicOf = new Map<string, string>();
  for (const input of spec.inputs) {
    if (!TOPIC.test(input.topic)) fail(`input topic ${JSON.stringify(input.topic)} is not a valid topic name`);
    for (const alias of input.events) {
      if (!(alias in spec.events)) fail(`input topic "${input.topic}" lists event "${alias}", which is not in events`);
      const previous = inputTopicOf.get(alias);
      if (previous !== undefined) fail(`event "${alias}" is carried by two inputs ("${previous}" and "${input.topic}")`);
      inputTopicOf.set(alias, input.topic);
    }
  }

  const outputs = (spec.outputs ?? {}) as Record<string, string | undefined>;
  for (const [alias, topic] of Object.entries(outputs)) {
    if (!(alias in spec.events)) fail(`outputs names event "${alias}", which is not in events`);
    if (topic === undefined || !TOPIC.test(topic)) fail(`output topic of "${alias}" (${JSON.stringify(topic)}) is not a valid topic name`);
  }

  const procedures = spec.procedures as Record<string, ProcedureDef<unknown, unknown> | undefined>;
  const events = new Map<string, CompiledEvent>();
  const eventsByFullName = new Map<string, CompiledEvent>();
  for (const [alias, typed] of Object.entries(spec.events)) {
    let type: avro.Type;
    try {
      type = parseType(typed.schema);
    } catch (err) {
      fail(`event "${alias}": invalid Avro schema: ${(err as Error).message}`);
    }
    if (type.typeName !== 'record' || !type.name) fail(`event "${alias}" must be a named Avro record (its full name is the event type)`);
    const fullName = type.name;
    const clash = eventsByFullName.get(fullName);
    if (clash) fail(`events "${clash.alias}" and "${alias}" have the same Avro full name "${fullName}"; event types must be unique`);
    const procedure = procedures[alias] ? compileProcedure(alias, procedures[alias], inputTopicOf, outputs, spec.events) : undefined;
    const compiled: CompiledEvent = {
      alias,
      fullName,
      type,
      inputTopic: inputTopicOf.get(alias),
      outputTopic: outputs[alias],
      procedure,
    };
    events.set(alias, compiled);
    eventsByFullName.set(fullName, compiled);
  }
  for (const alias of Object.keys(procedures)) {
    if (!events.has(alias)) fail(`procedure "${alias}" handles an event that is not in events`);
  }
  for (const [alias, topic] of inputTopicOf) {
    if (!procedures[alias]) fail(`input topic "${topic}" carries event "${alias}", but no procedure handles it`);
  }

  const tables = new Map<string, CompiledTable>();
  for (const [name, def] of Object.entries(spec.tables ?? {})) {
    if (name.startsWith('__')) fail(`table name "${name}": names starting with "__" are farad's own`);
    tables.set(name, compileTable(name, def, false));
  }
  const timers = compileTimers(spec.timers ?? {}, spec.schedules ?? {}, outputs, spec.events);
  if (timers.size > 0) tables.set(TIMERS_TABLE, timersTable(timers));
  const globalTables = new Map<string, CompiledGlobalTable>();
  for (const [name, def] of Object.entries(spec.globalTables ?? {})) {
    if (tables.has(name)) fail(`"${name}" is both a table and a global table`);
    globalTables.set(name, compileGlobalTable(name, def, settings));
  }
  const droppedTables = compileTableHistory(tables, spec.droppedTables ?? []);

  const queries = new Map<string, CompiledQuery>();
  const defined = spec.queries?.((def) => def) ?? {};
  for (const [name, def] of Object.entries(defined)) {
    if (!NAME.test(name)) fail(`query name ${JSON.stringify(name)} must match ${NAME}`);
    if (typeof def.partition !== 'function' || typeof def.merge !== 'function') fail(`query "${name}" needs partition() and merge() functions`);
    queries.set(name, def as CompiledQuery);
  }

  const multiPartition = [...events.values()].some((e) => e.procedure?.multiPartition) || [...queries.values()].some((q) => q.consistent === true);
  if (multiPartition) tables.set(MP_TABLE, { name: MP_TABLE, keyType: 'string', valueType: parseType(MP_ROW_SCHEMA), scope: 'local', global: false, formerly: [], system: true });
  tables.set(INPUT_OFFSETS_TABLE, { name: INPUT_OFFSETS_TABLE, keyType: 'string', valueType: parseType(INPUT_OFFSET_ROW_SCHEMA), scope: 'local', global: false, formerly: [], system: true });
  const inputTopics = [...new Set(spec.inputs.map((i) => i.topic))];
  const outputTopics = [...new Set(Object.values(outputs).filter((t): t is string => t !== undefined))];
  for (const topic of outputTopics) {
    if (inputTopics.includes(topic)) fail(`topic "${topic}" is both an input and an output; farad would consume its own output`);
  }
  return {
    name: spec.name,
    partitions: spec.partitions,
    settings,
    events,
    eventsByFullName,
    tables,
    globalTables,
    droppedTables,
    inputTopics,
    outputTopics,
    changelogTopic: `${spec.name}-changelog`,
    deadLetterTopic: `${spec.name}-dlq`,
    queries,
    timers,
    multiPartition,
    protocolTopic: multiPartition ? `${spec.name}-mp` : undefined,
  };
}

/** The system table of the multi-partition protocol's state on a partition (see transactions/protocol.ts). */
export const MP_TABLE = '__mp';
const MP_ROW_SCHEMA: RecordSchema = { type: 'record', name: 'FaradMultiPartition', fields: [{ name: 'json', type: 'string' }] };

function compileTimers(
  defs: Record<string, TimerDef<unknown, unknown>>,
  schedules: Record<string, ScheduleDef<unknown>>,
  outputs: Record<string, string | undefined>,
  events: Record<string, unknown>,
): Map<string, CompiledTimer> {
  const timers = new Map<string, CompiledTimer>();
  const checkHandler = (where: string, handle: unknown, emits: readonly string[] | undefined): void => {
    if (typeof handle !== 'function') fail(`${where} has no handle() function`);
    if (isAsyncFunction(handle)) fail(`${where}: handle() is async; timer handlers must be synchronous so they run as one transaction`);
    if (isGeneratorFunction(handle)) fail(`${where}: handle() is a generator function; write a plain synchronous function`);
    for (const emitted of emits ?? []) {
      if (!(emitted in events)) fail(`${where} emits "${emitted}", which is not in events`);
      if (!outputs[emitted]) fail(`${where} emits "${emitted}", which has no output topic; add it to outputs`);
    }
  };
  for (const [name, def] of Object.entries(defs)) {
    if (!TIMER_NAME.test(name)) fail(`timer name ${JSON.stringify(name)} must match ${TIMER_NAME}`);
    checkHandler(`timer "${name}"`, def.handle, def.emits);
    let payloadType: avro.Type | undefined;
    if (def.payload !== undefined) {
      try {
        payloadType = parseType(def.payload.schema);
      } catch (err) {
        fail(`timer "${name}": invalid Avro payload schema: ${(err as Error).message}`);
      }
      if (payloadType.typeName.startsWith('union') || payloadType.typeName === 'null') fail(`timer "${name}": the payload schema must not be a union or null (omit it for no payload)`);
    }
    timers.set(name, {
      kind: name,
      label: `timer:${name}`,
      payloadType,
      payloadField: payloadType ? payloadFieldOf(name) : undefined,
      run: (ctx, fired) => ctx.invoke(def as { handle(ctx: unknown, value: unknown): void }, fired),
    });
  }
  for (const [name, def] of Object.entries(schedules)) {
    if (!NAME.test(name)) fail(`schedule name ${JSON.stringify(name)} must match ${NAME}`);
    checkHandler(`schedule "${name}"`, def.handle, def.emits);
    const handle = def.handle as (ctx: unknown, run: { scheduledFor: number }) => void;
    timers.set(SCHEDULE_KIND_PREFIX + name, {
      kind: SCHEDULE_KIND_PREFIX + name,
      label: `schedule:${name}`,
      payloadType: undefined,
      payloadField: undefined,
      run: (ctx, fired) => ctx.invoke({ handle: (c: unknown) => handle(c, { scheduledFor: fired.dueAt }) }, undefined),
      schedule: compileSchedule(name, def),
    });
  }
  return timers;
}

/** The system table that holds pending timers (one payload field per kind that has one). */
function timersTable(timers: ReadonlyMap<string, CompiledTimer>): CompiledTable {
  const payloads = [...timers.values()].filter((t) => t.payloadType).map((t) => ({ kind: t.kind, schema: t.payloadType!.schema() }));
  let valueType: avro.Type;
  try {
    valueType = parseType(timerTableSchema(payloads));
  } catch (err) {
    fail(`timers: the payload schemas do not fit in one table: ${(err as Error).message}`);
  }
  return { name: TIMERS_TABLE, keyType: 'string', valueType, scope: 'local', global: false, formerly: [], system: true };
}

function compileSettings(
  app: string,
  defaults: Record<string, unknown>,
  override: Record<string, unknown>,
): Readonly<Record<string, unknown>> {
  const merged: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(override)) {
    if (!(key in defaults)) {
      fail(`settings.${key} is not a setting of app "${app}" (known: ${Object.keys(defaults).join(', ') || 'none'})`);
    }
    const expected = typeof defaults[key];
    // Environment overrides arrive as strings; coerce to the default's type.
    let coerced = value;
    // Number('') and Number('  ') are 0: a blank string is no number.
    if (typeof value === 'string' && expected === 'number' && value.trim() !== '') coerced = Number(value);
    if (typeof value === 'string' && expected === 'boolean') coerced = value === 'true' ? true : value === 'false' ? false : value;
    if (typeof coerced !== expected || (expected === 'number' && !Number.isFinite(coerced))) {
      fail(`settings.${key} must be a ${expected}, got ${JSON.stringify(value)}`);
    }
    merged[key] = coerced;
  }
  return Object.freeze(merged);
}

function compileProcedure(
  alias: string,
  def: ProcedureDef<unknown, unknown>,
  inputTopicOf: ReadonlyMap<string, string>,
  outputs: Record<string, string | undefined>,
  events: Record<string, unknown>,
): CompiledProcedure {
  if (typeof def.handle !== 'function') fail(`procedure "${alias}" has no handle() function`);
  if (typeof def.partitionKey !== 'function') fail(`procedure "${alias}" has no partitionKey() function`);
  if (isAsyncFunction(def.handle)) {
    fail(`procedure "${alias}": handle() is async; handlers must be synchronous so they run as one transaction (do I/O outside farad and send its result as an event)`);
  }
  if (isGeneratorFunction(def.handle)) {
    fail(`procedure "${alias}": handle() is a generator function; calling it would run none of its body (write a plain synchronous function)`);
  }
  if (!inputTopicOf.has(alias)) fail(`procedure "${alias}" handles an event that no input topic carries; add it to an input's events`);
  for (const emitted of def.emits ?? []) {
    if (!(emitted in events)) fail(`procedure "${alias}" emits "${emitted}", which is not in events`);
    if (!outputs[emitted]) fail(`procedure "${alias}" emits "${emitted}", which has no output topic; add it to outputs`);
  }
  const mp = def.multiPartition;
  let multiPartition: CompiledProcedure['multiPartition'];
  if (mp !== undefined) {
    if (mp === 'all') multiPartition = { all: true };
    else if (typeof mp === 'object' && mp !== null && typeof mp.keys === 'function') multiPartition = { all: false, keys: mp.keys as (event: unknown) => ReadonlyArray<string | number> };
    else fail(`procedure "${alias}": multiPartition must be { keys: (event) => [...] } or 'all'`);
  }
  return { eventAlias: alias, partitionKey: def.partitionKey, handle: (ctx, event) => ctx.invoke(def, event), ...(multiPartition ? { multiPartition } : {}) };
}

function compileTable(name: string, def: TableDef, global: boolean): CompiledTable {
  if (!NAME.test(name)) fail(`table name ${JSON.stringify(name)} must match ${NAME}`);
  if (!['string', 'int', 'long'].includes(def.key)) fail(`table "${name}": key must be 'string', 'int' or 'long', got ${JSON.stringify(def.key)}`);
  let valueType: avro.Type;
  try {
    valueType = parseType(def.value.schema);
  } catch (err) {
    fail(`table "${name}": invalid Avro value schema: ${(err as Error).message}`);
  }
  const formerly = [...(def.formerly ?? [])];
  for (const old of formerly) if (!NAME.test(old)) fail(`table "${name}": former name ${JSON.stringify(old)} must match ${NAME}`);
  if (def.migrate !== undefined) {
    const { fromVersion, up } = def.migrate;
    if (!Number.isInteger(fromVersion) || fromVersion < 1) fail(`table "${name}": migrate.fromVersion must be a schema version (an integer from 1), got ${JSON.stringify(fromVersion)}`);
    if (typeof up !== 'function') fail(`table "${name}": migrate.up must be a function (oldRow) => newRow`);
    if (isAsyncFunction(up)) fail(`table "${name}": migrate.up is async; migrations must be synchronous and deterministic`);
  }
  if (def.regroup !== undefined) {
    if (def.scope !== 'local') fail(`table "${name}": regroup is for local tables (a partitioned table's rows go where their keys hash)`);
    const { regroup } = def;
    if (regroup !== 'reset' && typeof (regroup as { merge?: unknown }).merge !== 'function') fail(`table "${name}": regroup must be 'reset' or { merge(a, b) }`);
  }
  return { name, keyType: def.key, valueType, scope: def.scope, global, formerly, migrate: def.migrate, ...(def.regroup ? { regroup: def.regroup as LocalRegroup<unknown> } : {}) };
}

/** Checks renames and drops against each other and the tables; returns the dropped names. */
function compileTableHistory(tables: ReadonlyMap<string, CompiledTable>, dropped: readonly string[]): ReadonlySet<string> {
  const formerOwner = new Map<string, string>();
  for (const table of tables.values()) {
    for (const old of table.formerly) {
      if (tables.has(old)) fail(`table "${table.name}": former name "${old}" is also a current table`);
      const other = formerOwner.get(old);
      if (other) fail(`tables "${other}" and "${table.name}" both say they were formerly "${old}"`);
      formerOwner.set(old, table.name);
    }
  }
  for (const name of dropped) {
    if (!NAME.test(name)) fail(`droppedTables: ${JSON.stringify(name)} must match ${NAME}`);
    if (tables.has(name)) fail(`droppedTables: "${name}" is also a current table`);
    if (formerOwner.has(name)) fail(`droppedTables: "${name}" is a former name of table "${formerOwner.get(name)}"; a renamed table is not dropped`);
  }
  return new Set(dropped);
}

function compileGlobalTable(name: string, def: GlobalTableDef, settings: Readonly<Record<string, unknown>>): CompiledGlobalTable {
  const base = compileTable(name, def, true);
  const rows = new Map<string | number, unknown>();
  for (const [key, value] of def.load(settings)) {
    const keyProblem = checkKey(base.keyType, key);
    if (keyProblem) fail(`global table "${name}": key ${JSON.stringify(key)} ${keyProblem}`);
    const problem = describeInvalid(base.valueType, value);
    if (problem) fail(`global table "${name}", key ${JSON.stringify(key)}: ${problem.message}`);
    rows.set(key, deepFreeze(value));
  }
  return { ...base, rows };
}
