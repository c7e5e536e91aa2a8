import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import avsc from 'avsc';
import { HandlerContractError, SchemaValidationError, WrongPartitionError } from '../../src/errors.js';
import { CommittedTable, HandlerTable, PartitionState, type Key, type TableSchema } from '../../src/state/index.js';
import { RowCodec } from '../../src/codec/index.js';
import { intKeysOf, keysOf } from './support/partition-keys.js';

// ---- fixtures -------------------------------------------------------------------------------

interface Account {
  owner: string;
  balance: number;
  address: { city: string; zip: number };
  tags: string[];
}

const ACCOUNT = avsc.Type.forSchema({
  type: 'record',
  name: 'Account',
  namespace: 'test',
  fields: [
    { name: 'owner', type: 'string' },
    { name: 'balance', type: 'long' },
    {
      name: 'address',
      type: {
        type: 'record',
        name: 'Address',
        fields: [
          { name: 'city', type: 'string' },
          { name: 'zip', type: 'int' },
        ],
      },
    },
    { name: 'tags', type: { type: 'array', items: 'string' } },
  ],
});

const COUNT = avsc.Type.forSchema({
  type: 'record',
  name: 'Count',
  namespace: 'test',
  fields: [{ name: 'n', type: 'int' }],
});

const account = (owner: string, balance = 0): Account => ({
  owner,
  balance,
  address: { city: 'Lyon', zip: 69001 },
  tags: ['a'],
});
const count = (n: number): { n: number } => ({ n });

const TABLES: TableSchema[] = [
  { name: 'accounts', keyType: 'string', valueType: ACCOUNT, scope: 'partitioned' },
  { name: 'byNumber', keyType: 'int', valueType: COUNT, scope: 'partitioned' },
  { name: 'byLong', keyType: 'long', valueType: COUNT, scope: 'partitioned' },
  { name: 'totals', keyType: 'int', valueType: COUNT, scope: 'local' },
];

/** A partition that owns every key (one partition), so tests need not pick keys. */
function single(): { state: PartitionState; t: (name: string) => HandlerTable; committed: (name: string) => CommittedTable } {
  const state = new PartitionState(0, 1, TABLES);
  return {
    state,
    t: (name) => new HandlerTable(state, name),
    committed: (name) => new CommittedTable(state, name),
  };
}

const keysOfScan = (rows: Array<[Key, unknown]>): Key[] => rows.map(([k]) => k);

/** Everything a table holds, as plain data, for before/after comparisons. */
function snapshot(state: PartitionState): Record<string, Array<[Key, unknown]>> {
  const out: Record<string, Array<[Key, unknown]>> = {};
  for (const name of state.tableNames()) out[name] = new HandlerTable(state, name).scan().map(([k, v]) => [k, structuredClone(v)]);
  return out;
}

// ---- tests ----------------------------------------------------------------------------------

describe('PartitionState: point reads and writes', () => {
  it('put, get, has, size and delete', () => {
    const { t } = single();
    const accounts = t('accounts');
    assert.equal(accounts.get('alice'), undefined);
    assert.equal(accounts.has('alice'), false);
    assert.equal(accounts.size, 0);

    accounts.put('alice', account('alice', 10));
    accounts.put('bob', account('bob', 20));
    assert.deepEqual(accounts.get('alice'), account('alice', 10));
    assert.equal(accounts.has('alice'), true);
    assert.equal(accounts.size, 2);

    accounts.put('alice', account('alice', 11));
    assert.equal((accounts.get('alice') as Account).balance, 11);
    assert.equal(accounts.size, 2, 'overwriting a key does not add a row');

    assert.equal(accounts.delete('alice'), true);
    assert.equal(accounts.get('alice'), undefined);
    assert.equal(accounts.has('alice'), false);
    assert.equal(accounts.size, 1);
    assert.equal(accounts.delete('alice'), false, 'deleting a missing key reports false');
  });

  it('deleting a missing key writes nothing (no changelog tombstone)', () => {
    const { state, t } = single();
    assert.equal(t('accounts').delete('ghost'), false);
    assert.deepEqual(state.changes(), []);
    assert.equal(state.inTransaction, false);
  });

  it('tables are independent: the same key in two tables holds two rows', () => {
    const { t } = single();
    t('byNumber').put(1, count(1));
    t('totals').put(1, count(2));
    assert.deepEqual(t('byNumber').get(1), count(1));
    assert.deepEqual(t('totals').get(1), count(2));
  });

  it('unknown tables are refused with the table name', () => {
    const { state } = single();
    assert.throws(() => state.schemaOf('nope'), (err: unknown) => err instanceof HandlerContractError && /"nope"/.test(err.message));
    assert.throws(() => new HandlerTable(state, 'nope').get('x'), HandlerContractError);
  });
});

describe('PartitionState: ordered scans', () => {
  it('orders integer keys numerically, not by their decimal text', () => {
    const { t } = single();
    const table = t('byNumber');
    for (const k of [10, 2, -5, 100, 33, 0, 9, -40]) table.put(k, count(k));
    assert.deepEqual(keysOfScan(table.scan()), [-40, -5, 0, 2, 9, 10, 33, 100]);
    assert.deepEqual(table.scan().map(([, v]) => v), [-40, -5, 0, 2, 9, 10, 33, 100].map(count));
  });

  it('orders long keys numerically beyond 32 bits', () => {
    const { t } = single();
    const table = t('byLong');
    const keys = [2 ** 40, 5, 2 ** 33 + 1, -(2 ** 50), 2 ** 53 - 1];
    for (const k of keys) table.put(k, count(1));
    assert.deepEqual(keysOfScan(table.scan()), [-(2 ** 50), 5, 2 ** 33 + 1, 2 ** 40, 2 ** 53 - 1]);
  });

  it('orders string keys by UTF-16 code unit (uppercase before lowercase, prefixes first)', () => {
    const { t } = single();
    const table = t('accounts');
    const keys = ['b', 'a', 'B', 'aa', 'é', 'Z', '10', '9', '', '\u{1F600}', '\uFFFF'];
    for (const k of keys) table.put(k, account(k));
    // By code unit: '' < '10' < '9' < 'B' < 'Z' < 'a' < 'aa' < 'b' < 'é' (U+00E9) < U+D83D... (surrogate) < U+FFFF.
    assert.deepEqual(keysOfScan(table.scan()), ['', '10', '9', 'B', 'Z', 'a', 'aa', 'b', 'é', '\u{1F600}', '\uFFFF']);
  });

  it('pages with `after` (exclusive) and `limit`, covering every row exactly once', () => {
    const { t } = single();
    const table = t('byNumber');
    const all = Array.from({ length: 23 }, (_, i) => i * 3); // 0, 3, ..., 66
    for (const k of [...all].reverse()) table.put(k, count(k));

    assert.deepEqual(keysOfScan(table.scan({ limit: 4 })), [0, 3, 6, 9]);
    assert.deepEqual(keysOfScan(table.scan({ after: 9, limit: 2 })), [12, 15], '`after` is exclusive');
    assert.deepEqual(keysOfScan(table.scan({ after: 10, limit: 2 })), [12, 15], '`after` need not be a key in the table');
    assert.deepEqual(keysOfScan(table.scan({ after: -1000 })), all);
    assert.deepEqual(table.scan({ after: 66 }), []);
    assert.deepEqual(table.scan({ limit: 0 }), []);

    const paged: Key[] = [];
    let after: Key | undefined;
    for (;;) {
      const page = table.scan({ after, limit: 5 });
      if (page.length === 0) break;
      assert.ok(page.length <= 5);
      paged.push(...keysOfScan(page));
      after = page[page.length - 1]![0];
    }
    assert.deepEqual(paged, all);
  });

  it('pages string keys with `after`', () => {
    const { t } = single();
    const table = t('accounts');
    for (const k of ['d', 'a', 'c', 'b', 'e']) table.put(k, account(k));
    assert.deepEqual(keysOfScan(table.scan({ after: 'b', limit: 2 })), ['c', 'd']);
    assert.deepEqual(keysOfScan(table.scan({ after: 'bb' })), ['c', 'd', 'e']);
  });

  it('reflects inserts and deletes made after a previous scan', () => {
    const { t } = single();
    const table = t('byNumber');
    table.put(5, count(5));
    table.put(1, count(1));
    assert.deepEqual(keysOfScan(table.scan()), [1, 5]);
    table.put(3, count(3));
    assert.deepEqual(keysOfScan(table.scan()), [1, 3, 5]);
    table.delete(1);
    assert.deepEqual(keysOfScan(table.scan()), [3, 5]);
    table.put(3, count(33)); // overwrite keeps order, shows the new value
    assert.deepEqual(table.scan(), [
      [3, count(33)],
      [5, count(5)],
    ]);
  });
});

describe('PartitionState: savepoints and rollback', () => {
  it('rollbackTo restores the exact previous values of overwritten, deleted and inserted keys', () => {
    const { state, t } = single();
    const accounts = t('accounts');
    accounts.put('alice', account('alice', 1));
    accounts.put('bob', account('bob', 2));
    state.markCommitted();
    const aliceBefore = accounts.get('alice');
    const bobBefore = accounts.get('bob');
    const before = snapshot(state);

    const sp = state.savepoint();
    accounts.put('alice', account('alice', 100));
    accounts.delete('bob');
    accounts.put('carol', account('carol', 3));
    assert.equal(accounts.size, 2);
    state.rollbackTo(sp);

    assert.deepEqual(snapshot(state), before);
    assert.equal(accounts.get('alice'), aliceBefore, 'the very same (frozen) object is back');
    assert.equal(accounts.get('bob'), bobBefore);
    assert.equal(accounts.has('carol'), false);
    assert.equal(accounts.size, 2);
    assert.deepEqual(keysOfScan(accounts.scan()), ['alice', 'bob'], 'scan order is rebuilt after rollback');
  });

  it('undoes delete / re-insert / delete / re-insert of one key within a batch', () => {
    const { state, t } = single();
    const table = t('byNumber');
    table.put(7, count(1));
    state.markCommitted();

    const sp = state.savepoint();
    table.delete(7);
    table.put(7, count(2));
    table.delete(7);
    table.put(7, count(3));
    assert.deepEqual(table.get(7), count(3));
    state.rollbackTo(sp);
    assert.deepEqual(table.get(7), count(1));

    // A key that did not exist: insert, delete, insert again, then roll back → absent.
    const sp2 = state.savepoint();
    table.put(8, count(1));
    table.delete(8);
    table.put(8, count(2));
    state.rollbackTo(sp2);
    assert.equal(table.has(8), false);
    assert.equal(table.size, 1);
    assert.deepEqual(state.changes(), []);
  });

  it('rolls back only the writes after the savepoint (per-event atomicity inside a batch)', () => {
    const { state, t } = single();
    const table = t('byNumber');
    table.put(1, count(1));
    state.markCommitted();

    // event 1 (kept)
    table.put(1, count(10));
    table.put(2, count(20));
    // event 2 (fails)
    const sp2 = state.savepoint();
    table.put(1, count(100));
    table.delete(2);
    table.put(3, count(300));
    state.rollbackTo(sp2);

    assert.deepEqual(table.scan(), [
      [1, count(10)],
      [2, count(20)],
    ]);
    // event 3 (kept) writes again after the rollback
    table.put(4, count(40));
    assert.deepEqual(keysOfScan(table.scan()), [1, 2, 4]);
  });

  it('nested savepoints unwind one level at a time', () => {
    const { state, t } = single();
    const table = t('byNumber');
    const outer = state.savepoint();
    table.put(1, count(1));
    const inner = state.savepoint();
    table.put(1, count(2));
    table.put(2, count(2));
    state.rollbackTo(inner);
    assert.deepEqual(table.scan(), [[1, count(1)]]);
    state.rollbackTo(outer);
    assert.deepEqual(table.scan(), []);
    assert.equal(state.inTransaction, false);
  });

  it('rollbackBatch returns every table to the last committed state', () => {
    const { state, t } = single();
    t('accounts').put('alice', account('alice', 1));
    t('totals').put(1, count(1));
    state.markCommitted();
    const committed = snapshot(state);

    for (let event = 0; event < 5; event++) {
      state.savepoint();
      t('accounts').put('alice', account('alice', 100 + event));
      t('accounts').put(`new${event}`, account('x'));
      t('totals').delete(1);
      t('totals').put(event + 10, count(event));
    }
    assert.equal(state.inTransaction, true);
    state.rollbackBatch();
    assert.deepEqual(snapshot(state), committed);
    assert.deepEqual(state.changes(), []);
    assert.equal(state.inTransaction, false);
  });

  it('markCommitted makes the batch permanent: a later rollbackBatch does not undo it', () => {
    const { state, t } = single();
    t('byNumber').put(1, count(1));
    state.markCommitted();
    assert.equal(state.inTransaction, false);
    t('byNumber').put(1, count(2));
    state.rollbackBatch();
    assert.deepEqual(t('byNumber').get(1), count(1));
  });
});

describe('PartitionState: changes() (the changelog delta)', () => {
  const byKey = (changes: ReturnType<PartitionState['changes']>): Map<string, unknown> =>
    new Map(changes.map((c) => [`${c.table}/${String(c.key)}`, c.value]));

  it('gives one entry per changed row with its last value, and a tombstone (undefined) for deletes', () => {
    const { state, t } = single();
    t('accounts').put('gone', account('gone'));
    t('accounts').put('kept', account('kept'));
    state.markCommitted();

    t('accounts').put('new', account('new', 1));
    t('accounts').put('new', account('new', 2));
    t('accounts').put('new', account('new', 3));
    t('accounts').delete('gone');
    t('byNumber').put(5, count(5));
    t('byNumber').delete(5);
    t('byNumber').put(5, count(6));

    const changes = state.changes();
    assert.equal(changes.length, 3, `one entry per row, got ${JSON.stringify(changes)}`);
    const map = byKey(changes);
    assert.deepEqual(map.get('accounts/new'), account('new', 3));
    assert.ok(map.has('accounts/gone'));
    assert.equal(map.get('accounts/gone'), undefined, 'deleted row is a tombstone');
    assert.deepEqual(map.get('byNumber/5'), count(6));
    assert.equal(map.has('accounts/kept'), false, 'untouched rows are not in the delta');
    for (const change of changes) if (change.table === 'byNumber') assert.equal(typeof change.key, 'number', 'keys keep their type');
  });

  it('excludes keys whose only writes were rolled back, keeps keys written by surviving events', () => {
    const { state, t } = single();
    const table = t('byNumber');
    table.put(1, count(1));
    state.markCommitted();

    table.put(2, count(2)); // event A survives
    const sp = state.savepoint();
    table.put(2, count(22)); // event B fails: touches a row A wrote...
    table.put(3, count(3)); // ...and a row only B wrote
    table.delete(1); // ...and deletes a committed row
    state.rollbackTo(sp);

    const map = byKey(state.changes());
    assert.deepEqual([...map.keys()].sort(), ['byNumber/2']);
    assert.deepEqual(map.get('byNumber/2'), count(2), "value is A's, not the rolled-back B's");
  });

  it('is empty after markCommitted and after rollbackBatch', () => {
    const { state, t } = single();
    t('byNumber').put(1, count(1));
    assert.equal(state.changes().length, 1);
    state.markCommitted();
    assert.deepEqual(state.changes(), []);
    t('byNumber').put(2, count(2));
    state.rollbackBatch();
    assert.deepEqual(state.changes(), []);
  });

  it('round-trips through the changelog codec into an equal partition', () => {
    const { state, t } = single();
    const replica = new PartitionState(0, 1, TABLES);
    const rows = new RowCodec(TABLES.map((table) => ({ ...table, formerly: [] })));
    const commit = (): void => {
      for (const { key, value } of rows.encodeChanges(state.changes())) rows.apply(replica, key, value);
      state.markCommitted();
    };
    t('accounts').put('alice', account('alice', 5));
    t('accounts').put('bob', account('bob', 6));
    t('byLong').put(2 ** 40, count(1));
    t('totals').put(-3, count(9));
    commit();
    t('accounts').delete('bob');
    t('accounts').put('alice', account('alice', 7));
    commit();

    assert.deepEqual(snapshot(replica), snapshot(state));
    assert.equal(new HandlerTable(replica, 'accounts').has('bob'), false, 'the tombstone deleted the row');
    assert.equal(replica.inTransaction, false, 'restored rows are not part of a transaction');
    assert.ok(Object.isFrozen(new HandlerTable(replica, 'accounts').get('alice')), 'restored rows are frozen too');
  });
});

describe('PartitionState: read-committed views', () => {
  function seeded() {
    const s = single();
    const table = s.t('byNumber');
    for (const k of [1, 2, 3, 4, 5]) table.put(k, count(k));
    s.state.markCommitted();
    return { ...s, table, view: s.committed('byNumber') };
  }

  it('hides uncommitted puts, overwrites and deletes while a batch is open', () => {
    const { state, table, view } = seeded();
    table.put(2, count(20)); // overwrite
    table.delete(3); // delete
    table.put(6, count(6)); // insert
    table.put(0, count(0)); // insert before the first key
    table.delete(5);
    table.put(5, count(50)); // delete + re-insert

    // The handler's view is live...
    assert.deepEqual(keysOfScan(table.scan()), [0, 1, 2, 4, 5, 6]);
    assert.equal(table.size, 6);
    // ...the committed view is not.
    assert.deepEqual(state.readCommitted('byNumber', 2), count(2));
    assert.deepEqual(state.readCommitted('byNumber', 3), count(3));
    assert.equal(state.readCommitted('byNumber', 6), undefined);
    assert.equal(state.readCommitted('byNumber', 0), undefined);
    assert.deepEqual(state.readCommitted('byNumber', 5), count(5));
    assert.deepEqual(state.scanCommitted('byNumber'), [1, 2, 3, 4, 5].map((k) => [k, count(k)]));
    assert.equal(state.committedSize('byNumber'), 5);

    assert.equal(view.has(3), true);
    assert.equal(view.has(6), false);
    assert.deepEqual(view.get(2), count(2));
    assert.equal(view.size, 5);
    assert.deepEqual(view.scan(), [1, 2, 3, 4, 5].map((k) => [k, count(k)]));
  });

  it('pages committed rows with `after` and `limit` while a batch is open', () => {
    const { state, table } = seeded();
    table.delete(2);
    table.delete(4);
    table.put(3, count(30));
    table.put(10, count(10));
    table.put(-1, count(-1));
    assert.deepEqual(keysOfScan(state.scanCommitted('byNumber', { limit: 2 })), [1, 2]);
    assert.deepEqual(keysOfScan(state.scanCommitted('byNumber', { after: 2, limit: 2 })), [3, 4]);
    assert.deepEqual(state.scanCommitted('byNumber', { after: 2, limit: 2 }), [
      [3, count(3)],
      [4, count(4)],
    ]);
    assert.deepEqual(keysOfScan(state.scanCommitted('byNumber', { after: 4 })), [5]);
    assert.deepEqual(keysOfScan(state.scanCommitted('byNumber', { after: 5 })), []);
    assert.deepEqual(keysOfScan(state.scanCommitted('byNumber', { after: -100, limit: 1 })), [1]);
  });

  it('shows the batch after markCommitted', () => {
    const { state, table, view } = seeded();
    table.put(2, count(20));
    table.delete(3);
    table.put(6, count(6));
    state.markCommitted();
    assert.deepEqual(state.readCommitted('byNumber', 2), count(20));
    assert.equal(state.readCommitted('byNumber', 3), undefined);
    assert.deepEqual(state.readCommitted('byNumber', 6), count(6));
    assert.deepEqual(keysOfScan(state.scanCommitted('byNumber')), [1, 2, 4, 5, 6]);
    assert.equal(state.committedSize('byNumber'), 5);
    assert.equal(view.size, 5);
    assert.equal(view.has(3), false);
  });

  it('is unchanged by a batch that is rolled back, and by writes rolled back to a savepoint', () => {
    const { state, table } = seeded();
    const before = state.scanCommitted('byNumber');
    table.put(1, count(100));
    const sp = state.savepoint();
    table.delete(2);
    state.rollbackTo(sp);
    assert.deepEqual(state.scanCommitted('byNumber'), before);
    state.rollbackBatch();
    assert.deepEqual(state.scanCommitted('byNumber'), before);
    assert.equal(state.committedSize('byNumber'), 5);
  });

  it('sees a committed row as itself, not as a later write, when the batch re-writes it several times', () => {
    const { state, table } = seeded();
    table.put(1, count(11));
    table.put(1, count(111));
    table.delete(1);
    assert.deepEqual(state.readCommitted('byNumber', 1), count(1));
    assert.equal(state.committedSize('byNumber'), 5);
  });
});

describe('PartitionState: write checks', () => {
  it('rejects keys of the wrong type for the table', () => {
    const { t } = single();
    const cases: Array<[string, unknown]> = [
      ['accounts', 1],
      ['byNumber', '1'],
      ['byNumber', 1.5],
      ['byNumber', 2 ** 31],
      ['byNumber', -(2 ** 31) - 1],
      ['byNumber', Number.NaN],
      ['byLong', 2 ** 53],
      ['byLong', 0.1],
    ];
    for (const [table, key] of cases) {
      const value = table === 'accounts' ? account('x') : count(1);
      assert.throws(
        () => t(table).put(key as Key, value),
        (err: unknown) => err instanceof HandlerContractError && err.message.includes(`"${table}"`),
        `${table} accepted key ${String(key)}`,
      );
      assert.throws(() => t(table).delete(key as Key), HandlerContractError);
    }
    // Boundaries that are fine.
    t('byNumber').put(2 ** 31 - 1, count(1));
    t('byNumber').put(-(2 ** 31), count(1));
    t('byLong').put(Number.MAX_SAFE_INTEGER, count(1));
    t('byLong').put(Number.MIN_SAFE_INTEGER, count(1));
  });

  it('throws WrongPartitionError for a key of another partition, for puts and deletes, and writes nothing', () => {
    const count4 = 4;
    const state = new PartitionState(2, count4, TABLES);
    const accounts = new HandlerTable(state, 'accounts');
    const [mine] = keysOf(2, count4, 1);
    const [foreign] = keysOf(1, count4, 1);
    accounts.put(mine!, account('me'));
    state.markCommitted();

    assert.throws(
      () => accounts.put(foreign!, account('other')),
      (err: unknown) =>
        err instanceof WrongPartitionError &&
        err.message.includes(JSON.stringify(foreign)) &&
        err.message.includes('partition 1') &&
        err.context.partition === 2 &&
        err.context.table === 'accounts',
    );
    assert.throws(() => accounts.delete(foreign!), WrongPartitionError);
    assert.equal(accounts.has(foreign!), false);
    assert.deepEqual(state.changes(), []);
    assert.equal(state.inTransaction, false);
  });

  it('routes numeric keys by their decimal string, like producers keyed by String(key)', () => {
    const partitions = 8;
    for (const p of [0, 5]) {
      const state = new PartitionState(p, partitions, TABLES);
      const table = new HandlerTable(state, 'byLong');
      for (const key of intKeysOf(p, partitions, 5)) table.put(key, count(1));
      assert.equal(table.size, 5);
      for (const key of intKeysOf((p + 1) % partitions, partitions, 3)) {
        assert.throws(() => table.put(key, count(1)), WrongPartitionError);
      }
    }
  });

  it('local-scope tables accept any key in any partition', () => {
    const partitions = 4;
    for (let p = 0; p < partitions; p++) {
      const state = new PartitionState(p, partitions, TABLES);
      const totals = new HandlerTable(state, 'totals');
      for (let key = 0; key < 20; key++) totals.put(key, count(key));
      assert.equal(totals.size, 20);
      assert.equal(totals.delete(3), true);
      // Still type-checked.
      assert.throws(() => totals.put('3' as unknown as number, count(1)), HandlerContractError);
    }
  });

  it('throws SchemaValidationError naming the bad field, nested or top-level, and writes nothing', () => {
    const { state, t } = single();
    const accounts = t('accounts');
    const cases: Array<[unknown, string]> = [
      [{ ...account('a'), balance: 'lots' }, 'balance'],
      [{ ...account('a'), owner: undefined }, 'owner'],
      [{ ...account('a'), address: { city: 'Lyon', zip: 1.5 } }, 'address.zip'],
      [{ ...account('a'), tags: ['ok', 7] }, 'tags[1]'],
    ];
    for (const [value, field] of cases) {
      assert.throws(
        () => accounts.put('a', value as Account),
        (err: unknown) =>
          err instanceof SchemaValidationError &&
          err.context.field === field &&
          err.message.includes(`"${field}"`) &&
          err.message.includes('"accounts"'),
        `expected a SchemaValidationError naming ${field}`,
      );
    }
    assert.throws(() => t('byNumber').put(1, { n: 'one' } as unknown as { n: number }), (err: unknown) => err instanceof SchemaValidationError && err.context.field === 'n');
    assert.equal(accounts.size, 0);
    assert.deepEqual(state.changes(), []);
  });

  it('refuses put(key, undefined) instead of treating it as a silent delete', () => {
    const { state, t } = single();
    const table = t('byNumber');
    table.put(1, count(1));
    state.markCommitted();
    assert.throws(() => table.put(1, undefined as unknown as { n: number }), SchemaValidationError);
    assert.deepEqual(table.get(1), count(1));
    assert.deepEqual(state.changes(), []);
  });
});

describe('PartitionState: frozen values', () => {
  it('freezes stored values deeply: mutating what a table returns throws', () => {
    const { t } = single();
    const accounts = t('accounts');
    accounts.put('alice', account('alice', 1));
    const row = accounts.get('alice') as Account;
    assert.throws(() => {
      row.balance = 99;
    }, TypeError);
    assert.throws(() => {
      row.address.city = 'Paris';
    }, TypeError);
    assert.throws(() => {
      row.tags.push('b');
    }, TypeError);
    assert.deepEqual(accounts.get('alice'), account('alice', 1));
  });

  it('freezes the object handed to put, so it cannot change the row behind the undo log', () => {
    const { t } = single();
    const value = account('bob', 2);
    t('accounts').put('bob', value);
    assert.throws(() => {
      value.balance = 3;
    }, TypeError);
    assert.throws(() => {
      value.address.zip = 3;
    }, TypeError);
  });

  it('scan results carry the same frozen values', () => {
    const { t, state } = single();
    t('byNumber').put(1, count(1));
    state.markCommitted();
    const [[, live]] = t('byNumber').scan() as [[Key, { n: number }]];
    const [[, committed]] = state.scanCommitted('byNumber') as [[Key, { n: number }]];
    for (const v of [live, committed]) {
      assert.throws(() => {
        v.n = 2;
      }, TypeError);
    }
  });
});

describe('PartitionState: rows keep what the changelog would give back', () => {
  it('fills in the defaults of fields a put left out (a table whose schema gained a field)', () => {
    const valueType = avsc.Type.forSchema({
      type: 'record',
      name: 'Balance',
      fields: [
        { name: 'balance', type: 'long' },
        { name: 'currency', type: 'string', default: 'EUR' },
      ],
    });
    const state = new PartitionState(0, 1, [{ name: 'balances', keyType: 'string', valueType, scope: 'local' }]);
    const table = new HandlerTable(state, 'balances');
    table.put('alice', { balance: 5 });
    assert.deepEqual({ ...(state.store('balances').get('alice') as object) }, { balance: 5, currency: 'EUR' });
  });
});
