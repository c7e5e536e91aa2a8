import { appliedOffsets, fastProduceInstalled, readCommittedFixed, stableOffsets } from './kafkajs-patches.js';
import { AssignerProtocol, Partitioners, type Admin, type Batch, type Consumer, type ICustomPartitioner, type Kafka, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import { Observable, type Subscriber } from 'rxjs';
import type { Logger } from 'pino';
import { describeError, LeaseRevokedError, ProducerFencedError, TransportError } from '../../errors.js';
import type { ChangelogFollower, CommitResult, EventLog, GroupMember, MembershipPolicy, PartitionLease, TopicPartitionOffset, TopicSpec } from '../event-log.js';
import type { CommitPlan, LogRecord, OutRecord } from '../records.js';
import { faradAssigner } from './assigner.js';
import { KafkaChangelogFollower } from './changelog-follower.js';
import { readPartitionToEnd } from './changelog-reader.js';
import { consumerRetry, createKafka, type KafkaConnection } from './client.js';
import { fromKafka, toTopicMessageSlices } from './records.js';
import { ensureKafkaTopics } from './topics.js';
import { retryTransient, watermarksOf } from './retry-transient.js';

/** kafkajs's own grouping is quadratic in the messages per partition of one send. */
const SLICE_MESSAGES = fastProduceInstalled ? Infinity : 1_000;

/**
 * farad's records name their partition. kafkajs's default partitioner honours that too, but
 * filters the topic's partition list for every message before it looks.
 */
const byRecordPartition: ICustomPartitioner = () => {
  const byKey = Partitioners.DefaultPartitioner();
  return (args) => args.message.partition ?? byKey(args);
};

export interface KafkaLogOptions {
  readonly connection: KafkaConnection;
  readonly logger: Logger;
  /** The app's name: consumer group and transactional id prefix. */
  readonly group: string;
  readonly partitions: number;
  readonly inputTopics: readonly string[];
  /** Input topics of farad's own protocol: never paused by backpressure (a held partition waits on them). */
  readonly controlTopics?: readonly string[];
  readonly changelogTopic: string;
  readonly sessionTimeoutMs: number;
  /** Members learn of a rebalance at their next heartbeat: a short interval shortens handovers. */
  readonly heartbeatIntervalMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly replicationFactor: number;
  /** Records buffered per partition before its fetching pauses. */
  readonly maxQueuedRecords: number;
  readonly transactionTimeoutMs: number;
}

/**
 * farad on Kafka through kafkajs. Input is consumed by the app's consumer group with farad's
 * co-partitioning assignor; every partition this member is assigned becomes a lease with its own
 * transactional producer (`<app>-<partition>`), so each batch commits outputs, changelog, dead
 * letters and input offsets in one Kafka transaction (exactly-once, EOS v1 style).
 */
export class KafkaLog implements EventLog {
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private connecting: Promise<Producer> | undefined;
  private consumer: Consumer | undefined;
  private counts = new Map<string, number>();
  private readonly owned = new Map<number, KafkaLease>();
  private reconciling: Promise<void> = Promise.resolve();
  private closed = false;
  /** This member's id in the group as of the last join. */
  private memberId: string | undefined;
  /** Partitions assigned here by the last generation this member joined. */
  private assigned: ReadonlySet<number> = new Set();

  private constructor(private readonly options: KafkaLogOptions) {
    this.kafka = createKafka(options.connection, options.logger);
    this.admin = this.kafka.admin();
  }

  static async open(options: KafkaLogOptions): Promise<KafkaLog> {
    if (!readCommittedFixed) {
      options.logger.warn('kafkajs was loaded before farad: its read_committed filter may hand over records of aborted transactions (load farad before kafkajs)');
    }
    if (!fastProduceInstalled) options.logger.warn('kafkajs was loaded before farad: records are sent with kafkajs\'s slower encoder, in slices of 1,000 (load farad before kafkajs)');
    const log = new KafkaLog(options);
    try {
      await log.admin.connect();
    } catch (err) {
      throw new TransportError(
        `cannot connect to Kafka at ${options.connection.brokers.join(',')}: ${describeError(err)}; check kafka.brokers (FARAD_KAFKA_BROKERS) and the TLS/SASL settings`,
        {},
        { cause: err },
      );
    }
    return log;
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.counts = await ensureKafkaTopics(this.admin, specs, this.options.replicationFactor, this.options.logger);
  }

  partitionsOf(topic: string): number {
    const count = this.counts.get(topic);
    if (count === undefined) throw new TransportError(`topic "${topic}" is not one of the app's topics`, { topic });
    return count;
  }

  /**
   * Appends records with an idempotent producer and acks from all in-sync replicas; answers, per
   * topic partition written, the offset after its last record (the broker's base offset of the
   * send's batch there plus the records in it).
   */
  async append(records: readonly OutRecord[]): Promise<readonly TopicPartitionOffset[]> {
    if (records.length === 0) return [];
    // One producer, however many appends arrive before it has connected.
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: byRecordPartition });
      await producer.connect();
      return producer;
    })().catch((err: unknown) => {
      this.connecting = undefined;
      throw err;
    });
    const producer = await this.connecting;
    const ends = new Map<string, TopicPartitionOffset>();
    for (const topicMessages of toTopicMessageSlices(records, SLICE_MESSAGES)) {
      const acked = await producer.sendBatch({ topicMessages, acks: -1 });
      for (const end of await this.sliceEnds(topicMessages, acked)) ends.set(`${end.partition}/${end.topic}`, end);
    }
    return [...ends.values()];
  }

  /**
   * Where one send left each partition it wrote. A send is one record batch per partition, so
   * its records there are contiguous from the batch's base offset. Should the broker's answer
   * lack one (it never should with acks=all), the partition's end now is used: later, never earlier.
   */
  private async sliceEnds(topicMessages: ReadonlyArray<{ topic: string; messages: readonly Message[] }>, acked: readonly RecordMetadata[]): Promise<TopicPartitionOffset[]> {
    const out: TopicPartitionOffset[] = [];
    for (const { topic, messages } of topicMessages) {
      const counts = new Map<number, number>();
      for (const { partition } of messages) counts.set(partition!, (counts.get(partition!) ?? 0) + 1);
      for (const [partition, count] of counts) {
        const base = acked.find((m) => m.topicName === topic && m.partition === partition)?.baseOffset;
        const offset = base !== undefined && Number(base) >= 0 ? Number(base) + count : await this.endOffset(topic, partition);
        out.push({ topic, partition, offset });
      }
    }
    return out;
  }

  async *readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    yield* readPartitionToEnd(this.kafka, this.admin, topic, partition, fromOffset, this.options.logger);
  }

  consumerLag(): Array<{ partition: number; lag: number }> {
    return [...this.owned.values()].map((lease) => ({ partition: lease.partition, lag: lease.lag() }));
  }

  leases(membership: MembershipPolicy): Observable<PartitionLease> {
    return new Observable<PartitionLease>((subscriber) => {
      this.startConsumer(subscriber, membership).catch((err: unknown) => subscriber.error(err));
      return () => undefined;
    });
  }

  changelogFollower(): ChangelogFollower {
    return new KafkaChangelogFollower(this.kafka, this.options.changelogTopic, this.options.logger);
  }

  followerOf(topic: string): ChangelogFollower {
    return new KafkaChangelogFollower(this.kafka, topic, this.options.logger);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lease of this.owned.values()) lease.revoke();
    await this.reconciling;
    await this.consumer?.disconnect().catch(() => undefined);
    for (const lease of this.owned.values()) await lease.close();
    this.owned.clear();
    const producer = await this.connecting?.catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }

  /**
   * Offsets the group has committed for the input topics of one partition, with every finished
   * transaction's commit in them (stable); a topic without one starts at its first offset held.
   */
  async committedOffsets(partition: number, topics: readonly string[] = this.options.inputTopics): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const unstable = (waitedMs: number): void =>
      this.options.logger.warn(
        { partition, waitedMs },
        'the group coordinator still holds an unfinished transactional offset commit of this partition; starting from the offsets it has applied, which may process the last committed batch again',
      );
    for (const [topic, committed] of await stableOffsets(this.admin, this.options.group, topics, partition, unstable)) {
      out.set(topic, committed >= 0 ? committed : (await watermarksOf(this.admin, topic, partition)).low);
    }
    return out;
  }

  /**
   * The offsets the group has applied for the input topics of one partition (-1: none), without
   * waiting for a pending transactional commit: a lower bound of what committed.
   */
  async appliedOffsets(partition: number, topics: readonly string[]): Promise<Map<string, number>> {
    return appliedOffsets(this.admin, this.options.group, topics, partition);
  }

  async endOffset(topic: string, partition: number): Promise<number> {
    return (await watermarksOf(this.admin, topic, partition)).high;
  }

  private async startConsumer(subscriber: Subscriber<PartitionLease>, membership: MembershipPolicy): Promise<void> {
    const { options } = this;
    // Its own client: the longer retry budget must cover its connections too (see consumerRetry).
    const retry = consumerRetry(options.sessionTimeoutMs);
    const consumer = createKafka(options.connection, options.logger, retry).consumer({
      retry,
      groupId: options.group,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      rebalanceTimeout: options.rebalanceTimeoutMs,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      // One fetch per partition roughly fits the queue bound, so pausing takes effect promptly.
      maxBytesPerPartition: Math.min(1_048_576, Math.max(16_384, options.maxQueuedRecords * 64)),
      partitionAssigners: [faradAssigner(membership)],
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const assigned = new Set<number>();
      for (const partitions of Object.values(event.payload.memberAssignment)) for (const p of partitions) assigned.add(p);
      options.logger.info({ partitions: [...assigned].sort((a, b) => a - b) }, 'group assignment');
      this.assigned = assigned;
      membership.rebalanced?.();
      // A new member id means this member had been dropped from the group (its session expired,
      // e.g. a long pause): meanwhile others may have owned its partitions and fenced its
      // producers, so every lease it still holds is stale and must be taken over afresh.
      if (this.memberId !== undefined && this.memberId !== event.payload.memberId) {
        options.logger.warn({ partitions: [...this.owned.keys()] }, 'rejoined the group as a new member: dropping stale leases');
        for (const lease of this.owned.values()) lease.revoke();
      }
      this.memberId = event.payload.memberId;
      // Pause new partitions at once (and those whose lease ended, e.g. fenced): their input must
      // not flow before fence + restore.
      const fresh = [...assigned].filter((p) => !this.owned.get(p)?.active);
      if (fresh.length > 0) consumer.pause(options.inputTopics.map((topic) => ({ topic, partitions: fresh })));
      this.reconciling = this.reconciling
        .then(() => this.reconcile(assigned, subscriber))
        .then(() => this.learnGroup(membership))
        .catch((err: unknown) => options.logger.warn({ err: describeError(err) }, 'could not learn the group assignment'));
    });
    consumer.on(consumer.events.CRASH, (event) => {
      options.logger.error({ err: describeError(event.payload.error), restart: event.payload.restart }, 'kafka consumer crashed');
      // kafkajs gave up on the consumer: input has stopped. Fail loudly (health turns 503) so
      // the orchestrator restarts this instance, instead of running on with nothing to read.
      if (!event.payload.restart) {
        subscriber.error(new TransportError(`Kafka consumer stopped for good: ${describeError(event.payload.error)}`, {}, { cause: event.payload.error }));
      }
    });
    // Batches of transaction markers alone never reach eachBatch; their end does (a partition whose
    // input ends with a marker would otherwise never look read to its end).
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.lastOffset !== null) this.owned.get(payload.partition)?.fetched(payload.topic, Number(payload.lastOffset) + 1, Number(payload.highWatermark));
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...options.inputTopics], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      // A batch fetched before a pending seek (a lease resuming at its committed offset) is stale.
      eachBatch: async ({ batch, isStale }) => {
        if (!isStale()) this.owned.get(batch.partition)?.accept(batch);
      },
    });
  }

  /**
   * Tells the membership policy every member's report and assignment (kafkajs shows a member
   * only its own), once the group is stable.
   */
  private async learnGroup(membership: MembershipPolicy): Promise<void> {
    const members = await this.settledMembers();
    if (members && this.memberId) membership.settled(members, this.memberId);
  }

  /** Every member with its report and partitions, or undefined while the group rebalances. */
  private async settledMembers(): Promise<GroupMember[] | undefined> {
    const described = await this.admin.describeGroups([this.options.group]);
    const group = described.groups[0];
    // While a newer rebalance is under way the broker lists members without metadata or
    // assignment (decoding them fails); that generation's GROUP_JOIN learns the group again.
    if (group?.state !== 'Stable') {
      this.options.logger.debug({ state: group?.state }, 'group is rebalancing; its next generation is learnt instead');
      return undefined;
    }
    return group.members.map((member) => {
      const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
      const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
      const partitions = new Set<number>();
      for (const list of Object.values(assignment?.assignment ?? {})) for (const p of list) partitions.add(p);
      return { memberId: member.memberId, report: metadata?.userData ?? Buffer.alloc(0), partitions: [...partitions].sort((a, b) => a - b) };
    });
  }

  /**
   * True when the stable group assigns `partition` to this member (a fenced lease that still
   * owns its partition must take it back); waits out a rebalance, false once the lease ended.
   */
  async stillAssigned(lease: KafkaLease): Promise<boolean> {
    for (let attempt = 0; lease.active && !this.closed; attempt++) {
      const members = await this.settledMembers().catch(() => undefined);
      if (members) {
        const mine = members.find((m) => m.memberId === this.memberId);
        return lease.active && mine !== undefined && mine.partitions.includes(lease.partition);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(200 * 2 ** attempt, 2_000)));
    }
    return false;
  }

  /**
   * Ends leases of partitions no longer assigned and leases that ended (stale after a rejoin);
   * hands out new leases for assigned partitions without a live one.
   */
  private async reconcile(assigned: Set<number>, subscriber: Subscriber<PartitionLease>): Promise<void> {
    for (const [partition, lease] of this.owned) {
      if (assigned.has(partition) && lease.active) continue;
      this.owned.delete(partition);
      lease.revoke();
      void lease.close();
    }
    // New leases start paused; their owners fence, catch up and then resume them.
    for (const partition of [...assigned].sort((a, b) => a - b)) {
      if (this.owned.has(partition) || this.closed) continue;
      const lease = new KafkaLease(this, this.kafka, this.consumer!, partition, this.options);
      this.owned.set(partition, lease);
      subscriber.next(lease);
    }
  }
}


/** How long after resuming a partition whose input was not fetched yet counts as idle anyway. */
const IDLE_SETTLE_MS = 500;

/** INVALID_PRODUCER_EPOCH (47) and PRODUCER_FENCED (90, which kafkajs 2.2 does not name). */
const FENCED_CODES = new Set([47, 90]);

/** Fenced producer errors, by the broker's error code: another producer took the transactional id. */
function isFenced(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause ?? (e as { originalError?: unknown }).originalError) {
    if (FENCED_CODES.has((e as { code?: number }).code ?? -1)) return true;
  }
  return false;
}

class KafkaLease implements PartitionLease {
  private live = true;
  private producer: Producer | undefined;
  private queue: LogRecord[] = [];
  private head = 0;
  /** Records handed to the owner since the last commit, replayed after a failed commit. */
  private uncommitted: LogRecord[] = [];
  /** Log end (high watermark) per input topic, as last seen by a fetch. */
  private readonly logEnd = new Map<string, number>();
  /** Offset after the last record or marker fetched per input topic since input resumed. */
  private readonly fetchedThrough = new Map<string, number>();
  private resumedAt = 0;
  /** Committed (next) offset per input topic. */
  private readonly committedAt = new Map<string, number>();
  /** Next offset to accept per input topic; unset until input resumes after restore. */
  private readonly nextOffset = new Map<string, number>();
  /** Offset after this lease's last committed changelog record (0: it committed none yet). */
  private changelogWritten = 0;
  private resumed = false;
  private paused = true;
  private wake: (() => void) | undefined;
  private onRevoke: () => void = () => undefined;
  readonly revoked = new Promise<void>((resolve) => (this.onRevoke = resolve));

  constructor(
    private readonly log: KafkaLog,
    private readonly kafka: Kafka,
    private readonly consumer: Consumer,
    readonly partition: number,
    private readonly options: KafkaLogOptions,
  ) {}

  get active(): boolean {
    return this.live;
  }

  /** Takes over the partition's transactional id: aborts and bars any previous owner's transaction. */
  async fence(): Promise<void> {
    if (!this.live) throw new LeaseRevokedError(`partition ${this.partition} is no longer assigned here; not fencing`, { partition: this.partition });
    const old = this.producer;
    this.producer = undefined;
    await old?.disconnect().catch(() => undefined);
    const producer = this.kafka.producer({
      transactionalId: `${this.options.group}-${this.partition}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.options.transactionTimeoutMs,
      // Every record carries its partition; the partitioner is never consulted.
      createPartitioner: byRecordPartition,
    });
    await producer.connect();
    // kafkajs defers InitProducerId to the first transaction; force it now.
    try {
      const txn = await producer.transaction();
      await txn.abort();
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      if (isFenced(err)) throw new ProducerFencedError(`partition ${this.partition}: fenced while fencing (another instance took it meanwhile)`, { partition: this.partition }, { cause: err });
      throw new TransportError(`could not fence partition ${this.partition}'s producer: ${describeError(err)}`, { partition: this.partition }, { cause: err });
    }
    this.producer = producer;
    if (!this.live) {
      // Revoked while InitProducerId ran: the new owner fences again after us, and this lease
      // commits nothing more.
      throw new LeaseRevokedError(`partition ${this.partition} was revoked while it was being fenced`, { partition: this.partition });
    }
  }

  revoke(): void {
    this.live = false;
    this.wake?.();
    this.onRevoke();
  }

  confirmOwnership(): Promise<boolean> {
    return this.log.stillAssigned(this);
  }

  /**
   * After fence and catch-up: input starts at the copy's offsets, or at the group's when those
   * are later (during a rolling upgrade, an owner on an earlier farad committed offsets without
   * rows). A topic the copy has no row for waits for a stable answer from the group coordinator.
   */
  async resume(startAt: ReadonlyMap<string, number>): Promise<void> {
    if (!this.live) throw new LeaseRevokedError(`partition ${this.partition} is no longer assigned here`, { partition: this.partition });
    const inCopy = this.options.inputTopics.filter((topic) => startAt.has(topic));
    const notInCopy = this.options.inputTopics.filter((topic) => !startAt.has(topic));
    const committed = new Map(notInCopy.length > 0 ? await this.log.committedOffsets(this.partition, notInCopy) : []);
    if (inCopy.length > 0) {
      for (const [topic, applied] of await this.log.appliedOffsets(this.partition, inCopy)) committed.set(topic, Math.max(applied, startAt.get(topic)!));
    }
    this.queue = [];
    this.head = 0;
    this.uncommitted = [];
    for (const [topic, offset] of committed) {
      this.nextOffset.set(topic, offset);
      this.committedAt.set(topic, offset);
      this.consumer.seek({ topic, partition: this.partition, offset: String(offset) });
    }
    this.fetchedThrough.clear();
    this.resumedAt = Date.now();
    this.resumed = true;
    this.paused = false;
    this.consumer.resume(this.options.inputTopics.map((topic) => ({ topic, partitions: [this.partition] })));
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
  }

  async changelogEnd(): Promise<number> {
    // The admin's ListOffsets answers the last stable offset (read_committed), and the broker
    // writes commit markers after EndTxn returns: right after a commit it may still point before
    // the transaction just committed, and a snapshot would claim an older offset than its state.
    const stable = await this.log.endOffset(this.options.changelogTopic, this.partition);
    return Math.max(stable, this.changelogWritten);
  }

  readChangelog(fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    return this.log.readRange(this.options.changelogTopic, this.partition, fromOffset);
  }

  /** Called from the consumer's eachBatch: queues what continues the partition's input. */
  /** Records between the committed offsets and the log end, over the input topics. */
  lag(): number {
    let lag = 0;
    for (const [topic, end] of this.logEnd) lag += Math.max(0, end - (this.committedAt.get(topic) ?? end));
    return lag;
  }

  /** A fetch of `topic` ended at `through` (markers included) with the log ending at `highWatermark`. */
  fetched(topic: string, through: number, highWatermark: number): void {
    if (!this.resumed || through < (this.nextOffset.get(topic) ?? Infinity) - 1) return;
    this.fetchedThrough.set(topic, Math.max(this.fetchedThrough.get(topic) ?? 0, through));
    this.logEnd.set(topic, Math.max(this.logEnd.get(topic) ?? 0, highWatermark));
  }

  inputIdle(): boolean {
    if (!this.resumed || this.queue.length > this.head) return false;
    for (const topic of this.options.inputTopics) {
      const end = this.logEnd.get(topic);
      const through = Math.max(this.fetchedThrough.get(topic) ?? 0, this.nextOffset.get(topic) ?? 0);
      // A partition with nothing to fetch gets no batch: after a moment, trust the last end seen.
      if (end === undefined || (!this.fetchedThrough.has(topic) && through < end)) {
        if (Date.now() - this.resumedAt < IDLE_SETTLE_MS) return false;
        if (end === undefined) continue;
      }
      if (through < end) return false;
    }
    return true;
  }

  accept(batch: Batch): void {
    this.logEnd.set(batch.topic, Number(batch.highWatermark));
    if (!this.live) return;
    const next = this.nextOffset.get(batch.topic);
    if (next === undefined) return; // still restoring; input resumes from the committed offset later
    let expected = next;
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (offset < expected) continue; // redelivered after a rejoin or seek
      this.queue.push(fromKafka(batch.topic, batch.partition, message));
      expected = offset + 1;
    }
    this.nextOffset.set(batch.topic, expected);
    this.fetched(batch.topic, Number(batch.lastOffset()) + 1, Number(batch.highWatermark));
    if (this.queue.length - this.head >= this.options.maxQueuedRecords && !this.paused) {
      this.paused = true;
      this.consumer.pause(this.dataTopics().map((topic) => ({ topic, partitions: [this.partition] })));
    }
    this.wake?.();
  }

  /** Input topics that backpressure may pause. */
  private dataTopics(): readonly string[] {
    const control = this.options.controlTopics ?? [];
    return control.length === 0 ? this.options.inputTopics : this.options.inputTopics.filter((t) => !control.includes(t));
  }

  async poll(maxRecords: number, maxWaitMs: number, topics?: readonly string[]): Promise<readonly LogRecord[]> {
    if (!this.live || !this.resumed) return [];
    if (!this.hasQueued(topics) && maxWaitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, maxWaitMs);
        const wake = (): void => done();
        this.wake = wake;
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
      this.wake = undefined;
    }
    if (!this.live) return [];
    const taken = topics ? this.takeOf(topics, maxRecords) : this.takeAll(maxRecords);
    for (const record of taken) this.uncommitted.push(record);
    if (this.paused && this.queue.length - this.head < this.options.maxQueuedRecords / 2) {
      this.paused = false;
      this.consumer.resume(this.dataTopics().map((topic) => ({ topic, partitions: [this.partition] })));
    }
    return taken;
  }

  unpoll(records: readonly LogRecord[]): void {
    if (records.length === 0) return;
    // They were the tail of what the last poll handed out.
    this.uncommitted.length = Math.max(0, this.uncommitted.length - records.length);
    this.queue = [...records, ...this.queue.slice(this.head)];
    this.head = 0;
  }

  private hasQueued(topics: readonly string[] | undefined): boolean {
    if (!topics) return this.queue.length > this.head;
    for (let i = this.head; i < this.queue.length; i++) if (topics.includes(this.queue[i]!.topic)) return true;
    return false;
  }

  private takeAll(maxRecords: number): LogRecord[] {
    const end = Math.min(this.queue.length, this.head + maxRecords);
    const taken = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return taken;
  }

  /** Records of `topics` only, in order; the others keep their place. */
  private takeOf(topics: readonly string[], maxRecords: number): LogRecord[] {
    const taken: LogRecord[] = [];
    const rest: LogRecord[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const record = this.queue[i]!;
      if (taken.length < maxRecords && topics.includes(record.topic)) taken.push(record);
      else rest.push(record);
    }
    if (taken.length > 0) {
      this.queue = rest;
      this.head = 0;
    }
    return taken;
  }

  async commit(plan: CommitPlan): Promise<CommitResult> {
    if (!this.live) throw new LeaseRevokedError(`partition ${this.partition} is no longer owned here`, { partition: this.partition });
    // A producer replaced after a failed transaction must be fenced again by the owner, which
    // first checks that the partition is still its own (fencing blindly could fence a new owner).
    const producer = this.producer;
    if (!producer) throw new ProducerFencedError(`partition ${this.partition}: the producer must be fenced again`, { partition: this.partition });
    const txn = await producer.transaction();
    const acked: RecordMetadata[] = [];
    try {
      for (const topicMessages of toTopicMessageSlices(plan.records, SLICE_MESSAGES)) acked.push(...(await txn.sendBatch({ topicMessages, acks: -1 })));
      const topics = plan.offsets.map((o) => ({ topic: o.topic, partitions: [{ partition: o.partition, offset: String(o.offset) }] }));
      if (topics.length > 0) await txn.sendOffsets({ consumerGroupId: this.options.group, topics });
      await txn.commit();
    } catch (err) {
      await txn.abort().catch(() => undefined);
      // A producer whose transaction could not end cleanly cannot start another: replace it.
      this.producer = undefined;
      await producer.disconnect().catch(() => undefined);
      if (isFenced(err)) {
        throw new ProducerFencedError(`partition ${this.partition}: producer fenced (another producer took its transactional id)`, { partition: this.partition }, { cause: err });
      }
      throw new TransportError(`Kafka transaction of partition ${this.partition} failed: ${describeError(err)}`, { partition: this.partition }, { cause: err });
    }
    this.uncommitted = [];
    for (const o of plan.offsets) this.committedAt.set(o.topic, o.offset);
    const changelog = acked.filter((m) => m.topicName === this.options.changelogTopic && m.partition === this.partition);
    if (changelog.length === 0) return { changelogNext: undefined };
    // Only this partition's owner writes its changelog partition: the batch's records are contiguous.
    const count = plan.records.filter((r) => r.topic === this.options.changelogTopic && r.partition === this.partition).length;
    const first = Math.min(...changelog.map((m) => Number(m.baseOffset)));
    this.changelogWritten = Math.max(this.changelogWritten, first + count);
    return { changelogNext: this.changelogWritten };
  }

  async rewind(): Promise<void> {
    // The aborted batch's records are replayed from memory: the consumer never rewinds.
    this.queue = [...this.uncommitted, ...this.queue.slice(this.head)];
    this.head = 0;
    this.uncommitted = [];
  }
}
