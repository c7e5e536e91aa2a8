import { SchemaCatalog, RowCodec, fromJson } from '../codec/index.js';
import {
  AppDefinitionError,
  ConsistencyUnavailableError,
  DeterminismError,
  NotAnInputError,
  QueryFailedError,
  SchemaValidationError,
  UnknownEventTypeError,
  UnknownTableError,
} from '../errors.js';
import {
  compileApp,
  globalViews,
  parseInterval,
  queryContext,
  TIMERS_TABLE,
  type App,
  type CompiledApp,
  type CompiledEvent,
  type EventMap,
  type TableMap,
  type TimerRow,
  type ValueOf,
} from '../procedures/index.js';
import { compareKeys, describeInvalid, partitionForKey, PartitionState, type GlobalTableView, type Key } from '../state/index.js';
import { BatchProcessor } from '../streams/batch-processor.js';
import type { LogRecord, OutRecord } from '../streams/records.js';
import { MultiPartitionProtocol } from '../transactions/protocol.js';
import { queryError } from '../transactions/consistent-queries.js';
import { decodeMessage, encodeMessage } from '../transactions/messages.js';
import { assertSameState, describeRecord, firstDifference, plain } from './checks.js';
import { MemoryLog } from './memory-log.js';
import { RecordViews, type DeadLetter, type EmittedEvent } from './record-views.js';

export interface TestDriverOptions {
  /** App settings over the declared defaults, as the config file's `settings:` would give them. */
  readonly settings?: Readonly<Record<string, unknown>>;
  /** The driver's clock at start (default 2026-01-01T00:00:00Z); it moves only by `advanceTime`. */
  readonly startTime?: number | Date | string;
  /** Most input records per partition batch (default 1000); 1 makes every event a batch of its own. */
  readonly maxBatchRecords?: number;
}

export interface SendOptions {
  /** The record's timestamp, the handler's `ctx.timestamp` (default: the driver's clock). */
  readonly timestamp?: number | Date;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A record as a producer writes it, for bytes no event encodes (`sendRecord`). */
export interface RawRecord {
  readonly topic: string;
  readonly key?: string | null;
  readonly value: Buffer | null;
  /** Default: murmur2 of the key, like Kafka's partitioner (partition 0 without a key). */
  readonly partition?: number;
  readonly timestamp?: number | Date;
  readonly headers?: Readonly<Record<string, string>>;
}

/** An event the driver sent, and what became of it once every partition settled. */
export interface Sent {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | null;
  /** Set when the event went to the dead-letter topic (its handler threw, it did not decode, ...). */
  readonly deadLetter?: DeadLetter;
}



/** A pending timer or scheduled run. */
export interface PendingTimerRow {
  /** Timer name, or `@<schedule>` for a scheduled procedure. */
  readonly name: string;
  readonly key: string;
  readonly id: string;
  readonly dueAt: number;
  readonly partition: number;
  readonly payload: unknown;
}

/** Read access to a table's committed rows across partitions. */
export interface DriverTable<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  /** Rows in ascending key order, across partitions (a `local` table: of the partition asked for). */
  scan(options?: { after?: K; limit?: number }): Array<[K, V]>;
  readonly size: number;
}

/** An Avro full name (`bank.Deposit`): not checked by the compiler, unlike short names. */
type FullName = `${string}.${string}`;
type EventsOf<A> = A extends App<infer E, TableMap> ? E : EventMap;
type TablesOf<A> = A extends App<EventMap, infer T> ? T : TableMap;
type KeyOf<D> = D extends { readonly __key?: infer K } ? Exclude<K, undefined> : Key;
type RowOf<D> = D extends { readonly value: infer V } ? ValueOf<V> : unknown;

/** What the driver was asked to do, in order: replayed by `checkDeterminism`. */
type Step = { readonly kind: 'append'; readonly records: readonly OutRecord[] } | { readonly kind: 'advance'; readonly to: number } | { readonly kind: 'restart' };

interface Node {
  state: PartitionState;
  processor: BatchProcessor;
  /** Next offset to read, per consumed topic. */
  readonly cursors: Map<string, number>;
}

const DEFAULT_START = Date.UTC(2026, 0, 1);
/** Batches one settle may run before the driver calls the app stuck (a timer that keeps re-arming itself now). */
const MAX_STEPS = 1_000_000;

/**
 * Runs an app's procedures in-process, with no server and no files (like Kafka Streams'
 * TopologyTestDriver): send events, advance the clock, then read tables, queries, emitted events,
 * dead letters and timers. It is the engine farad runs in production, the batch processor over
 * partitioned state, on an in-memory log: handlers run as transactions (a throw rolls back and
 * dead-letters), changelog and offsets commit with each batch, multi-partition procedures run the
 * two-phase protocol, timers fire at their due time on the driver's clock. Every call settles:
 * it returns once every partition has processed all it can.
 */
export class TestDriver<A extends App = App> {
  readonly app: CompiledApp;
  private readonly catalog: SchemaCatalog;
  private readonly rows: RowCodec;
  private readonly globals: Record<string, GlobalTableView>;
  private readonly consumed: readonly string[];
  private readonly maxBatch: number;
  private readonly log = new MemoryLog();
  private readonly committedOffsets = new Map<string, number>();
  private readonly steps: Step[] = [];
  private readonly views: RecordViews;
  private nodes: Node[];
  private clock: number;
  private queries = 0;

  constructor(
    private readonly definition: A,
    private readonly options: TestDriverOptions = {},
  ) {
    this.app = compileApp(definition, options.settings ?? {});
    this.catalog = new SchemaCatalog([...this.app.events.values()].map((e) => e.type));
    this.views = new RecordViews(this.app, this.catalog);
    this.rows = new RowCodec(this.app.tables.values(), this.app.droppedTables);
    this.globals = globalViews(this.app);
    this.consumed = this.app.protocolTopic ? [...this.app.inputTopics, this.app.protocolTopic] : this.app.inputTopics;
    this.maxBatch = options.maxBatchRecords ?? 1000;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new AppDefinitionError(`maxBatchRecords must be a positive integer, got ${String(options.maxBatchRecords)}`);
    this.clock = toMillis(options.startTime ?? DEFAULT_START, 'startTime');
    this.nodes = Array.from({ length: this.app.partitions }, (_, p) => this.start(p));
    this.settle();
  }

  /** The driver's clock, ms since the epoch. */
  get now(): number {
    return this.clock;
  }

  // ---- input ----

  /**
   * Sends one event to its input topic, keyed and partitioned as farad's producers do, and
   * processes it. `type` is the short name (`Deposit`) or the Avro full name (`bank.Deposit`).
   * Throws SchemaValidationError (naming the field) for a value that does not fit the schema.
   */
  send<K extends keyof EventsOf<A> & string>(type: K, value: ValueOf<EventsOf<A>[K]>, options?: SendOptions): Sent;
  send(type: FullName, value: unknown, options?: SendOptions): Sent;
  send(type: string, value: unknown, options: SendOptions = {}): Sent {
    return this.sendValues(type, [value], options)[0]!;
  }

  /** Sends events of one type in order, processed in batches as a burst of input would be. */
  sendMany<K extends keyof EventsOf<A> & string>(type: K, values: ReadonlyArray<ValueOf<EventsOf<A>[K]>>, options?: SendOptions): Sent[];
  sendMany(type: FullName, values: readonly unknown[], options?: SendOptions): Sent[];
  sendMany(type: string, values: readonly unknown[], options: SendOptions = {}): Sent[] {
    return this.sendValues(type, values, options);
  }

  private sendValues(type: string, values: readonly unknown[], options: SendOptions): Sent[] {
    const event = this.inputEvent(type);
    const records = values.map((value, i) => {
      const invalid = describeInvalid(event.type, value);
      if (invalid) throw new SchemaValidationError(`${event.fullName}${values.length > 1 ? ` [${i}]` : ''}: ${invalid.message}`, { eventType: event.fullName, field: invalid.field });
      return this.inputRecord(event, value, options);
    });
    return this.write(records);
  }

  /** Sends an event given as JSON, converted exactly as `POST /events/:type` converts it (longs as strings, unions bare). */
  sendJson(type: string, json: unknown, options: SendOptions = {}): Sent {
    const event = this.inputEvent(type);
    return this.write([this.inputRecord(event, fromJson(event.type, json, { eventType: event.fullName }), options)])[0]!;
  }

  /** Writes a record as any producer could, bytes and all: for input that does not decode, or foreign producers. */
  sendRecord(record: RawRecord): Sent {
    const partitions = this.app.partitions;
    const key = record.key ?? null;
    const partition = record.partition ?? (key === null ? 0 : partitionForKey(key, partitions));
    if (!this.app.inputTopics.includes(record.topic)) {
      throw new NotAnInputError(`topic "${record.topic}" is not an input of app "${this.app.name}"; its inputs are ${this.app.inputTopics.join(', ')}`);
    }
    if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) throw new NotAnInputError(`partition ${partition} does not exist: the app has ${partitions}`);
    return this.write([
      {
        topic: record.topic,
        partition,
        timestamp: record.timestamp === undefined ? this.clock : toMillis(record.timestamp, 'timestamp'),
        key: key === null ? null : Buffer.from(key),
        value: record.value,
        headers: record.headers ?? {},
      },
    ])[0]!;
  }

  // ---- time ----

  /**
   * Moves the clock forward by `duration` (ms, or '30s', '5m', '2h', '1d'), firing every timer and
   * scheduled run that comes due, in due order, each at its due time.
   */
  advanceTime(duration: number | string): void {
    const ms = parseInterval(duration);
    if (ms === undefined && duration !== 0) throw new AppDefinitionError(`advanceTime: ${JSON.stringify(duration)} is not a duration (ms, or like '30s', '5m', '2h')`);
    this.advanceTo(this.clock + (ms ?? 0));
  }

  /** Moves the clock to `time`, firing what comes due by then (see advanceTime). */
  advanceTo(time: number | Date | string): void {
    const to = toMillis(time, 'advanceTo');
    if (to < this.clock) throw new AppDefinitionError(`advanceTo: the clock is at ${new Date(this.clock).toISOString()} and does not go back (asked for ${new Date(to).toISOString()})`);
    this.steps.push({ kind: 'advance', to });
    this.fireUntil(to);
  }

  // ---- reading ----

  /** A table's committed rows. A `local` table keeps rows per partition: name the partition. */
  table<N extends keyof TablesOf<A> & string>(name: N, options?: { partition?: number }): DriverTable<KeyOf<TablesOf<A>[N]>, RowOf<TablesOf<A>[N]>>;
  table(name: string, options: { partition?: number } = {}): DriverTable<Key, unknown> {
    const table = this.app.tables.get(name);
    if (!table || table.system) {
      const known = [...this.app.tables.values()].filter((t) => !t.system).map((t) => t.name);
      throw new UnknownTableError(`no table "${name}"; this app has ${known.join(', ') || 'none'}`);
    }
    const local = table.scope === 'local';
    if (local && options.partition === undefined) throw new UnknownTableError(`table "${name}" is local (rows per partition): read it with table("${name}", { partition })`);
    const states = options.partition === undefined ? this.nodes.map((n) => n.state) : [this.node(options.partition).state];
    const home = (key: Key): PartitionState => (local ? states[0]! : this.node(partitionForKey(String(key), this.app.partitions)).state);
    return {
      get: (key) => plain(home(key).readCommitted(name, key)),
      has: (key) => home(key).readCommitted(name, key) !== undefined,
      scan: ({ after, limit = Infinity } = {}) =>
        states
          .flatMap((state) => state.scanCommitted(name, { after, limit: Number.isFinite(limit) ? limit : undefined }))
          .sort(([a], [b]) => compareKeys(a, b))
          .slice(0, limit)
          .map(([key, value]) => [key, plain(value)]),
      get size() {
        return states.reduce((n, state) => n + state.committedSize(name), 0);
      },
    };
  }

  /**
   * Asks a named query over every partition's committed state, merged; parameters as the HTTP
   * query string gives them. A query declared `consistent` (or asked `{ consistent: true }`)
   * runs as a read-only multi-partition transaction, as in production.
   */
  query(name: string, params: Readonly<Record<string, string>> = {}, options: { consistent?: boolean } = {}): unknown {
    const query = this.app.queries.get(name);
    if (!query) throw new QueryFailedError(`no query "${name}"; this app has ${[...this.app.queries.keys()].join(', ') || 'none'}`);
    if (query.consistent || options.consistent) return this.askConsistent(name, params);
    const parts = this.nodes.map((node) => JSON.parse(JSON.stringify(query.partition(queryContext(this.app, node.state, this.globals), params)) ?? 'null') as unknown);
    return query.merge(parts, params);
  }

  /** Events emitted to output topics, in commit order: all, those of one output topic, or of one event type (short or full name). */
  emitted(topicOrType?: string): EmittedEvent[] {
    const event = topicOrType === undefined ? undefined : (this.app.events.get(topicOrType) ?? this.app.eventsByFullName.get(topicOrType));
    const topics = topicOrType === undefined || event ? this.app.outputTopics : [topicOrType];
    if (!event && topicOrType !== undefined && !this.app.outputTopics.includes(topicOrType)) {
      throw new UnknownEventTypeError(`"${topicOrType}" is neither an output topic (${this.app.outputTopics.join(', ') || 'none'}) nor an event type of app "${this.app.name}"`);
    }
    const out = topics.flatMap((topic) => this.log.topic(topic).map((r) => ({ record: r, emitted: this.views.emitted(r) })));
    out.sort((a, b) => this.log.sequenceOf(a.record) - this.log.sequenceOf(b.record));
    return out.map((o) => o.emitted).filter((e) => !event || e.type === event.fullName);
  }

  /** Records of the dead-letter topic, in commit order, with why they are there. */
  deadLetters(): DeadLetter[] {
    return this.log.topic(this.app.deadLetterTopic).map((r) => this.views.deadLetter(r));
  }

  /** Pending timers and scheduled runs, by due time. */
  pendingTimers(): PendingTimerRow[] {
    if (!this.app.tables.has(TIMERS_TABLE)) return [];
    const rows = this.nodes.flatMap((node) =>
      node.state.scanCommitted(TIMERS_TABLE).map(([, value]) => {
        const row = value as TimerRow;
        const field = this.app.timers.get(row.kind)?.payloadField;
        return { name: row.kind, key: row.key, id: row.id, dueAt: row.dueAt, partition: node.state.partition, payload: field ? plain(row[field]) : null };
      }),
    );
    return rows.sort((a, b) => a.dueAt - b.dueAt || a.partition - b.partition);
  }

  /** Every record committed to a topic of the app (inputs, outputs, changelog, dead letters), in commit order. */
  records(topic: string): readonly LogRecord[] {
    return this.log.topic(topic);
  }

  // ---- checks ----

  /**
   * Crashes every partition and restores it from its changelog, as a new owner would after a
   * failover, then checks the restored state equals the state before (throws DeterminismError
   * naming the first difference). Scheduled procedures are planned again on activation.
   */
  restart(): void {
    this.steps.push({ kind: 'restart' });
    this.restartAll();
  }

  /**
   * Runs everything this driver was asked, in order, again in a fresh driver and checks that it
   * produced byte-identical records on every topic and the same state. A handler that reads
   * `Date.now()`, `Math.random()` or anything outside (state, event, ctx) fails it; throws
   * DeterminismError naming the first difference.
   */
  checkDeterminism(): void {
    const replay = new TestDriver(this.definition, this.options);
    for (const step of this.steps) {
      if (step.kind === 'append') replay.write(step.records);
      else if (step.kind === 'advance') replay.advanceTo(step.to);
      else replay.restart();
    }
    for (const topic of new Set([...this.log.topicNames(), ...replay.log.topicNames()])) {
      for (let p = 0; p < this.app.partitions; p++) {
        const mine = this.log.partition(topic, p);
        const theirs = replay.log.partition(topic, p);
        const at = firstDifference(mine, theirs);
        if (at !== undefined) {
          throw new DeterminismError(
            `the same input gave different records on ${topic}/${p} at offset ${at}: ${describeRecord(mine[at])} then ${describeRecord(theirs[at])}. Handlers must be functions of (state, event, ctx): use ctx.timestamp and ctx.random(), never Date.now() or Math.random()`,
            { partition: p, offset: at },
          );
        }
      }
    }
    for (const [p, node] of this.nodes.entries()) assertSameState(node.state, replay.node(p).state, `replaying the same input, partition ${p}`);
  }

  // ---- the engine ----

  private inputEvent(name: string): CompiledEvent {
    const event = this.app.events.get(name) ?? this.app.eventsByFullName.get(name);
    if (!event) {
      const known = [...this.app.events.values()].filter((e) => e.inputTopic).map((e) => e.alias);
      throw new UnknownEventTypeError(`unknown event type "${name}"; app "${this.app.name}" accepts ${known.join(', ')}`, { eventType: name });
    }
    if (!event.inputTopic || !event.procedure) throw new NotAnInputError(`event type "${event.fullName}" is not read from any input topic`, { eventType: event.fullName });
    return event;
  }

  private inputRecord(event: CompiledEvent, value: unknown, options: SendOptions): OutRecord {
    const key = String(event.procedure!.partitionKey(value));
    return {
      topic: event.inputTopic!,
      partition: partitionForKey(key, this.app.partitions),
      timestamp: options.timestamp === undefined ? this.clock : toMillis(options.timestamp, 'timestamp'),
      key: Buffer.from(key),
      value: this.catalog.encode(event.fullName, value),
      headers: options.headers ?? {},
    };
  }

  private write(records: readonly OutRecord[]): Sent[] {
    this.steps.push({ kind: 'append', records });
    const mark = this.log.size;
    const written = records.map((r) => this.log.append(r));
    this.settle();
    const letters = this.log
      .since(mark)
      .filter((r) => r.topic === this.app.deadLetterTopic)
      .map((r) => this.views.deadLetter(r));
    const dead = new Map(letters.filter((d) => d.sourceTopic !== undefined).map((d) => [`${d.sourceTopic}/${d.sourcePartition}/${d.sourceOffset}`, d]));
    return written.map((r) => {
      const deadLetter = dead.get(`${r.topic}/${r.partition}/${r.offset}`);
      const sent = { topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key?.toString('utf8') ?? null };
      return deadLetter ? { ...sent, deadLetter } : sent;
    });
  }

  private node(partition: number): Node {
    const node = this.nodes[partition];
    if (!node) throw new AppDefinitionError(`partition ${partition} does not exist: app "${this.app.name}" has ${this.app.partitions}`);
    return node;
  }

  /** A partition's owner: state restored from its committed changelog, reading from its committed offsets. */
  private start(partition: number): Node {
    const state = new PartitionState(partition, this.app.partitions, this.app.tables.values());
    for (const r of this.log.partition(this.app.changelogTopic, partition)) this.rows.apply(state, r.key, r.value);
    const processor = new BatchProcessor({
      app: this.app,
      state,
      catalog: this.catalog,
      rows: this.rows,
      globals: this.globals,
      partitionsOf: () => this.app.partitions,
      protocol: (host) => new MultiPartitionProtocol(host),
    });
    const cursors = new Map(this.consumed.map((topic) => [topic, this.committedOffsets.get(`${topic}/${partition}`) ?? 0]));
    return { state, processor, cursors };
  }

  private restartAll(): void {
    const before = this.nodes;
    this.nodes = before.map((_, p) => this.start(p));
    for (const [p, node] of before.entries()) assertSameState(node.state, this.node(p).state, `partition ${p} restored from its changelog`);
    this.settle();
  }

  /** Records waiting for a partition on the topics it may read now. */
  private waiting(node: Node, partition: number): number {
    let n = 0;
    for (const topic of node.processor.pollTopics() ?? this.consumed) n += this.log.partition(topic, partition).length - node.cursors.get(topic)!;
    return n;
  }

  /** Up to maxBatch records for a partition, its topics merged in append order. */
  private poll(node: Node, partition: number): LogRecord[] {
    const topics = node.processor.pollTopics() ?? this.consumed;
    const out: LogRecord[] = [];
    while (out.length < this.maxBatch) {
      let pick: LogRecord | undefined;
      for (const topic of topics) {
        const next = this.log.partition(topic, partition)[node.cursors.get(topic)!];
        if (next && (!pick || this.log.sequenceOf(next) < this.log.sequenceOf(pick))) pick = next;
      }
      if (!pick) break;
      out.push(pick);
      node.cursors.set(pick.topic, pick.offset + 1);
    }
    return out;
  }

  /** One batch of a partition, as its owner runs it: input, then the timers due, then the commit. True when it did anything. */
  private step(partition: number): boolean {
    const node = this.node(partition);
    const records = this.poll(node, partition);
    const applied = node.processor.apply(records);
    for (const record of records.slice(applied)) {
      if (record.offset < node.cursors.get(record.topic)!) node.cursors.set(record.topic, record.offset);
    }
    if (!node.processor.held) {
      const idle = this.waiting(node, partition) === 0;
      node.processor.fireDue(this.clock, this.maxBatch, node.processor.fireHorizon(this.clock, idle));
    }
    if (!node.processor.hasWork) return applied > 0;
    const plan = node.processor.plan();
    for (const out of plan.records) this.log.append(out);
    for (const { topic, partition: p, offset } of plan.offsets) this.committedOffsets.set(`${topic}/${p}`, offset);
    node.processor.committed();
    return true;
  }

  /** Runs batches until no partition has input to read or a timer due now. */
  private settle(): void {
    for (let steps = 0; ; ) {
      let progressed = false;
      for (const [p, node] of this.nodes.entries()) {
        const due = node.processor.held ? undefined : node.processor.nextDueAt();
        if (this.waiting(node, p) === 0 && (due === undefined || due > this.clock)) continue;
        if (this.step(p)) progressed = true;
        if (++steps > MAX_STEPS) throw new DeterminismError(`app "${this.app.name}" did not settle after ${MAX_STEPS} batches: a timer that re-arms itself for a time already due, or procedures that keep triggering each other`);
      }
      if (!progressed) return;
    }
  }

  /** Fires what comes due up to `to`, each due time in turn, then leaves the clock at `to`. */
  private fireUntil(to: number): void {
    this.settle();
    for (;;) {
      let next: number | undefined;
      for (const node of this.nodes) {
        const due = node.processor.held ? undefined : node.processor.nextDueAt();
        if (due !== undefined && (next === undefined || due < next)) next = due;
      }
      if (next === undefined || next > to) break;
      this.clock = Math.max(this.clock, next);
      this.settle();
    }
    this.clock = to;
  }

  private askConsistent(name: string, params: Readonly<Record<string, string>>): unknown {
    const topic = this.app.protocolTopic;
    if (!topic) throw new ConsistencyUnavailableError(`query "${name}" cannot run consistently: app "${this.app.name}" has no multi-partition procedures or consistent queries`);
    const id = `driver-query-${++this.queries}`;
    this.write([{ topic, partition: 0, timestamp: this.clock, key: Buffer.from('query'), value: encodeMessage({ kind: 'query', id, name, params }) }]);
    for (const record of this.log.partition(topic, 0)) {
      const message = decodeMessage(record.value, record);
      if (message.kind !== 'result' || message.id !== id) continue;
      if (message.error) throw queryError(message.error);
      return message.value;
    }
    throw new QueryFailedError(`consistent query "${name}" got no answer (a multi-partition round is still undecided)`);
  }



}

function toMillis(time: number | Date | string, what: string): number {
  const ms = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : time.getTime();
  if (!Number.isFinite(ms)) throw new AppDefinitionError(`${what}: ${String(time)} is not a time (ms since the epoch, a Date or an ISO string)`);
  return ms;
}

