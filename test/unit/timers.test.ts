/**
 * Durable timers and scheduled procedures, on one partition's BatchProcessor with no log:
 * the timer index's order, what `ctx.timers` refuses, when and how `fireDue` fires (after the
 * batch's input, each timer as its own transaction, dead-lettered when its handler throws,
 * deterministic across an abort), how schedules are planned, re-planned and rescheduled, the
 * rhythm arithmetic of `every` and `cron`, and the start-up errors of timer and schedule
 * declarations. A "restart" rebuilds a partition from the changelog its batches committed, as a
 * restore would.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeChangeKey, encodeChangeKey, RowCodec, SchemaCatalog } from '../../src/codec/index.js';
import { AppDefinitionError, HandlerContractError, SchemaValidationError, WrongPartitionError } from '../../src/errors.js';
import {
  compileApp,
  defineApp,
  globalViews,
  parseInterval,
  record,
  table,
  timerRowKey,
  TimerIndex,
  TIMERS_TABLE,
  type App,
  type CompiledApp,
  type FiredTimer,
  type GlobalTableDef,
  type ProcedureContext,
  type ScheduleDef,
  type TimerRow,
} from '../../src/procedures/index.js';
import { compileSchedule } from '../../src/procedures/schedules.js';
import { PartitionState, partitionForKey } from '../../src/state/index.js';
import { BatchProcessor, DLQ_HEADERS, FIRED_AT_HEADER, type CommitPlan, type OutRecord } from '../../src/streams/index.js';
import { keysOf } from './support/partition-keys.js';

// ---- the app under test ---------------------------------------------------------------------

const PARTITIONS = 4;
const PARTITION = 1;

/** Input: what to do with the timers of `key` (the default handler below reads `op`). */
interface Command {
  key: string;
  op: string;
  at: number;
  note: string | null;
  id: string | null;
}
interface Ack {
  key: string;
  op: string;
}
/** What a timer handler saw when it ran. */
interface Fired {
  kind: string;
  key: string;
  id: string;
  dueAt: number;
  /** ctx.timestamp */
  at: number;
  /** ctx.offset */
  offset: number;
  note: string | null;
  /** counts[key] after the handler's increment. */
  count: number;
  r1: number;
  r2: number;
}
interface Tick {
  schedule: string;
  partition: number;
  at: number;
}
interface Count {
  n: number;
}
interface Reminder {
  note: string;
}

const events = {
  Command: record<Command>({
    type: 'record',
    name: 'Command',
    namespace: 'alarms',
    fields: [
      { name: 'key', type: 'string' },
      { name: 'op', type: 'string' },
      { name: 'at', type: 'long' },
      { name: 'note', type: ['null', 'string'], default: null },
      { name: 'id', type: ['null', 'string'], default: null },
    ],
  }),
  Ack: record<Ack>({
    type: 'record',
    name: 'Ack',
    namespace: 'alarms.out',
    fields: [
      { name: 'key', type: 'string' },
      { name: 'op', type: 'string' },
    ],
  }),
  Fired: record<Fired>({
    type: 'record',
    name: 'Fired',
    namespace: 'alarms.out',
    fields: [
      { name: 'kind', type: 'string' },
      { name: 'key', type: 'string' },
      { name: 'id', type: 'string' },
      { name: 'dueAt', type: 'long' },
      { name: 'at', type: 'long' },
      { name: 'offset', type: 'long' },
      { name: 'note', type: ['null', 'string'], default: null },
      { name: 'count', type: 'long' },
      { name: 'r1', type: 'double' },
      { name: 'r2', type: 'double' },
    ],
  }),
  Tick: record<Tick>({
    type: 'record',
    name: 'Tick',
    namespace: 'alarms.out',
    fields: [
      { name: 'schedule', type: 'string' },
      { name: 'partition', type: 'int' },
      { name: 'at', type: 'long' },
    ],
  }),
};
const CountSchema = record<Count>({ type: 'record', name: 'Count', namespace: 'alarms', fields: [{ name: 'n', type: 'long' }] });
const tables = {
  counts: table({ key: 'string', value: CountSchema }),
  /** Runs per schedule name; local, since a schedule has no partition key. */
  runs: table({ key: 'string', scope: 'local', value: CountSchema }),
};
const outputs = { Ack: 'acks', Fired: 'fired', Tick: 'ticks' };
const ReminderSchema = record<Reminder>({ type: 'record', name: 'Reminder', namespace: 'alarms', fields: [{ name: 'note', type: 'string' }] });

type Ctx = ProcedureContext<typeof events, typeof tables, Record<never, GlobalTableDef>, Record<never, never>, typeof outputs, { reminder: Reminder; ping: unknown }>;

/** Replaces a default handler for one test. */
interface Hooks {
  command?: (ctx: Ctx, c: Command) => void;
  reminder?: (ctx: Ctx, timer: FiredTimer<Reminder>) => void;
}

interface AppOptions {
  hooks?: Hooks;
  schedules?: Record<string, Partial<ScheduleDef<Ctx>>>;
  /** Leave out the `ping` timer kind (a later version of the app that dropped it). */
  withoutPing?: boolean;
}

function defaultCommand(ctx: Ctx, c: Command): void {
  const id = c.id === null ? {} : { id: c.id };
  switch (c.op) {
    case 'set':
      ctx.timers.set('reminder', c.key, { at: c.at, payload: { note: c.note ?? '' }, ...id });
      break;
    case 'ping':
      ctx.timers.set('ping', c.key, { at: c.at, ...id });
      break;
    case 'cancel':
      ctx.timers.cancel('reminder', c.key, id);
      break;
    case 'bump':
      ctx.tables.counts.put(c.key, { n: (ctx.tables.counts.get(c.key)?.n ?? 0) + 1 });
      break;
    default:
      throw new Error(`unknown op ${c.op}`);
  }
  ctx.emit('Ack', { key: c.key, op: c.op });
}

/** Counts the firing in state, reports what it saw, and throws (after both) when the note says "boom". */
function defaultReminder(ctx: Ctx, timer: FiredTimer<Reminder>): void {
  const count = (ctx.tables.counts.get(timer.key)?.n ?? 0) + 1;
  ctx.tables.counts.put(timer.key, { n: count });
  ctx.emit('Fired', { ...seen(ctx, 'reminder', timer), note: timer.payload.note, count });
  if (timer.payload.note === 'boom') throw new Error(`boom at ${timer.key}`);
}

function seen(ctx: Ctx, kind: string, timer: FiredTimer<unknown>): Omit<Fired, 'note' | 'count'> {
  const r1 = ctx.random();
  const r2 = ctx.random();
  return { kind, key: timer.key, id: timer.id, dueAt: timer.dueAt, at: ctx.timestamp, offset: ctx.offset, r1, r2 };
}

/** A schedule's run: counts it (state) and emits a Tick keyed by the schedule's name. */
function tick(name: string): (ctx: Ctx) => void {
  return (ctx) => {
    ctx.tables.runs.put(name, { n: (ctx.tables.runs.get(name)?.n ?? 0) + 1 });
    ctx.emit('Tick', { schedule: name, partition: ctx.partition, at: ctx.timestamp }, { key: name });
  };
}

function alarmsApp(options: AppOptions = {}): CompiledApp {
  const hooks = options.hooks ?? {};
  const schedules = Object.fromEntries(Object.entries(options.schedules ?? {}).map(([name, def]) => [name, { handle: tick(name), emits: ['Tick'], ...def }]));
  const app = defineApp({
    name: 'alarms',
    partitions: PARTITIONS,
    events,
    tables,
    inputs: [{ topic: 'commands', events: ['Command'] }],
    outputs,
    procedures: {
      Command: { partitionKey: (c) => c.key, emits: ['Ack'], handle: (ctx, c) => (hooks.command ?? defaultCommand)(ctx, c) },
    },
    timers: {
      reminder: { payload: ReminderSchema, emits: ['Fired'], handle: (ctx, timer) => (hooks.reminder ?? defaultReminder)(ctx, timer) },
      ping: { emits: ['Fired'], handle: (ctx, timer) => ctx.emit('Fired', { ...seen(ctx, 'ping', timer), note: null, count: 0 }) },
    },
    schedules,
  });
  if (!options.withoutPing) return compileApp(app);
  // A later version that dropped `ping` (the spec is untyped once defined).
  const timers = Object.fromEntries(Object.entries(app.spec.timers ?? {}).filter(([name]) => name !== 'ping'));
  return compileApp({ spec: { ...app.spec, timers } });
}

// ---- harness --------------------------------------------------------------------------------

const OUTPUT_PARTITIONS: Record<string, number> = { acks: 2, fired: 3, ticks: 2 };
const [KEY, OTHER] = keysOf(PARTITION, PARTITIONS, 2, 'seat-') as [string, string];
const [FOREIGN] = keysOf(PARTITION + 1, PARTITIONS, 1, 'seat-') as [string];

/** Noon, 2 March 2026 (UTC): a multiple of every interval the schedule tests use. */
const T0 = Date.parse('2026-03-02T12:00:00Z');
const SEC = 1000;
const MIN = 60 * SEC;

interface Harness {
  readonly app: CompiledApp;
  readonly catalog: SchemaCatalog;
  readonly state: PartitionState;
  readonly processor: BatchProcessor;
  /** Changelog records of every batch committed so far: what a restore replays. */
  readonly changelog: OutRecord[];
  nextOffset: number;
}

function harness(options: AppOptions & { partition?: number; restoreFrom?: readonly OutRecord[] } = {}): Harness {
  const app = alarmsApp(options);
  const partition = options.partition ?? PARTITION;
  const rows = new RowCodec(app.tables.values(), app.droppedTables);
  const state = new PartitionState(partition, app.partitions, app.tables.values());
  for (const r of options.restoreFrom ?? []) rows.apply(state, r.key, r.value);
  const catalog = new SchemaCatalog([...app.events.values()].map((e) => e.type));
  const processor = new BatchProcessor({
    app,
    state,
    catalog,
    rows,
    globals: globalViews(app),
    partitionsOf: (topic) => {
      const n = OUTPUT_PARTITIONS[topic];
      if (n === undefined) throw new Error(`test asked for partitions of unexpected topic ${topic}`);
      return n;
    },
  });
  return { app, catalog, state, processor, changelog: [...(options.restoreFrom ?? [])], nextOffset: 0 };
}

/** The same partition started again from its committed changelog, with `options` as the new app version. */
function restart(h: Harness, options: AppOptions = {}): Harness {
  return harness({ ...options, partition: h.state.partition, restoreFrom: h.changelog });
}

/** Applies Commands as input records of one poll, at consecutive offsets, timestamped `ts`. */
function send(h: Harness, commands: ReadonlyArray<Partial<Command> & Pick<Command, 'op'>>, ts = T0): void {
  h.processor.apply(
    commands.map((c) => {
      const value: Command = { key: KEY, at: 0, note: null, id: null, ...c };
      return {
        topic: 'commands',
        partition: h.state.partition,
        offset: h.nextOffset++,
        timestamp: ts,
        key: Buffer.from(value.key),
        value: h.catalog.encode('alarms.Command', value),
        headers: {},
      };
    }),
  );
}

/** Commits the open batch (as a successful Kafka transaction would) and returns its plan. */
function commit(h: Harness): CommitPlan {
  const plan = h.processor.plan();
  h.changelog.push(...plan.records.filter((r) => r.topic === h.app.changelogTopic));
  h.processor.committed();
  return plan;
}

function decoded<T>(h: Harness, plan: CommitPlan, topic: string): T[] {
  return plan.records.filter((r) => r.topic === topic).map((r) => ({ ...(h.catalog.decode(r.value!).value as T) }));
}

const fired = (h: Harness, plan = h.processor.plan()): Fired[] => decoded<Fired>(h, plan, 'fired');
const ticks = (h: Harness, plan = h.processor.plan()): Tick[] => decoded<Tick>(h, plan, 'ticks');
const deadLetters = (h: Harness, plan = h.processor.plan()): OutRecord[] => plan.records.filter((r) => r.topic === h.app.deadLetterTopic);

/** Pending timers of the partition (live state), as `kind key#id @dueAt`, earliest first. */
function pending(h: Harness): string[] {
  return [...h.state.store(TIMERS_TABLE).entries()]
    .map(([, row]) => row as TimerRow)
    .sort((a, b) => a.dueAt - b.dueAt || a.kind.localeCompare(b.kind))
    .map((t) => `${t.kind} ${t.key}${t.id ? `#${t.id}` : ''} @${t.dueAt}`);
}

function count(h: Harness, key: string): number | undefined {
  return (h.state.store('counts').get(key) as Count | undefined)?.n;
}

// ---- the timer index ------------------------------------------------------------------------

describe('TimerIndex', () => {
  const app = alarmsApp();
  const timerRow = (kind: string, key: string, id: string, dueAt: number): TimerRow => ({ kind, key, id, dueAt, setAt: 0, schedule: null, p_reminder: null });

  /** Writes a timer row and tells the index, as ctx.timers.set does. */
  function put(state: PartitionState, index: TimerIndex, row: TimerRow): string {
    const rowKey = timerRowKey(row.kind, row.key, row.id);
    state.write(TIMERS_TABLE, rowKey, row);
    index.push(row.dueAt, rowKey);
    return rowKey;
  }

  function drain(index: TimerIndex): string[] {
    const out: string[] = [];
    for (let next = index.next(); next; next = index.next()) {
      out.push(`${next.row.dueAt} ${next.rowKey}`);
      index.pop();
    }
    return out;
  }

  it('gives pending timers by due time, then by row key when due together', () => {
    const state = new PartitionState(PARTITION, PARTITIONS, app.tables.values());
    const index = new TimerIndex(state);
    // Pushed out of order, with ties on the due time.
    const rows = [
      timerRow('reminder', KEY, 'b', T0 + 20),
      timerRow('reminder', KEY, 'a', T0 + 20),
      timerRow('ping', OTHER, '', T0 + 5),
      timerRow('reminder', OTHER, '', T0 + 30),
      timerRow('ping', KEY, '', T0 + 20),
      timerRow('reminder', KEY, '', T0 + 1),
    ];
    const keys = rows.map((r) => put(state, index, r));
    const expected = rows
      .map((r, i) => ({ dueAt: r.dueAt, rowKey: keys[i]! }))
      .sort((a, b) => a.dueAt - b.dueAt || (a.rowKey < b.rowKey ? -1 : 1))
      .map((e) => `${e.dueAt} ${e.rowKey}`);
    assert.deepEqual(drain(index), expected);
    assert.equal(index.next(), undefined);
  });

  it('skips timers cancelled or replaced after they were indexed: each pending row comes out once, at its current due time', () => {
    const state = new PartitionState(PARTITION, PARTITIONS, app.tables.values());
    const index = new TimerIndex(state);
    const cancelled = put(state, index, timerRow('reminder', KEY, 'cancelled', T0 + 1));
    put(state, index, timerRow('reminder', KEY, 'moved', T0 + 2));
    put(state, index, timerRow('reminder', KEY, 'kept', T0 + 3));
    state.write(TIMERS_TABLE, cancelled, undefined);
    // Replaced twice: later, then back to a time before the others. Only the last one counts.
    const moved = put(state, index, timerRow('reminder', KEY, 'moved', T0 + 10));
    put(state, index, timerRow('reminder', KEY, 'moved', T0 + 0));
    assert.deepEqual(drain(index), [`${T0} ${moved}`, `${T0 + 3} ${timerRowKey('reminder', KEY, 'kept')}`]);
  });

  it('rebuild() reads the pending timers back from state (a restore, an aborted batch)', () => {
    const state = new PartitionState(PARTITION, PARTITIONS, app.tables.values());
    const writer = new TimerIndex(state);
    const late = put(state, writer, timerRow('reminder', KEY, '', T0 + 50));
    const early = put(state, writer, timerRow('ping', OTHER, '', T0 + 10));
    const gone = put(state, writer, timerRow('ping', KEY, '', T0 + 5));
    state.write(TIMERS_TABLE, gone, undefined);

    const index = new TimerIndex(state);
    assert.equal(index.next(), undefined, 'an index starts empty');
    index.rebuild();
    assert.deepEqual(drain(index), [`${T0 + 10} ${early}`, `${T0 + 50} ${late}`]);
  });
});

// ---- ctx.timers -----------------------------------------------------------------------------

describe('ctx.timers', () => {
  /** Runs `attempt` in a Command handler that catches what it throws; returns that. */
  function thrownInHandler(attempt: (ctx: Ctx) => void): Error {
    let caught: unknown;
    const h = harness({
      hooks: {
        command: (ctx) => {
          try {
            attempt(ctx);
          } catch (err) {
            caught = err;
          }
        },
      },
    });
    send(h, [{ op: 'attempt' }]);
    assert.deepEqual(pending(h), [], 'a refused call sets nothing');
    assert.ok(caught instanceof Error, `expected the call to throw, got ${String(caught)}`);
    return caught;
  }

  it("refuses a key of another partition (WrongPartitionError naming both partitions)", () => {
    const owner = partitionForKey(FOREIGN, PARTITIONS);
    const err = thrownInHandler((ctx) => ctx.timers.set('reminder', FOREIGN, { at: T0, payload: { note: 'x' } }));
    assert.ok(err instanceof WrongPartitionError, err.message);
    assert.match(err.message, new RegExp(`belongs to partition ${owner}, not ${PARTITION}`));
    const cancel = thrownInHandler((ctx) => ctx.timers.cancel('reminder', FOREIGN));
    assert.ok(cancel instanceof WrongPartitionError, 'cancel checks the key too');
  });

  it('refuses a payload that does not fit the schema (SchemaValidationError naming the field)', () => {
    const err = thrownInHandler((ctx) => ctx.timers.set('reminder', KEY, { at: T0, payload: { note: 42 as unknown as string } }));
    assert.ok(err instanceof SchemaValidationError, err.message);
    assert.match(err.message, /timers\.set\("reminder"/);
    assert.match(err.message, /note/);
    const missing = thrownInHandler((ctx) => ctx.timers.set('reminder', KEY, { at: T0 }));
    assert.ok(missing instanceof SchemaValidationError, 'a timer with a payload schema needs a payload');
  });

  it('refuses a timer name the app does not declare, listing the declared ones', () => {
    const untyped = (ctx: Ctx) => ctx.timers as unknown as { set(name: string, key: string, setting: { at: number }): void };
    const err = thrownInHandler((ctx) => untyped(ctx).set('alarm', KEY, { at: T0 }));
    assert.ok(err instanceof HandlerContractError, err.message);
    assert.match(err.message, /no timer named "alarm".*declared: reminder, ping/);
  });

  it('refuses a payload for a timer that declares none', () => {
    const err = thrownInHandler((ctx) => ctx.timers.set('ping', KEY, { at: T0, payload: { note: 'x' } }));
    assert.ok(err instanceof HandlerContractError, err.message);
    assert.match(err.message, /declares no payload schema/);
  });

  it('refuses a due time that is not a number', () => {
    const err = thrownInHandler((ctx) => ctx.timers.set('ping', KEY, { at: Number.NaN }));
    assert.ok(err instanceof HandlerContractError, err.message);
    assert.match(err.message, /at must be a time in ms/);
  });

  it('refuses set and cancel after the handler returned (a kept ctx cannot write outside its transaction)', () => {
    let kept: Ctx['timers'] | undefined;
    const h = harness({
      hooks: {
        command: (ctx, c) => {
          kept = ctx.timers;
          defaultCommand(ctx, c);
        },
      },
    });
    send(h, [{ op: 'set', at: T0 + MIN, note: 'x' }]);
    assert.ok(kept);
    const timers = kept;
    assert.throws(() => timers.set('reminder', KEY, { at: T0, payload: { note: 'late' } }), (e: unknown) => e instanceof HandlerContractError && /after the handler returned/.test(e.message));
    assert.throws(() => timers.cancel('reminder', KEY), HandlerContractError);
    assert.deepEqual(pending(h), [`reminder ${KEY} @${T0 + MIN}`], 'only the timer set while the handler ran');
  });

  it('a handler that throws keeps none of the timers it set or cancelled, and they never fire', () => {
    const h = harness();
    send(h, [{ op: 'set', at: T0 + 10, note: 'kept' }]);
    commit(h);
    const failing = harness({
      hooks: {
        command: (ctx) => {
          ctx.timers.cancel('reminder', KEY);
          ctx.timers.set('reminder', OTHER, { at: T0, payload: { note: 'rolled back' } });
          ctx.timers.set('ping', KEY, { at: T0, id: 'x' });
          throw new Error('changed my mind');
        },
      },
      restoreFrom: h.changelog,
    });
    send(failing, [{ op: 'attempt' }]);
    assert.equal(deadLetters(failing).length, 1);
    assert.deepEqual(pending(failing), [`reminder ${KEY} @${T0 + 10}`]);
    assert.equal(failing.processor.fireDue(T0 + MIN, 100), 1, 'only the kept timer fires; the rolled-back ones are stale entries');
    assert.deepEqual(fired(failing).map((f) => `${f.kind} ${f.key} ${f.note}`), [`reminder ${KEY} kept`]);
  });

  it('get shows a pending timer, set with the same name, key and id replaces it, other ids are separate, cancel removes it', () => {
    const views: unknown[] = [];
    const h = harness({
      hooks: {
        command: (ctx, c) => {
          defaultCommand(ctx, c);
          for (const timer of [ctx.timers.get('reminder', KEY), ctx.timers.get('reminder', KEY, { id: 'b' })]) {
            views.push(timer && { at: timer.at, payload: { ...timer.payload } });
          }
        },
      },
    });
    send(h, [
      { op: 'set', at: T0 + 10, note: 'first' },
      { op: 'set', at: T0 + 20, note: 'replaced' },
      { op: 'set', at: T0 + 30, note: 'other id', id: 'b' },
      { op: 'cancel' },
    ]);
    assert.deepEqual(views, [
      { at: T0 + 10, payload: { note: 'first' } },
      undefined,
      { at: T0 + 20, payload: { note: 'replaced' } },
      undefined,
      { at: T0 + 20, payload: { note: 'replaced' } },
      { at: T0 + 30, payload: { note: 'other id' } },
      undefined,
      { at: T0 + 30, payload: { note: 'other id' } },
    ]);
    assert.equal(h.processor.fireDue(T0 + 25, 100), 0, 'neither the replaced time nor the cancelled timer fires');
    assert.equal(h.processor.fireDue(T0 + 30, 100), 1);
    assert.deepEqual(fired(h).map((f) => [f.id, f.note]), [['b', 'other id']]);
  });
});

// ---- firing ---------------------------------------------------------------------------------

describe('BatchProcessor.fireDue: timers', () => {
  it('fires nothing before the due time, then fires once at it; nextDueAt tells when', () => {
    const h = harness();
    assert.equal(h.processor.nextDueAt(), undefined);
    send(h, [{ op: 'set', at: T0 + MIN, note: 'x' }, { op: 'ping', key: OTHER, at: T0 + 2 * MIN }]);
    assert.equal(h.processor.nextDueAt(), T0 + MIN);
    assert.equal(h.processor.fireDue(T0 + MIN - 1, 100), 0);
    assert.deepEqual(fired(h), []);
    commit(h);

    assert.equal(h.processor.fireDue(T0 + MIN, 100), 1);
    assert.equal(h.processor.nextDueAt(), T0 + 2 * MIN);
    assert.deepEqual(fired(h).map((f) => f.kind), ['reminder']);
    assert.equal(h.processor.fireDue(T0 + MIN, 100), 0, 'a fired timer does not fire again');
    commit(h);
    assert.deepEqual(pending(h), [`ping ${OTHER} @${T0 + 2 * MIN}`]);
  });

  it('fires after the batch input, in (dueAt, row key) order, up to `max` per call', () => {
    const h = harness();
    send(h, [
      { op: 'set', at: T0 + 3, note: 'third', id: 'c' },
      { op: 'set', at: T0 + 1, note: 'second', id: 'b' },
      { op: 'set', at: T0 + 1, note: 'first', id: 'a' },
      { op: 'set', at: T0 + 9, note: 'fourth' },
    ]);
    commit(h);

    send(h, [{ op: 'bump' }]);
    assert.equal(h.processor.fireDue(T0 + 10, 3), 3);
    const plan = h.processor.plan();
    // Output order: the input's Ack, then the timers' events.
    const outputs = plan.records.filter((r) => r.topic === 'acks' || r.topic === 'fired').map((r) => r.topic);
    assert.deepEqual(outputs, ['acks', 'fired', 'fired', 'fired']);
    assert.deepEqual(fired(h, plan).map((f) => [f.note, f.count]), [
      ['first', 2],
      ['second', 3],
      ['third', 4],
    ], 'due order, and the first timer already sees the bump of the input before it');
    assert.equal(h.processor.fireDue(T0 + 10, 3), 1, 'the rest fire in the next call');
    assert.deepEqual(fired(h).map((f) => f.note), ['first', 'second', 'third', 'fourth']);
  });

  it('runs the handler at the fire time: ctx.timestamp, output timestamp, offset -1, keyed by the timer key', () => {
    const h = harness({ hooks: { command: (ctx) => ctx.timers.set('reminder', KEY, { at: T0 + 1500.2, payload: { note: 'x' } }) } });
    send(h, [{ op: 'set' }]);
    commit(h);
    const firedAt = T0 + 7 * SEC;
    h.processor.fireDue(firedAt, 100);
    const [f] = fired(h);
    assert.ok(f);
    assert.equal(f.dueAt, T0 + 1501, 'a fractional due time rounds up (never fires early)');
    assert.equal(f.at, firedAt);
    assert.equal(f.offset, -1);
    const out = h.processor.plan().records.find((r) => r.topic === 'fired')!;
    assert.equal(out.timestamp, firedAt);
    assert.deepEqual(out.key, Buffer.from(KEY));
    assert.equal(out.partition, partitionForKey(KEY, OUTPUT_PARTITIONS['fired']!));
  });

  it("commits a timer's state writes and events in the batch that deletes its row, with the fire time on the changelog tombstone", () => {
    const h = harness();
    send(h, [{ op: 'set', at: T0, note: 'x' }]);
    commit(h);
    const firedAt = T0 + 5 * SEC;
    assert.equal(h.processor.fireDue(firedAt, 100), 1);
    assert.equal(h.processor.hasWork, true, 'a batch with no input still commits what the timer did');
    const plan = commit(h);
    assert.equal(plan.inputCount, 0);
    assert.deepEqual(plan.offsets, []);
    assert.equal(fired(h, plan).length, 1);

    const changelog = plan.records.filter((r) => r.topic === h.app.changelogTopic);
    assert.deepEqual(changelog.map((r) => decodeChangeKey(r.key!)).map((k) => `${k.table}/${String(k.key)}`).sort(), [
      `${TIMERS_TABLE}/${timerRowKey('reminder', KEY, '')}`,
      `counts/${KEY}`,
    ]);
    const tombstone = changelog.find((r) => r.key!.equals(encodeChangeKey(TIMERS_TABLE, timerRowKey('reminder', KEY, ''))))!;
    assert.equal(tombstone.value, null);
    assert.equal(tombstone.headers?.[FIRED_AT_HEADER], String(firedAt));
    assert.equal(tombstone.timestamp, firedAt);
    assert.deepEqual(pending(h), []);
    assert.equal(count(h, KEY), 1);
    assert.equal(h.processor.hasWork, false);
  });

  it('a timer set in the past by a handler fires in the same batch', () => {
    const h = harness();
    send(h, [{ op: 'set', at: T0 - MIN, note: 'overdue' }], T0);
    assert.equal(h.processor.fireDue(T0, 100), 1);
    const plan = commit(h);
    assert.deepEqual(fired(h, plan).map((f) => [f.note, f.at]), [['overdue', T0]]);
    assert.deepEqual(pending(h), []);
  });

  it('a timer that sets itself again for a time already due fires once per batch, not in a loop', () => {
    const h = harness({
      hooks: {
        reminder(ctx, timer) {
          defaultReminder(ctx, timer);
          ctx.timers.set('reminder', timer.key, { at: ctx.timestamp, payload: timer.payload });
        },
      },
    });
    send(h, [{ op: 'set', at: T0, note: 'again' }], T0);
    assert.equal(h.processor.fireDue(T0, 100), 1);
    commit(h);
    assert.deepEqual(pending(h), [`reminder ${KEY} @${T0}`], 'set again, for the next batch');
    assert.equal(h.processor.fireDue(T0 + 1, 100), 1);
    assert.equal(count(h, KEY), 2);
  });

  it('a throwing timer handler keeps no effects, its timer is gone and it is dead-lettered as JSON with its times', () => {
    const h = harness();
    send(h, [{ op: 'set', at: T0 + 1, note: 'boom' }, { op: 'set', key: OTHER, at: T0 + 2, note: 'fine' }]);
    commit(h);
    const firedAt = T0 + SEC;
    assert.equal(h.processor.fireDue(firedAt, 100), 2, 'the failed timer counts as fired');
    const plan = commit(h);

    assert.deepEqual(fired(h, plan).map((f) => f.note), ['fine'], 'no event from the failed handler');
    assert.equal(count(h, KEY), undefined, 'no state from the failed handler');
    assert.equal(count(h, OTHER), 1);
    assert.deepEqual(pending(h), [], 'the failed timer does not fire again');
    const tombstone = plan.records.find((r) => r.topic === h.app.changelogTopic && r.key!.equals(encodeChangeKey(TIMERS_TABLE, timerRowKey('reminder', KEY, ''))));
    assert.equal(tombstone?.value, null, 'its deletion is changelogged');

    const [letter, ...more] = deadLetters(h, plan);
    assert.ok(letter);
    assert.equal(more.length, 0);
    const headers = letter.headers ?? {};
    assert.equal(headers[DLQ_HEADERS.reason], 'handler_error');
    assert.equal(headers[DLQ_HEADERS.eventType], 'timer:reminder');
    assert.match(headers[DLQ_HEADERS.error] ?? '', new RegExp(`boom at ${KEY}`));
    assert.equal(headers[DLQ_HEADERS.timerDueAt], String(T0 + 1));
    assert.equal(headers[DLQ_HEADERS.timerFiredAt], String(firedAt));
    assert.deepEqual(letter.key, Buffer.from(KEY));
    assert.equal(letter.timestamp, firedAt);
    const json = JSON.parse(letter.value!.toString('utf8')) as Record<string, unknown>;
    assert.equal(json['kind'], 'reminder');
    assert.equal(json['key'], KEY);
    assert.equal(json['dueAt'], T0 + 1);
    assert.deepEqual(json['p_reminder'], { note: 'boom' }, 'the payload is in the dead letter');
  });

  it('dead-letters a pending timer whose kind the app no longer declares (no_procedure), and removes it', () => {
    const v1 = harness();
    send(v1, [{ op: 'ping', at: T0 }, { op: 'set', key: OTHER, at: T0, note: 'still declared' }]);
    commit(v1);
    const v2 = restart(v1, { withoutPing: true });
    assert.equal(v2.processor.fireDue(T0 + SEC, 100), 2);
    const plan = commit(v2);
    assert.deepEqual(fired(v2, plan).map((f) => f.kind), ['reminder']);
    const [letter] = deadLetters(v2, plan);
    assert.equal(letter?.headers?.[DLQ_HEADERS.reason], 'no_procedure');
    assert.equal(letter?.headers?.[DLQ_HEADERS.eventType], 'timer:ping');
    assert.match(letter?.headers?.[DLQ_HEADERS.error] ?? '', /"ping"/);
    assert.deepEqual(pending(v2), []);
  });

  it('abort() makes fired timers pending again; firing them again at the same time gives the same batch, randomness included', () => {
    const h = harness();
    send(h, [
      { op: 'set', at: T0 + 1, note: 'a' },
      { op: 'set', key: OTHER, at: T0 + 2, note: 'boom' },
      { op: 'ping', at: T0 + 3, id: 'p' },
    ]);
    commit(h);
    const firedAt = T0 + MIN;

    h.processor.fireDue(firedAt, 100);
    const first = h.processor.plan();
    assert.equal(fired(h, first).length, 2);
    h.processor.abort();
    assert.equal(h.processor.hasWork, false);
    assert.deepEqual(h.processor.plan().records, [], 'the aborted batch left nothing');
    assert.equal(pending(h).length, 3, 'the fired timers are pending again');
    assert.equal(count(h, KEY), undefined);

    assert.equal(h.processor.fireDue(firedAt, 100), 3);
    assert.deepEqual(h.processor.plan(), first, 'same records, bytes and headers');

    // Another replica restored from the same changelog fires them the same way, byte for byte
    // (the changelog records of a batch that fired carry its fire time).
    const replica = restart(h);
    replica.processor.fireDue(firedAt, 100);
    assert.deepEqual(replica.processor.plan(), first);
  });

  it("ctx.random() comes from the timer's identity and due time, not from when it fired", () => {
    const randoms = (firedAt: number): Array<[string, number, number]> => {
      const h = harness();
      send(h, [
        { op: 'set', at: T0, note: 'x' },
        { op: 'set', at: T0, note: 'x', id: 'other' },
        { op: 'ping', at: T0 },
      ]);
      h.processor.fireDue(firedAt, 100);
      return fired(h).map((f) => [`${f.kind}#${f.id}`, f.r1, f.r2]);
    };
    const early = randoms(T0);
    const late = randoms(T0 + 10 * MIN);
    assert.deepEqual(late, early, 'a retry at a later wall clock sees the same numbers');
    assert.equal(new Set(early.map(([, r1]) => r1)).size, 3, 'each timer gets its own sequence');
    for (const [, r1, r2] of early) {
      assert.ok(r1 >= 0 && r1 < 1 && r2 >= 0 && r2 < 1);
      assert.notEqual(r1, r2);
    }
  });
});

// ---- scheduled procedures -------------------------------------------------------------------

describe('scheduled procedures', () => {
  it("plan a row for their next slot on the first fireDue after activation, without running", () => {
    const h = harness({ schedules: { beat: { every: '1m' } } });
    assert.equal(h.processor.nextDueAt(), 0, 'an unplanned schedule asks for a fireDue at once');
    assert.equal(h.processor.fireDue(T0 + 10 * SEC, 100), 0);
    assert.equal(h.processor.hasWork, true, 'the planned row is committed');
    assert.deepEqual(pending(h), [`@beat  @${T0 + MIN}`]);
    assert.equal(h.processor.nextDueAt(), T0 + MIN);
    commit(h);
    assert.equal(h.processor.fireDue(T0 + 20 * SEC, 100), 0);
    assert.equal(h.processor.hasWork, false, 'a planned schedule is not planned again');
  });

  it('run at their slot as a transaction and reschedule to the next slot; missed slots are skipped, not made up', () => {
    const h = harness({ schedules: { beat: { every: '1m' } } });
    h.processor.fireDue(T0 + 10 * SEC, 100);
    commit(h);

    assert.equal(h.processor.fireDue(T0 + MIN, 100), 1);
    let plan = commit(h);
    assert.deepEqual(ticks(h, plan), [{ schedule: 'beat', partition: PARTITION, at: T0 + MIN }]);
    assert.deepEqual(pending(h), [`@beat  @${T0 + 2 * MIN}`]);
    assert.equal((h.state.store('runs').get('beat') as Count).n, 1);

    // Down for three and a half slots: one run now, then the next slot after now.
    assert.equal(h.processor.fireDue(T0 + 5.5 * MIN, 100), 1);
    plan = commit(h);
    assert.deepEqual(ticks(h, plan).map((t) => t.at), [T0 + 5.5 * MIN]);
    assert.deepEqual(pending(h), [`@beat  @${T0 + 6 * MIN}`]);
    assert.equal((h.state.store('runs').get('beat') as Count).n, 2);
    const changelogRow = plan.records.find((r) => r.topic === h.app.changelogTopic && r.key!.equals(encodeChangeKey(TIMERS_TABLE, timerRowKey('@beat', '', ''))));
    assert.ok(changelogRow?.value, 'the rescheduled row is written, not deleted');
  });

  it("with runOn 'app' get a row on partition 0 only", () => {
    const schedules = { census: { every: '1m', runOn: 'app' as const }, beat: { every: '1m' } };
    const rows = (partition: number): string[] => {
      const h = harness({ partition, schedules });
      h.processor.fireDue(T0, 100);
      return pending(h).map((p) => p.split(' ')[0]!).sort();
    };
    assert.deepEqual(rows(0), ['@beat', '@census']);
    for (let p = 1; p < PARTITIONS; p++) assert.deepEqual(rows(p), ['@beat'], `partition ${p}`);
  });

  it('are re-planned when their rhythm changes, kept when it does not, and their rows deleted when removed', () => {
    const v1 = harness({ schedules: { beat: { every: '1m' }, gone: { every: '1m' }, moved: { every: '1m' } } });
    v1.processor.fireDue(T0 + 10 * SEC, 100);
    commit(v1);
    assert.deepEqual(pending(v1), [`@beat  @${T0 + MIN}`, `@gone  @${T0 + MIN}`, `@moved  @${T0 + MIN}`]);

    // Restarted ten minutes later: `beat` keeps its (overdue) row and runs once; `moved` has a
    // new rhythm and waits for its next slot; `gone` is no longer declared.
    const v2 = restart(v1, { schedules: { beat: { every: '1m' }, moved: { every: '5m' } } });
    const now = T0 + 10 * MIN + 30 * SEC;
    assert.equal(v2.processor.fireDue(now, 100), 1);
    const plan = commit(v2);
    assert.deepEqual(ticks(v2, plan).map((t) => t.schedule), ['beat']);
    assert.deepEqual(pending(v2), [`@beat  @${T0 + 11 * MIN}`, `@moved  @${T0 + 15 * MIN}`]);
    const goneRow = plan.records.find((r) => r.topic === v2.app.changelogTopic && r.key!.equals(encodeChangeKey(TIMERS_TABLE, timerRowKey('@gone', '', ''))));
    assert.equal(goneRow?.value, null, "the removed schedule's row is deleted");

    // A schedule changed to run once per app leaves the other partitions.
    const p0 = harness({ partition: 0, schedules: { beat: { every: '1m' } } });
    p0.processor.fireDue(T0, 100);
    commit(p0);
    const p0Again = restart(p0, { schedules: { beat: { every: '1m', runOn: 'app' } } });
    p0Again.processor.fireDue(T0 + SEC, 100);
    assert.deepEqual(pending(p0Again), [`@beat  @${T0 + MIN}`], 'partition 0 keeps it');
    const v3 = restart(v2, { schedules: { beat: { every: '1m', runOn: 'app' } } });
    v3.processor.fireDue(now, 100);
    assert.deepEqual(pending(v3), []);
  });

  it('refuse an emit without { key } (dead-lettered), and still keep their rhythm', () => {
    const h = harness({
      schedules: {
        keyless: {
          every: '1m',
          handle: (ctx) => {
            ctx.tables.runs.put('keyless', { n: 1 });
            ctx.emit('Tick', { schedule: 'keyless', partition: ctx.partition, at: ctx.timestamp });
          },
        },
      },
    });
    h.processor.fireDue(T0, 100);
    commit(h);
    assert.equal(h.processor.fireDue(T0 + MIN, 100), 1);
    const plan = commit(h);
    assert.deepEqual(ticks(h, plan), []);
    assert.equal(h.state.store('runs').get('keyless'), undefined, 'its write is rolled back');
    const [letter] = deadLetters(h, plan);
    assert.equal(letter?.headers?.[DLQ_HEADERS.reason], 'handler_error');
    assert.equal(letter?.headers?.[DLQ_HEADERS.eventType], 'schedule:keyless');
    assert.match(letter?.headers?.[DLQ_HEADERS.error] ?? '', /emit with \{ key \}/);
    assert.deepEqual(pending(h), [`@keyless  @${T0 + 2 * MIN}`]);
  });

  it('abort() forgets the planning of the aborted batch, and the next fireDue plans again', () => {
    const h = harness({ schedules: { beat: { every: '1m' } } });
    h.processor.fireDue(T0, 100);
    h.processor.abort();
    assert.deepEqual(pending(h), []);
    assert.equal(h.processor.nextDueAt(), 0);
    h.processor.fireDue(T0 + 2 * MIN + SEC, 100);
    assert.deepEqual(pending(h), [`@beat  @${T0 + 3 * MIN}`]);
  });
});

describe('schedule rhythms', () => {
  const at = (iso: string): number => Date.parse(iso);
  const nextOf = (def: Partial<ScheduleDef<unknown>>, after: string): string =>
    new Date(compileSchedule('s', { handle: () => undefined, ...def }).next(at(after))).toISOString();

  it('every: the next multiple of the interval since the epoch, strictly after', () => {
    assert.equal(nextOf({ every: '5m' }, '2026-03-02T12:03:10Z'), '2026-03-02T12:05:00.000Z');
    assert.equal(nextOf({ every: '5m' }, '2026-03-02T12:05:00Z'), '2026-03-02T12:10:00.000Z');
    assert.equal(nextOf({ every: 250 }, '2026-03-02T12:00:00.100Z'), '2026-03-02T12:00:00.250Z');
    assert.equal(nextOf({ every: '1h' }, '2026-03-02T12:59:59.999Z'), '2026-03-02T13:00:00.000Z');
  });

  it('cron: the next matching time, strictly after, in UTC unless a timezone is given', () => {
    assert.equal(nextOf({ cron: '*/5 * * * *' }, '2026-03-02T12:03:10Z'), '2026-03-02T12:05:00.000Z');
    assert.equal(nextOf({ cron: '*/5 * * * *' }, '2026-03-02T12:05:00Z'), '2026-03-02T12:10:00.000Z');
    assert.equal(nextOf({ cron: '*/10 * * * * *' }, '2026-03-02T12:00:00.500Z'), '2026-03-02T12:00:10.000Z', 'six fields: seconds first');
    // 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC once summer time starts (29 March 2026).
    assert.equal(nextOf({ cron: '0 9 * * *', timezone: 'Europe/Berlin' }, '2026-03-27T12:00:00Z'), '2026-03-28T08:00:00.000Z');
    assert.equal(nextOf({ cron: '0 9 * * *', timezone: 'Europe/Berlin' }, '2026-03-28T12:00:00Z'), '2026-03-29T07:00:00.000Z');
  });

  it('describe their rhythm canonically (a change of spelling that keeps the rhythm is no change)', () => {
    const spec = (def: Partial<ScheduleDef<unknown>>): string => compileSchedule('s', { handle: () => undefined, ...def }).spec;
    assert.equal(spec({ every: '5m' }), spec({ every: 300_000 }));
    assert.equal(spec({ every: '0.5h' }), spec({ every: '30m' }));
    assert.notEqual(spec({ cron: '0 9 * * *' }), spec({ cron: '0 9 * * *', timezone: 'Europe/Berlin' }));
  });

  it('parseInterval accepts ms and durations, and refuses anything else', () => {
    assert.equal(parseInterval(250), 250);
    assert.equal(parseInterval('30s'), 30_000);
    assert.equal(parseInterval('1.5h'), 5_400_000);
    assert.equal(parseInterval(' 5m '), 300_000);
    assert.equal(parseInterval('2d'), 172_800_000);
    for (const bad of ['', '5x', '5', 'm', '-5m', '5 minutes', 0, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.equal(parseInterval(bad), undefined, JSON.stringify(bad));
    }
  });
});

// ---- start-up errors ------------------------------------------------------------------------

describe('compileApp: timer and schedule declarations', () => {
  type RawSpec = Record<string, unknown>;
  const raw = (spec: RawSpec): App => ({ spec: spec as unknown as App['spec'] });

  function spec(extra: RawSpec): RawSpec {
    return {
      name: 'alarms',
      partitions: PARTITIONS,
      events,
      tables,
      inputs: [{ topic: 'commands', events: ['Command'] }],
      outputs: { Fired: 'fired' },
      procedures: { Command: { partitionKey: (c: Command) => c.key, handle() {} } },
      ...extra,
    };
  }

  function refuses(extra: RawSpec, ...patterns: RegExp[]): void {
    assert.throws(
      () => compileApp(raw(spec(extra))),
      (err: unknown) => {
        assert.ok(err instanceof AppDefinitionError, `expected AppDefinitionError, got ${String(err)}`);
        for (const pattern of patterns) assert.match(err.message, pattern);
        return true;
      },
    );
  }

  it('compiles timers and schedules into the __timers system table, which handlers do not see as a table', () => {
    const app = compileApp(raw(spec({ timers: { reminder: { payload: ReminderSchema, handle() {} } }, schedules: { beat: { every: '1m', handle() {} } } })));
    assert.deepEqual([...app.timers.keys()], ['reminder', '@beat']);
    assert.equal(app.tables.get(TIMERS_TABLE)?.system, true);
    assert.equal(compileApp(raw(spec({}))).tables.has(TIMERS_TABLE), false, 'no timers, no system table');
  });

  it('refuses a timer name that cannot be an Avro field name', () => {
    refuses({ timers: { 'hold-expiry': { handle() {} } } }, /timer name "hold-expiry"/, /must match/);
  });

  it('refuses a table name starting with "__"', () => {
    refuses({ tables: { ...tables, __timers: tables.counts } }, /table name "__timers"/, /farad's own/);
  });

  it('refuses async and generator handlers', () => {
    refuses({ timers: { reminder: { async handle() {} } } }, /timer "reminder"/, /async/, /synchronous/);
    refuses({ schedules: { beat: { every: '1m', async handle() {} } } }, /schedule "beat"/, /async/);
    refuses({ timers: { reminder: { *handle() {} } } }, /timer "reminder"/, /generator/);
    refuses({ timers: { reminder: {} } }, /timer "reminder" has no handle\(\) function/);
  });

  it('refuses a null payload schema', () => {
    refuses({ timers: { reminder: { payload: { schema: 'null' }, handle() {} } } }, /timer "reminder"/, /must not be a union or null/);
  });

  // avsc names union types 'union:unwrapped' / 'union:wrapped', so the check for 'union' in
  // compileTimers never matches: a union payload fails later, in timersTable, with "payload schemas
  // do not fit together (two of them define one Avro name differently?): unions cannot be directly nested".
  it('refuses a union payload schema, naming the timer', () => {
    refuses({ timers: { reminder: { payload: { schema: ['null', 'string'] }, handle() {} } } }, /timer "reminder"/, /must not be a union or null/);
  });

  // timersTable defines a payload's named type once only when it is a payload's top-level type:
  // two payloads that embed one named record (both with an `amount: shop.Money`) are refused as
  // "duplicate type name: shop.Money", although they define it identically.
  it('accepts payloads that share a nested named type', () => {
    const Money = { type: 'record', name: 'Money', namespace: 'shop', fields: [{ name: 'cents', type: 'long' }] };
    const payload = (name: string) => ({ schema: { type: 'record', name, namespace: 'shop', fields: [{ name: 'amount', type: Money }] } });
    const app = compileApp(raw(spec({ timers: { refund: { payload: payload('Refund'), handle() {} }, charge: { payload: payload('Charge'), handle() {} } } })));
    assert.ok(app.tables.has(TIMERS_TABLE));
  });

  // compileSchedule calls cron.nextRun() outside its try block, and croner only checks the zone
  // there: a misspelt zone escapes as croner's TypeError, naming no schedule.
  it('refuses an unknown timezone, naming the schedule', () => {
    refuses({ schedules: { nightly: { cron: '0 3 * * *', timezone: 'Europe/Berln', handle() {} } } }, /schedule "nightly"/, /Europe\/Berln/);
  });

  it('refuses a timer that emits an event without an output topic, or one the app does not have', () => {
    refuses({ timers: { reminder: { emits: ['Ack'], handle() {} } } }, /timer "reminder" emits "Ack"/, /no output topic/);
    refuses({ schedules: { beat: { every: '1m', emits: ['Nope'], handle() {} } } }, /schedule "beat" emits "Nope"/, /not in events/);
  });

  it('refuses a schedule without exactly one of every and cron', () => {
    refuses({ schedules: { beat: { handle() {} } } }, /schedule "beat"/, /exactly one of every .* and cron/);
    refuses({ schedules: { beat: { every: '1m', cron: '* * * * *', handle() {} } } }, /exactly one of every/);
  });

  it('refuses a bad interval, a bad cron expression, a cron that never runs and an unknown runOn', () => {
    refuses({ schedules: { beat: { every: '5x', handle() {} } } }, /schedule "beat": every must be a positive number of ms or a duration/, /"5x"/);
    refuses({ schedules: { beat: { every: 0, handle() {} } } }, /every must be a positive/);
    refuses({ schedules: { beat: { cron: 'every minute', handle() {} } } }, /schedule "beat": invalid cron expression "every minute"/);
    refuses({ schedules: { beat: { cron: '0 0 30 2 *', handle() {} } } }, /schedule "beat": cron expression "0 0 30 2 \*" never runs/);
    refuses({ schedules: { beat: { every: '1m', runOn: 'partition', handle() {} } } }, /runOn must be 'partitions' or 'app', got "partition"/);
  });
});
