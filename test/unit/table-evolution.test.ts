// Table schema evolution in the row codec: rows of every registered schema read into the
// current one by Avro's rules, migrations for what Avro cannot resolve, renamed and dropped
// tables, and the refusals at start that name app, table, field, old and new types.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import avsc, { type Schema } from 'avsc';
import { encodeChangeKey, encodeSnapshot, loadSnapshot, RowCodec, rowSchemaOf, SchemaBook, schemaFingerprint, schemaRecordOf, type TableShape } from '../../src/codec/index.js';
import { IncompatibleRowSchemaError, UnknownRowSchemaError } from '../../src/errors.js';
import { PartitionState } from '../../src/state/index.js';

const V1: Schema = { type: 'record', name: 'Account', namespace: 'bank', fields: [{ name: 'balance', type: 'int' }] };
const V2_ADDED: Schema = {
  type: 'record',
  name: 'Account',
  namespace: 'bank',
  fields: [
    { name: 'balance', type: 'long' },
    { name: 'currency', type: 'string', default: 'EUR' },
  ],
};
const V2_CURRENCY: Schema = {
  type: 'record',
  name: 'Account',
  namespace: 'bank',
  fields: [
    { name: 'balance', type: 'int' },
    { name: 'currency', type: 'string', default: 'EUR' },
  ],
};
// avsc's Schema type has no field aliases; Avro schemas do.
const V2_RENAMED_FIELD = { type: 'record', name: 'Account', namespace: 'bank', fields: [{ name: 'amount', type: 'int', aliases: ['balance'] }] } as unknown as Schema;
const V2_STRING: Schema = { type: 'record', name: 'Account', namespace: 'bank', fields: [{ name: 'balance', type: 'string' }] };
const V2_REQUIRED: Schema = {
  type: 'record',
  name: 'Account',
  namespace: 'bank',
  fields: [
    { name: 'balance', type: 'int' },
    { name: 'owner', type: 'string' },
  ],
};

function shape(name: string, schema: Schema, extra: Partial<TableShape> = {}): TableShape {
  return { name, valueType: avsc.Type.forSchema(schema), formerly: [], ...extra };
}

function stateFor(...tables: TableShape[]): PartitionState {
  return new PartitionState(0, 1, tables.map((t) => ({ name: t.name, keyType: 'string' as const, valueType: t.valueType, scope: 'local' as const })));
}

/** Changelog records written by an app whose table `name` had `schema` (`framed: false`: by farad before it versioned rows). */
function written(name: string, schema: Schema, rows: Record<string, unknown>, framed = true): Array<{ key: Buffer; value: Buffer | null }> {
  const old = new RowCodec([shape(name, schema)]);
  return old.encodeChanges(Object.entries(rows).map(([key, value]) => ({ table: name, key, value }))).map((c) => ({
    key: c.key,
    value: framed || c.value === null ? c.value : c.value.subarray(10),
  }));
}

function bookOf(...registrations: Array<[string, Schema]>): SchemaBook {
  return new SchemaBook(registrations.map(([table, schema]) => schemaRecordOf(table, avsc.Type.forSchema(schema))));
}

function restore(codec: RowCodec, state: PartitionState, records: ReturnType<typeof written>): string[] {
  return records.map((r) => codec.apply(state, r.key, r.value));
}

describe('RowCodec: rows of older schemas', () => {
  it('resolves an added field with a default and an int widened to long', () => {
    const table = shape('accounts', V2_ADDED);
    const codec = new RowCodec([table], new Set(), bookOf(['accounts', V1], ['accounts', V2_ADDED]));
    const state = stateFor(table);
    restore(codec, state, written('accounts', V1, { alice: { balance: 5 } }));
    assert.deepEqual({ ...(state.readCommitted('accounts', 'alice') as object) }, { balance: 5, currency: 'EUR' });
  });

  it('reads a renamed field through its alias', () => {
    const table = shape('accounts', V2_RENAMED_FIELD);
    const codec = new RowCodec([table], new Set(), bookOf(['accounts', V1], ['accounts', V2_RENAMED_FIELD]));
    const state = stateFor(table);
    restore(codec, state, written('accounts', V1, { bob: { balance: 7 } }));
    assert.deepEqual({ ...(state.readCommitted('accounts', 'bob') as object) }, { amount: 7 });
  });

  it('reads rows written before versioning (no header) as the first registered schema', () => {
    const table = shape('accounts', V2_ADDED);
    const codec = new RowCodec([table], new Set(), bookOf(['accounts', V1], ['accounts', V2_ADDED]));
    const state = stateFor(table);
    restore(codec, state, written('accounts', V1, { carol: { balance: 3 } }, false));
    assert.deepEqual({ ...(state.readCommitted('accounts', 'carol') as object) }, { balance: 3, currency: 'EUR' });
  });

  it('asks for the registry again when rows name a schema it has not seen (retriable)', () => {
    const table = shape('accounts', V1);
    const codec = new RowCodec([table], new Set(), bookOf(['accounts', V1]));
    const state = stateFor(table);
    assert.throws(() => restore(codec, state, written('accounts', V2_CURRENCY, { dave: { balance: 1, currency: 'USD' } })), (err: unknown) => {
      assert.ok(err instanceof UnknownRowSchemaError);
      assert.equal(err.retriable, true);
      return true;
    });
    // Once the registry holds it, an older app reads the newer rows (the new field is ignored).
    codec.updateBook(bookOf(['accounts', V1], ['accounts', V2_CURRENCY]));
    restore(codec, state, written('accounts', V2_CURRENCY, { dave: { balance: 1, currency: 'USD' } }));
    assert.deepEqual({ ...(state.readCommitted('accounts', 'dave') as object) }, { balance: 1 });
  });

  it('refuses rows of a newer schema it cannot read, naming the field (not retriable)', () => {
    const table = shape('accounts', V1);
    const codec = new RowCodec([table], new Set(), bookOf(['accounts', V1], ['accounts', V2_STRING]));
    assert.throws(() => restore(codec, stateFor(table), written('accounts', V2_STRING, { x: { balance: 'ten' } })), (err: unknown) => {
      assert.ok(err instanceof IncompatibleRowSchemaError);
      assert.equal(err.retriable, false);
      assert.match(err.message, /field "balance" was string and is now int/);
      return true;
    });
  });
});

describe('RowCodec: refusals at start', () => {
  it('names app, table, field, old and new types and the fix for a change Avro cannot resolve', () => {
    const codec = new RowCodec([shape('accounts', V2_STRING)], new Set(), bookOf(['accounts', V1]));
    const [refusal, ...more] = codec.refusals('bank');
    assert.equal(more.length, 0);
    assert.match(refusal!, /app "bank": table "accounts": field "balance" was int and is now string \(stored rows use schema version 1\)/);
    assert.match(refusal!, /migrate: \{ fromVersion: 1, up\(oldRow\)/);
  });

  it('names a new required field', () => {
    const codec = new RowCodec([shape('accounts', V2_REQUIRED)], new Set(), bookOf(['accounts', V1]));
    assert.match(codec.refusals('bank')[0]!, /field "owner" is new \(string without a default\)/);
  });

  it('accepts compatible changes and a change covered by a migration', () => {
    assert.deepEqual(new RowCodec([shape('accounts', V2_ADDED)], new Set(), bookOf(['accounts', V1])).refusals('bank'), []);
    const migrated = shape('accounts', V2_STRING, { migrate: { fromVersion: 1, up: (old: { balance: number }) => ({ balance: `${old.balance} EUR` }) } });
    const codec = new RowCodec([migrated], new Set(), bookOf(['accounts', V1], ['accounts', V2_STRING]));
    assert.deepEqual(codec.refusals('bank'), []);
    const state = stateFor(migrated);
    restore(codec, state, written('accounts', V1, { alice: { balance: 5 } }));
    restore(codec, state, written('accounts', V2_STRING, { bob: { balance: '7 USD' } }));
    assert.deepEqual({ ...(state.readCommitted('accounts', 'alice') as object) }, { balance: '5 EUR' });
    assert.deepEqual({ ...(state.readCommitted('accounts', 'bob') as object) }, { balance: '7 USD' });
  });

  it('refuses a migration naming a version that was never registered', () => {
    const migrated = shape('accounts', V2_STRING, { migrate: { fromVersion: 3, up: (o: unknown) => o } });
    assert.match(new RowCodec([migrated], new Set(), bookOf(['accounts', V1])).refusals('bank')[0]!, /migrate.fromVersion is 3 but only 1 schema version/);
  });

  it('refuses a registered table the app no longer declares, and accepts it dropped or renamed', () => {
    const book = bookOf(['accounts', V1], ['legacy', V1]);
    const refusal = new RowCodec([shape('accounts', V1)], new Set(), book).refusals('bank');
    assert.equal(refusal.length, 1);
    assert.match(refusal[0]!, /table "legacy" holds state .* declare droppedTables: \['legacy'\] .* or formerly: 'legacy'/);
    assert.deepEqual(new RowCodec([shape('accounts', V1)], new Set(['legacy']), book).refusals('bank'), []);
    assert.deepEqual(new RowCodec([shape('accounts', V1), shape('current', V1, { formerly: ['legacy'] })], new Set(), book).refusals('bank'), []);
  });
});

describe('RowCodec: renamed and dropped tables', () => {
  it('files rows of a former name under the current table and skips dropped ones', () => {
    const renamed = shape('balances', V1, { formerly: ['accounts'] });
    const codec = new RowCodec([renamed], new Set(['audit']), bookOf(['accounts', V1], ['audit', V1]));
    const state = stateFor(renamed);
    assert.deepEqual(restore(codec, state, written('accounts', V1, { alice: { balance: 5 } })), ['renamed']);
    assert.deepEqual(restore(codec, state, written('audit', V1, { a1: { balance: 1 } })), ['dropped']);
    assert.deepEqual({ ...(state.readCommitted('balances', 'alice') as object) }, { balance: 5 });
  });
});

describe('RowCodec: row framing', () => {
  it('frames every row with its schema fingerprint (Avro single-object encoding)', () => {
    const [row] = written('accounts', V1, { alice: { balance: 5 } });
    assert.equal(rowSchemaOf(row!.value!), schemaFingerprint(avsc.Type.forSchema(V1)));
    assert.equal(rowSchemaOf(avsc.Type.forSchema(V1).toBuffer({ balance: 5 })), undefined);
  });

  it('reads a bare older row that happens to start like a frame (an int of -98) as the first version', () => {
    const bare = avsc.Type.forSchema(V1).toBuffer({ balance: -98 });
    assert.deepEqual([...bare.subarray(0, 2)], [0xc3, 0x01]);
    // Eight more bytes so it is as long as a frame header: a record of an int and a string.
    const V1_NOTE: Schema = { type: 'record', name: 'Account', namespace: 'bank', fields: [{ name: 'balance', type: 'int' }, { name: 'note', type: 'string' }] };
    const noted = shape('accounts', V1_NOTE);
    const notedCodec = new RowCodec([noted], new Set(), bookOf(['accounts', V1_NOTE]));
    const bytes = avsc.Type.forSchema(V1_NOTE).toBuffer({ balance: -98, note: 'a long note here' });
    const state = stateFor(noted);
    const key = encodeChangeKey('accounts', 'x');
    assert.throws(() => notedCodec.apply(state, key, bytes), UnknownRowSchemaError, 'first it reads the registry again');
    assert.throws(() => notedCodec.apply(state, key, bytes), UnknownRowSchemaError, 'every partition waits for that new view');
    notedCodec.updateBook(bookOf(['accounts', V1_NOTE]));
    notedCodec.apply(state, key, bytes);
    assert.deepEqual({ ...(state.readCommitted('accounts', 'x') as object) }, { balance: -98, note: 'a long note here' });
  });
});

describe('RowCodec: tables of another version of the app (rolling updates)', () => {
  it('reads the registry again at the first row of a table it does not know, then leaves such rows alone', () => {
    const accounts = shape('accounts', V1);
    const codec = new RowCodec([accounts], new Set(), bookOf(['accounts', V1]));
    const state = stateFor(accounts);
    const audit = written('audit', V1, { a1: { balance: 1 } });
    assert.throws(() => restore(codec, state, audit), UnknownRowSchemaError);
    codec.updateBook(bookOf(['accounts', V1], ['audit', V1]));
    assert.deepEqual(restore(codec, state, audit), ['foreign']);
  });

  it('refuses to follow a table a newer version renamed, at its first row and at start', () => {
    const accounts = shape('accounts', V1);
    const newer = new SchemaBook([schemaRecordOf('accounts', avsc.Type.forSchema(V1)), schemaRecordOf('ledgers', avsc.Type.forSchema(V1), ['accounts'])]);
    const codec = new RowCodec([accounts], new Set(), bookOf(['accounts', V1]));
    const rows = written('ledgers', V1, { alice: { balance: 5 } });
    assert.throws(() => restore(codec, stateFor(accounts), rows), UnknownRowSchemaError);
    codec.updateBook(newer);
    assert.throws(() => restore(codec, stateFor(accounts), rows), (err: unknown) => {
      assert.ok(err instanceof IncompatibleRowSchemaError);
      assert.match(err.message, /table "accounts" was renamed to "ledgers" by a newer version/);
      return true;
    });
    assert.match(new RowCodec([accounts], new Set(), newer).refusals('bank')[0]!, /table "accounts" was renamed to "ledgers" by a newer version of the app/);
  });
});

describe('snapshots', () => {
  it('written by a version without one of the registered tables are refused (the changelog is used)', () => {
    const v1 = shape('accounts', V1);
    const bytes = encodeSnapshot(stateFor(v1), { app: 'bank', changelogOffset: 0, takenAt: 0 }, new RowCodec([v1]));
    const withAudit = [v1, shape('audit', V1)];
    const codec = new RowCodec(withAudit, new Set(), bookOf(['accounts', V1], ['audit', V1]));
    assert.throws(() => loadSnapshot(stateFor(...withAudit), bytes, codec), /without table\(s\) "audit"/);
  });

  it('name the schema of each table, so rows resolve after a schema change', () => {
    const v1 = shape('accounts', V1);
    const before = stateFor(v1);
    new RowCodec([v1]).apply(before, encodeChangeKey('accounts', 'alice'), avsc.Type.forSchema(V1).toBuffer({ balance: 9 }));
    const bytes = encodeSnapshot(before, { app: 'bank', changelogOffset: 1, takenAt: 0 }, new RowCodec([v1], new Set(), bookOf(['accounts', V1])));
    const v2 = shape('accounts', V2_ADDED);
    const after = stateFor(v2);
    const header = loadSnapshot(after, bytes, new RowCodec([v2], new Set(), bookOf(['accounts', V1], ['accounts', V2_ADDED])));
    assert.equal(header.rows, 1);
    assert.deepEqual({ ...(after.readCommitted('accounts', 'alice') as object) }, { balance: 9, currency: 'EUR' });
  });
});
