/**
 * Dead letters as data and the replay plan (pure), a replay cut short and run again (each dead
 * letter exactly once, counted in the re-injected records and in the replay log), records decoded
 * as `farad tail` prints them, paging positions, and the rate-limited log of failed handlers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RowCodec, SchemaCatalog } from '../../src/codec/index.js';
import { createLogger } from '../../src/log.js';
import { HandlerFailureLog, HANDLER_FAILED_LOG } from '../../src/metrics/index.js';
import { compileApp, defineApp, record, table } from '../../src/procedures/index.js';
import {
  BatchProcessor,
  DLQ_HEADERS,
  REPLAY_HEADERS,
  RecordDescriber,
  TopicRecords,
  formatPosition,
  parseDeadLetter,
  parsePosition,
  parseSince,
  planReplay,
  replayDeadLetters,
  replayLogTopicOf,
  type HandlerFailure,
  type LogRecord,
  type OutRecord,
  type ProcessorObserver,
  type ReplaySource,
} from '../../src/streams/index.js';
import { PartitionState } from '../../src/state/index.js';

interface Op {
  id: string;
  amount: number;
}
const Op = record<Op>({ type: 'record', name: 'Op', namespace: 'u', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] });
const Applied = record<Op>({ type: 'record', name: 'Applied', namespace: 'u', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] });
const Total = record<{ total: number }>({ type: 'record', name: 'Total', namespace: 'u', fields: [{ name: 'total', type: 'long' }] });
const Doom = record<{ why: string }>({ type: 'record', name: 'Doom', namespace: 'u', fields: [{ name: 'why', type: 'string' }] });

const app = defineApp({
  name: 'u',
  partitions: 2,
  events: { Op, Applied },
  tables: { totals: table({ key: 'string', value: Total }) },
  inputs: [{ topic: 'ops', events: ['Op'] }],
  outputs: { Applied: 'applied' },
  timers: {
    doom: {
      payload: Doom,
      handle() {
        throw new Error('the doom timer always fails');
      },
    },
  },
  procedures: {
    Op: {
      partitionKey: (op) => op.id,
      emits: ['Applied'],
      handle(ctx, op) {
        if (op.amount < 0) throw new Error(`negative amount ${op.amount}`);
        if (op.amount === 13) ctx.timers.set('doom', op.id, { at: ctx.timestamp, payload: { why: 'thirteen' } });
        const total = (ctx.tables.totals.get(op.id)?.total ?? 0) + op.amount;
        ctx.tables.totals.put(op.id, { total });
        ctx.emit('Applied', op);
      },
    },
  },
});
const compiled = compileApp(app);
const catalog = new SchemaCatalog([...compiled.events.values()].map((e) => e.type));

/** A dead letter as the batch processor writes it. */
function deadLetter(partition: number, offset: number, headers: Record<string, string>, timestamp = 1_000): LogRecord {
  return { topic: 'u-dlq', partition, offset, timestamp, key: Buffer.from('k'), value: Buffer.from('v'), headers };
}
const handlerError = (p: number, o: number): Record<string, string> => ({
  'x-trace': 'abc',
  [DLQ_HEADERS.reason]: 'handler_error',
  [DLQ_HEADERS.error]: 'boom',
  [DLQ_HEADERS.eventType]: 'u.Op',
  [DLQ_HEADERS.sourceTopic]: 'ops',
  [DLQ_HEADERS.sourcePartition]: String(p),
  [DLQ_HEADERS.sourceOffset]: String(o),
});

describe('dead letters and the replay plan', () => {
  it('reads a dead letter: reason, source, original headers; a timer has no source', () => {
    const letter = parseDeadLetter(deadLetter(1, 7, handlerError(1, 42)));
    assert.equal(letter.id, '1:7');
    assert.equal(letter.reason, 'handler_error');
    assert.deepEqual(letter.source, { topic: 'ops', partition: 1, offset: 42 });
    assert.deepEqual(letter.originalHeaders, { 'x-trace': 'abc' });
    const timer = parseDeadLetter(deadLetter(0, 0, { [DLQ_HEADERS.reason]: 'handler_error', [DLQ_HEADERS.eventType]: 'timer:doom', [DLQ_HEADERS.timerDueAt]: '5', [DLQ_HEADERS.timerFiredAt]: '6' }));
    assert.equal(timer.source, undefined);
    assert.deepEqual(timer.timer, { dueAt: 5, firedAt: 6 });
  });

  it('plans: replayed ones are skipped, timers and foreign sources are not replayable, filters apply', () => {
    const letters = [
      deadLetter(0, 0, handlerError(0, 3), 1_000),
      deadLetter(0, 1, handlerError(0, 4), 2_000),
      deadLetter(1, 0, { ...handlerError(1, 9), [DLQ_HEADERS.reason]: 'decode_error' }, 3_000),
      deadLetter(1, 1, { [DLQ_HEADERS.reason]: 'handler_error', [DLQ_HEADERS.eventType]: 'timer:doom', [DLQ_HEADERS.timerDueAt]: '5', [DLQ_HEADERS.timerFiredAt]: '6' }, 4_000),
      deadLetter(1, 2, { ...handlerError(1, 9), [DLQ_HEADERS.sourceTopic]: 'elsewhere' }, 5_000),
    ].map(parseDeadLetter);
    const replayed = new Map([['0:1', { replayedAt: 9, dlq: { topic: 'u-dlq', partition: 0, offset: 1 }, source: { topic: 'ops', partition: 0, offset: 4 }, to: { topic: 'ops', partition: 0 }, reason: 'handler_error', eventType: 'u.Op', error: 'boom' }]]);
    const plan = planReplay(compiled, [...letters].reverse(), replayed);
    assert.deepEqual(
      plan.map((p) => [p.letter.id, p.verdict.kind]),
      [['0:0', 'replay'], ['0:1', 'replayed'], ['1:0', 'replay'], ['1:1', 'not_replayable'], ['1:2', 'not_replayable']],
    );
    const timer = plan[3]!.verdict;
    assert.ok(timer.kind === 'not_replayable' && /a timer \(timer:doom/.test(timer.why), JSON.stringify(timer));
    const foreign = plan[4]!.verdict;
    assert.ok(foreign.kind === 'not_replayable' && /"elsewhere" is not an input/.test(foreign.why));
    assert.deepEqual(planReplay(compiled, letters, replayed, { reason: 'decode_error' }).map((p) => p.letter.id), ['1:0']);
    assert.deepEqual(planReplay(compiled, letters, replayed, { since: 3_000 }).map((p) => p.letter.id), ['1:0', '1:1', '1:2']);
    assert.deepEqual(planReplay(compiled, letters, replayed, { before: new Map([[0, 1], [1, 1]]) }).map((p) => p.letter.id), ['0:0', '1:0']);
  });

  it('--since takes an ISO time or a duration back from now', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    assert.equal(parseSince('1h', now), now - 3_600_000);
    assert.equal(parseSince('1h30m', now), now - 5_400_000);
    assert.equal(parseSince('2d', now), now - 2 * 86_400_000);
    assert.equal(parseSince('2024-05-01T11:00:00Z', now), now - 3_600_000);
    assert.equal(parseSince('2024-05-01', now), Date.parse('2024-05-01'));
    for (const bad of ['yesterday', '1 hour', '-1h', '', '12']) assert.equal(parseSince(bad, now), undefined, bad);
  });

  it('positions of a topic print and parse back', () => {
    const position = new Map([[1, 7], [0, 12]]);
    assert.equal(formatPosition(position), '0:12,1:7');
    assert.deepEqual(parsePosition('0:12,1:7', 2), new Map([[0, 12], [1, 7]]));
    for (const bad of ['0:1,0:2', '2:0', 'x', '0:-1', '0:1;1:2']) assert.equal(parsePosition(bad, 2), undefined, bad);
  });
});

/** An in-memory log holding topics as arrays (offset = index), read as a TopicSource. */
class ArrayLog implements ReplaySource {
  readonly topics = new Map<string, LogRecord[][]>();
  constructor(topics: Record<string, number>) {
    for (const [name, partitions] of Object.entries(topics)) this.topics.set(name, Array.from({ length: partitions }, () => []));
  }
  hasTopic(topic: string): boolean {
    return this.topics.has(topic);
  }
  partitionsOf(topic: string): number {
    return this.topics.get(topic)!.length;
  }
  endOffset(topic: string, partition: number): number {
    return this.topics.get(topic)![partition]!.length;
  }
  async *readRange(topic: string, partition: number, from: number): AsyncIterable<readonly LogRecord[]> {
    const records = this.topics.get(topic)![partition]!.slice(from);
    for (let i = 0; i < records.length; i += 3) yield records.slice(i, i + 3); // small chunks
  }
  /** Atomic: every record or none. */
  append(records: readonly OutRecord[]): void {
    for (const r of records) {
      const partition = this.topics.get(r.topic)![r.partition]!;
      partition.push({ ...r, offset: partition.length, headers: r.headers ?? {} });
    }
  }
}

describe('replayDeadLetters', () => {
  const inputs = (log: ArrayLog): LogRecord[] => log.topics.get('ops')!.flat();
  const logEntries = (log: ArrayLog): string[] => log.topics.get('u-dlq-replays')![0]!.map((r) => r.key!.toString());

  function world(letters: number): ArrayLog {
    const log = new ArrayLog({ ops: 2, 'u-dlq': 2, 'u-dlq-replays': 1 });
    for (let i = 0; i < letters; i++) {
      const p = i % 2;
      const source = log.endOffset('ops', p);
      log.append([{ topic: 'ops', partition: p, timestamp: 100 + i, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), headers: { 'x-n': String(i) } }]);
      log.append([{ topic: 'u-dlq', partition: p, timestamp: 100 + i, key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), headers: { 'x-n': String(i), ...handlerError(p, source) } }]);
    }
    // One timer: listed, never replayed.
    log.append([{ topic: 'u-dlq', partition: 0, timestamp: 5, key: Buffer.from('t'), value: Buffer.from('{}'), headers: { [DLQ_HEADERS.reason]: 'handler_error', [DLQ_HEADERS.eventType]: 'timer:doom', [DLQ_HEADERS.timerDueAt]: '1', [DLQ_HEADERS.timerFiredAt]: '2' } }]);
    return log;
  }

  it('writes the original key, value and headers back to the source partition, beside its replay log entry', async () => {
    const log = world(3);
    const commits: Array<readonly OutRecord[]> = [];
    const report = await replayDeadLetters({
      app: compiled,
      source: log,
      commit: async (records) => {
        commits.push(records);
        log.append(records);
      },
      filter: {},
      batchSize: 2,
      now: () => 777,
    });
    assert.equal(report.replayed.length, 3);
    assert.equal(report.plan.filter((p) => p.verdict.kind === 'not_replayable').length, 1, 'the timer');
    assert.deepEqual(commits.map((c) => c.length), [4, 2], 'each chunk: its records and their log entries, in one commit');
    const replays = inputs(log).filter((r) => r.headers[REPLAY_HEADERS.dlqOffset] !== undefined);
    assert.equal(replays.length, 3);
    const first = replays.find((r) => r.key!.toString() === 'k0')!;
    assert.equal(first.partition, 0);
    assert.equal(first.value!.toString(), 'v0');
    assert.equal(first.timestamp, 100, 'the event keeps its own time');
    assert.deepEqual(first.headers, {
      'x-trace': 'abc',
      'x-n': '0',
      [REPLAY_HEADERS.dlqTopic]: 'u-dlq',
      [REPLAY_HEADERS.dlqPartition]: '0',
      [REPLAY_HEADERS.dlqOffset]: '0',
      [REPLAY_HEADERS.source]: 'ops/0/0',
      [REPLAY_HEADERS.replayedAt]: '777',
    });
    const entry = JSON.parse(log.topics.get(replayLogTopicOf(compiled).name)![0]![0]!.value!.toString()) as Record<string, unknown>;
    assert.deepEqual(entry, {
      replayedAt: 777,
      dlq: { topic: 'u-dlq', partition: 0, offset: 0 },
      source: { topic: 'ops', partition: 0, offset: 0 },
      to: { topic: 'ops', partition: 0 },
      reason: 'handler_error',
      eventType: 'u.Op',
      error: 'boom',
    });
    const again = await replayDeadLetters({ app: compiled, source: log, commit: async (records) => log.append(records), filter: {}, batchSize: 2 });
    assert.equal(again.replayed.length, 0, 'a second replay replays nothing');
    assert.equal(again.plan.filter((p) => p.verdict.kind === 'replayed').length, 3);
  });

  it('cut short midway and run again: every dead letter replayed exactly once', async () => {
    const log = world(25);
    let commits = 0;
    await assert.rejects(
      replayDeadLetters({
        app: compiled,
        source: log,
        commit: async (records) => {
          if (++commits === 4) throw new Error('killed'); // the fourth commit never happens
          log.append(records);
        },
        filter: {},
        batchSize: 3,
      }),
      /killed/,
    );
    assert.equal(logEntries(log).length, 9, 'three commits made it');
    const rest = await replayDeadLetters({ app: compiled, source: log, commit: async (records) => log.append(records), filter: {}, batchSize: 3 });
    assert.equal(rest.replayed.length, 16);
    // Counted twice, independently: in the input topic and in the replay log.
    const byDlq = new Map<string, number>();
    for (const r of inputs(log)) {
      const id = r.headers[REPLAY_HEADERS.dlqPartition] === undefined ? undefined : `${r.headers[REPLAY_HEADERS.dlqPartition]}:${r.headers[REPLAY_HEADERS.dlqOffset]}`;
      if (id) byDlq.set(id, (byDlq.get(id) ?? 0) + 1);
    }
    assert.equal(byDlq.size, 25);
    assert.ok([...byDlq.values()].every((n) => n === 1), JSON.stringify([...byDlq]));
    assert.equal(new Set(logEntries(log)).size, 25);
    assert.equal(logEntries(log).length, 25);
  });

  it('max: replays the oldest first and says how many remain', async () => {
    const log = world(5);
    const step = await replayDeadLetters({ app: compiled, source: log, commit: async (records) => log.append(records), filter: {}, batchSize: 10, max: 2 });
    assert.deepEqual(step.replayed.map((p) => p.letter.id), ['0:0', '0:1']);
    assert.equal(step.remaining, 3);
  });
});

describe('records as farad tail prints them', () => {
  it('decodes events, dead letters (also a timer as JSON), changelog rows and tombstones', () => {
    const state = new PartitionState(0, compiled.partitions, compiled.tables.values());
    const rows = new RowCodec(compiled.tables.values());
    const processor = new BatchProcessor({ app: compiled, state, catalog, rows, globals: {}, partitionsOf: () => 2 });
    const ops: Op[] = [{ id: 'a', amount: 5 }, { id: 'a', amount: -1 }, { id: 'a', amount: 13 }];
    processor.apply(ops.map((op, i) => ({ topic: 'ops', partition: 0, offset: i, timestamp: 1_000 + i, key: Buffer.from(op.id), value: catalog.encode('u.Op', op), headers: {} })));
    processor.fireDue(5_000, 10);
    const plan = processor.plan();
    const describer = new RecordDescriber(compiled, catalog, rows);
    const offsets = new Map<string, number>();
    const lines = plan.records.map((r) => {
      const offset = offsets.get(r.topic) ?? 0;
      offsets.set(r.topic, offset + 1);
      return describer.describe({ ...r, offset, headers: r.headers ?? {} });
    });
    const byTopic = (topic: string) => lines.filter((l) => l.topic === topic);
    assert.deepEqual(byTopic('applied').map((l) => [l.eventType, l.value]), [['u.Applied', { id: 'a', amount: 5 }], ['u.Applied', { id: 'a', amount: 13 }]]);
    const [failed, timer] = byTopic('u-dlq');
    assert.equal(failed?.eventType, 'u.Op');
    assert.deepEqual(failed?.value, { id: 'a', amount: -1 });
    assert.deepEqual(failed?.deadLetter, { reason: 'handler_error', error: 'negative amount -1', eventType: 'u.Op', source: { topic: 'ops', partition: 0, offset: 1 } });
    assert.equal(timer?.deadLetter?.eventType, 'timer:doom');
    assert.deepEqual(timer?.deadLetter?.timer, { dueAt: 1_002, firedAt: 5_000 });
    assert.equal((timer?.value as { key: string }).key, 'a', 'a timer is its row as JSON');
    const changelog = byTopic('u-changelog');
    assert.deepEqual(changelog.find((l) => l.table === 'totals'), { ...changelog.find((l) => l.table === 'totals'), rowKey: 'a', value: { total: 18 } });
    assert.ok(changelog.some((l) => l.table === '__timers' && l.tombstone === true && l.value === null), 'the fired timer deleted its row');
    // Bytes that do not decode: base64 and why.
    const garbage = describer.describe({ topic: 'ops', partition: 0, offset: 9, timestamp: 1, key: Buffer.from([0xff, 0xfe]), value: Buffer.from('nope'), headers: {} });
    assert.deepEqual(garbage.key, { base64: Buffer.from([0xff, 0xfe]).toString('base64') });
    assert.deepEqual(garbage.value, { base64: Buffer.from('nope').toString('base64') });
    assert.match(garbage.decodeError ?? '', /not an Avro single-object encoding/);
  });

  it('pages every record of a topic once, across partitions, and refuses topics it does not serve', async () => {
    const log = new ArrayLog({ applied: 2, 'u-dlq': 2, ops: 2 });
    for (let i = 0; i < 23; i++) log.append([{ topic: 'applied', partition: i % 3 === 0 ? 1 : 0, timestamp: i, key: Buffer.from(`k${i}`), value: catalog.encode('u.Applied', { id: `k${i}`, amount: i }) }]);
    const records = new TopicRecords(log, new RecordDescriber(compiled, catalog, undefined), new Set(['output', 'dead_letters']));
    const seen: string[] = [];
    let from: { kind: 'beginning' } | { kind: 'position'; position: Map<number, number> } = { kind: 'beginning' };
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 20);
      const page = await records.page('applied', { partition: undefined, from, limit: 4 });
      seen.push(...page.items.map((l) => `${l.partition}:${l.offset}`));
      if (page.next === null) {
        assert.equal(page.position, '0:15,1:8');
        break;
      }
      from = { kind: 'position', position: parsePosition(String(page.next), 2)! };
    }
    assert.equal(seen.length, 23);
    assert.equal(new Set(seen).size, 23);
    const one = await records.page('applied', { partition: 1, from: { kind: 'offset', offset: 6 }, limit: 100 });
    assert.deepEqual(one.items.map((l) => l.offset), [6, 7]);
    assert.equal(one.next, null);
    assert.equal(one.position, 8);
    assert.throws(() => records.partitionsOf('ops'), (err: Error) => err.name === 'UnknownTopicError' && /"applied", "u-dlq"/.test(err.message));
  });
});

describe('failed handlers in the log', () => {
  function recorder(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('warn');
    const fake = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ ...fields, msg }) } as unknown as typeof logger;
    return { logger: fake, lines };
  }

  it('one line per event type per window, then the latest with how many were suppressed', () => {
    let now = 0;
    const { logger, lines } = recorder();
    const log = new HandlerFailureLog(logger, 10_000, () => now);
    const fail = (eventType: string, offset: number): HandlerFailure => ({ eventType, partition: 1, offset, error: new Error(`boom ${offset}`) });
    log.failed(fail('u.Op', 1));
    for (let i = 2; i <= 50; i++) log.failed(fail('u.Op', i));
    log.failed(fail('u.Other', 7));
    assert.deepEqual(lines.map((l) => [l['eventType'], l['offset'], l['suppressed']]), [['u.Op', 1, 0], ['u.Other', 7, 0]]);
    assert.equal(lines[0]!['msg'], HANDLER_FAILED_LOG);
    const error = lines[0]!['error'] as { message: string; stack: string };
    assert.equal(error.message, 'boom 1');
    assert.match(error.stack, /boom 1\n\s+at /);
    now = 10_000;
    log.flushAll();
    assert.deepEqual(lines.slice(2).map((l) => [l['eventType'], l['offset'], l['suppressed']]), [['u.Op', 50, 48]], '49 more: the latest logged, 48 suppressed');
    now = 12_000;
    log.failed(fail('u.Op', 51));
    assert.equal(lines.length, 3, 'still within the window that began with the last line');
    now = 25_000;
    log.flushAll();
    log.failed({ eventType: 'u.Op', partition: 0, offset: 52, error: 'thrown string' });
    assert.deepEqual(lines.slice(3).map((l) => [l['offset'], l['suppressed'], (l['error'] as { message: string }).message]), [[51, 0, 'boom 51']]);
    now = 35_000;
    log.flushAll(); // the window's end
    assert.deepEqual(lines.slice(4).map((l) => [l['offset'], l['suppressed'], l['error']]), [[52, 0, { type: 'string', message: 'thrown string' }]]);
  });

  it('the batch processor reports each failed handler (input and timer) to its observer', () => {
    const failures: HandlerFailure[] = [];
    const observer: ProcessorObserver = { eventsHandled: () => undefined, handlerLatency: () => undefined, deadLettered: () => undefined, handlerFailed: (f) => failures.push(f) };
    const state = new PartitionState(0, compiled.partitions, compiled.tables.values());
    const processor = new BatchProcessor({ app: compiled, state, catalog, rows: new RowCodec(compiled.tables.values()), globals: {}, partitionsOf: () => 2, observer });
    processor.apply([{ id: 'a', amount: -3 }, { id: 'a', amount: 13 }].map((op, i) => ({ topic: 'ops', partition: 0, offset: 10 + i, timestamp: 1, key: Buffer.from('a'), value: catalog.encode('u.Op', op), headers: {} })));
    processor.fireDue(2, 10);
    assert.deepEqual(
      failures.map((f) => [f.eventType, f.partition, f.offset, (f.error as Error).message]),
      [['u.Op', 0, 10, 'negative amount -3'], ['timer:doom', 0, undefined, 'the doom timer always fails']],
    );
  });
});
