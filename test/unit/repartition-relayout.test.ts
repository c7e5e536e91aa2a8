// The new layout of an app's state when `farad repartition` grows its partition count
// (src/repartition/relayout.ts), checked against a tally kept independently of farad's code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileApp, defineApp, INPUT_OFFSETS_TABLE, MP_TABLE, record, table, TIMERS_TABLE, type CompiledApp } from '../../src/procedures/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { RepartitionError } from '../../src/errors.js';
import { relayout, type StateRow } from '../../src/repartition/relayout.js';
import { seededRandom } from '../../src/procedures/index.js';

interface Votes {
  readonly n: number;
}
const VotesSchema = record<Votes>({ type: 'record', name: 'Votes', namespace: 'grow', fields: [{ name: 'n', type: 'long' }] });
const Ping = record<{ key: string }>({ type: 'record', name: 'Ping', namespace: 'grow', fields: [{ name: 'key', type: 'string' }] });

function growApp(partitions: number, localRegroup: 'merge' | 'reset' | 'none' = 'merge'): CompiledApp {
  const regroup = localRegroup === 'merge' ? { regroup: { merge: (a: Votes, b: Votes) => ({ n: a.n + b.n }) } } : localRegroup === 'reset' ? { regroup: 'reset' as const } : {};
  return compileApp(
    defineApp({
      name: 'grow',
      partitions,
      events: { Ping },
      tables: {
        byPhone: table({ key: 'string', value: VotesSchema }),
        byContestant: table({ key: 'int', value: VotesSchema }),
        perPartition: table({ key: 'string', value: VotesSchema, scope: 'local', ...regroup }),
      },
      inputs: [{ topic: 'pings', events: ['Ping'] }],
      procedures: { Ping: { partitionKey: (p) => p.key, handle: () => undefined } },
      timers: { nudge: { handle: () => undefined } },
      schedules: { beat: { every: '1m', handle: () => undefined } },
    }),
  );
}

/** Rows of `from` partitions as the old layout holds them: each partitioned key in its own partition. */
function oldState(from: number, seed: number): StateRow[][] {
  const random = seededRandom(seed);
  const rows: StateRow[][] = Array.from({ length: from }, () => []);
  for (let i = 0; i < 3000; i++) {
    const phone = `phone-${Math.floor(random() * 1e9)}`;
    rows[partitionForKey(phone, from)]!.push({ table: 'byPhone', key: phone, value: { n: i } });
  }
  for (let c = 1; c <= 40; c++) rows[partitionForKey(String(c), from)]!.push({ table: 'byContestant', key: c, value: { n: c * 10 } });
  for (let p = 0; p < from; p++) {
    for (const area of ['east', 'west', `only-${p}`]) rows[p]!.push({ table: 'perPartition', key: area, value: { n: p + 1 } });
    rows[p]!.push({ table: INPUT_OFFSETS_TABLE, key: 'pings', value: { next: 100 + p } });
    rows[p]!.push({ table: TIMERS_TABLE, key: `["@beat","","${p}"]`, value: { kind: '@beat', key: '', id: String(p), dueAt: 1, setAt: 0, schedule: '1m' } });
  }
  for (let i = 0; i < 50; i++) {
    const key = `phone-t${i}`;
    const rowKey = JSON.stringify(['nudge', key, 'x']);
    rows[partitionForKey(key, from)]!.push({ table: TIMERS_TABLE, key: rowKey, value: { kind: 'nudge', key, id: 'x', dueAt: 1000 + i, setAt: 0, schedule: null } });
  }
  return rows;
}

for (const [from, to] of [
  [4, 6],
  [8, 16],
  [3, 7],
] as const) {
  test(`${from} → ${to} partitions: every row goes where its key now hashes, local rows folded, nothing else carried`, () => {
    const before = oldState(from, from * 100 + to);
    const { partitions, report } = relayout(growApp(from), from, to, (p) => before[p]!);
    assert.equal(partitions.length, to);

    // The tally: what each table should hold, from the old rows alone.
    const expected = new Map<string, Map<unknown, { partition: number; value: unknown }>>();
    const expect = (table: string, key: unknown, partition: number, value: unknown): void => {
      if (!expected.has(table)) expected.set(table, new Map());
      expected.get(table)!.set(key, { partition, value });
    };
    const sums = new Map<string, number>();
    for (const rows of before) {
      for (const row of rows) {
        if (row.table === 'byPhone' || row.table === 'byContestant') expect(row.table, row.key, partitionForKey(String(row.key), to), row.value);
        if (row.table === 'perPartition') sums.set(String(row.key), (sums.get(String(row.key)) ?? 0) + (row.value as Votes).n);
        if (row.table === TIMERS_TABLE && !(row.value as { kind: string }).kind.startsWith('@')) expect(row.table, row.key, partitionForKey((row.value as { key: string }).key, to), row.value);
      }
    }
    for (const [area, n] of sums) expect('perPartition', area, partitionForKey(area, to), { n });

    const actual = new Map<string, Map<unknown, { partition: number; value: unknown }>>();
    partitions.forEach((tables, partition) => {
      for (const [table, rows] of tables) {
        for (const [key, value] of rows) {
          if (!actual.has(table)) actual.set(table, new Map());
          assert.equal(actual.get(table)!.has(key), false, `${table}/${String(key)} placed twice`);
          actual.get(table)!.set(key, { partition, value });
        }
      }
    });
    assert.deepEqual(actual, expected);
    assert.equal(actual.has(INPUT_OFFSETS_TABLE), false, 'the new topic generations are read from their start');

    const partitionedRows = 3000 + 40 + 50;
    assert.equal(report.moved + report.stayed, partitionedRows);
    assert.ok(report.moved > partitionedRows / 3, `most rows move (${report.moved})`);
    assert.equal(report.merged, 3 * from);
    assert.equal(report.schedulesReplanned, from);
    assert.equal(report.offsetsDropped, from);
  });
}

test('local rows declared reset are dropped', () => {
  const before = oldState(4, 1);
  const { partitions, report } = relayout(growApp(4, 'reset'), 4, 6, (p) => before[p]!);
  assert.ok(partitions.every((tables) => !tables.has('perPartition')));
  assert.equal(report.reset, 12);
});

test('refusals say what to do: a local table without regroup, a smaller count, a round in flight', () => {
  const before = oldState(4, 2);
  assert.throws(() => relayout(growApp(4, 'none'), 4, 6, (p) => before[p]!), (err: unknown) => err instanceof RepartitionError && /table "perPartition" is local.*regroup: \{ merge\(a, b\) \}.*regroup: 'reset'/.test(err.message));
  assert.throws(() => relayout(growApp(4), 4, 4, (p) => before[p]!), /larger than today's 4/);
  assert.throws(() => relayout(growApp(4), 4, 2, (p) => before[p]!), /does not shrink/);
  assert.throws(() => relayout(growApp(4), 8, 16, (p) => before[p]!), /has 4 partitions, not 8/);
  const withRound = before.map((rows, p) => (p === 2 ? [...rows, { table: MP_TABLE, key: 'round-7', value: { json: '{}' } }] : rows));
  // The round table exists only in apps with multi-partition work; any app refuses an unknown table.
  assert.throws(() => relayout(growApp(4), 4, 6, (p) => withRound[p]!), RepartitionError);
  assert.throws(() => compileApp(defineApp({ name: 'bad', partitions: 2, events: { Ping }, tables: { t: table({ key: 'string', value: VotesSchema, regroup: 'reset' }) }, inputs: [{ topic: 'pings', events: ['Ping'] }], procedures: { Ping: { partitionKey: (p) => p.key, handle: () => undefined } } })), /regroup is for local tables/);
});
