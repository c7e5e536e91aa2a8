import { Subject, type Observable } from 'rxjs';
import { encodeChangeKey, RowCodec, rowSchemaOf, SchemaCatalog } from '../../../src/codec/index.js';
import { LeaseRevokedError, ProducerFencedError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import type { OwnerContext, PartitionObserver, PartitionRole } from '../../../src/partition/index.js';
import { compileApp, defineApp, globalViews, record, table, type CompiledApp } from '../../../src/procedures/index.js';
import type { PartitionState } from '../../../src/state/index.js';
import type {
  ChangelogFollower,
  ChangelogSink,
  CommitPlan,
  CommitResult,
  EventLog,
  LogRecord,
  MembershipPolicy,
  OutRecord,
  PartitionLease,
  TopicPartitionOffset,
  TopicSpec,
} from '../../../src/streams/index.js';

/**
 * An in-process, scriptable `EventLog` for unit tests: topics are arrays of records in memory,
 * leases are pushed by the test (`grant`), and every lease records the calls the partition core
 * makes of it (`trace`) so tests can assert their order. Failures are injected through `script`.
 */

/** One call a lease saw, in order: `fence`, `changelogEnd`, `readChangelog:<from>`, `resume`, `poll`, `commit`, `rewind`, `confirmOwnership`. */
export type TraceEntry = string;

/** A promise the test settles later, to hold a call of the partition core mid-way. */
export class Gate {
  readonly opened: Promise<void>;
  /** Settles when the blocked call reached the gate (the test can then interleave). */
  readonly reached: Promise<void>;
  private openFn!: () => void;
  private reachFn!: () => void;

  constructor() {
    this.opened = new Promise((resolve) => (this.openFn = resolve));
    this.reached = new Promise((resolve) => (this.reachFn = resolve));
  }

  /** Called by the blocked call. */
  async pass(): Promise<void> {
    this.reachFn();
    await this.opened;
  }

  open(): void {
    this.openFn();
  }
}

/** What the next calls of a lease should do instead of succeeding (each hook is consumed once). */
export interface LeaseScript {
  /** Errors the next commits throw, in order (the batch is not written). */
  commitErrors: unknown[];
  /** Errors the next readChangelog calls throw, in order (after the first chunk, when `afterChunk`). */
  readChangelogErrors: unknown[];
  /** Errors the next fence calls throw, in order. */
  fenceErrors: unknown[];
  /** The next fence call waits for this gate. */
  fenceGate: Gate | undefined;
  /** The next readChangelog call waits for this gate before yielding. */
  readChangelogGate: Gate | undefined;
  /** Answers of the next confirmOwnership calls, in order (then `true`). */
  confirmOwnership: boolean[];
  /**
   * Committed offsets the log answers at the next resume instead of its own, as a Kafka group
   * coordinator that has not applied a transaction's offset commit yet answers (fault B).
   */
  staleCommittedOffsets: Map<string, number> | undefined;
}

interface Waiter {
  resolve: () => void;
}

/** Keys of committed input offsets: `topic/partition`. */
const at = (topic: string, partition: number): string => `${topic}/${partition}`;

export interface MemoryLogOptions {
  /** Partition count of every topic the log knows (inputs, outputs, changelog, dead letters). */
  readonly topics: Readonly<Record<string, number>>;
  /** Topics a lease's poll reads (the app's inputs). */
  readonly inputs: readonly string[];
  readonly changelogTopic: string;
  /** Records per chunk of readChangelog. */
  readonly chunkSize?: number;
}

export class MemoryLog implements EventLog {
  private readonly data = new Map<string, LogRecord[][]>();
  /** Next input offset to read, per `topic/partition`, as committed. */
  readonly committed = new Map<string, number>();
  /** The transactional epoch of each partition: bumped by every fence. */
  private readonly epochs = new Map<number, number>();
  private readonly leases$ = new Subject<PartitionLease>();
  private waiters: Waiter[] = [];
  readonly follower = new MemoryFollower(this);
  memberships: MembershipPolicy[] = [];
  private readonly issued: MemoryLease[] = [];

  constructor(readonly options: MemoryLogOptions) {
    for (const [topic, partitions] of Object.entries(options.topics)) {
      this.data.set(topic, Array.from({ length: partitions }, () => []));
    }
  }

  // ---- what a test does -----------------------------------------------------------------------

  /** A lease of `partition` the test grants now (push it with `grant`, or pass it to an owner directly). */
  lease(partition: number): MemoryLease {
    const lease = new MemoryLease(this, partition);
    this.issued.push(lease);
    return lease;
  }

  /** Ends every lease this log issued (test clean-up, so no owner keeps polling). */
  revokeAll(): void {
    for (const lease of this.issued) lease.revoke();
  }

  /** Emits a lease on the observable `leases()` returned. */
  grant(lease: MemoryLease): MemoryLease {
    this.leases$.next(lease);
    return lease;
  }

  /** Records of a topic partition. */
  records(topic: string, partition: number): readonly LogRecord[] {
    return this.partitionArray(topic, partition);
  }

  changelog(partition: number): readonly LogRecord[] {
    return this.records(this.options.changelogTopic, partition);
  }

  committedOffset(topic: string, partition: number): number {
    return this.committed.get(at(topic, partition)) ?? 0;
  }

  epoch(partition: number): number {
    return this.epochs.get(partition) ?? 0;
  }

  /**
   * Another writer (a zombie owner) commits a batch for `partition`: its records are appended,
   * its input offsets move, and nothing checks an epoch (it raced the fence).
   */
  writeAsZombie(plan: Pick<CommitPlan, 'records' | 'offsets'>): void {
    this.write(plan);
  }

  /** Another instance fences the partition: the current epoch's producer can no longer commit. */
  fenceByOther(partition: number): void {
    this.bumpEpoch(partition);
  }

  // ---- EventLog -------------------------------------------------------------------------------

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    for (const spec of specs) {
      const existing = this.data.get(spec.name);
      if (!existing) this.data.set(spec.name, Array.from({ length: spec.partitions }, () => []));
      else if (spec.exactPartitions && existing.length !== spec.partitions) {
        throw new Error(`topic ${spec.name} has ${existing.length} partitions, not ${spec.partitions}`);
      }
    }
  }

  partitionsOf(topic: string): number {
    const partitions = this.data.get(topic);
    if (!partitions) throw new Error(`memory log: unknown topic ${topic}`);
    return partitions.length;
  }

  async append(records: readonly OutRecord[]): Promise<readonly TopicPartitionOffset[]> {
    this.appendNow(records);
    const ends = new Map(records.map((r) => [at(r.topic, r.partition), { topic: r.topic, partition: r.partition, offset: this.endOffset(r.topic, r.partition) }]));
    return [...ends.values()];
  }

  async committedOffsets(partition: number): Promise<ReadonlyMap<string, number>> {
    return new Map(this.options.inputs.map((topic) => [topic, this.committedOffset(topic, partition)]));
  }

  /** `append`, synchronously. */
  appendNow(records: readonly OutRecord[]): void {
    for (const record of records) {
      const log = this.partitionArray(record.topic, record.partition);
      log.push({
        topic: record.topic,
        partition: record.partition,
        offset: log.length,
        timestamp: record.timestamp,
        key: record.key,
        value: record.value,
        headers: record.headers ?? {},
      });
    }
    this.wake();
  }

  async *readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    const log = this.partitionArray(topic, partition);
    const end = log.length;
    const size = this.options.chunkSize ?? 100;
    for (let i = fromOffset; i < end; i += size) yield log.slice(i, Math.min(i + size, end));
  }

  endOffset(topic: string, partition: number): number {
    return this.partitionArray(topic, partition).length;
  }

  consumerLag(): Array<{ partition: number; lag: number }> {
    return [];
  }

  leases(membership: MembershipPolicy): Observable<PartitionLease> {
    this.memberships.push(membership);
    return this.leases$.asObservable();
  }

  changelogFollower(): ChangelogFollower {
    return this.follower;
  }

  followerOf(): ChangelogFollower {
    throw new Error('the memory log follows its changelog only');
  }

  async close(): Promise<void> {
    this.leases$.complete();
  }

  // ---- what leases use ------------------------------------------------------------------------

  /** Atomically appends a batch's records and moves its input offsets. */
  write(plan: Pick<CommitPlan, 'records' | 'offsets'>): CommitResult {
    let changelogNext: number | undefined;
    for (const record of plan.records) {
      this.appendNow([record]);
      if (record.topic === this.options.changelogTopic) changelogNext = this.partitionArray(record.topic, record.partition).length;
    }
    for (const { topic, partition, offset } of plan.offsets) this.committed.set(at(topic, partition), offset);
    return { changelogNext };
  }

  bumpEpoch(partition: number): number {
    const next = this.epoch(partition) + 1;
    this.epochs.set(partition, next);
    return next;
  }

  /** Resolves on the next append, or after `ms`. */
  waitForData(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter: Waiter = { resolve };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      }, ms);
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(waiter);
    });
  }

  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private partitionArray(topic: string, partition: number): LogRecord[] {
    const log = this.data.get(topic)?.[partition];
    if (!log) throw new Error(`memory log: no partition ${partition} of topic ${topic}`);
    return log;
  }
}

/** A lease of one partition of a MemoryLog; `revoke()` ends it. */
export class MemoryLease implements PartitionLease {
  readonly trace: TraceEntry[] = [];
  readonly script: LeaseScript = {
    commitErrors: [],
    readChangelogErrors: [],
    fenceErrors: [],
    fenceGate: undefined,
    readChangelogGate: undefined,
    confirmOwnership: [],
    staleCommittedOffsets: undefined,
  };
  /** Commits this lease made (plans as written). */
  readonly commits: CommitPlan[] = [];
  readonly revoked: Promise<void>;
  private active_ = true;
  private settleRevoked!: () => void;
  /** The epoch this lease's producer holds (after its last fence); undefined before fencing. */
  private epoch: number | undefined;
  /** Next input offset to read per input topic; undefined until resume(). */
  private cursors: Map<string, number> | undefined;

  constructor(
    private readonly log: MemoryLog,
    readonly partition: number,
  ) {
    this.revoked = new Promise((resolve) => (this.settleRevoked = resolve));
  }

  get active(): boolean {
    return this.active_;
  }

  /** Ends the lease (rebalance): `active` turns false, `revoked` settles, a waiting poll returns. */
  revoke(): void {
    if (!this.active_) return;
    this.active_ = false;
    this.settleRevoked();
    this.log.wake();
  }

  /** Trace with runs of polls (idle polls) collapsed to one. */
  compactTrace(): TraceEntry[] {
    return this.trace.filter((entry, i) => entry !== 'poll' || this.trace[i - 1] !== 'poll');
  }

  async fence(): Promise<void> {
    this.trace.push('fence');
    const gate = this.script.fenceGate;
    this.script.fenceGate = undefined;
    if (gate) await gate.pass();
    if (!this.active_) throw new LeaseRevokedError(`memory lease of partition ${this.partition} was revoked`, { partition: this.partition });
    const error = this.script.fenceErrors.shift();
    if (error !== undefined) throw error;
    this.epoch = this.log.bumpEpoch(this.partition);
  }

  async changelogEnd(): Promise<number> {
    this.trace.push('changelogEnd');
    return this.log.endOffset(this.log.options.changelogTopic, this.partition);
  }

  async *readChangelog(fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    this.trace.push(`readChangelog:${fromOffset}`);
    const gate = this.script.readChangelogGate;
    this.script.readChangelogGate = undefined;
    if (gate) await gate.pass();
    const error = this.script.readChangelogErrors.shift();
    if (error !== undefined) throw error;
    yield* this.log.readRange(this.log.options.changelogTopic, this.partition, fromOffset);
  }

  async resume(startAt: ReadonlyMap<string, number>): Promise<void> {
    this.trace.push('resume');
    this.rewindCursors();
    const stale = this.script.staleCommittedOffsets;
    this.script.staleCommittedOffsets = undefined;
    for (const [topic, offset] of stale ?? []) this.cursors!.set(topic, offset);
    // As on Kafka: the copy's offsets, or the log's when later (written by an owner without rows).
    for (const [topic, offset] of startAt) {
      const committed = this.cursors?.get(topic);
      if (committed !== undefined) this.cursors!.set(topic, Math.max(committed, offset));
    }
  }

  async poll(maxRecords: number, maxWaitMs: number, topics?: readonly string[]): Promise<readonly LogRecord[]> {
    this.trace.push('poll');
    if (!this.cursors) throw new Error(`memory lease of partition ${this.partition}: poll before resume`);
    let out = this.available(maxRecords, topics);
    if (out.length === 0 && this.active_ && maxWaitMs > 0) {
      await this.log.waitForData(maxWaitMs);
      out = this.available(maxRecords, topics);
    }
    if (!this.active_) return [];
    for (const record of out) this.cursors.set(record.topic, record.offset + 1);
    return out;
  }

  inputIdle(): boolean {
    return this.cursors !== undefined && this.available(1).length === 0;
  }

  unpoll(records: readonly LogRecord[]): void {
    for (const record of records) {
      const cursor = this.cursors?.get(record.topic);
      if (cursor !== undefined && record.offset < cursor) this.cursors!.set(record.topic, record.offset);
    }
  }

  async commit(plan: CommitPlan): Promise<CommitResult> {
    this.trace.push('commit');
    const error = this.script.commitErrors.shift();
    if (error !== undefined) throw error;
    if (this.epoch === undefined || this.epoch !== this.log.epoch(this.partition)) {
      throw new ProducerFencedError(`memory lease of partition ${this.partition}: producer epoch ${this.epoch} was fenced`, { partition: this.partition });
    }
    this.commits.push(plan);
    return this.log.write(plan);
  }

  async rewind(): Promise<void> {
    this.trace.push('rewind');
    this.rewindCursors();
  }

  async confirmOwnership(): Promise<boolean> {
    this.trace.push('confirmOwnership');
    return this.script.confirmOwnership.shift() ?? true;
  }

  private rewindCursors(): void {
    this.cursors = new Map(this.log.options.inputs.map((topic) => [topic, this.log.committedOffset(topic, this.partition)]));
  }

  private available(maxRecords: number, topics: readonly string[] = this.log.options.inputs): LogRecord[] {
    const out: LogRecord[] = [];
    for (const topic of topics) {
      const records = this.log.records(topic, this.partition);
      for (let i = this.cursors!.get(topic) ?? 0; i < records.length && out.length < maxRecords; i++) out.push(records[i]!);
    }
    return out;
  }
}

/** Follows changelog partitions of a MemoryLog when the test says so (`deliver`). */
export class MemoryFollower implements ChangelogFollower {
  /** Every `follow` call's partitions and offsets, in order. */
  readonly calls: Array<Map<number, number>> = [];
  private from = new Map<number, number>();
  private sink: ChangelogSink | undefined;
  stopped = false;

  constructor(private readonly log: MemoryLog) {}

  async follow(from: ReadonlyMap<number, number>, sink: ChangelogSink): Promise<void> {
    this.calls.push(new Map(from));
    this.from = new Map(from);
    this.sink = sink;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
  }

  /** Partitions followed now, with the next offset of each. */
  get following(): ReadonlyMap<number, number> {
    return this.from;
  }

  /** Delivers every followed partition's changelog records from its offset to the end. */
  deliver(): void {
    const sink = this.sink;
    if (!sink) return;
    for (const [partition, offset] of this.from) {
      const log = this.log.changelog(partition);
      const records = log.slice(offset);
      if (records.length > 0) sink.records(partition, records);
      this.from.set(partition, log.length);
      sink.position(partition, log.length, log.length);
    }
  }
}

// ---- a tiny app and the context its partition owners share (fixtures of the partition tests) ----

interface Deposit {
  account: string;
  amount: number;
}
interface Deposited {
  account: string;
  balance: number;
}
interface Balance {
  balance: number;
}

const ledgerSchemas = {
  Deposit: record<Deposit>({
    type: 'record',
    name: 'Deposit',
    namespace: 'ledger',
    fields: [
      { name: 'account', type: 'string' },
      { name: 'amount', type: 'long' },
    ],
  }),
  Deposited: record<Deposited>({
    type: 'record',
    name: 'Deposited',
    namespace: 'ledger.out',
    fields: [
      { name: 'account', type: 'string' },
      { name: 'balance', type: 'long' },
    ],
  }),
  Balance: record<Balance>({ type: 'record', name: 'Balance', namespace: 'ledger', fields: [{ name: 'balance', type: 'long' }] }),
};

export const LEDGER_PARTITIONS = 3;

const ledgerApp = defineApp({
  name: 'ledger',
  partitions: LEDGER_PARTITIONS,
  events: ledgerSchemas,
  tables: { balances: table({ key: 'string', value: ledgerSchemas.Balance }) },
  inputs: [{ topic: 'deposits', events: ['Deposit'] }],
  outputs: { Deposited: 'deposited' },
  procedures: {
    Deposit: {
      partitionKey: (d) => d.account,
      emits: ['Deposited'],
      handle(ctx, d) {
        const balance = (ctx.tables.balances.get(d.account)?.balance ?? 0) + d.amount;
        ctx.tables.balances.put(d.account, { balance });
        ctx.emit('Deposited', { account: d.account, balance });
      },
    },
  },
});

/** The ledger app compiled, its codec, and helpers to write its input and changelog records. */
export class Ledger {
  readonly app: CompiledApp = compileApp(ledgerApp);
  readonly catalog = new SchemaCatalog([...this.app.events.values()].map((e) => e.type));
  readonly log: MemoryLog;

  constructor(options: { chunkSize?: number } = {}) {
    this.log = new MemoryLog({
      topics: {
        deposits: LEDGER_PARTITIONS,
        deposited: 2,
        [this.app.changelogTopic]: LEDGER_PARTITIONS,
        [this.app.deadLetterTopic]: LEDGER_PARTITIONS,
      },
      inputs: ['deposits'],
      changelogTopic: this.app.changelogTopic,
      ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
    });
  }

  /** Appends a Deposit input record to `partition` of the input topic. */
  deposit(partition: number, account: string, amount: number): void {
    this.log.appendNow([
      { topic: 'deposits', partition, timestamp: 1_700_000_000_000, key: Buffer.from(account), value: this.catalog.encode('ledger.Deposit', { account, amount }) },
    ]);
  }

  /** A changelog record setting `account`'s balance (undefined: a tombstone). */
  changeRecord(partition: number, account: string, balance: number | undefined): OutRecord {
    const schema = this.app.tables.get('balances')!;
    return {
      topic: this.app.changelogTopic,
      partition,
      timestamp: 1_700_000_000_000,
      key: encodeChangeKey('balances', account),
      value: balance === undefined ? null : new RowCodec([schema]).encodeValue('balances', { balance }),
    };
  }

  /** Appends changelog records (as a previous owner would have committed them). */
  writeChangelog(partition: number, rows: ReadonlyArray<readonly [string, number | undefined]>): void {
    this.log.appendNow(rows.map(([account, balance]) => this.changeRecord(partition, account, balance)));
  }

  /** Decoded Deposited outputs of every partition of the output topic. */
  outputs(): Deposited[] {
    const out: Deposited[] = [];
    for (let p = 0; p < this.log.partitionsOf('deposited'); p++) {
      for (const r of this.log.records('deposited', p)) out.push({ ...(this.catalog.decode(r.value!).value as Deposited) });
    }
    return out;
  }

  /** Rows of the changelog partition after compaction: account → balance (deleted rows absent). */
  changelogRows(partition: number): Record<string, number> {
    const schema = this.app.tables.get('balances')!;
    const rows: Record<string, number> = {};
    for (const r of this.log.changelog(partition)) {
      const [table, account] = JSON.parse(r.key!.toString('utf8')) as [string, string];
      if (table !== 'balances') continue;
      if (r.value === null) delete rows[account];
      else rows[account] = (schema.valueType.fromBuffer(rowSchemaOf(r.value) ? r.value.subarray(10) : r.value) as Balance).balance;
    }
    return rows;
  }

  /** Committed rows of the balances table: account → balance. */
  static balances(state: PartitionState | undefined): Record<string, number> {
    if (!state) throw new Error('no state');
    return Object.fromEntries(state.scanCommitted('balances').map(([k, v]) => [String(k), (v as Balance).balance]));
  }

  /** What owners of this instance share; `stop()` makes them finish. */
  context(observer?: PartitionObserver, processing: Partial<OwnerContext['processing']> = {}): OwnerContext & { stop(): void } {
    let stopping = false;
    let signal!: () => void;
    const stopped = new Promise<void>((resolve) => (signal = resolve));
    return {
      app: this.app,
      codec: this.catalog,
      rows: new RowCodec(this.app.tables.values(), this.app.droppedTables),
      globals: globalViews(this.app),
      processing: { commitIntervalMs: 5, commitLingerMs: 5, maxBatchRecords: 100, retryBackoffMs: 1, ...processing },
      partitionsOf: (topic) => this.log.partitionsOf(topic),
      logger: createLogger('silent'),
      observer,
      stopped,
      isStopping: () => stopping,
      stop: () => {
        stopping = true;
        signal();
      },
    };
  }
}

/** A PartitionObserver that records what the partition core reported. */
export class RecordingObserver implements PartitionObserver {
  readonly roles: Array<{ partition: number; from: PartitionRole | undefined; to: PartitionRole | undefined }> = [];
  readonly failed: Array<{ partition: number; code: string }> = [];
  readonly failovers: number[] = [];
  readonly commitFailures: number[] = [];
  readonly batches: Array<{ partition: number; records: number }> = [];
  readonly restores: Array<{ partition: number; records: number }> = [];
  readonly handled: Array<{ eventType: string; partition: number; ok: number; failed: number }> = [];

  /** Roles `partition` went through, starting with its first (e.g. standby, fencing, restoring, active). */
  roleSequence(partition: number): Array<PartitionRole | undefined> {
    const moves = this.roles.filter((r) => r.partition === partition);
    return moves.length === 0 ? [] : [moves[0]!.from, ...moves.map((m) => m.to)].filter((role, i) => i > 0 || role !== undefined);
  }

  roleChanged(partition: number, from: PartitionRole | undefined, to: PartitionRole | undefined): void {
    this.roles.push({ partition, from, to });
  }
  batchCommitted(partition: number, records: number): void {
    this.batches.push({ partition, records });
  }
  commitFailed(partition: number): void {
    this.commitFailures.push(partition);
  }
  restoreProgress(): void {}
  restoreFinished(partition: number, records: number): void {
    this.restores.push({ partition, records });
  }
  failedOver(partition: number): void {
    this.failovers.push(partition);
  }
  partitionFailed(partition: number, code: string): void {
    this.failed.push({ partition, code });
  }
  standbyLag(): void {}
  eventsHandled(eventType: string, partition: number, ok: number, failed: number): void {
    this.handled.push({ eventType, partition, ok, failed });
  }
  handlerLatency(): void {}
  deadLettered(): void {}
}

/** Waits until `predicate` holds (checked every millisecond), failing after `timeoutMs` with `what` (evaluated then). */
export async function waitFor(predicate: () => boolean, what: string | (() => string), timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
