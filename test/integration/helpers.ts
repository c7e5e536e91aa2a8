/**
 * Shared helpers of the Kafka integration tests: a real broker (KAFKA_BROKERS), plain kafkajs
 * clients, Avro single-object encoding done here (not through farad's catalog), an independent
 * Voter model, topic readers that stop exactly at the end offsets, and bounded waiting.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { freePort, sleep, waitFor } from '../support/wait.js';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import avsc from 'avsc';
import { Kafka, logLevel, Partitioners, type Admin, type IHeaders, type Producer } from 'kafkajs';
import { loadConfig, startService, type App, type Config, type ConfigInput, type Service } from '../../src/index.js';
import { seededRandom } from '../../src/procedures/index.js';
import { fingerprint } from '../../src/codec/index.js';
import { AREA_CODE_STATES } from '../../examples/voter/area-codes.js';
import { voterCopy, voterNames, type VoterNames } from './fixtures/voter-app.js';

export { voterCopy, voterNames, type VoterNames };

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ---- environment, waiting ----------------------------------------------------------------------

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set; run the tests with \`npm test\` (scripts/test.mjs) or after \`npm run services:up\``);
  }
  return value;
}

export function brokers(): string[] {
  return brokerList(requireEnv('KAFKA_BROKERS'));
}

/** A comma-separated `host:port` list as an array. */
export function brokerList(value: string): string[] {
  return value
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
}

/**
 * The Kafka 3.9 broker (KAFKA39_BROKERS) that test/integration/voter-kafka.test.ts also runs
 * against, beside the main one (KAFKA_BROKERS, the newest Kafka 4.x); `npm test` starts both.
 */
export function kafka39Brokers(): string[] {
  return brokerList(requireEnv('KAFKA39_BROKERS'));
}

/**
 * Why the Kafka 3.9 cases are skipped: KAFKA39_BROKERS is not set (servers configured by hand).
 * Under CI nothing is skipped: the cases run and fail for want of the variable.
 */
export function kafka39Skip(): string | undefined {
  const ci = process.env['CI'];
  if (process.env['KAFKA39_BROKERS'] || (ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false')) return undefined;
  return 'KAFKA39_BROKERS is not set (`npm test` and scripts/services-up.sh start a Kafka 3.9 broker and set it)';
}

/** A short random suffix for names that must not collide between tests or runs. */
export function uid(): string {
  return randomBytes(5).toString('hex');
}

export { sleep, freePort, waitFor };

// ---- kafka clients -----------------------------------------------------------------------------

/** A quiet kafkajs client of the test itself (not farad's); on KAFKA_BROKERS unless `addresses` are given. */
export function testKafka(clientId = `farad-test-${uid()}`, addresses?: string[]): Kafka {
  return new Kafka({ clientId, brokers: addresses ?? brokers(), logLevel: logLevel.NOTHING });
}

const murmur2 = Partitioners.DefaultPartitioner();

/** The partition Kafka's default (murmur2) partitioner picks for a key, as kafkajs computes it. */
export function kafkaPartition(key: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 1, replicas: [1], isr: [1] }));
  return murmur2({ topic: 'any', partitionMetadata, message: { key, value: null } });
}

/** A plain idempotent producer that partitions by key with murmur2, like any Java client. */
export async function plainProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return producer;
}

export async function createTopic(
  admin: Admin,
  topic: string,
  numPartitions: number,
  configEntries: Array<{ name: string; value: string }> = [],
): Promise<void> {
  const created = await admin.createTopics({ waitForLeaders: false, topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }] });
  if (!created) throw new Error(`topic ${topic} already exists`);
  // kafkajs's own wait for leaders gives up on UNKNOWN_TOPIC_OR_PARTITION, which a broker under
  // load answers for a moment after creating a topic: wait here, retrying what is retriable.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics[0]?.partitions ?? [];
      if (partitions.length === numPartitions && partitions.every((p) => p.leader >= 0)) return;
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic} has no leader for every partition after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Deletes the topics that exist of these (test clean-up; never fails). */
export async function deleteTopics(admin: Admin, topics: readonly string[]): Promise<void> {
  try {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((t) => existing.has(t));
    if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: 10_000 });
  } catch {
    // best effort
  }
}

/** Deletes consumer groups (test clean-up; never fails). */
export async function deleteGroups(admin: Admin, groups: readonly string[]): Promise<void> {
  try {
    await admin.deleteGroups([...groups]);
  } catch {
    // best effort: a group with members left (e.g. a killed instance not yet expired) stays
  }
}

/** Every topic and the consumer group a Voter copy uses. */
export async function cleanUpVoter(admin: Admin, names: VoterNames): Promise<void> {
  await deleteTopics(admin, [names.input, names.output, names.changelog, names.dlq]);
  await deleteGroups(admin, [names.app]);
}

/** High watermark per partition. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, number>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
}

/** The group's committed offset per partition of `topic` (-1: none). */
export async function groupOffsets(admin: Admin, group: string, topic: string): Promise<Map<number, number>> {
  const [entry] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
}

/** True when the group has committed every partition of `topic` up to its end. */
export async function allConsumed(admin: Admin, group: string, topic: string): Promise<boolean> {
  const [ends, committed] = await Promise.all([endOffsets(admin, topic), groupOffsets(admin, group, topic)]);
  for (const [partition, end] of ends) {
    if (end === 0) continue;
    if ((committed.get(partition) ?? -1) < end) return false;
  }
  return true;
}

export interface ReadRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
  /** The record's timestamp (the broker's append time on a LogAppendTime topic). */
  readonly timestamp: number;
}

/**
 * Reads a whole topic from the beginning up to the end offsets it has when called, with a
 * consumer of its own (read_committed unless `readUncommitted`). The read ends exactly at the end
 * offsets (transaction markers and aborted records count as read), so the result is complete:
 * a record missing from it is not in the topic (for read_committed: not committed).
 * Needs the topic's transactions to be decided (no open transaction), or it times out.
 */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  { readUncommitted = false, timeoutMs = 30_000 }: { readUncommitted?: boolean; timeoutMs?: number } = {},
): Promise<ReadRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `farad-test-reader-${uid()}`;
  try {
    const targets = [...(await endOffsets(admin, topic))].filter(([, end]) => end > 0);
    const records: ReadRecord[] = [];
    if (targets.length === 0) return records;
    const position = new Map<number, number>();
    const consumer = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 100, maxBytesPerPartition: 4 * 1024 * 1024 });
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== topic) return;
      const next = Number(payload.lastOffset) + 1;
      if (next > (position.get(payload.partition) ?? 0)) position.set(payload.partition, next);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            records.push({
              partition: batch.partition,
              offset: Number(m.offset),
              key: m.key === null ? null : m.key.toString(),
              value: m.value,
              headers: headerStrings(m.headers),
              timestamp: Number(m.timestamp),
            });
          }
        },
      });
      await waitFor(
        `a ${readUncommitted ? 'read_uncommitted' : 'read_committed'} read of ${topic} to its end offsets ${JSON.stringify(Object.fromEntries(targets))}`,
        () => targets.every(([p, end]) => (position.get(p) ?? 0) >= end),
        { timeoutMs, intervalMs: 50 },
      );
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
    records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    return records;
  } finally {
    await deleteGroups(admin, [groupId]);
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Everything a consumer of its own sees on `topic` during `ms` milliseconds (from the beginning).
 * For topics that may have an open transaction, where `readTopic` cannot reach the end.
 */
export async function collectFor(kafka: Kafka, topic: string, ms: number, { readUncommitted = false } = {}): Promise<ReadRecord[]> {
  const groupId = `farad-test-peek-${uid()}`;
  const records: ReadRecord[] = [];
  const consumer = kafka.consumer({ groupId, readUncommitted, maxWaitTimeInMs: 100 });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          records.push({ partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value, headers: headerStrings(m.headers), timestamp: Number(m.timestamp) });
        }
      },
    });
    await waitFor(`a consumer of ${topic} to join its group`, () => joined, { timeoutMs: 20_000, intervalMs: 20 });
    await sleep(ms);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect().catch(() => undefined);
    await deleteGroups(admin, [groupId]);
    await admin.disconnect().catch(() => undefined);
  }
  return records;
}

function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers ?? {})) {
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value !== undefined) out[name] = value.toString();
  }
  return out;
}

// ---- Avro single-object encoding, done independently of farad's SchemaCatalog -------------------

const SCHEMA_DIR = join(ROOT, 'config', 'schemas', 'voter');

function loadType(file: string): avsc.Type {
  return avsc.Type.forSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, file), 'utf8')) as avsc.Schema);
}

export const VOTER_TYPES = {
  Vote: loadType('Vote.avsc'),
  VoteAccepted: loadType('VoteAccepted.avsc'),
  VoteRejected: loadType('VoteRejected.avsc'),
} as const;
export type VoterEventName = keyof typeof VOTER_TYPES;

const HEADERS = new Map<VoterEventName, Buffer>(
  (Object.keys(VOTER_TYPES) as VoterEventName[]).map((name) => [name, Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint(VOTER_TYPES[name])])]),
);

/** `C3 01` + CRC-64-AVRO fingerprint (little-endian) + Avro body. */
export function singleObject(name: VoterEventName, value: unknown): Buffer {
  return Buffer.concat([HEADERS.get(name)!, VOTER_TYPES[name].toBuffer(value)]);
}

/** Decodes a Voter single object: the 10-byte header's fingerprint says which event type it is. */
export function decodeVoterEvent(bytes: Buffer): { name: VoterEventName; value: Record<string, unknown> } {
  if (bytes.length < 10 || bytes[0] !== 0xc3 || bytes[1] !== 0x01) throw new Error(`not a single object: ${bytes.subarray(0, 10).toString('hex')}`);
  for (const [name, header] of HEADERS) {
    if (bytes.subarray(0, 10).equals(header)) {
      return { name, value: VOTER_TYPES[name].fromBuffer(bytes.subarray(10)) as Record<string, unknown> };
    }
  }
  throw new Error(`unknown fingerprint ${bytes.subarray(2, 10).toString('hex')}`);
}

/** A single-object header with a fingerprint no schema has (for the dead-letter tests). */
export function unknownFingerprintObject(): Buffer {
  return Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.from('f00dfeedbeefcafe', 'hex'), VOTER_TYPES.Vote.toBuffer({ phoneNumber: 1, contestantNumber: 1 })]);
}

// ---- the Voter model: votes and an independent tally --------------------------------------------

export interface Vote {
  phoneNumber: number;
  contestantNumber: number;
}

export type Outcome = 'accepted' | 'INVALID_CONTESTANT' | 'OVER_VOTE_LIMIT';

/** A deterministic PRNG (mulberry32, the one farad seeds `ctx.random()` with). */
export const prng = seededRandom;

/**
 * `count` deterministic votes over `phones` phone numbers (so phones repeat and some go over the
 * limit), about 10% for contestants 7-9 (invalid). Some phones have area code 999 (no state).
 */
export function makeVotes(count: number, { phones = Math.max(1, Math.floor(count / 4)), seed = 1 } = {}): Vote[] {
  const random = prng(seed);
  const pool = Array.from({ length: phones }, (_, i) => {
    const areaCode = i % 17 === 0 ? 999 : AREA_CODE_STATES[Math.floor(random() * AREA_CODE_STATES.length)]![0];
    return areaCode * 10_000_000 + Math.floor(random() * 10_000_000);
  });
  return Array.from({ length: count }, () => ({
    phoneNumber: pool[Math.floor(random() * pool.length)]!,
    contestantNumber: 1 + Math.floor(random() * 9),
  }));
}

const STATES = new Map(AREA_CODE_STATES.map(([code, state]) => [code, state]));

export function stateOf(phoneNumber: number): string {
  return STATES.get(Math.floor(phoneNumber / 10_000_000)) ?? 'XX';
}

/**
 * The Voter rules, computed from scratch: contestants 1-6 are valid, at most 2 accepted votes per
 * phone, in the order of the phone's votes (one phone's votes share a partition, so that order is
 * the order they were produced in).
 */
export class VoterTally {
  readonly acceptedByPhone = new Map<number, number>();
  readonly votesByContestant = new Map<number, number>([1, 2, 3, 4, 5, 6].map((c) => [c, 0]));
  /** Per phone, the outcome of each of its votes in order. */
  readonly outcomesByPhone = new Map<number, string[]>();
  total = 0;

  constructor(votes: Iterable<Vote> = []) {
    for (const vote of votes) this.add(vote);
  }

  add({ phoneNumber, contestantNumber }: Vote): Outcome {
    this.total++;
    let outcome: Outcome;
    const accepted = this.acceptedByPhone.get(phoneNumber) ?? 0;
    if (contestantNumber < 1 || contestantNumber > 6) outcome = 'INVALID_CONTESTANT';
    else if (accepted >= 2) outcome = 'OVER_VOTE_LIMIT';
    else {
      outcome = 'accepted';
      this.acceptedByPhone.set(phoneNumber, accepted + 1);
      this.votesByContestant.set(contestantNumber, this.votesByContestant.get(contestantNumber)! + 1);
    }
    let list = this.outcomesByPhone.get(phoneNumber);
    if (!list) this.outcomesByPhone.set(phoneNumber, (list = []));
    list.push(describeOutcome(phoneNumber, contestantNumber, outcome));
    return outcome;
  }

  get acceptedTotal(): number {
    let sum = 0;
    for (const v of this.votesByContestant.values()) sum += v;
    return sum;
  }

  /** contestant -> accepted votes, as a plain object for deepEqual. */
  leaderboard(): Record<number, number> {
    return Object.fromEntries(this.votesByContestant);
  }
}

function describeOutcome(phoneNumber: number, contestantNumber: number, outcome: Outcome): string {
  return outcome === 'accepted' ? `accepted:${contestantNumber}:${stateOf(phoneNumber)}` : `rejected:${contestantNumber}:${outcome}`;
}

/** Per phone, the outcomes the output topic shows, in offset order (one phone = one partition). */
export function outcomesFromResults(records: readonly ReadRecord[]): { byPhone: Map<number, string[]>; problems: string[] } {
  const byPhone = new Map<number, string[]>();
  const problems: string[] = [];
  for (const r of records) {
    if (r.value === null) {
      problems.push(`null value at ${r.partition}/${r.offset}`);
      continue;
    }
    const { name, value } = decodeVoterEvent(r.value);
    const phone = Number(value.phoneNumber);
    if (r.key !== String(phone)) problems.push(`key ${r.key} of ${name} for phone ${phone} at ${r.partition}/${r.offset}`);
    let text: string;
    if (name === 'VoteAccepted') text = `accepted:${String(value.contestantNumber)}:${String(value.state)}`;
    else if (name === 'VoteRejected') text = `rejected:${String(value.contestantNumber)}:${String(value.reason)}`;
    else {
      problems.push(`unexpected ${name} at ${r.partition}/${r.offset}`);
      continue;
    }
    let list = byPhone.get(phone);
    if (!list) byPhone.set(phone, (list = []));
    list.push(text);
  }
  return { byPhone, problems };
}

/** Compares per-phone outcome sequences; returns the first few differences. */
export function diffOutcomes(expected: Map<number, string[]>, actual: Map<number, string[]>, max = 10): string[] {
  const diffs: string[] = [];
  for (const phone of new Set([...expected.keys(), ...actual.keys()])) {
    const e = expected.get(phone) ?? [];
    const a = actual.get(phone) ?? [];
    if (e.length !== a.length || e.some((x, i) => x !== a[i])) {
      diffs.push(`phone ${phone}: expected [${e.join(', ')}] got [${a.join(', ')}]`);
      if (diffs.length >= max) break;
    }
  }
  return diffs;
}

/** Produces votes keyed by phone number (murmur2 partitioning), in order, in chunks. */
export async function produceVotes(producer: Producer, topic: string, votes: readonly Vote[], chunk = 500): Promise<void> {
  for (let i = 0; i < votes.length; i += chunk) {
    await producer.send({
      topic,
      acks: -1,
      messages: votes.slice(i, i + chunk).map((v) => ({ key: String(v.phoneNumber), value: singleObject('Vote', v) })),
    });
  }
}

// ---- farad in-process and over HTTP -------------------------------------------------------------

/** Config of an in-process farad on Kafka: free HTTP port, warn logs, the test broker (KAFKA_BROKERS unless `overrides.kafka.brokers`). */
export function kafkaConfig(overrides: ConfigInput = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      ...overrides,
      transport: 'kafka',
      http: { port: 0, host: '127.0.0.1', ...overrides.http },
      logLevel: overrides.logLevel ?? 'warn',
      sessionTimeoutMs: overrides.sessionTimeoutMs ?? 6000,
      kafka: { ...overrides.kafka, brokers: overrides.kafka?.brokers ?? brokers() },
    },
  });
}

export async function startKafkaService(app: App, overrides: ConfigInput = {}): Promise<Service> {
  return startService(app, kafkaConfig(overrides));
}

export function baseUrl(service: Service): string {
  return `http://127.0.0.1:${service.address.port}`;
}

export async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

/** GET /queries/leaderboard as contestant -> votes, or undefined while not every partition is ready. */
export async function leaderboard(base: string): Promise<Record<number, number> | undefined> {
  const { status, body } = await getJson(`${base}/queries/leaderboard`);
  if (status !== 200) return undefined;
  const rows = body as Array<{ contestantNumber: number; votes: number }>;
  return Object.fromEntries(rows.map((r) => [r.contestantNumber, r.votes]));
}

export function sum(board: Record<number, number>): number {
  return Object.values(board).reduce((a, b) => a + b, 0);
}

/** Sum of a Prometheus metric's samples whose labels include `labels`. */
export async function metricValue(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(pair[1]!, pair[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total += Number(m[4]);
  }
  return total;
}

// ---- farad as a child process -------------------------------------------------------------------

export interface FaradChild {
  readonly child: ChildProcess;
  readonly base: string;
  /** Everything the child wrote to stderr (its logs) and stdout. */
  output(): string;
  /** Resolves with the exit code / signal once the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `farad run --app <appPath>` on Kafka in a child process, on a free HTTP port. */
export async function spawnFarad(appPath: string, env: Record<string, string>): Promise<FaradChild> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'run', '--app', appPath], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      FARAD_TRANSPORT: 'kafka',
      FARAD_KAFKA_BROKERS: brokers().join(','),
      FARAD_HTTP_PORT: String(port),
      FARAD_HTTP_HOST: '127.0.0.1',
      FARAD_LOG_LEVEL: 'warn',
      // One process per instance: these tests signal (kill -9, SIGSTOP) the instance's process.
      FARAD_WORKERS: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, base: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** SIGKILLs a child (if still running) and waits for it to be gone. */
export async function killHard(farad: FaradChild): Promise<void> {
  if (farad.child.exitCode === null && farad.child.signalCode === null) farad.child.kill('SIGKILL');
  await farad.exited;
}

/** Fails with how to install kcat when it is missing. */
export function requireKcat(): void {
  const res = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  if (res.error || res.status !== 0) {
    throw new Error('kcat is not installed; install it (e.g. `apt-get install -y kcat`); .ci/run installs it');
  }
}
