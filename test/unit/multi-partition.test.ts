/**
 * Multi-partition transactions (transactions/protocol.ts) on a simulated cluster: one
 * BatchProcessor per partition, built with the protocol as the partition owner builds it, over an
 * in-test log. The cluster commits a partition's batch by appending its records to the log (offsets
 * per topic-partition, journal order across topics) and moving its committed offsets; a partition
 * reads every consumed topic (its inputs and the protocol topic) from its cursors, only the
 * protocol topic while `pollTopics()` says so, and gets back what `apply()` left unapplied. A
 * crash either aborts the open batch in place (a failed commit) or restarts the partition: a fresh
 * processor over the state its committed changelog restores, reading again from its committed
 * offsets. Outcomes are checked against an independent ledger: a serial replay, in the order the
 * coordinator decided them, of the transfers whose outcomes the log holds (see Ledger).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import bankApp from '../../examples/bank/index.js';
import { RowCodec, SchemaCatalog } from '../../src/codec/index.js';
import { AppDefinitionError, HandlerContractError, SchemaValidationError } from '../../src/errors.js';
import { compileApp, defineApp, eventSeed, globalViews, MP_TABLE, record, seededRandom, table, type App, type CompiledApp } from '../../src/procedures/index.js';
import { PartitionState, partitionForKey, type GlobalTableView, type Key } from '../../src/state/index.js';
import { BatchProcessor, DLQ_HEADERS, type CommitPlan, type LogRecord, type OutRecord } from '../../src/streams/index.js';
import { MAX_ROUND, MultiPartitionProtocol } from '../../src/transactions/protocol.js';
import { TxnContext } from '../../src/transactions/context.js';
import type { MpMessage } from '../../src/transactions/messages.js';
import { RoundRows } from '../../src/transactions/rows.js';
import { intKeysOf, keysOf } from './support/partition-keys.js';

// ---- the cluster ----------------------------------------------------------------------------

const OUTPUT_PARTITIONS = 2;
const BASE_TS = 1_750_000_000_000;

/** How a batch ends when a test crashes it. */
type Crash =
  /** The commit failed: the batch is undone in place (`abort()`) and its records are read again. */
  | 'abort'
  /** The process died before committing: the partition restarts from its committed changelog. */
  | 'restart'
  /** The process died right after committing: the partition restarts from its committed changelog. */
  | 'commit-restart';

/** A batch about to commit: its partition, the records it applied and what it would commit. */
interface Batch {
  readonly partition: number;
  readonly applied: readonly LogRecord[];
  readonly plan: CommitPlan;
}

interface Node {
  readonly state: PartitionState;
  readonly processor: BatchProcessor;
  /** Changelog records of the batches this partition committed: what a restart replays. */
  readonly changelog: OutRecord[];
  /** Next offset to read, per consumed topic. */
  readonly cursors: Map<string, number>;
}

interface RunOptions {
  /** Most records per batch (default 100). */
  readonly maxBatch?: number;
  /** Seeded randomness: which ready partition goes next, batch sizes and the merge of topics. */
  readonly random?: () => number;
  /** Decides how a batch ends; undefined commits it. */
  readonly crash?: (batch: Batch) => Crash | undefined;
}

class Cluster {
  readonly app: CompiledApp;
  readonly catalog: SchemaCatalog;
  readonly rows: RowCodec;
  readonly protocolTopic: string;
  /** Topics every partition consumes: the app's inputs and the protocol topic. */
  readonly consumed: readonly string[];
  readonly nodes: Node[];
  /** Every record appended, in append order. */
  readonly journal: LogRecord[] = [];
  /** Every committed batch, in commit order. */
  readonly history: Batch[] = [];
  crashes = 0;
  private readonly globals: Record<string, GlobalTableView>;
  private readonly log = new Map<string, LogRecord[][]>();
  private readonly sequence = new Map<LogRecord, number>();
  private readonly committedOffsets = new Map<string, number>();
  private clock = BASE_TS;
  private queries = 0;

  constructor(app: App) {
    this.app = compileApp(app);
    assert.ok(this.app.protocolTopic, 'the app under test has multi-partition transactions');
    this.protocolTopic = this.app.protocolTopic;
    this.catalog = new SchemaCatalog([...this.app.events.values()].map((e) => e.type));
    this.rows = new RowCodec(this.app.tables.values(), this.app.droppedTables);
    this.globals = globalViews(this.app);
    this.consumed = [...this.app.inputTopics, this.protocolTopic];
    this.nodes = Array.from({ length: this.app.partitions }, (_, p) => this.start(p, []));
  }

  node(partition: number): Node {
    const node = this.nodes[partition];
    assert.ok(node, `no partition ${partition}`);
    return node;
  }

  // ---- the log ----

  records(topic: string, partition?: number): LogRecord[] {
    const partitions = this.log.get(topic) ?? [];
    if (partition !== undefined) return partitions[partition] ?? [];
    return this.journal.filter((r) => r.topic === topic);
  }

  private append(out: OutRecord): LogRecord {
    let partitions = this.log.get(out.topic);
    if (!partitions) this.log.set(out.topic, (partitions = []));
    const list = (partitions[out.partition] ??= []);
    const record: LogRecord = { topic: out.topic, partition: out.partition, offset: list.length, timestamp: out.timestamp, key: out.key, value: out.value, headers: out.headers ?? {} };
    list.push(record);
    this.sequence.set(record, this.journal.length);
    this.journal.push(record);
    return record;
  }

  /** Writes an event to its input topic, at the partition of its procedure's key (as a producer would). */
  produce(alias: string, value: unknown, headers: Record<string, string> = {}): LogRecord {
    const event = this.app.events.get(alias);
    assert.ok(event?.procedure && event.inputTopic, `${alias} is an input event`);
    const key = String(event.procedure.partitionKey(value));
    return this.append({
      topic: event.inputTopic,
      partition: partitionForKey(key, this.app.partitions),
      timestamp: this.clock++,
      key: Buffer.from(key),
      value: this.catalog.encode(event.fullName, value),
      headers,
    });
  }

  /** Asks a consistent query as ConsistentQueries does: a `query` record on the protocol topic's partition 0. */
  ask(name: string, params: Record<string, string> = {}): string {
    const id = `q${++this.queries}`;
    this.append({ topic: this.protocolTopic, partition: 0, timestamp: this.clock++, key: Buffer.from('query'), value: Buffer.from(JSON.stringify({ kind: 'query', id, name, params })) });
    return id;
  }

  /** Protocol messages on the protocol topic (of one partition), in log order. */
  messages(partition?: number): MpMessage[] {
    return this.records(this.protocolTopic, partition).map((r) => decode(r));
  }

  /** The answer to a consistent query, once the coordinator committed it. */
  result(id: string): Extract<MpMessage, { kind: 'result' }> | undefined {
    return this.messages(0).find((m): m is Extract<MpMessage, { kind: 'result' }> => m.kind === 'result' && m.id === id);
  }

  /** Emitted events of an output topic, decoded, in the order they were committed. */
  outputs(topic: string): Array<{ name: string; value: Record<string, unknown> }> {
    return this.records(topic).map((r) => {
      const { name, value } = this.catalog.decode(r.value!);
      return { name, value: { ...(value as Record<string, unknown>) } };
    });
  }

  deadLetters(): LogRecord[] {
    return this.records(this.app.deadLetterTopic);
  }

  committedOffset(topic: string, partition: number): number {
    return this.committedOffsets.get(`${topic}/${partition}`) ?? 0;
  }

  // ---- partitions ----

  private start(partition: number, changelog: readonly OutRecord[]): Node {
    const state = new PartitionState(partition, this.app.partitions, this.app.tables.values());
    for (const r of changelog) this.rows.apply(state, r.key, r.value);
    const processor = new BatchProcessor({
      app: this.app,
      state,
      catalog: this.catalog,
      rows: this.rows,
      globals: this.globals,
      partitionsOf: () => OUTPUT_PARTITIONS,
      protocol: (host) => new MultiPartitionProtocol(host),
    });
    const cursors = new Map(this.consumed.map((topic) => [topic, this.committedOffset(topic, partition)]));
    return { state, processor, changelog: [...changelog], cursors };
  }

  /** Records waiting for `partition` on the topics it may read now. */
  waiting(partition: number): number {
    const node = this.node(partition);
    let n = 0;
    for (const topic of node.processor.pollTopics() ?? this.consumed) n += this.records(topic, partition).length - node.cursors.get(topic)!;
    return n;
  }

  /** Up to `max` records for `partition`, each topic in offset order, merged in journal (or random) order. */
  poll(partition: number, max = Infinity, random?: () => number, topics = this.node(partition).processor.pollTopics() ?? this.consumed): LogRecord[] {
    const node = this.node(partition);
    const queues = topics.map((topic) => this.records(topic, partition).slice(node.cursors.get(topic)!));
    const out: LogRecord[] = [];
    while (out.length < max) {
      const ready = queues.filter((q) => q.length > 0);
      if (ready.length === 0) break;
      const pick = random ? ready[Math.floor(random() * ready.length)]! : ready.reduce((a, b) => (this.sequence.get(a[0]!)! < this.sequence.get(b[0]!)! ? a : b));
      const record = pick.shift()!;
      out.push(record);
      node.cursors.set(record.topic, record.offset + 1);
    }
    return out;
  }

  /** Applies polled records; what `apply()` leaves is given back (read first next time). Returns how many applied. */
  deliver(partition: number, records: readonly LogRecord[]): number {
    const node = this.node(partition);
    const applied = node.processor.apply(records);
    assert.ok(applied >= 0 && applied <= records.length);
    for (const record of records.slice(applied)) {
      if (record.offset < node.cursors.get(record.topic)!) node.cursors.set(record.topic, record.offset);
    }
    return applied;
  }

  /** Commits the open batch of `partition`, as a successful Kafka transaction would. */
  commit(partition: number, plan = this.node(partition).processor.plan(), applied: readonly LogRecord[] = []): CommitPlan {
    const node = this.node(partition);
    for (const out of plan.records) {
      this.append(out);
      if (out.topic === this.app.changelogTopic) node.changelog.push(out);
    }
    for (const { topic, partition: p, offset } of plan.offsets) this.committedOffsets.set(`${topic}/${p}`, offset);
    node.processor.committed();
    this.history.push({ partition, applied, plan });
    return plan;
  }

  /** The commit failed: the batch is undone and its records are read again. */
  abort(partition: number): void {
    const node = this.node(partition);
    node.processor.abort();
    for (const topic of this.consumed) node.cursors.set(topic, this.committedOffset(topic, partition));
    this.crashes++;
  }

  /** The partition's process died: a fresh processor over the state its committed changelog restores. */
  restart(partition: number): void {
    const before = this.node(partition);
    const committed = before.state.inTransaction ? undefined : snapshot(before.state);
    this.nodes[partition] = this.start(partition, before.changelog);
    // With no open batch, the restored copy is the live one: the changelog (protocol rows included) is complete.
    if (committed) assert.deepEqual(snapshot(this.node(partition).state), committed, `partition ${partition} restored from its changelog`);
    this.crashes++;
  }

  /** One batch of `partition`: poll, apply, then commit (or crash as `options.crash` says). False when nothing was waiting. */
  step(partition: number, options: RunOptions = {}): boolean {
    const max = options.random ? 1 + Math.floor(options.random() * (options.maxBatch ?? 8)) : (options.maxBatch ?? 100);
    const records = this.poll(partition, max, options.random);
    if (records.length === 0) return false;
    const applied = records.slice(0, this.deliver(partition, records));
    const { processor } = this.node(partition);
    assert.ok(processor.hasWork, 'a batch that applied records has work');
    const plan = processor.plan();
    const crash = options.crash?.({ partition, applied, plan });
    if (crash === 'abort') this.abort(partition);
    else if (crash === 'restart') this.restart(partition);
    else {
      this.commit(partition, plan, applied);
      if (crash === 'commit-restart') this.restart(partition);
    }
    return true;
  }

  /** Runs batches until no partition has anything to read (or `limit` passes over the ready partitions). */
  run(options: RunOptions = {}, limit = Infinity): void {
    const partitions = this.nodes.map((_, p) => p);
    for (let passes = 0; passes < limit; passes++) {
      assert.ok(passes < 100_000, 'the cluster settles');
      const ready = partitions.filter((p) => this.waiting(p) > 0);
      if (ready.length === 0) return;
      if (options.random) this.step(ready[Math.floor(options.random() * ready.length)]!, options);
      else for (const p of ready) this.step(p, options);
    }
  }

  /** The rows of a partitioned table over every partition (each on the partition its key hashes to). */
  table(name: string): Map<Key, unknown> {
    const out = new Map<Key, unknown>();
    for (const { state } of this.nodes) {
      for (const [key, value] of state.store(name).entries()) {
        assert.equal(partitionForKey(String(key), this.app.partitions), state.partition, `${name}/${String(key)} lives on its own partition`);
        assert.equal(out.has(key), false, `${name}/${String(key)} on one partition only`);
        out.set(key, value);
      }
    }
    return out;
  }

  balances(table = 'balances'): Map<string, number> {
    return new Map([...this.table(table)].map(([k, v]) => [String(k), (v as { balance: number }).balance]));
  }

  /** Settled: every record read and committed, no partition held. */
  assertSettled(): void {
    for (const [p, node] of this.nodes.entries()) {
      assert.equal(node.processor.held, false, `partition ${p} is not held`);
      assert.equal(node.processor.pending, 0, `partition ${p} has no open batch`);
      for (const topic of this.consumed) assert.equal(this.committedOffset(topic, p), this.records(topic, p).length, `${topic}/${p} read to its end`);
    }
  }
}

function decode(record: LogRecord): MpMessage {
  assert.ok(record.value, 'a protocol record has a value');
  return JSON.parse(record.value.toString('utf8')) as MpMessage;
}

/** Every row of a partition's state, by table. */
function snapshot(state: PartitionState): Record<string, Array<[Key, unknown]>> {
  const out: Record<string, Array<[Key, unknown]>> = {};
  for (const name of state.tableNames()) out[name] = [...state.store(name).entries()].map(([k, v]) => [k, structuredClone(v)]);
  return out;
}

/** Protocol message kinds a batch read and wrote. */
function kinds(cluster: Cluster, batch: Batch): { read: string[]; wrote: string[] } {
  return {
    read: batch.applied.filter((r) => r.topic === cluster.protocolTopic).map((r) => decode(r).kind),
    wrote: batch.plan.records.filter((r) => r.topic === cluster.protocolTopic).map((r) => JSON.parse(r.value!.toString('utf8')).kind as string),
  };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- the bank example and its ledger ----------------------------------------------------------

interface Transfer {
  transferId: string;
  from: string;
  to: string;
  amount: number;
}

const PARTITIONS = 4;
/** Accounts by partition: ACCOUNTS[p][i] hashes to partition p. */
const ACCOUNTS = Array.from({ length: PARTITIONS }, (_, p) => keysOf(p, PARTITIONS, 3, 'acct-'));
const acct = (p: number, i = 0): string => ACCOUNTS[p]![i]!;

/** The bank with deposits committed everywhere (every account of ACCOUNTS gets `amount`). */
function bank(deposits: ReadonlyMap<string, number> = new Map(ACCOUNTS.flat().map((a) => [a, 100]))): { cluster: Cluster; ledger: Ledger } {
  const cluster = new Cluster(bankApp);
  for (const [account, amount] of deposits) cluster.produce('Deposit', { account, amount });
  cluster.run();
  return { cluster, ledger: new Ledger(deposits) };
}

type Outcome = 'completed' | 'INSUFFICIENT_FUNDS' | 'SAME_ACCOUNT' | 'NOT_POSITIVE';

/**
 * What the bank must hold, computed on its own: the deposits, then each transfer whose outcome the
 * log holds, replayed serially in the order the coordinator emitted them. Each outcome must be the
 * one the replay predicts, every transfer must have exactly one (or be dead-lettered), every
 * completed transfer must show in both balances, and no balance may be negative. Deposits made
 * while transfers run (`deposit`) commute with everything but the funds a transfer finds: with
 * them, a transfer may be completed or INSUFFICIENT_FUNDS, and the rest is checked as before.
 */
class Ledger {
  readonly transfers = new Map<string, Transfer>();
  /** Transfers expected to be dead-lettered instead of decided. */
  readonly deadLettered = new Set<string>();
  /** Deposits produced while transfers run. */
  private readonly concurrent = new Map<string, number>();

  constructor(readonly deposits: ReadonlyMap<string, number>) {}

  transfer(cluster: Cluster, t: Transfer): LogRecord {
    this.transfers.set(t.transferId, t);
    return cluster.produce('Transfer', t);
  }

  deposit(cluster: Cluster, account: string, amount: number): LogRecord {
    this.concurrent.set(account, (this.concurrent.get(account) ?? 0) + amount);
    return cluster.produce('Deposit', { account, amount });
  }

  /** Checks the cluster against the replay; returns the outcomes in decision order. */
  check(cluster: Cluster): Array<[string, Outcome]> {
    const ordered = this.concurrent.size === 0;
    const model = new Map(this.deposits);
    for (const [account, amount] of this.concurrent) model.set(account, (model.get(account) ?? 0) + amount);
    const outcomes: Array<[string, Outcome]> = [];
    for (const { name, value } of cluster.outputs('transfer-results')) {
      const id = String(value.transferId);
      const t = this.transfers.get(id);
      assert.ok(t, `outcome of an unknown transfer ${id}`);
      assert.equal(outcomes.some(([seen]) => seen === id), false, `transfer ${id} decided once`);
      assert.equal(this.deadLettered.has(id), false, `transfer ${id} was expected in the dead-letter topic`);
      const from = model.get(t.from) ?? 0;
      let predicted: Outcome = t.amount <= 0 ? 'NOT_POSITIVE' : t.from === t.to ? 'SAME_ACCOUNT' : t.amount > from ? 'INSUFFICIENT_FUNDS' : 'completed';
      if (!ordered && (predicted === 'completed' || predicted === 'INSUFFICIENT_FUNDS')) predicted = name === 'bank.TransferCompleted' ? 'completed' : 'INSUFFICIENT_FUNDS';
      if (predicted === 'completed') {
        assert.deepEqual({ name, value }, { name: 'bank.TransferCompleted', value: { ...t } }, `transfer ${id} completes`);
        model.set(t.from, from - t.amount);
        model.set(t.to, (model.get(t.to) ?? 0) + t.amount);
      } else {
        assert.deepEqual({ name, value }, { name: 'bank.TransferRejected', value: { ...t, reason: predicted } }, `transfer ${id} is rejected`);
      }
      outcomes.push([id, predicted]);
    }
    const decided = new Set(outcomes.map(([id]) => id));
    for (const id of this.transfers.keys()) assert.ok(decided.has(id) || this.deadLettered.has(id), `transfer ${id} has an outcome`);
    const balances = cluster.balances();
    assert.deepEqual(balances, model, ordered ? 'balances are the serial replay of the decided transfers' : 'balances are the deposits plus the completed transfers');
    // BigInt: the BIG account of some scenarios takes sums past 2^53.
    const sum = (m: ReadonlyMap<string, number>): bigint => [...m.values()].reduce((a, b) => a + BigInt(b), 0n);
    assert.equal(sum(balances), sum(this.deposits) + sum(this.concurrent), 'money is conserved');
    for (const [account, balance] of balances) assert.ok(balance >= 0, `${account} is not overdrawn (${balance})`);
    return outcomes;
  }
}

function assertDeadLetterOf(dead: LogRecord, input: LogRecord, eventType: string, error: RegExp): void {
  assert.deepEqual(dead.value, input.value, 'the original value');
  assert.deepEqual(dead.key, input.key, 'the original key');
  assert.equal(dead.timestamp, input.timestamp, 'the original timestamp');
  const h = dead.headers;
  assert.equal(h[DLQ_HEADERS.reason], 'handler_error');
  assert.equal(h[DLQ_HEADERS.eventType], eventType);
  assert.equal(h[DLQ_HEADERS.sourceTopic], input.topic);
  assert.equal(h[DLQ_HEADERS.sourcePartition], String(input.partition));
  assert.equal(h[DLQ_HEADERS.sourceOffset], String(input.offset));
  assert.match(h[DLQ_HEADERS.error] ?? '', error);
  for (const [name, value] of Object.entries(input.headers)) assert.equal(h[name], value, `input header ${name} kept`);
}

// ---- an app of every kind of multi-partition procedure ----------------------------------------

interface Open {
  account: string;
  amount: number;
}
/** A keyed multi-partition transaction over `from` and `to` (or the int key `amount` for `tick`); `op` says what its handler does. */
interface Move {
  id: string;
  op: string;
  from: string;
  to: string;
  amount: number;
  other: string | null;
}
/** An `all` transaction: takes `fee` from every account that has it and credits `into`. */
interface Sweep {
  id: string;
  fee: number;
  into: string;
}
interface Note {
  id: string;
  note: string;
}
interface Account {
  balance: number;
}
interface Counter {
  n: number;
}

const ledgerEvents = {
  Open: record<Open>({
    type: 'record',
    name: 'Open',
    namespace: 'ledger',
    fields: [
      { name: 'account', type: 'string' },
      { name: 'amount', type: 'long' },
    ],
  }),
  Move: record<Move>({
    type: 'record',
    name: 'Move',
    namespace: 'ledger',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'op', type: 'string' },
      { name: 'from', type: 'string' },
      { name: 'to', type: 'string' },
      { name: 'amount', type: 'long' },
      { name: 'other', type: ['null', 'string'], default: null },
    ],
  }),
  Sweep: record<Sweep>({
    type: 'record',
    name: 'Sweep',
    namespace: 'ledger',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'fee', type: 'long' },
      { name: 'into', type: 'string' },
    ],
  }),
  Note: record<Note>({
    type: 'record',
    name: 'Note',
    namespace: 'ledger.out',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'note', type: 'string' },
    ],
  }),
};

const ledgerApp = defineApp({
  name: 'ledger',
  partitions: PARTITIONS,
  events: ledgerEvents,
  tables: {
    accounts: table({ key: 'string', value: record<Account>({ type: 'record', name: 'Account', namespace: 'ledger', fields: [{ name: 'balance', type: 'long' }] }) }),
    counters: table({ key: 'int', value: record<Counter>({ type: 'record', name: 'Counter', namespace: 'ledger', fields: [{ name: 'n', type: 'long' }] }) }),
  },
  inputs: [{ topic: 'ledger-in', events: ['Open', 'Move', 'Sweep'] }],
  outputs: { Note: 'notes' },
  procedures: {
    Open: {
      partitionKey: (o) => o.account,
      handle(ctx, o) {
        ctx.tables.accounts.put(o.account, { balance: (ctx.tables.accounts.get(o.account)?.balance ?? 0) + o.amount });
      },
    },
    Move: {
      partitionKey: (m) => m.from,
      multiPartition: { keys: (m) => (m.op === 'tick' ? [m.amount] : m.op === 'no-keys' ? [] : [m.from, m.to]) },
      emits: ['Note'],
      handle(ctx, m) {
        const accounts = ctx.tables.accounts;
        const note = (text: string): void => ctx.emit('Note', { id: m.id, note: text });
        const transfer = (): boolean => {
          const from = accounts.get(m.from)?.balance ?? 0;
          if (from < m.amount) return false;
          accounts.put(m.from, { balance: from - m.amount });
          accounts.put(m.to, { balance: (accounts.get(m.to)?.balance ?? 0) + m.amount });
          return true;
        };
        switch (m.op) {
          case 'transfer':
            return note(transfer() ? 'moved' : 'short');
          case 'boom':
            transfer();
            note('moved');
            throw new Error(`boom in ${m.id}`);
          case 'read-other':
            return note(String(accounts.get(m.other!)?.balance));
          case 'write-other':
            transfer();
            return accounts.put(m.other!, { balance: 1 });
          case 'delete-other':
            return note(String(accounts.delete(m.other!)));
          case 'scan':
            return note(String(accounts.scan().length));
          case 'size':
            return note(String(accounts.size));
          case 'timer':
            return (ctx.timers as unknown as { set(kind: string, key: string, options: { at: number }): void }).set('reminder', m.from, { at: 0 });
          case 'promise':
            transfer();
            return Promise.resolve() as unknown as void;
          case 'bad-put':
            return accounts.put(m.from, { balance: 'lots' as unknown as number });
          case 'tick': {
            const n = (ctx.tables.counters.get(m.amount)?.n ?? 0) + 1;
            ctx.tables.counters.put(m.amount, { n });
            return note(`tick ${n}`);
          }
          case 'observe':
            return note(JSON.stringify({ eventType: ctx.eventType, partition: ctx.partition, offset: ctx.offset, timestamp: ctx.timestamp, random: [ctx.random(), ctx.random()] }));
          default:
            throw new Error(`unknown op ${m.op}`);
        }
      },
    },
    Sweep: {
      partitionKey: (s) => s.id,
      multiPartition: 'all',
      emits: ['Note'],
      handle(ctx, s) {
        const accounts = ctx.tables.accounts;
        const rows = accounts.scan();
        const charged: string[] = [];
        for (const [account, row] of rows) {
          if (account === s.into || row.balance < s.fee) continue;
          accounts.put(account, { balance: row.balance - s.fee });
          charged.push(account);
        }
        accounts.put(s.into, { balance: (accounts.get(s.into)?.balance ?? 0) + charged.length * s.fee });
        const page = accounts.scan({ after: rows[0]?.[0] ?? '', limit: 2 }).map(([k]) => k);
        ctx.emit('Note', { id: s.id, note: JSON.stringify({ seen: rows.map(([k]) => k), charged, size: accounts.size, page }) });
      },
    },
  },
  queries: (query) => ({
    total: query({
      consistent: true,
      partition: (ctx) => ctx.tables.accounts.scan().reduce((sum, [, row]) => sum + row.balance, 0),
      merge: (parts, params) => ({ total: parts.reduce((a, b) => a + b, 0), scale: Number(params['scale'] ?? 1) }),
    }),
    failing: query({
      partition: (ctx) => {
        if (ctx.partition === 2) throw new Error('partition 2 refuses');
        return ctx.partition;
      },
      merge: (parts) => parts,
    }),
    /** A partial that is not JSON (a bigint). */
    big: query({ partition: () => 1n, merge: (parts) => String(parts.reduce((a, b) => a + b, 0n)) }),
    /** JSON partials, an answer that is not JSON. */
    bigAnswer: query({ partition: () => 1, merge: (parts) => BigInt(parts.length) }),
  }),
});

/** Ledger accounts: LEDGER[p][i] hashes to partition p. */
const LEDGER = Array.from({ length: PARTITIONS }, (_, p) => keysOf(p, PARTITIONS, 3, 'ac-'));
const ac = (p: number, i = 0): string => LEDGER[p]![i]!;

/** The ledger app with every LEDGER account opened with `amount`. */
function ledgerCluster(amount = 100): Cluster {
  const cluster = new Cluster(ledgerApp);
  for (const account of LEDGER.flat()) cluster.produce('Open', { account, amount });
  cluster.run();
  return cluster;
}

function move(cluster: Cluster, m: Partial<Move> & Pick<Move, 'id' | 'op'>): LogRecord {
  return cluster.produce('Move', { from: ac(1), to: ac(2), amount: 0, other: null, ...m });
}

/** Notes emitted so far: id → note, each id once. */
function notes(cluster: Cluster): Map<string, string> {
  const out = new Map<string, string>();
  for (const { value } of cluster.outputs('notes')) {
    assert.equal(out.has(String(value.id)), false, `one note for ${String(value.id)}`);
    out.set(String(value.id), String(value.note));
  }
  return out;
}

// ---- authoring ------------------------------------------------------------------------------

describe('multi-partition authoring', () => {
  const base = {
    name: 'mini',
    partitions: 3,
    events: { Ping: record<{ id: string }>({ type: 'record', name: 'Ping', namespace: 'mini', fields: [{ name: 'id', type: 'string' }] }) },
    tables: { seen: table({ key: 'string', value: record<{ n: number }>({ type: 'record', name: 'Seen', namespace: 'mini', fields: [{ name: 'n', type: 'long' }] }) }) },
    inputs: [{ topic: 'pings', events: ['Ping' as const] }],
  };

  it('gives an app with a multi-partition procedure the protocol topic and the __mp system table', () => {
    const keyed = compileApp(defineApp({ ...base, procedures: { Ping: { partitionKey: (p) => p.id, multiPartition: { keys: (p) => [p.id] }, handle: () => undefined } } }));
    assert.equal(keyed.multiPartition, true);
    assert.equal(keyed.protocolTopic, 'mini-mp');
    assert.deepEqual(keyed.events.get('Ping')!.procedure!.multiPartition!.all, false);
    const mp = keyed.tables.get(MP_TABLE);
    assert.ok(mp, 'the __mp table');
    assert.equal(mp.system, true);
    assert.equal(mp.scope, 'local');
    assert.deepEqual(keyed.inputTopics, ['pings'], 'the protocol topic is not an input topic');

    const all = compileApp(defineApp({ ...base, procedures: { Ping: { partitionKey: (p) => p.id, multiPartition: 'all', handle: () => undefined } } }));
    assert.deepEqual(all.events.get('Ping')!.procedure!.multiPartition, { all: true });
    assert.equal(all.protocolTopic, 'mini-mp');
  });

  it('gives an app with only a consistent query the protocol too, and an app with neither nothing', () => {
    const consistent = compileApp(
      defineApp({
        ...base,
        procedures: { Ping: { partitionKey: (p) => p.id, handle: () => undefined } },
        queries: (query) => ({ n: query({ consistent: true, partition: (ctx) => ctx.tables.seen.size, merge: (parts) => parts }) }),
      }),
    );
    assert.equal(consistent.multiPartition, true);
    assert.equal(consistent.protocolTopic, 'mini-mp');
    assert.ok(consistent.tables.has(MP_TABLE));

    const plain = compileApp(
      defineApp({
        ...base,
        procedures: { Ping: { partitionKey: (p) => p.id, handle: () => undefined } },
        queries: (query) => ({ n: query({ partition: (ctx) => ctx.tables.seen.size, merge: (parts) => parts }) }),
      }),
    );
    assert.equal(plain.multiPartition, false);
    assert.equal(plain.protocolTopic, undefined);
    assert.equal(plain.tables.has(MP_TABLE), false);
    assert.equal(plain.events.get('Ping')!.procedure!.multiPartition, undefined);
  });

  it('refuses a multiPartition that is neither { keys } nor "all", naming the procedure', () => {
    for (const bad of ['some', { keys: 'from' }, null, 42]) {
      const app = defineApp({ ...base, procedures: { Ping: { partitionKey: (p) => p.id, multiPartition: bad as never, handle: () => undefined } } });
      assert.throws(() => compileApp(app), (err: unknown) => err instanceof AppDefinitionError && /procedure "Ping": multiPartition must be/.test(err.message), JSON.stringify(bad));
    }
  });

  it('the bank example: Transfer is keyed by both accounts, total is consistent', () => {
    const app = compileApp(bankApp);
    const transfer = app.events.get('Transfer')!.procedure!;
    assert.deepEqual(transfer.multiPartition?.keys?.({ transferId: 't', from: 'a', to: 'b', amount: 1 }), ['a', 'b']);
    assert.equal(app.events.get('Deposit')!.procedure!.multiPartition, undefined);
    assert.equal(app.queries.get('total')?.consistent, true);
    assert.equal(app.protocolTopic, 'bank-mp');
    assert.equal(app.partitions, PARTITIONS);
  });
});

// ---- transfers ------------------------------------------------------------------------------

type Prepare = Extract<MpMessage, { kind: 'prepare' }>;
type Vote = Extract<MpMessage, { kind: 'vote' }>;
type Decision = Extract<MpMessage, { kind: 'decision' }>;

/** A shipped row's value as its table reads it. */
function shipped(cluster: Cluster, row: { table: string; value: string | null }): unknown {
  return row.value === null ? undefined : { ...(cluster.rows.decodeRow(row.table, Buffer.from(row.value, 'base64')) as object) };
}

describe('multi-partition transfers (bank example)', () => {
  it('moves money between partitions atomically: request, prepares, votes, decisions', () => {
    const { cluster, ledger } = bank();
    const [A, B] = [acct(1), acct(2)];
    const input = ledger.transfer(cluster, { transferId: 't1', from: A, to: B, amount: 30 });
    assert.equal(input.partition, 1, 'the input goes to the partition of `from`');
    cluster.run();

    assert.deepEqual(ledger.check(cluster), [['t1', 'completed']]);
    assert.equal(cluster.balances().get(A), 70);
    assert.equal(cluster.balances().get(B), 130);
    cluster.assertSettled();

    // The coordinator's inbox: the forwarded request and both votes.
    const inbox = cluster.messages(0);
    const request = inbox.find((m) => m.kind === 'request');
    assert.ok(request?.kind === 'request');
    assert.deepEqual(
      { id: request.id, event: request.event, keys: request.keys, all: request.all, origin: request.origin, timestamp: request.timestamp },
      { id: `transactions/1/${input.offset}`, event: 'bank.Transfer', keys: [A, B], all: false, origin: { topic: 'transactions', partition: 1, offset: input.offset }, timestamp: input.timestamp },
    );
    assert.deepEqual(Buffer.from(request.value, 'base64'), input.value, 'the request carries the input value');
    const votes = inbox.filter((m): m is Vote => m.kind === 'vote');
    assert.deepEqual(votes.map((v) => v.partition).sort(), [1, 2]);
    for (const vote of votes) {
      const account = vote.partition === 1 ? A : B;
      assert.deepEqual(
        vote.rows.map((r) => [r.table, r.key, shipped(cluster, r)]),
        [['balances', account, { balance: 100 }]],
        `partition ${vote.partition} ships its declared row as it was`,
      );
    }

    // Each participant: a prepare (hold, its own keys) then a decision with its writes.
    for (const [p, account, balance] of [[1, A, 70], [2, B, 130]] as const) {
      const [prepare, decision, ...rest] = cluster.messages(p);
      assert.equal(rest.length, 0);
      assert.ok(prepare?.kind === 'prepare' && decision?.kind === 'decision');
      assert.deepEqual({ keys: prepare.keys, hold: prepare.hold, allRows: prepare.allRows, queries: prepare.queries }, { keys: [account], hold: true, allRows: false, queries: [] });
      assert.equal(decision.round, prepare.round);
      assert.deepEqual(decision.writes.map((w) => [w.table, w.key, shipped(cluster, w)]), [['balances', account, { balance }]]);
    }
    assert.deepEqual(cluster.messages(3), [], 'a partition with no declared key takes no part');

    // The outcome is emitted once, by the coordinator, keyed and timed like its input.
    const [completed, ...more] = cluster.records('transfer-results');
    assert.equal(more.length, 0);
    assert.deepEqual(completed!.key, Buffer.from(A), 'keyed by the procedure partition key');
    assert.equal(completed!.partition, partitionForKey(A, OUTPUT_PARTITIONS));
    assert.equal(completed!.timestamp, input.timestamp);
  });

  it('decides many transfers across every partition, the coordinator taking part too', () => {
    const { cluster, ledger } = bank();
    ledger.transfer(cluster, { transferId: 't1', from: acct(1), to: acct(2), amount: 30 });
    ledger.transfer(cluster, { transferId: 't2', from: acct(2), to: acct(0), amount: 120 });
    ledger.transfer(cluster, { transferId: 't3', from: acct(0, 1), to: acct(3), amount: 100 });
    ledger.transfer(cluster, { transferId: 't4', from: acct(3), to: acct(3, 1), amount: 200 });
    ledger.transfer(cluster, { transferId: 't5', from: acct(3, 2), to: 'acct-new', amount: 40 });
    ledger.transfer(cluster, { transferId: 't6', from: acct(0), to: acct(1, 1), amount: 220 });
    cluster.run();
    const outcomes = new Map(ledger.check(cluster));
    assert.equal(outcomes.get('t1'), 'completed');
    assert.equal(outcomes.get('t3'), 'completed');
    assert.equal(outcomes.get('t5'), 'completed', 'a transfer may create the `to` account');
    assert.equal(cluster.balances().get('acct-new'), 40);
    cluster.assertSettled();
  });

  it('rejects INSUFFICIENT_FUNDS, SAME_ACCOUNT and NOT_POSITIVE without changing anything', () => {
    const { cluster, ledger } = bank();
    const before = cluster.balances();
    ledger.transfer(cluster, { transferId: 'short', from: acct(1), to: acct(2), amount: 101 });
    ledger.transfer(cluster, { transferId: 'nobody', from: 'acct-nobody', to: acct(2), amount: 1 });
    ledger.transfer(cluster, { transferId: 'self', from: acct(3), to: acct(3), amount: 10 });
    ledger.transfer(cluster, { transferId: 'zero', from: acct(0), to: acct(1), amount: 0 });
    ledger.transfer(cluster, { transferId: 'negative', from: acct(2), to: acct(0), amount: -50 });
    cluster.run();

    assert.deepEqual(new Map(ledger.check(cluster)), new Map<string, Outcome>([['short', 'INSUFFICIENT_FUNDS'], ['nobody', 'INSUFFICIENT_FUNDS'], ['self', 'SAME_ACCOUNT'], ['zero', 'NOT_POSITIVE'], ['negative', 'NOT_POSITIVE']]));
    assert.deepEqual(cluster.balances(), before);
    const decisions = cluster.messages().filter((m): m is Decision => m.kind === 'decision');
    assert.ok(decisions.length > 0);
    for (const d of decisions) assert.deepEqual(d.writes, [], 'a rejected round writes nothing');
    assert.equal(cluster.balances().has('acct-nobody'), false);
    cluster.assertSettled();
  });

  it('reads the declared rows at the participant\'s position, input earlier in its batch included', () => {
    const { cluster, ledger } = bank();
    const [A, B] = [acct(1), acct(2)];
    ledger.transfer(cluster, { transferId: 't1', from: A, to: B, amount: 105 });
    cluster.step(1);
    cluster.step(0);
    // Partition 1 reads a deposit, then the prepare, in one batch: the vote ships 105.
    ledger.deposit(cluster, A, 5);
    const polled = cluster.poll(1, Infinity, undefined, ['transactions', cluster.protocolTopic]);
    const batch = [polled.find((r) => r.topic === 'transactions')!, polled.find((r) => r.topic === cluster.protocolTopic)!];
    assert.equal(cluster.deliver(1, batch), 2);
    cluster.commit(1);
    cluster.run();
    const vote = cluster.messages(0).find((m): m is Vote => m.kind === 'vote' && m.partition === 1)!;
    assert.deepEqual(vote.rows.map((r) => shipped(cluster, r)), [{ balance: 105 }]);
    assert.deepEqual(ledger.check(cluster), [['t1', 'completed']]);
    assert.equal(cluster.balances().get(A), 0);
  });

  it('marks a batch urgent when it sent protocol messages or applied a decision, until committed or aborted', () => {
    const { cluster, ledger } = bank();
    const [p0, p1, p2] = [0, 1, 2].map((p) => cluster.node(p).processor) as [BatchProcessor, BatchProcessor, BatchProcessor];
    ledger.deposit(cluster, acct(1), 1);
    cluster.deliver(1, cluster.poll(1));
    assert.equal(p1.urgent, false, 'single-partition input');
    cluster.commit(1);
    ledger.transfer(cluster, { transferId: 't1', from: acct(1), to: acct(2), amount: 10 });
    cluster.deliver(1, cluster.poll(1));
    assert.equal(p1.urgent, true, 'forwarded a request');
    cluster.commit(1);
    assert.equal(p1.urgent, false, 'reset by the commit');
    cluster.deliver(0, cluster.poll(0));
    assert.equal(p0.urgent, true, 'sent prepares');
    cluster.commit(0);
    cluster.step(1);
    cluster.deliver(0, cluster.poll(0));
    assert.equal(p0.urgent, false, 'a vote that completes no round sends nothing');
    cluster.commit(0);
    cluster.step(2);
    cluster.deliver(0, cluster.poll(0));
    assert.equal(p0.urgent, true, 'sent decisions');
    cluster.abort(0);
    assert.equal(p0.urgent, false, 'reset by the abort');
    cluster.step(0);
    cluster.deliver(2, cluster.poll(2));
    assert.equal(p2.urgent, true, 'applied a decision');
    cluster.commit(2);
    cluster.run();
    ledger.check(cluster);
    cluster.assertSettled();
  });

  it('dead-letters a throwing transfer with its original record; the rest of its round commits', () => {
    // BIG's balance is near the top of a long: crediting it throws in the handler, after `from` was debited.
    const BIG = acct(2, 1);
    const deposits = new Map([...ACCOUNTS.flat().map((a): [string, number] => [a, 100]), [BIG, 2 ** 53 - 2 - 5]]);
    const { cluster, ledger } = bank(deposits);
    const [X, Y, Z] = ACCOUNTS[1] as [string, string, string];
    // t0 opens round 1 on its own; the next three queue behind it and make round 2 together.
    ledger.transfer(cluster, { transferId: 't0', from: X, to: acct(3), amount: 1 });
    ledger.transfer(cluster, { transferId: 'ok1', from: Y, to: acct(0), amount: 10 });
    const boom = ledger.transfer(cluster, { transferId: 'boom', from: Z, to: BIG, amount: 10 });
    // Only completes if the debit of Z made by `boom` was rolled back with it.
    ledger.transfer(cluster, { transferId: 'ok2', from: Z, to: acct(3), amount: 100 });
    ledger.deadLettered.add('boom');
    cluster.run();

    const round = cluster.messages().filter((m): m is Prepare => m.kind === 'prepare' && m.keys.includes(BIG));
    assert.equal(round.length, 1);
    const sameRound = cluster.messages().filter((m): m is Prepare => m.kind === 'prepare' && m.round === round[0]!.round);
    assert.deepEqual(new Set(sameRound.flatMap((p) => p.keys)), new Set([Y, acct(0), Z, BIG, acct(3)]), 'ok1, boom and ok2 share a round');

    assert.deepEqual(new Map(ledger.check(cluster)), new Map<string, Outcome>([['t0', 'completed'], ['ok1', 'completed'], ['ok2', 'completed']]));
    const [dead, ...more] = cluster.deadLetters();
    assert.equal(more.length, 0);
    assertDeadLetterOf(dead!, boom, 'bank.Transfer', /table "balances".*balance/);
    assert.equal(cluster.balances().get(BIG), 2 ** 53 - 2 - 5, 'nothing of the failed transfer is kept');
    cluster.assertSettled();
  });
});

// ---- holding ---------------------------------------------------------------------------------

describe('a held participant', () => {
  it('applies no input until its decision, then the input queued behind, in order', () => {
    const { cluster, ledger } = bank();
    const [A, B] = [acct(1), acct(2)];
    ledger.transfer(cluster, { transferId: 't1', from: A, to: B, amount: 60 });
    assert.ok(cluster.step(1), 'the initiator forwards the request');
    assert.equal(cluster.node(1).processor.held, false, 'forwarding does not hold');
    assert.deepEqual(cluster.messages(0).map((m) => m.kind), ['request']);
    assert.ok(cluster.step(0), 'the coordinator prepares partitions 1 and 2');

    // Behind the prepare on partition 1: a withdrawal that only succeeds before the transfer, then a deposit.
    const withdrawal = cluster.produce('Withdrawal', { account: A, amount: 50 });
    const deposit = cluster.produce('Deposit', { account: A, amount: 15 });
    const p1 = cluster.node(1).processor;
    const polled = cluster.poll(1);
    assert.deepEqual(polled.map((r) => r.topic), [cluster.protocolTopic, 'transactions', 'transactions']);
    assert.equal(cluster.deliver(1, polled), 1, 'apply() stops before the input once the prepare holds the partition');
    assert.equal(p1.held, true);
    assert.deepEqual(p1.pollTopics(), [cluster.protocolTopic], 'only the protocol topic is polled while held');
    assert.equal(p1.apply([withdrawal, deposit]), 0, 'input given to a held partition is not applied');
    assert.equal(p1.pending, 1, 'only the prepare is in the batch');
    cluster.commit(1);
    assert.equal(cluster.balances().get(A), 100);
    assert.equal(cluster.waiting(1), 0, 'nothing to read while held');
    assert.equal(cluster.step(1), false);

    assert.ok(cluster.step(2), 'partition 2 votes');
    assert.ok(cluster.step(0), 'the coordinator decides');
    assert.deepEqual(cluster.outputs('transfer-results').map((o) => o.name), ['bank.TransferCompleted'], 'decided at the coordinator');
    assert.equal(p1.held, true, 'held until it applies its decision');
    assert.equal(cluster.balances().get(A), 100);

    // The decision and the queued input, in one apply: released by the decision, the input follows.
    const decision = cluster.poll(1);
    assert.deepEqual(decision.map((r) => decode(r).kind), ['decision']);
    const queued = cluster.poll(1, Infinity, undefined, ['transactions']);
    assert.deepEqual(queued, [withdrawal, deposit]);
    assert.equal(cluster.deliver(1, [...decision, ...queued]), 3);
    assert.equal(p1.held, false);
    assert.equal(p1.pollTopics(), undefined);
    cluster.commit(1);
    cluster.run();

    // In order: the withdrawal saw 40 (rejected), then the deposit made 55.
    assert.deepEqual(cluster.outputs('rejections'), [{ name: 'bank.WithdrawalRejected', value: { account: A, amount: 50, balance: 40 } }]);
    assert.equal(cluster.balances().get(A), 55);
    assert.equal(cluster.balances().get(B), 160);
    cluster.assertSettled();
  });

  it('on partition 0, still coordinates while held: votes are read, input waits for its decision', () => {
    const { cluster, ledger } = bank();
    ledger.transfer(cluster, { transferId: 't1', from: acct(0), to: acct(3), amount: 25 });
    cluster.step(0); // forwards the request (to itself)
    cluster.step(0); // prepares 0 and 3
    const deposit = cluster.produce('Deposit', { account: acct(0, 1), amount: 7 });
    cluster.step(0); // votes and holds
    const p0 = cluster.node(0).processor;
    assert.equal(p0.held, true);
    assert.equal(cluster.waiting(0), 1, 'its own vote is waiting; the deposit is not');
    cluster.step(0); // reads its own vote
    cluster.step(3); // votes
    assert.ok(cluster.step(0), 'reads the vote of partition 3 and decides, though held');
    assert.deepEqual(cluster.outputs('transfer-results').map((o) => o.name), ['bank.TransferCompleted']);
    assert.equal(p0.held, true);
    assert.equal(cluster.balances().get(acct(0, 1)), 100, 'the deposit still waits');
    const next = cluster.poll(0);
    assert.deepEqual(next.map((r) => decode(r).kind), ['decision'], 'the decision to itself comes first');
    cluster.deliver(0, next);
    cluster.commit(0);
    assert.equal(p0.held, false);
    assert.deepEqual(cluster.poll(0), [deposit]);
    cluster.deliver(0, [deposit]);
    cluster.commit(0);
    cluster.run();
    assert.equal(cluster.balances().get(acct(0)), 75);
    assert.equal(cluster.balances().get(acct(3)), 125);
    assert.equal(cluster.balances().get(acct(0, 1)), 107);
    cluster.assertSettled();
  });

  it('stays held across a restart and an aborted decision, and is released by the decision after them', () => {
    const { cluster, ledger } = bank();
    ledger.transfer(cluster, { transferId: 't1', from: acct(1), to: acct(2), amount: 10 });
    cluster.step(1);
    cluster.step(0);
    cluster.step(1); // votes, held (committed)
    assert.equal(cluster.node(1).processor.held, true);
    cluster.restart(1);
    assert.equal(cluster.node(1).processor.held, true, 'the hold is part of the committed state');
    assert.deepEqual(cluster.node(1).processor.pollTopics(), [cluster.protocolTopic]);
    ledger.deposit(cluster, acct(1), 1);
    assert.equal(cluster.step(1), false, 'a restarted held partition reads no input');
    cluster.step(2);
    assert.ok(cluster.step(0), 'decides');
    assert.ok(cluster.step(1, { crash: () => 'abort' }), 'applies the decision, then the commit fails');
    assert.equal(cluster.node(1).processor.held, true, 'an aborted decision holds again');
    assert.equal(cluster.balances().get(acct(1)), 100);
    cluster.run();
    ledger.check(cluster);
    assert.equal(cluster.balances().get(acct(1)), 91);
    cluster.assertSettled();
  });
});

// ---- crashes ---------------------------------------------------------------------------------

interface Step {
  readonly name: string;
  readonly at: (done: { read: string[]; wrote: string[] }) => boolean;
}

const STEPS: readonly Step[] = [
  { name: 'the initiator forwarding a request', at: (k) => k.wrote.includes('request') },
  { name: 'the coordinator sending prepares', at: (k) => k.wrote.includes('prepare') },
  { name: 'a participant voting (and holding)', at: (k) => k.wrote.includes('vote') },
  { name: 'the coordinator sending decisions', at: (k) => k.wrote.includes('decision') },
  { name: 'a participant applying its decision', at: (k) => k.read.includes('decision') },
];
const MODES: readonly Crash[] = ['abort', 'restart', 'commit-restart'];

/** Bank with a BIG account (crediting it throws) and transfers over every partition, produced but not run. */
function crashScenario(): { cluster: Cluster; ledger: Ledger } {
  const BIG = acct(3, 2);
  const { cluster, ledger } = bank(new Map([...ACCOUNTS.flat().map((a): [string, number] => [a, 100]), [BIG, 2 ** 53 - 2 - 5]]));
  ledger.transfer(cluster, { transferId: 't1', from: acct(1), to: acct(2), amount: 30 });
  ledger.transfer(cluster, { transferId: 't2', from: acct(2), to: acct(0), amount: 120 });
  ledger.transfer(cluster, { transferId: 't3', from: acct(0, 1), to: acct(3), amount: 100 });
  ledger.transfer(cluster, { transferId: 'boom', from: acct(2, 1), to: BIG, amount: 10 });
  ledger.transfer(cluster, { transferId: 't4', from: acct(3), to: acct(1, 1), amount: 150 });
  ledger.transfer(cluster, { transferId: 't5', from: acct(1, 2), to: acct(1, 2), amount: 5 });
  ledger.transfer(cluster, { transferId: 't6', from: acct(2, 1), to: acct(1), amount: 100 });
  // Deposits to accounts the transfers hold: applied either side of a round, never inside one.
  for (const account of [acct(1), acct(2), acct(0), acct(3), acct(2, 1)]) ledger.deposit(cluster, account, 1);
  ledger.deadLettered.add('boom');
  return { cluster, ledger };
}

/**
 * Exactly once, whatever crashed: the ledger holds, one request per transfer, one vote per round
 * and participant, a decision for each prepare that held (and no other), one dead letter per
 * failed transfer.
 */
function checkExactlyOnce(cluster: Cluster, ledger: Ledger): void {
  ledger.check(cluster);
  cluster.assertSettled();
  const requests = cluster.messages().filter((m) => m.kind === 'request');
  assert.equal(requests.length, ledger.transfers.size, 'one request per transfer');
  assert.equal(new Set(requests.map((m) => m.kind === 'request' && m.id)).size, requests.length);
  for (const p of cluster.nodes.keys()) {
    const messages = cluster.messages(p);
    const holds = messages.filter((m): m is Prepare => m.kind === 'prepare' && m.hold).map((m) => m.round);
    const decisions = messages.filter((m): m is Decision => m.kind === 'decision').map((m) => m.round);
    assert.deepEqual(decisions, holds, `partition ${p}: one decision per round that held it, in round order`);
  }
  const votes = cluster.messages(0).filter((m): m is Vote => m.kind === 'vote').map((v) => `${v.round}/${v.partition}`);
  assert.equal(new Set(votes).size, votes.length, 'one vote per round and participant');
  assert.equal(cluster.deadLetters().length, ledger.deadLettered.size, 'one dead letter per failed transfer');
}

/** Crashes `batch` as `mode` says, with a deposit arriving meanwhile for an account of its partition (a held partition must leave it for after its decision). */
function crashWithDeposit(cluster: Cluster, ledger: Ledger, batch: Batch, mode: Crash): Crash {
  ledger.deposit(cluster, acct(batch.partition, 1), 1);
  return mode;
}

describe('crashes during the protocol', () => {
  it('the scenario, run without a crash', () => {
    const { cluster, ledger } = crashScenario();
    cluster.run();
    checkExactlyOnce(cluster, ledger);
    assert.equal(cluster.crashes, 0);
  });

  for (const step of STEPS) {
    it(`crashing at ${step.name}, before and after committing: every transfer is decided once`, (t) => {
      // Occurrences of the step in a run with no crash.
      const clean = crashScenario();
      let occurrences = 0;
      clean.cluster.run({
        crash: (b) => {
          if (step.at(kinds(clean.cluster, b))) occurrences++;
          return undefined;
        },
      });
      assert.ok(occurrences > 0, `the scenario reaches ${step.name}`);
      t.diagnostic(`${occurrences} batches at this step, each crashed in ${MODES.length} ways`);
      for (let n = 1; n <= occurrences; n++) {
        for (const mode of MODES) {
          const { cluster, ledger } = crashScenario();
          let seen = 0;
          cluster.run({ crash: (b) => (step.at(kinds(cluster, b)) && ++seen === n ? crashWithDeposit(cluster, ledger, b, mode) : undefined) });
          assert.equal(cluster.crashes, 1, `${mode} at occurrence ${n} of ${step.name}`);
          try {
            checkExactlyOnce(cluster, ledger);
          } catch (err) {
            throw new Error(`after ${mode} at occurrence ${n} of ${step.name}: ${(err as Error).message}`, { cause: err });
          }
        }
      }
    });
  }

  it('crashing at any batch, in any of the three ways: every transfer is decided once', (t) => {
    const clean = crashScenario();
    const setup = clean.cluster.history.length;
    clean.cluster.run();
    const batches = clean.cluster.history.length - setup;
    assert.ok(batches > 10);
    t.diagnostic(`${batches} batches, each crashed in ${MODES.length} ways`);
    for (let k = 0; k < batches; k++) {
      for (const mode of MODES) {
        const { cluster, ledger } = crashScenario();
        let seen = 0;
        cluster.run({ crash: (b) => (seen++ === k ? crashWithDeposit(cluster, ledger, b, mode) : undefined) });
        try {
          checkExactlyOnce(cluster, ledger);
        } catch (err) {
          throw new Error(`after ${mode} at batch ${k}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
  });

  it('crashing the same step again and again (every retry fails twice) still settles', () => {
    for (const step of STEPS) {
      const { cluster, ledger } = crashScenario();
      const failures = new Map<string, number>();
      cluster.run({
        crash: (b) => {
          if (!step.at(kinds(cluster, b))) return undefined;
          const id = `${b.partition}/${b.applied.map((r) => `${r.topic}@${r.offset}`).join(',')}`;
          const n = (failures.get(id) ?? 0) + 1;
          failures.set(id, n);
          return n === 1 ? 'abort' : n === 2 ? 'restart' : undefined;
        },
      });
      assert.ok(cluster.crashes >= 2, step.name);
      checkExactlyOnce(cluster, ledger);
    }
  });
});

// ---- consistent queries ------------------------------------------------------------------------

/** The partials the votes of `id`'s round carried, in partition order. */
function partials(cluster: Cluster, id: string): unknown[] {
  const votes = cluster.messages(0).filter((m): m is Vote => m.kind === 'vote' && m.parts.some((x) => x.id === id));
  return votes.sort((a, b) => a.partition - b.partition).map((v) => v.parts.find((x) => x.id === id)!.value);
}

const sumOf = (balances: ReadonlyMap<string, number>): number => [...balances.values()].reduce((a, b) => a + b, 0);

describe('consistent queries', () => {
  it('are answered on partition 0 with the merge of every partition\'s partial', () => {
    const { cluster } = bank();
    const id = cluster.ask('total');
    cluster.run();
    const result = cluster.result(id);
    assert.deepEqual(result, { kind: 'result', id, value: { total: 1200 } });
    const parts = partials(cluster, id);
    assert.deepEqual(parts, [0, 1, 2, 3].map((p) => ACCOUNTS[p]!.length * 100), 'one partial per partition, its own sum');
    assert.deepEqual(result.value, compileApp(bankApp).queries.get('total')!.merge(parts, {}));
    for (const p of cluster.nodes.keys()) {
      const prepares = cluster.messages(p).filter((m): m is Prepare => m.kind === 'prepare');
      assert.deepEqual(prepares.map((m) => ({ hold: m.hold, keys: m.keys, queries: m.queries })), [{ hold: false, keys: [], queries: [{ id, name: 'total', params: {} }] }], 'a read-only round holds no one');
    }
    cluster.assertSettled();
  });

  it('take every partial at one cut: input applied after a partition voted is not in the answer', () => {
    const { cluster } = bank();
    const id = cluster.ask('total');
    cluster.step(0); // prepares everyone
    cluster.step(1); // partition 1 votes: its partial is 300
    assert.equal(cluster.node(1).processor.held, false, 'a query does not hold');
    cluster.produce('Deposit', { account: acct(1), amount: 5 });
    assert.ok(cluster.step(1), 'partition 1 goes on with its input');
    cluster.run();
    assert.deepEqual(cluster.result(id)?.value, { total: 1200 });
    assert.equal(sumOf(cluster.balances()), 1205);
  });

  it('never see a transfer half applied, though its decisions reach the partitions at different times', () => {
    const { cluster, ledger } = bank();
    const [A, B] = [acct(1), acct(2)];
    ledger.transfer(cluster, { transferId: 't1', from: A, to: B, amount: 60 });
    cluster.step(1); // forwards
    cluster.step(0); // prepares 1 and 2
    cluster.step(1); // votes
    // The query queues behind the open round, which the coordinator decides in the same batch
    // (it reads partition 1's vote, the query, then partition 2's vote).
    const id = cluster.ask('total');
    cluster.step(2);
    cluster.step(0);
    assert.deepEqual(cluster.messages(0).filter((m) => m.kind === 'request' || m.kind === 'query').map((m) => m.kind), ['request', 'query']);
    // Partition 1 applies its decision (debit) and votes for the query in the same batch; partition 2
    // has not read its decision (credit) yet.
    cluster.step(1);
    assert.equal(cluster.balances().get(A), 40);
    assert.equal(cluster.balances().get(B), 100);
    assert.equal(sumOf(cluster.balances()), 1140, 'a plain read of every partition now sees the transfer half applied');
    cluster.step(3); // votes
    cluster.step(0); // votes
    cluster.step(0); // reads the votes of 1, 3 and its own
    assert.equal(cluster.result(id), undefined, 'no answer before partition 2 votes');
    cluster.step(2); // the decision, then the vote after it
    cluster.run();
    const result = cluster.result(id);
    assert.deepEqual(result?.value, { total: 1200 });
    assert.deepEqual(partials(cluster, id), [300, 240, 360, 300], 'every partial after the transfer');
    ledger.check(cluster);
  });

  it('share a round with transfers: the partials are taken before the round\'s transactions', () => {
    const { cluster, ledger } = bank();
    ledger.transfer(cluster, { transferId: 't0', from: acct(3), to: acct(0), amount: 1 });
    cluster.step(3);
    cluster.step(0); // round 1 (t0) is open: t1, the query and t2 queue behind it
    ledger.transfer(cluster, { transferId: 't1', from: acct(1), to: acct(2), amount: 10 });
    cluster.step(1);
    const id = cluster.ask('total');
    ledger.transfer(cluster, { transferId: 't2', from: acct(2, 1), to: acct(1, 1), amount: 20 });
    cluster.step(2);
    cluster.run();

    const round = cluster.messages().filter((m): m is Prepare => m.kind === 'prepare' && m.queries.some((q) => q.id === id));
    assert.equal(round.length, PARTITIONS, 'the query\'s round prepares every partition');
    assert.deepEqual(new Set(round.flatMap((m) => m.keys)), new Set([acct(1), acct(2), acct(2, 1), acct(1, 1)]), 'in the round of t1 and t2');
    assert.deepEqual(cluster.nodes.map((_, p) => cluster.messages(p).find((m): m is Prepare => m.kind === 'prepare' && m.round === round[0]!.round)!.hold), [false, true, true, false]);
    assert.deepEqual(partials(cluster, id), [301, 300, 300, 299], 'after t0, before t1 and t2');
    assert.deepEqual(cluster.result(id)?.value, { total: 1200 });
    assert.deepEqual(new Map(ledger.check(cluster)), new Map<string, Outcome>([['t0', 'completed'], ['t1', 'completed'], ['t2', 'completed']]));
    cluster.assertSettled();
  });

  it('answer a failing or unknown query with an error, and the coordinator goes on', () => {
    const cluster = new Cluster(ledgerApp);
    const failing = cluster.ask('failing');
    const unknown = cluster.ask('nope');
    const fine = cluster.ask('total', { scale: '2' });
    cluster.run();
    const f = cluster.result(failing);
    assert.equal(f?.error?.code, 'query_failed');
    assert.match(f.error.message, /query "failing" failed on partition 2: .*partition 2 refuses/);
    const u = cluster.result(unknown);
    assert.equal(u?.error?.code, 'query_failed');
    assert.match(u.error.message, /no query named "nope"/);
    assert.deepEqual(cluster.result(fine)?.value, { total: 0, scale: 2 });
    cluster.assertSettled();
  });
});

// ---- keyed and `all` procedures -----------------------------------------------------------------

describe('what a multi-partition handler may touch', () => {
  it('a keyed transaction reads and writes only its declared keys; the others are dead-lettered, alone', () => {
    const cluster = ledgerCluster();
    const undeclared = ac(3);
    move(cluster, { id: 'opener', op: 'transfer', from: ac(0), to: ac(3), amount: 1 });
    const inputs = {
      ok1: move(cluster, { id: 'ok1', op: 'transfer', amount: 10 }),
      readOther: move(cluster, { id: 'read-other', op: 'read-other', other: undeclared }),
      writeOther: move(cluster, { id: 'write-other', op: 'write-other', amount: 5, other: undeclared }),
      deleteOther: move(cluster, { id: 'delete-other', op: 'delete-other', other: undeclared }),
      scan: move(cluster, { id: 'scan', op: 'scan' }),
      size: move(cluster, { id: 'size', op: 'size' }),
      timer: move(cluster, { id: 'timer', op: 'timer' }),
      promise: move(cluster, { id: 'promise', op: 'promise', amount: 7 }),
      badPut: move(cluster, { id: 'bad-put', op: 'bad-put' }),
      boom: move(cluster, { id: 'boom', op: 'boom', amount: 50 }),
      unknown: move(cluster, { id: 'unknown', op: 'frobnicate' }),
      // All that ok1 left in ac(1): moved only if no failed transaction's debit of ac(1) stayed.
      ok2: move(cluster, { id: 'ok2', op: 'transfer', amount: 90 }),
    };
    cluster.run();

    assert.deepEqual(notes(cluster), new Map([['opener', 'moved'], ['ok1', 'moved'], ['ok2', 'moved']]), 'only what committed is emitted');
    const failures: Array<[LogRecord, RegExp]> = [
      [inputs.readOther, new RegExp(`key "${undeclared}" is not one of the keys this transaction declared .*add it to multiPartition.keys`)],
      [inputs.writeOther, /is not one of the keys this transaction declared/],
      [inputs.deleteOther, /is not one of the keys this transaction declared/],
      [inputs.scan, /scan\(\) needs every partition \(multiPartition: 'all'\)/],
      [inputs.size, /scan\(\) needs every partition/],
      [inputs.timer, /timers are not available in a multi-partition procedure/],
      [inputs.promise, /returned a Promise; handlers must be synchronous/],
      [inputs.badPut, /table "accounts".*balance/],
      [inputs.boom, /boom in boom/],
      [inputs.unknown, /unknown op frobnicate/],
    ];
    const dead = cluster.deadLetters();
    assert.equal(dead.length, failures.length);
    for (const [i, [input, error]] of failures.entries()) assertDeadLetterOf(dead[i]!, input, 'ledger.Move', error);

    // Only opener, ok1 and ok2 moved money: 1 from ac(0) to ac(3), 10 + 90 from ac(1) to ac(2).
    const expected = new Map(LEDGER.flat().map((a) => [a, 100]));
    expected.set(ac(0), 99).set(ac(3), 101).set(ac(1), 0).set(ac(2), 200);
    assert.deepEqual(cluster.balances('accounts'), expected);
    cluster.assertSettled();
  });

  it('the rows of a round refuse with HandlerContractError what the transaction may not touch', () => {
    const app = compileApp(ledgerApp);
    const keyed = new RoundRows(app, false);
    keyed.addRead('accounts', 'a', { balance: 1 });
    const declared = new Set(['a', 'b']);
    assert.deepEqual(keyed.get('accounts', 'a', declared), { balance: 1 });
    assert.equal(keyed.get('accounts', 'b', declared), undefined, 'a declared key no participant had');
    assert.throws(() => keyed.get('accounts', 'c', declared), HandlerContractError);
    assert.throws(() => keyed.put('accounts', 'c', { balance: 1 }, declared), HandlerContractError);
    assert.throws(() => keyed.delete('accounts', 'c', declared), HandlerContractError);
    assert.throws(() => keyed.scan('accounts'), HandlerContractError);
    assert.throws(() => keyed.get(MP_TABLE, 'participant', undefined), HandlerContractError, 'system tables are not the handler\'s');
    assert.throws(() => keyed.get('counters', 'a', undefined), HandlerContractError, 'a key of the wrong type');
    assert.throws(() => keyed.put('accounts', 'a', { balance: 'x' }, declared), SchemaValidationError);

    // Writes undo to a savepoint, each transaction alone; writes() is the last value of each row.
    const savepoint = keyed.savepoint();
    keyed.put('accounts', 'a', { balance: 2 }, declared);
    keyed.put('accounts', 'b', { balance: 3 }, declared);
    keyed.rollbackTo(savepoint);
    assert.deepEqual(keyed.writes(), []);
    assert.deepEqual(keyed.get('accounts', 'a', declared), { balance: 1 });
    keyed.put('accounts', 'a', { balance: 4 }, declared);
    assert.equal(keyed.delete('accounts', 'a', declared), true);
    assert.deepEqual(keyed.writes(), [{ table: 'accounts', key: 'a', value: undefined }]);

    // Every row read (`all`): scan in key order, writes included, deletes left out.
    const all = new RoundRows(app, true);
    for (const [key, balance] of [['b', 2], ['a', 1], ['c', 3]] as const) all.addRead('accounts', key, { balance });
    all.put('accounts', 'ab', { balance: 9 }, undefined);
    all.delete('accounts', 'c', undefined);
    assert.deepEqual(all.scan('accounts').map(([k]) => k), ['a', 'ab', 'b']);

    const ctx = new TxnContext(app, keyed, {});
    ctx.moveTo('ledger.Move', { topic: 'ledger-in', partition: 1, offset: 7 }, BASE_TS, declared);
    assert.throws(() => ctx.timers.set(), HandlerContractError);
    assert.throws(() => ctx.tables['accounts']!.put('a', { balance: 1 }), HandlerContractError, 'no writes once the handler returned');
    assert.throws(() => ctx.emit('Note', { id: 'x', note: '' }), HandlerContractError, 'no emits once the handler returned');
    assert.deepEqual(Object.keys(ctx.tables).sort(), ['accounts', 'counters'], 'partitioned tables only');
  });

  it('keys that are not a non-empty array are dead-lettered where the event was read, never forwarded', () => {
    const cluster = ledgerCluster();
    const input = move(cluster, { id: 'no-keys', op: 'no-keys', from: ac(2) });
    cluster.run();
    assert.equal(cluster.messages().filter((m) => m.kind === 'request').length, 0);
    const [dead, ...more] = cluster.deadLetters();
    assert.equal(more.length, 0);
    assertDeadLetterOf(dead!, input, 'ledger.Move', /multiPartition.keys of "ledger.Move" must return a non-empty array/);
    assert.equal(dead!.partition, 2, 'dead-lettered by the partition that read it');
  });

  it('declared int keys reach an int-keyed table on their own partition; a round sees its earlier writes', () => {
    const cluster = ledgerCluster();
    const [key] = intKeysOf(3, PARTITIONS, 1) as [number];
    move(cluster, { id: 'opener', op: 'transfer', from: ac(0), to: ac(1), amount: 1 });
    move(cluster, { id: 'tick1', op: 'tick', amount: key });
    move(cluster, { id: 'tick2', op: 'tick', amount: key });
    cluster.run();
    assert.equal(notes(cluster).get('tick1'), 'tick 1');
    assert.equal(notes(cluster).get('tick2'), 'tick 2');
    assert.deepEqual([...cluster.table('counters')].map(([k, v]) => [k, { ...(v as Counter) }]), [[key, { n: 2 }]]);
    assert.deepEqual(cluster.messages(3).find((m): m is Prepare => m.kind === 'prepare')?.keys, [String(key)]);
    cluster.assertSettled();
  });

  it('runs with the context of its input record: event type, partition, offset, time and seeded randomness', () => {
    const cluster = ledgerCluster();
    const input = move(cluster, { id: 'observe', op: 'observe', from: ac(3) });
    cluster.run({ crash: (b) => (b.partition === 0 && kinds(cluster, b).wrote.includes('decision') && cluster.crashes === 0 ? 'abort' : undefined) });
    assert.equal(cluster.crashes, 1, 'the decision was made twice');
    const seen = JSON.parse(notes(cluster).get('observe')!) as { random: number[] };
    const random = seededRandom(eventSeed(input.topic, input.partition, input.offset));
    assert.deepEqual(seen, { eventType: 'ledger.Move', partition: input.partition, offset: input.offset, timestamp: input.timestamp, random: [random(), random()] });
    const [out] = cluster.records('notes');
    assert.deepEqual(out!.key, Buffer.from(ac(3)));
    assert.equal(out!.timestamp, input.timestamp);
  });

  it("an 'all' transaction scans every row of every partition and may write any key", () => {
    const cluster = ledgerCluster();
    cluster.produce('Open', { account: ac(2, 1), amount: -95 }); // balance 5: below the fee
    const sweepId = keysOf(1, PARTITIONS, 1, 'sweep-')[0]!;
    const INTO = 'ac-house';
    cluster.produce('Sweep', { id: sweepId, fee: 10, into: INTO });
    cluster.run();

    const everyone = [...LEDGER.flat()].sort();
    const charged = everyone.filter((a) => a !== ac(2, 1));
    const note = JSON.parse(notes(cluster).get(sweepId)!) as Record<string, unknown>;
    assert.deepEqual(note, { seen: everyone, charged, size: everyone.length + 1, page: [everyone[1], everyone[2]] });
    const expected = new Map(LEDGER.flat().map((a) => [a, 90]));
    expected.set(ac(2, 1), 5).set(INTO, 10 * charged.length);
    assert.deepEqual(cluster.balances('accounts'), expected);

    // Prepared, held and decided everywhere; each vote ships its whole partition.
    const sweepRound = cluster.messages().find((m): m is Prepare => m.kind === 'prepare' && m.allRows)!.round;
    for (const p of cluster.nodes.keys()) {
      const prepare = cluster.messages(p).find((m): m is Prepare => m.kind === 'prepare' && m.round === sweepRound);
      assert.deepEqual({ keys: prepare?.keys, hold: prepare?.hold, allRows: prepare?.allRows }, { keys: [], hold: true, allRows: true });
      const vote = cluster.messages(0).find((m): m is Vote => m.kind === 'vote' && m.round === sweepRound && m.partition === p)!;
      assert.deepEqual(vote.rows.map((r) => r.key).sort(), [...LEDGER[p]!].sort(), `partition ${p} ships every row`);
      const decision = cluster.messages(p).find((m): m is Decision => m.kind === 'decision' && m.round === sweepRound)!;
      assert.ok(decision.writes.every((w) => partitionForKey(String(w.key), PARTITIONS) === p), 'each partition gets its own writes');
    }
    cluster.assertSettled();
  });

  it("an 'all' transaction gets a round of its own, in queue order", () => {
    const cluster = ledgerCluster();
    const [s1] = keysOf(1, PARTITIONS, 1, 'sweep-') as [string];
    // All read by partition 1, forwarded in this order; the first opens round 1 alone.
    move(cluster, { id: 'm1', op: 'transfer', from: ac(1), to: ac(2), amount: 40 });
    move(cluster, { id: 'm2', op: 'transfer', from: ac(1, 1), to: ac(3), amount: 10 });
    move(cluster, { id: 'm3', op: 'transfer', from: ac(1, 2), to: ac(0), amount: 10 });
    cluster.produce('Sweep', { id: s1, fee: 50, into: ac(0, 1) });
    move(cluster, { id: 'm4', op: 'transfer', from: ac(1), to: ac(3), amount: 55 });
    cluster.run();

    const rounds = new Map<number, { keys: Set<string>; all: boolean }>();
    for (const m of cluster.messages()) {
      if (m.kind !== 'prepare') continue;
      const r = rounds.get(m.round) ?? { keys: new Set<string>(), all: m.allRows };
      for (const k of m.keys) r.keys.add(k);
      rounds.set(m.round, r);
    }
    assert.deepEqual(
      [...rounds.values()].map((r) => (r.all ? 'all' : [...r.keys].sort().join(' '))),
      [[ac(1), ac(2)].sort().join(' '), [ac(1, 1), ac(3), ac(1, 2), ac(0)].sort().join(' '), 'all', [ac(1), ac(3)].sort().join(' ')],
    );
    // Serially: m1 (ac1 60), m2, m3, then the sweep charges 50 where it can, then m4 finds ac1 at 10.
    const n = notes(cluster);
    assert.deepEqual([n.get('m1'), n.get('m2'), n.get('m3'), n.get('m4')], ['moved', 'moved', 'moved', 'short']);
    const sweep = JSON.parse(n.get(s1)!) as { charged: string[] };
    assert.deepEqual(sweep.charged, [...LEDGER.flat()].filter((a) => a !== ac(0, 1)).sort());
    assert.equal(sumOf(cluster.balances('accounts')), 1200);
    cluster.assertSettled();
  });
});

// ---- random schedules ---------------------------------------------------------------------------

/**
 * The bank's total at the cut of a consistent query's round: transfers conserve money, so it is
 * every deposit each partition applied, in its committed batches, before that round's prepare.
 */
function totalAtCut(cluster: Cluster, id: string): number {
  const round = cluster.messages().find((m): m is Prepare => m.kind === 'prepare' && m.queries.some((q) => q.id === id))?.round;
  assert.ok(round !== undefined, `query ${id} had a round`);
  let total = 0;
  for (const p of cluster.nodes.keys()) {
    const applied = cluster.history.filter((b) => b.partition === p).flatMap((b) => b.applied);
    const at = applied.findIndex((r) => r.topic === cluster.protocolTopic && decode(r).kind === 'prepare' && (decode(r) as Prepare).round === round);
    assert.ok(at >= 0, `partition ${p} applied the prepare of round ${round}`);
    for (const r of applied.slice(0, at)) {
      if (r.topic !== 'transactions') continue;
      const { name, value } = cluster.catalog.decode(r.value!);
      if (name === 'bank.Deposit') total += (value as { amount: number }).amount;
    }
  }
  return total;
}

describe('random schedules with crashes', () => {
  it('every transfer is decided once, the ledger holds and every consistent total is the one at its cut', (t) => {
    const SEEDS = 30;
    const TRANSFERS = 30;
    const stats = { batches: 0, crashes: 0, rounds: 0, messages: 0, queries: 0 };
    for (let seed = 1; seed <= SEEDS; seed++) {
      const random = mulberry32(seed);
      const { cluster, ledger } = bank();
      const setup = { batches: cluster.history.length, messages: cluster.records(cluster.protocolTopic).length };
      const accounts = [...ACCOUNTS.flat(), 'acct-x', 'acct-y'];
      const pick = (): string => accounts[Math.floor(random() * accounts.length)]!;
      const options: RunOptions = { random, maxBatch: 6, crash: () => (random() < 0.06 ? MODES[Math.floor(random() * MODES.length)] : undefined) };
      const queries: string[] = [];
      for (let i = 0; i < TRANSFERS; i++) {
        ledger.transfer(cluster, { transferId: `s${seed}-${i}`, from: pick(), to: pick(), amount: Math.floor(random() * 160) - 10 });
        if (random() < 0.3) ledger.deposit(cluster, pick(), 1 + Math.floor(random() * 20));
        if (random() < 0.25) queries.push(cluster.ask('total'));
        cluster.run(options, Math.floor(random() * 6));
      }
      cluster.run(options);
      try {
        checkExactlyOnce(cluster, ledger);
        for (const id of queries) assert.deepEqual(cluster.result(id)?.value, { total: totalAtCut(cluster, id) }, `query ${id}`);
      } catch (err) {
        throw new Error(`seed ${seed}: ${(err as Error).message}`, { cause: err });
      }
      stats.batches += cluster.history.length - setup.batches;
      stats.crashes += cluster.crashes;
      stats.rounds += new Set(cluster.messages().filter((m): m is Prepare => m.kind === 'prepare').map((m) => m.round)).size;
      stats.messages += cluster.records(cluster.protocolTopic).length - setup.messages;
      stats.queries += queries.length;
    }
    assert.ok(stats.crashes > SEEDS, 'crashes happened');
    const n = SEEDS * TRANSFERS;
    t.diagnostic(`${n} transfers, ${stats.queries} queries, ${stats.crashes} crashes: ${(stats.batches / n).toFixed(1)} batches, ${(stats.messages / n).toFixed(1)} protocol messages per transfer, ${(n / stats.rounds).toFixed(2)} transfers per round`);
  });

  it(`a round takes at most ${MAX_ROUND} queued requests`, () => {
    const { cluster, ledger } = bank();
    ledger.transfer(cluster, { transferId: 'opener', from: acct(0), to: acct(3), amount: 1 });
    cluster.step(0, { maxBatch: 1 });
    cluster.step(0, { maxBatch: 1 }); // round 1 is open
    const queued = MAX_ROUND + 44;
    for (let i = 0; i < queued; i++) ledger.transfer(cluster, { transferId: `t${i}`, from: acct(1, i % 3), to: acct(2), amount: 1 });
    cluster.step(1, { maxBatch: 10_000 }); // forwards every request at once
    cluster.run({ maxBatch: 10_000 });
    const decided = cluster.history
      .filter((b) => b.partition === 0 && b.plan.records.some((r) => r.topic === cluster.protocolTopic && decode(r as LogRecord).kind === 'decision'))
      .map((b) => b.plan.records.filter((r) => r.topic === 'transfer-results').length);
    assert.deepEqual(decided, [1, MAX_ROUND, 44]);
    // The ledger predicts each outcome (the three senders run dry along the way).
    const outcomes = new Set(ledger.check(cluster).map(([, o]) => o));
    assert.ok(outcomes.has('completed') && [...outcomes].every((o) => o === 'completed' || o === 'INSUFFICIENT_FUNDS'), [...outcomes].join(', '));
    cluster.assertSettled();
  });
});

// ---- found bugs ---------------------------------------------------------------------------------

describe('edge cases found by these tests', () => {
  it('a consistent query whose partial is not JSON is answered with an error; the partitions go on', () => {
    const cluster = ledgerCluster();
    const id = cluster.ask('big');
    move(cluster, { id: 'after', op: 'transfer', amount: 1 });
    cluster.run();
    assert.equal(cluster.result(id)?.error?.code, 'query_failed');
    assert.equal(notes(cluster).get('after'), 'moved');
  });

  it('a consistent query whose answer is not JSON is answered with an error; the round still commits', () => {
    const cluster = ledgerCluster();
    move(cluster, { id: 'opener', op: 'transfer', from: ac(0), to: ac(3), amount: 1 });
    cluster.step(0);
    cluster.step(0); // round 1 open
    const id = cluster.ask('bigAnswer');
    move(cluster, { id: 'same-round', op: 'transfer', amount: 1 });
    cluster.run();
    assert.equal(cluster.result(id)?.error?.code, 'query_failed');
    assert.equal(notes(cluster).get('same-round'), 'moved');
  });

  it("an 'all' transaction's scan() sees a key holding U+0000", () => {
    const cluster = ledgerCluster();
    const weird = 'ac-x\u0000y';
    cluster.produce('Open', { account: weird, amount: 5 });
    cluster.produce('Sweep', { id: 'sweep', fee: 1, into: ac(0) });
    cluster.run();
    const seen = (JSON.parse(notes(cluster).get('sweep')!) as { seen: string[] }).seen;
    assert.ok(seen.includes(weird), JSON.stringify(seen));
    assert.equal(cluster.balances('accounts').get(weird), 4);
  });

  it('rows a decision writes are frozen all the way down, like every other row', () => {
    interface Tag {
      key: string;
      name: string;
    }
    const app = defineApp({
      name: 'tags',
      partitions: 2,
      events: {
        Tag: record<Tag>({
          type: 'record',
          name: 'Tag',
          namespace: 'tags',
          fields: [
            { name: 'key', type: 'string' },
            { name: 'name', type: 'string' },
          ],
        }),
      },
      tables: { items: table({ key: 'string', value: record<{ names: string[] }>({ type: 'record', name: 'Item', namespace: 'tags', fields: [{ name: 'names', type: { type: 'array', items: 'string' } }] }) }) },
      inputs: [{ topic: 'tags-in', events: ['Tag'] }],
      procedures: {
        Tag: {
          partitionKey: (t) => t.key,
          multiPartition: { keys: (t) => [t.key] },
          handle(ctx, t) {
            ctx.tables.items.put(t.key, { names: [...(ctx.tables.items.get(t.key)?.names ?? []), t.name] });
          },
        },
      },
    });
    const cluster = new Cluster(app);
    cluster.produce('Tag', { key: 'k', name: 'a' });
    cluster.run();
    const row = cluster.node(partitionForKey('k', 2)).state.store('items').get('k') as { names: string[] };
    assert.deepEqual([...row.names], ['a']);
    assert.ok(Object.isFrozen(row.names), 'a handler cannot change the row outside a put (no undo, no changelog record)');
  });
});
