import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { compileApp, defineApp, globalViews, INPUT_OFFSETS_TABLE, record, table, type CompiledApp } from '../../src/procedures/index.js';
import { PartitionState, partitionForKey } from '../../src/state/index.js';
import { decodeChangeKey } from '../../src/codec/index.js';
import { BatchProcessor, DLQ_HEADERS, type DeadLetterReason, type LogRecord, type OutRecord } from '../../src/streams/index.js';
import { RowCodec, SchemaCatalog } from '../../src/codec/index.js';
import { keysOf } from './support/partition-keys.js';

// ---- the app under test ---------------------------------------------------------------------

interface Command {
  op: string;
  account: string;
  amount: number;
  target: string | null;
}
interface Deposit {
  account: string;
  amount: number;
}
interface Deposited {
  account: string;
  balance: number;
}
interface Observed {
  account: string;
  eventType: string;
  partition: number;
  offset: number;
  timestamp: number;
  r1: number;
  r2: number;
}
interface Balance {
  balance: number;
}

const schemas = {
  Command: record<Command>({
    type: 'record',
    name: 'Command',
    namespace: 'bank',
    fields: [
      { name: 'op', type: 'string' },
      { name: 'account', type: 'string' },
      { name: 'amount', type: 'long' },
      { name: 'target', type: ['null', 'string'], default: null },
    ],
  }),
  Deposit: record<Deposit>({
    type: 'record',
    name: 'Deposit',
    namespace: 'bank',
    fields: [
      { name: 'account', type: 'string' },
      { name: 'amount', type: 'long' },
    ],
  }),
  Deposited: record<Deposited>({
    type: 'record',
    name: 'Deposited',
    namespace: 'bank.out',
    fields: [
      { name: 'account', type: 'string' },
      { name: 'balance', type: 'long' },
    ],
  }),
  Observed: record<Observed>({
    type: 'record',
    name: 'Observed',
    namespace: 'bank.out',
    fields: [
      { name: 'account', type: 'string' },
      { name: 'eventType', type: 'string' },
      { name: 'partition', type: 'int' },
      { name: 'offset', type: 'long' },
      { name: 'timestamp', type: 'long' },
      { name: 'r1', type: 'double' },
      { name: 'r2', type: 'double' },
    ],
  }),
  Balance: record<Balance>({ type: 'record', name: 'Balance', namespace: 'bank', fields: [{ name: 'balance', type: 'long' }] }),
};

const APP_PARTITIONS = 4;
const PARTITIONS_OF: Record<string, number> = { balances: 5, observations: 3 };

const bank = defineApp({
  name: 'bank',
  partitions: APP_PARTITIONS,
  events: schemas,
  tables: { balances: table({ key: 'string', value: schemas.Balance }) },
  inputs: [
    { topic: 'commands', events: ['Command'] },
    { topic: 'deposits', events: ['Deposit'] },
  ],
  outputs: { Deposited: 'balances', Observed: 'observations' },
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
    Command: {
      partitionKey: (c) => c.account,
      emits: ['Deposited', 'Observed'],
      handle(ctx, c) {
        const deposit = (): void => {
          const balance = (ctx.tables.balances.get(c.account)?.balance ?? 0) + c.amount;
          ctx.tables.balances.put(c.account, { balance });
          ctx.emit('Deposited', { account: c.account, balance });
        };
        switch (c.op) {
          case 'deposit':
            return deposit();
          case 'throw-after-write':
            deposit();
            throw new Error(`boom for ${c.account}`);
          case 'promise':
            // Not an `async` function (compileApp refuses those); it returns a Promise at run time.
            deposit();
            return Promise.resolve() as unknown as void;
          case 'promise-late':
            return Promise.resolve().then(deposit) as unknown as void;
          case 'bad-emit':
            ctx.tables.balances.put(c.account, { balance: 1 });
            ctx.emit('Deposited', { account: c.account, balance: 'lots' as unknown as number });
            return;
          case 'emit-lone-surrogate':
            ctx.tables.balances.put(c.account, { balance: 1 });
            ctx.emit('Deposited', { account: `${c.account}\ud800`, balance: 1 });
            return;
          case 'write-foreign':
            deposit();
            ctx.tables.balances.put(c.target!, { balance: 1 });
            return;
          case 'emit-no-output':
            deposit();
            (ctx as unknown as { emit(type: string, value: unknown): void }).emit('Command', c);
            return;
          case 'observe': {
            const r1 = ctx.random();
            const r2 = ctx.random();
            const observed = {
              account: c.account,
              eventType: ctx.eventType,
              partition: ctx.partition,
              offset: ctx.offset,
              timestamp: ctx.timestamp,
              r1,
              r2,
            };
            if (c.target === null) ctx.emit('Observed', observed);
            else ctx.emit('Observed', observed, { key: c.target });
            return;
          }
          default:
            throw new Error(`unknown op ${c.op}`);
        }
      },
    },
  },
});

// ---- harness --------------------------------------------------------------------------------

const PARTITION = 2;

const [ALICE, BOB, CAROL] = keysOf(PARTITION, APP_PARTITIONS, 3, 'acct-') as [string, string, string];
const [FOREIGN] = keysOf((PARTITION + 1) % APP_PARTITIONS, APP_PARTITIONS, 1, 'acct-') as [string];

interface Harness {
  app: CompiledApp;
  catalog: SchemaCatalog;
  state: PartitionState;
  processor: BatchProcessor;
  observed: { handled: Array<[string, string]>; deadLettered: Array<[DeadLetterReason, string]> };
  balance(account: string): number | undefined;
}

function harness(partition = PARTITION): Harness {
  const app = compileApp(bank);
  const catalog = new SchemaCatalog([...app.events.values()].map((e) => e.type));
  const state = new PartitionState(partition, app.partitions, app.tables.values());
  const observed: Harness['observed'] = { handled: [], deadLettered: [] };
  const processor = new BatchProcessor({
    app,
    state,
    catalog,
    rows: new RowCodec(app.tables.values(), app.droppedTables),
    globals: globalViews(app),
    partitionsOf: (topic) => {
      const n = PARTITIONS_OF[topic];
      if (n === undefined) throw new Error(`test asked for partitions of unexpected topic ${topic}`);
      return n;
    },
    observer: {
      eventsHandled: (eventType, _p, ok, failed) => {
        for (let i = 0; i < ok; i++) observed.handled.push([eventType, 'ok']);
        for (let i = 0; i < failed; i++) observed.handled.push([eventType, 'failed']);
      },
      handlerLatency: () => undefined,
      deadLettered: (reason, eventType) => observed.deadLettered.push([reason, eventType]),
    },
  });
  const balance = (account: string): number | undefined =>
    (state.store('balances').get(account) as Balance | undefined)?.balance;
  return { app, catalog, state, processor, observed, balance };
}

const BASE_TS = 1_700_000_000_000;

/** A record of `topic` at `offset`, keyed like a producer would key it. */
function logRecord(
  topic: string,
  offset: number,
  value: Buffer | null,
  options: { key?: string; partition?: number; timestamp?: number; headers?: Record<string, string> } = {},
): LogRecord {
  return {
    topic,
    partition: options.partition ?? PARTITION,
    offset,
    timestamp: options.timestamp ?? BASE_TS + offset,
    key: options.key === undefined ? null : Buffer.from(options.key),
    value,
    headers: options.headers ?? {},
  };
}

function command(h: Harness, offset: number, c: Partial<Command> & { op: string }, options: { timestamp?: number; headers?: Record<string, string> } = {}): LogRecord {
  const value: Command = { account: ALICE, amount: 0, target: null, ...c };
  return logRecord('commands', offset, h.catalog.encode('bank.Command', value), { key: value.account, ...options });
}

function deposit(h: Harness, offset: number, account: string, amount: number): LogRecord {
  return logRecord('deposits', offset, h.catalog.encode('bank.Deposit', { account, amount }), { key: account });
}

const recordsOf = (h: Harness, topic: string): OutRecord[] => h.processor.plan().records.filter((r) => r.topic === topic);

function decodeOut(h: Harness, out: OutRecord): { name: string; value: Record<string, unknown> } {
  assert.ok(out.value, 'an output record has a value');
  const decoded = h.catalog.decode(out.value);
  return { name: decoded.name, value: { ...(decoded.value as Record<string, unknown>) } };
}

/**
 * The changelog records of the open batch, decoded: `table/key` → row (undefined = tombstone);
 * the input offsets' rows only when asked for.
 */
function changelog(h: Harness, withOffsets = false): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const r of recordsOf(h, 'bank-changelog')) {
    assert.equal(r.partition, h.state.partition, 'changelog partition = state partition');
    assert.ok(r.key, 'changelog records are keyed');
    const { table: name, key } = decodeChangeKey(r.key);
    if (name === INPUT_OFFSETS_TABLE && !withOffsets) continue;
    const type = h.app.tables.get(name)!.valueType;
    const row = `${name}/${String(key)}`;
    assert.equal(out.has(row), false, `one changelog record per row, ${row} twice`);
    out.set(row, r.value === null ? undefined : { ...(type.fromBuffer(r.value.subarray(10)) as object) });
  }
  return out;
}

function deadLetters(h: Harness): OutRecord[] {
  return recordsOf(h, 'bank-dlq');
}

function onlyDeadLetter(h: Harness): Readonly<Record<string, string>> {
  const dlq = deadLetters(h);
  assert.equal(dlq.length, 1, `expected one dead letter, got ${dlq.length}`);
  return dlq[0]!.headers ?? {};
}

// ---- tests ----------------------------------------------------------------------------------

describe('BatchProcessor: applying a batch', () => {
  it('runs handlers, emits derived events and plans changelog + offsets', () => {
    const h = harness();
    h.processor.apply([
      deposit(h, 10, ALICE, 5),
      deposit(h, 11, BOB, 7),
      deposit(h, 12, ALICE, 3),
      command(h, 40, { op: 'deposit', account: CAROL, amount: 100 }),
    ]);
    assert.equal(h.balance(ALICE), 8);
    assert.equal(h.balance(BOB), 7);
    assert.equal(h.balance(CAROL), 100);

    const plan = h.processor.plan();
    assert.equal(plan.partition, PARTITION);
    assert.equal(plan.inputCount, 4);

    const outputs = recordsOf(h, 'balances');
    assert.deepEqual(
      outputs.map((r) => decodeOut(h, r)),
      [
        { name: 'bank.out.Deposited', value: { account: ALICE, balance: 5 } },
        { name: 'bank.out.Deposited', value: { account: BOB, balance: 7 } },
        { name: 'bank.out.Deposited', value: { account: ALICE, balance: 8 } },
        { name: 'bank.out.Deposited', value: { account: CAROL, balance: 100 } },
      ],
      'outputs in input order',
    );
    assert.deepEqual(
      outputs.map((r) => r.timestamp),
      [BASE_TS + 10, BASE_TS + 11, BASE_TS + 12, BASE_TS + 40],
      'an output carries its input record timestamp',
    );
    for (const out of outputs) {
      const { value } = decodeOut(h, out);
      assert.deepEqual(out.key, Buffer.from(String(value.account)), 'keyed by the input event partition key');
      assert.equal(out.partition, partitionForKey(String(value.account), PARTITIONS_OF.balances!));
    }

    assert.deepEqual(
      changelog(h),
      new Map([
        [`balances/${ALICE}`, { balance: 8 }],
        [`balances/${BOB}`, { balance: 7 }],
        [`balances/${CAROL}`, { balance: 100 }],
      ]),
      'one changelog record per changed row, with its last value',
    );

    assert.deepEqual(
      [...plan.offsets].sort((a, b) => a.topic.localeCompare(b.topic)),
      [
        { topic: 'commands', partition: PARTITION, offset: 41 },
        { topic: 'deposits', partition: PARTITION, offset: 13 },
      ],
      'next offset to read, per input topic',
    );
    const offsetRows = [...changelog(h, true)].filter(([row]) => row.startsWith(`${INPUT_OFFSETS_TABLE}/`));
    assert.deepEqual(
      new Map(offsetRows),
      new Map([
        [`${INPUT_OFFSETS_TABLE}/commands`, { next: 41 }],
        [`${INPUT_OFFSETS_TABLE}/deposits`, { next: 13 }],
      ]),
      'the same offsets are changelog rows of the batch (a new owner resumes from them)',
    );
    assert.deepEqual(deadLetters(h), []);
    assert.deepEqual(h.observed.handled, [], 'events are counted once their batch is committed');
    h.processor.committed();
    assert.deepEqual(h.observed.handled, [
      ['bank.Deposit', 'ok'],
      ['bank.Deposit', 'ok'],
      ['bank.Deposit', 'ok'],
      ['bank.Command', 'ok'],
    ]);
  });

  it('accumulates across apply() calls until committed(), then starts an empty batch', () => {
    const h = harness();
    h.processor.apply([deposit(h, 0, ALICE, 1)]);
    h.processor.apply([deposit(h, 1, ALICE, 2)]);
    assert.equal(h.processor.pending, 2);
    assert.deepEqual(h.processor.plan().offsets, [{ topic: 'deposits', partition: PARTITION, offset: 2 }]);
    assert.deepEqual(changelog(h), new Map([[`balances/${ALICE}`, { balance: 3 }]]));

    h.processor.committed();
    assert.equal(h.processor.pending, 0);
    const empty = h.processor.plan();
    assert.deepEqual(empty.records, []);
    assert.deepEqual(empty.offsets, []);
    assert.equal(empty.inputCount, 0);
    assert.deepEqual(h.state.readCommitted('balances', ALICE), { balance: 3 }, 'committed state is visible to queries');

    h.processor.apply([deposit(h, 2, BOB, 4)]);
    assert.deepEqual(changelog(h), new Map([[`balances/${BOB}`, { balance: 4 }]]), 'the next batch carries only its own delta');
    assert.deepEqual(h.processor.plan().offsets, [{ topic: 'deposits', partition: PARTITION, offset: 3 }]);
  });

  it('abort() rolls the whole batch back: state, outputs, changelog, dead letters and offsets', () => {
    const h = harness();
    h.processor.apply([deposit(h, 0, ALICE, 1)]);
    h.processor.committed();

    h.processor.apply([
      deposit(h, 1, ALICE, 10),
      deposit(h, 2, BOB, 20),
      command(h, 5, { op: 'throw-after-write', account: CAROL, amount: 1 }),
      logRecord('deposits', 3, Buffer.from('junk')),
    ]);
    assert.equal(h.balance(ALICE), 11);
    h.processor.abort();

    assert.equal(h.balance(ALICE), 1);
    assert.equal(h.balance(BOB), undefined);
    assert.equal(h.balance(CAROL), undefined);
    assert.equal(h.state.inTransaction, false);
    assert.equal(h.processor.pending, 0);
    const plan = h.processor.plan();
    assert.deepEqual(plan.records, []);
    assert.deepEqual(plan.offsets, []);
    assert.equal(plan.inputCount, 0);

    // The retried batch (same records) gives the same result as the first attempt would have.
    h.processor.apply([deposit(h, 1, ALICE, 10), deposit(h, 2, BOB, 20)]);
    assert.equal(h.balance(ALICE), 11);
    assert.deepEqual(changelog(h), new Map([
      [`balances/${ALICE}`, { balance: 11 }],
      [`balances/${BOB}`, { balance: 20 }],
    ]));
  });
});

describe('BatchProcessor: handler atomicity and dead letters', () => {
  it('a handler that writes and emits, then throws, leaves no trace and is dead-lettered with its reason and source', () => {
    const h = harness();
    h.processor.apply([deposit(h, 0, ALICE, 1)]);
    h.processor.committed();

    const failing = command(h, 7, { op: 'throw-after-write', account: ALICE, amount: 50 }, { headers: { 'trace-id': 'abc' } });
    h.processor.apply([deposit(h, 1, BOB, 2), failing, deposit(h, 2, CAROL, 3)]);

    assert.equal(h.balance(ALICE), 1, 'the failed handler write is undone');
    assert.equal(h.balance(BOB), 2, 'the event before it is kept');
    assert.equal(h.balance(CAROL), 3, 'the event after it is applied: bad input does not stop the batch');

    const outputs = recordsOf(h, 'balances').map((r) => decodeOut(h, r).value);
    assert.deepEqual(outputs, [
      { account: BOB, balance: 2 },
      { account: CAROL, balance: 3 },
    ], 'no output from the failed handler');
    assert.equal(changelog(h).has(`balances/${ALICE}`), false, 'no changelog record from the failed handler');

    const dlq = deadLetters(h);
    assert.equal(dlq.length, 1);
    const letter = dlq[0]!;
    assert.equal(letter.partition, PARTITION);
    assert.deepEqual(letter.value, failing.value, 'dead letter carries the original bytes');
    assert.deepEqual(letter.key, failing.key);
    assert.equal(letter.timestamp, failing.timestamp);
    const headers = letter.headers ?? {};
    assert.equal(headers[DLQ_HEADERS.reason], 'handler_error');
    assert.equal(headers[DLQ_HEADERS.sourceTopic], 'commands');
    assert.equal(headers[DLQ_HEADERS.sourcePartition], String(PARTITION));
    assert.equal(headers[DLQ_HEADERS.sourceOffset], '7');
    assert.equal(headers[DLQ_HEADERS.eventType], 'bank.Command');
    assert.match(headers[DLQ_HEADERS.error] ?? '', new RegExp(`boom for ${ALICE}`));
    assert.equal(headers['trace-id'], 'abc', 'the original headers are kept');

    assert.deepEqual(
      [...h.processor.plan().offsets].sort((a, b) => a.topic.localeCompare(b.topic)),
      [
        { topic: 'commands', partition: PARTITION, offset: 8 },
        { topic: 'deposits', partition: PARTITION, offset: 3 },
      ],
      'a dead-lettered record is consumed: its offset moves on',
    );
    assert.deepEqual(h.observed.deadLettered, [['handler_error', 'bank.Command']]);
    h.processor.committed();
    assert.ok(h.observed.handled.some(([type, outcome]) => type === 'bank.Command' && outcome === 'failed'));
  });

  it('a failure after a successful event on the same row keeps the earlier event exactly', () => {
    const h = harness();
    h.processor.apply([
      deposit(h, 0, ALICE, 5),
      command(h, 0, { op: 'throw-after-write', account: ALICE, amount: 1000 }),
    ]);
    assert.equal(h.balance(ALICE), 5);
    assert.deepEqual(changelog(h), new Map([[`balances/${ALICE}`, { balance: 5 }]]));
  });

  it('routes undecodable bytes and a missing value to the dead-letter topic as decode_error', () => {
    const h = harness();
    const good = h.catalog.encode('bank.Deposit', { account: ALICE, amount: 1 });
    const inputs = [
      logRecord('deposits', 0, Buffer.from('{"account":"x"}'), { key: 'x' }), // not Avro at all
      logRecord('deposits', 1, good.subarray(0, good.length - 1)), // truncated body
      logRecord('deposits', 2, Buffer.concat([good, Buffer.from([0])])), // trailing bytes
      logRecord('deposits', 3, null), // no value
      logRecord('deposits', 4, Buffer.from([0xc3, 0x01, 0x00])), // short header
    ];
    h.processor.apply(inputs);
    const dlq = deadLetters(h);
    assert.equal(dlq.length, inputs.length);
    dlq.forEach((letter, i) => {
      const headers = letter.headers ?? {};
      assert.equal(headers[DLQ_HEADERS.reason], 'decode_error', `record ${i}`);
      assert.equal(headers[DLQ_HEADERS.sourceOffset], String(i));
      assert.equal(headers[DLQ_HEADERS.sourceTopic], 'deposits');
      assert.ok((headers[DLQ_HEADERS.error] ?? '').length > 0, 'the error says what is wrong');
      assert.deepEqual(letter.value, inputs[i]!.value);
    });
    assert.deepEqual(h.state.changes().filter((c) => c.table !== INPUT_OFFSETS_TABLE), [], 'no row changed but the offsets');
    assert.deepEqual(h.processor.plan().offsets, [{ topic: 'deposits', partition: PARTITION, offset: 5 }]);
  });

  it('routes an unknown schema fingerprint to the dead-letter topic as unknown_schema', () => {
    const h = harness();
    const good = h.catalog.encode('bank.Deposit', { account: ALICE, amount: 1 });
    const unknown = Buffer.from(good);
    unknown.writeBigUInt64LE(0x0123456789abcdefn, 2);
    h.processor.apply([logRecord('deposits', 0, unknown)]);
    const headers = onlyDeadLetter(h);
    assert.equal(headers[DLQ_HEADERS.reason], 'unknown_schema');
    assert.match(headers[DLQ_HEADERS.error] ?? '', /0123456789abcdef/, 'the error names the fingerprint');
    assert.equal(h.balance(ALICE), undefined);
  });

  it('routes a known event type that no procedure handles to the dead-letter topic as no_procedure', () => {
    const h = harness();
    const value = h.catalog.encode('bank.out.Deposited', { account: ALICE, balance: 1 });
    h.processor.apply([logRecord('deposits', 0, value)]);
    const headers = onlyDeadLetter(h);
    assert.equal(headers[DLQ_HEADERS.reason], 'no_procedure');
    assert.equal(headers[DLQ_HEADERS.eventType], 'bank.out.Deposited');
    assert.match(headers[DLQ_HEADERS.error] ?? '', /bank\.out\.Deposited/);
    assert.deepEqual(h.observed.deadLettered, [['no_procedure', 'bank.out.Deposited']]);
  });

  it('rejects a handler that returns a Promise: dead-lettered, and nothing it did is kept', () => {
    const h = harness();
    h.processor.apply([command(h, 0, { op: 'promise', account: ALICE, amount: 5 })]);
    const headers = onlyDeadLetter(h);
    assert.equal(headers[DLQ_HEADERS.reason], 'handler_error');
    assert.match(headers[DLQ_HEADERS.error] ?? '', /Promise/);
    assert.match(headers[DLQ_HEADERS.error] ?? '', /synchronous/);
    assert.equal(h.balance(ALICE), undefined);
    assert.deepEqual(recordsOf(h, 'balances'), []);
    assert.deepEqual(changelog(h), new Map());
  });

  it('keeps nothing a Promise-returning handler does after it returned', async () => {
    const h = harness();
    h.processor.apply([command(h, 0, { op: 'promise-late', account: ALICE, amount: 5 })]);
    assert.equal(onlyDeadLetter(h)[DLQ_HEADERS.reason], 'handler_error');
    await tick(); // let the handler's continuation run, as it would between polls
    h.processor.apply([deposit(h, 0, BOB, 1)]);
    await tick();
    assert.equal(h.balance(ALICE), undefined, 'a write after the handler returned must not reach state');
    assert.deepEqual(changelog(h), new Map([[`balances/${BOB}`, { balance: 1 }]]));
    assert.deepEqual(recordsOf(h, 'balances').map((r) => decodeOut(h, r).value), [{ account: BOB, balance: 1 }]);
  });

  it('dead-letters an emitted value that violates its schema, naming the field, and undoes the writes', () => {
    const h = harness();
    h.processor.apply([command(h, 3, { op: 'bad-emit', account: ALICE })]);
    const headers = onlyDeadLetter(h);
    assert.equal(headers[DLQ_HEADERS.reason], 'handler_error');
    assert.match(headers[DLQ_HEADERS.error] ?? '', /"balance"/);
    assert.match(headers[DLQ_HEADERS.error] ?? '', /Deposited/);
    assert.equal(h.balance(ALICE), undefined);
    assert.deepEqual(changelog(h), new Map());
    assert.deepEqual(recordsOf(h, 'balances'), []);
  });

  it('dead-letters an emitted string with a lone surrogate (it would reach the topic as U+FFFD), naming the field', () => {
    const h = harness();
    h.processor.apply([command(h, 4, { op: 'emit-lone-surrogate', account: ALICE })]);
    const headers = onlyDeadLetter(h);
    assert.equal(headers[DLQ_HEADERS.reason], 'handler_error');
    assert.match(headers[DLQ_HEADERS.error] ?? '', /field "account".*lone surrogate/);
    assert.equal(h.balance(ALICE), undefined);
    assert.deepEqual(recordsOf(h, 'balances'), []);
  });

  it("dead-letters a handler that writes another partition's key, undoing its other writes", () => {
    const h = harness();
    h.processor.apply([command(h, 0, { op: 'write-foreign', account: ALICE, amount: 5, target: FOREIGN })]);
    const headers = onlyDeadLetter(h);
    assert.equal(headers[DLQ_HEADERS.reason], 'handler_error');
    assert.match(headers[DLQ_HEADERS.error] ?? '', /belongs to partition/);
    assert.equal(h.balance(ALICE), undefined);
    assert.deepEqual(changelog(h), new Map());
  });

  it('dead-letters a handler that emits an event without an output topic', () => {
    const h = harness();
    h.processor.apply([command(h, 0, { op: 'emit-no-output', account: ALICE, amount: 5 })]);
    const headers = onlyDeadLetter(h);
    assert.equal(headers[DLQ_HEADERS.reason], 'handler_error');
    assert.match(headers[DLQ_HEADERS.error] ?? '', /output topic/);
    assert.equal(h.balance(ALICE), undefined);
    assert.deepEqual(recordsOf(h, 'balances'), []);
  });
});

describe('BatchProcessor: handler context', () => {
  const observe = (h: Harness, records: LogRecord[]): Observed[] => {
    h.processor.apply(records);
    assert.deepEqual(deadLetters(h), []);
    return recordsOf(h, 'observations').map((r) => decodeOut(h, r).value as unknown as Observed);
  };

  it('gives the record timestamp, offset, partition and event type', () => {
    const h = harness();
    const [o] = observe(h, [command(h, 42, { op: 'observe' }, { timestamp: 1_234_567_890_123 })]);
    assert.ok(o);
    assert.equal(o.timestamp, 1_234_567_890_123);
    assert.equal(o.offset, 42);
    assert.equal(o.partition, PARTITION);
    assert.equal(o.eventType, 'bank.Command');
    assert.equal(recordsOf(h, 'observations')[0]!.timestamp, 1_234_567_890_123);
  });

  it('ctx.random() is the same for the same (topic, partition, offset) and differs across offsets', () => {
    const first = harness();
    const second = harness();
    const offsets = [0, 1, 2, 1000, 2 ** 32 + 5];
    const a = observe(first, offsets.map((o) => command(first, o, { op: 'observe' })));
    const b = observe(second, offsets.map((o) => command(second, o, { op: 'observe' }, { timestamp: 1 })));
    assert.deepEqual(
      a.map((o) => [o.r1, o.r2]),
      b.map((o) => [o.r1, o.r2]),
      'replaying the same records (even with other timestamps) gives the same numbers',
    );
    for (const o of a) {
      for (const r of [o.r1, o.r2]) assert.ok(r >= 0 && r < 1, `random() in [0, 1), got ${r}`);
      assert.notEqual(o.r1, o.r2, 'successive calls differ');
    }
    assert.equal(new Set(a.map((o) => o.r1)).size, offsets.length, 'each offset gets its own sequence');

    // Another partition at the same offsets gets other numbers.
    const other = harness(PARTITION + 1);
    const c = observe(other, offsets.map((o) => ({ ...command(other, o, { op: 'observe' }), partition: PARTITION + 1 })));
    for (let i = 0; i < offsets.length; i++) assert.notEqual(c[i]!.r1, a[i]!.r1);
  });

  it('routes an emitted event to partitionForKey(key, output partitions), by the input key or an explicit key', () => {
    const h = harness();
    const accounts = keysOf(PARTITION, APP_PARTITIONS, 12, 'acct-');
    const targets = accounts.map((_, i) => `target-${i}`);
    h.processor.apply([
      ...accounts.map((account, i) => command(h, i, { op: 'observe', account })),
      ...targets.map((target, i) => command(h, 100 + i, { op: 'observe', account: ALICE, target })),
    ]);
    const outs = recordsOf(h, 'observations');
    assert.equal(outs.length, accounts.length + targets.length);
    const expectedKeys = [...accounts, ...targets];
    outs.forEach((out, i) => {
      const key = expectedKeys[i]!;
      assert.deepEqual(out.key, Buffer.from(key));
      assert.equal(out.partition, partitionForKey(key, PARTITIONS_OF.observations!), `partition of ${key}`);
    });
    // With 3 output partitions and 24 keys, more than one partition is used: routing is not constant.
    assert.ok(new Set(outs.map((o) => o.partition)).size > 1);
  });
});
