import type { Type } from 'avsc';
import { CorruptDataError, IncompatibleRowSchemaError, MigrationError, UnknownRowSchemaError } from '../errors.js';
import type { Key, PartitionState, RowChange } from '../state/index.js';
import { incompatibility, SchemaBook, schemaFingerprint, type RegisteredSchema } from './evolution.js';

/**
 * Changelog records: key = UTF-8 JSON `[table, key]` (unique per row, so log compaction keeps the
 * latest value of each row); value = the row in Avro single-object encoding (`C3 01`, the 8-byte
 * fingerprint of the table schema that wrote it, the Avro binary body), or null for a deleted
 * row. Rows written before farad versioned them are the bare body: they count as the table's
 * first registered schema. (A bare body that happens to start like a header is told apart by its
 * "fingerprint" naming no registered schema, even after the registry is read again.)
 */
const MAGIC_0 = 0xc3;
const MAGIC_1 = 0x01;
const HEADER = 10;

/** The schema fingerprint (16 hex digits) a changelog value names, or undefined for a bare (older) row. */
export function rowSchemaOf(value: Buffer): string | undefined {
  return isFramed(value) ? fingerprintHex(value) : undefined;
}

function isFramed(value: Buffer): boolean {
  return value.length >= HEADER && value[0] === MAGIC_0 && value[1] === MAGIC_1;
}

function fingerprintHex(value: Buffer): string {
  let hex = '';
  for (let i = 9; i >= 2; i--) hex += value[i]!.toString(16).padStart(2, '0');
  return hex;
}

/** The changelog key of a row: the JSON text `[table, key]`. */
export function encodeChangeKey(table: string, key: Key): Buffer {
  let prefix = keyPrefixes.get(table);
  if (prefix === undefined) keyPrefixes.set(table, (prefix = `[${JSON.stringify(table)},`));
  // JSON.stringify of a safe integer is its decimal digits; only string keys need quoting.
  return Buffer.from(`${prefix}${typeof key === 'number' ? key : JSON.stringify(key)}]`);
}
const keyPrefixes = new Map<string, string>();

export function decodeChangeKey(bytes: Buffer): { table: string; key: Key } {
  return decodeCanonicalKey(bytes) ?? parseChangeKey(bytes);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Table names seen, with their UTF-8 bytes: a row's name is matched, not decoded. */
const seenTables: Array<{ readonly bytes: Buffer; readonly name: string }> = [];

/**
 * The keys encodeChangeKey writes (`["table",123]`, `["table","text"]` without escapes), read
 * without JSON.parse: restore reads one per row. Anything else is left to parseChangeKey.
 */
function decodeCanonicalKey(bytes: Buffer): { table: string; key: Key } | undefined {
  const last = bytes.length - 1;
  if (last < 5 || bytes[0] !== 0x5b || bytes[1] !== QUOTE || bytes[last] !== 0x5d) return undefined;
  let close = 2;
  while (close < last && bytes[close] !== QUOTE) {
    if (bytes[close] === BACKSLASH) return undefined;
    close++;
  }
  if (bytes[close + 1] !== 0x2c) return undefined;
  const table = tableName(bytes, close);
  let at = close + 2;
  if (bytes[at] === QUOTE) {
    for (let i = at + 1; i < last - 1; i++) if (bytes[i] === BACKSLASH || bytes[i] === QUOTE) return undefined;
    if (bytes[last - 1] !== QUOTE || last - 1 <= at) return undefined;
    return { table, key: bytes.toString('utf8', at + 1, last - 1) };
  }
  const negative = bytes[at] === 0x2d;
  if (negative) at++;
  if (at === last || last - at > 16 || (bytes[at] === 0x30 && last - at > 1)) return undefined;
  let n = 0;
  for (let i = at; i < last; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    n = n * 10 + digit;
  }
  if (!Number.isSafeInteger(n)) return undefined;
  return { table, key: negative ? -n : n };
}

function tableName(bytes: Buffer, close: number): string {
  const length = close - 2;
  for (const seen of seenTables) {
    if (seen.bytes.length !== length) continue;
    let i = 0;
    while (i < length && seen.bytes[i] === bytes[2 + i]) i++;
    if (i === length) return seen.name;
  }
  const name = bytes.toString('utf8', 2, close);
  if (seenTables.length < 64) seenTables.push({ bytes: Buffer.from(name, 'utf8'), name });
  return name;
}

function parseChangeKey(bytes: Buffer): { table: string; key: Key } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CorruptDataError(`changelog key is not JSON: ${bytes.toString('hex').slice(0, 40)}`, {}, { cause: err });
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || !['string', 'number'].includes(typeof parsed[1])) {
    throw new CorruptDataError(`changelog key must be [table, key], got ${bytes.toString('utf8').slice(0, 80)}`);
  }
  return { table: parsed[0], key: parsed[1] as Key };
}

/** What the row codec needs to know of a table (a CompiledTable has it). */
export interface TableShape {
  readonly name: string;
  readonly valueType: Type;
  readonly formerly: readonly string[];
  readonly migrate?: { readonly fromVersion: number; up(oldRow: unknown): unknown } | undefined;
}

/** A changelog record as the codec writes it. */
export interface EncodedChange {
  readonly key: Buffer;
  readonly value: Buffer | null;
}

interface CurrentTable {
  readonly shape: TableShape;
  readonly fingerprint: string;
  /** `C3 01` + the fingerprint, in front of every value this table writes. */
  readonly header: Buffer;
}

/** Decodes the Avro body that starts at `pos` and runs to the end of `bytes`. */
type Decoder = (bytes: Buffer, pos: number) => unknown;

type Resolver = ReturnType<Type['createResolver']>;

/** `type.decode` at an offset (no Buffer view per row), refusing a body that is cut short or runs on. */
function decodeAt(type: Type, bytes: Buffer, pos: number, resolver?: Resolver): unknown {
  const decoded = resolver ? type.decode(bytes, pos, resolver) : type.decode(bytes, pos);
  if (decoded.offset !== bytes.length) {
    throw new CorruptDataError(decoded.offset < 0 ? 'changelog row value is truncated' : 'changelog row value has trailing bytes');
  }
  return decoded.value;
}

/**
 * Where `RowCodec.apply` filed a row: into the table it names (`current`), into the table that
 * was formerly called so (`renamed`), nowhere because the app dropped its table (`dropped`), or
 * nowhere because the table belongs to another version of the app (`foreign`: a table a newer
 * version added, met while old and new instances run side by side; such rows stay where they are).
 */
export type RowFate = 'current' | 'renamed' | 'dropped' | 'foreign';

/** True for rows a takeover moves off the changelog name they were filed under. */
export function isMovedRow(fate: RowFate): boolean {
  return fate === 'renamed' || fate === 'dropped';
}

/**
 * Encodes rows with the current table schemas, and decodes rows of any registered schema into
 * them: Avro resolution (added fields with defaults, removed fields, promotions, aliases), a
 * declared migration for versions it covers, former table names into their current table, and
 * dropped tables skipped. Used by batches, restore, standby copies and snapshots alike.
 */
export class RowCodec {
  private readonly current = new Map<string, CurrentTable>();
  /** Former table name → current name. */
  private readonly renamed = new Map<string, string>();
  private readonly decoders = new Map<string, Map<string | undefined, Decoder>>();
  /**
   * Tables of another app version, and fingerprints no registration named, with the view of the
   * registry they were met with: until that view is replaced (read again), every partition that
   * meets them waits (retriable) instead of deciding on a view that may just be too old.
   */
  private readonly checkedForeign = new Map<string, SchemaBook>();
  private readonly checkedFingerprints = new Map<string, SchemaBook>();
  /** Shared encode buffer: a body is written behind the header once, then copied out. */
  private scratch = Buffer.allocUnsafe(64 * 1024);

  constructor(
    tables: Iterable<TableShape>,
    private readonly dropped: ReadonlySet<string> = new Set(),
    private book: SchemaBook = new SchemaBook(),
  ) {
    for (const shape of tables) {
      const fingerprint = schemaFingerprint(shape.valueType);
      const header = Buffer.alloc(HEADER);
      header[0] = MAGIC_0;
      header[1] = MAGIC_1;
      header.writeBigUInt64LE(BigInt(`0x${fingerprint}`), 2);
      this.current.set(shape.name, { shape, fingerprint, header });
      for (const old of shape.formerly) this.renamed.set(old, shape.name);
    }
  }

  /** Uses a newer view of the registry (another instance registered a schema). */
  updateBook(book: SchemaBook): void {
    this.book = book;
    this.decoders.clear();
  }

  /** The fingerprint rows of `table` are written with now. */
  fingerprintOf(table: string): string | undefined {
    return this.current.get(table)?.fingerprint;
  }

  /** A batch's row changes as changelog records. */
  encodeChanges(changes: readonly RowChange[]): EncodedChange[] {
    return changes.map((change) => {
      const table = this.current.get(change.table);
      if (!table) throw new CorruptDataError(`no table "${change.table}"`, { table: change.table });
      const key = encodeChangeKey(change.table, change.key);
      if (change.value === undefined) return { key, value: null };
      return { key, value: this.frame(table, change.value) };
    });
  }

  /** Encodes one row value with its table's current schema (snapshots). */
  encodeValue(table: string, value: unknown): Buffer {
    const current = this.current.get(table);
    if (!current) throw new CorruptDataError(`no table "${table}"`, { table });
    return this.frame(current, value);
  }

  /** Header and body in one allocation. */
  private frame(table: CurrentTable, value: unknown): Buffer {
    for (;;) {
      const end = table.shape.valueType.encode(value, this.scratch, HEADER);
      if (end >= 0) {
        const out = Buffer.allocUnsafe(end);
        table.header.copy(out, 0);
        this.scratch.copy(out, HEADER, HEADER, end);
        return out;
      }
      this.scratch = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, -end + HEADER));
    }
  }

  /**
   * Applies one changelog record (restore, standby copy, snapshot row) to a partition's state.
   * Rows of dropped tables are skipped, and so are rows of tables another version of the app
   * declares — unless that version renamed one of this app's tables, which this app cannot
   * follow (IncompatibleRowSchemaError). `fingerprint` names the schema that wrote the row (the
   * record's header), or looks it up by the table the row is filed under (snapshots). Returns
   * where the row was filed.
   */
  apply(state: PartitionState, key: Buffer | null, value: Buffer | null): RowFate {
    if (key === null) throw new CorruptDataError('changelog record without a key');
    const row = decodeChangeKey(key);
    const table = this.tableFor(row.table);
    if (table === undefined) return this.dropped.has(row.table) ? 'dropped' : this.foreign(row.table);
    state.applyRestored(table, row.key, value === null ? undefined : this.decodeValue(row.table, table, value));
    return table === row.table ? 'current' : 'renamed';
  }



  /** A row value encoded by `encodeValue` (of any registered schema), as `table`'s current schema reads it. */
  decodeRow(table: string, value: Buffer): unknown {
    return this.decodeValue(table, table, value);
  }

  /** A row value of any registered schema, as the current schema of `table` reads it. */
  private decodeValue(filedUnder: string, table: string, value: Buffer): unknown {
    if (!isFramed(value)) return this.decoder(filedUnder, table, undefined)(value, 0);
    const current = this.current.get(table)!;
    // Fast path: the row was written with the app's own schema.
    if (filedUnder === table && value.compare(current.header, 0, HEADER, 0, HEADER) === 0) {
      return decodeAt(current.shape.valueType, value, HEADER);
    }
    const fingerprint = fingerprintHex(value);
    const known = this.decoders.get(filedUnder)?.get(fingerprint);
    if (known) return known(value, HEADER);
    if (fingerprint !== current.fingerprint && !this.lineage(table).some((e) => e.fingerprint === fingerprint)) {
      if (this.stillToReread(this.checkedFingerprints, fingerprint)) {
        throw new UnknownRowSchemaError(
          `rows of table "${filedUnder}" were written with schema ${fingerprint}, which this instance has not seen registered yet`,
          { table },
        );
      }
      // Still unregistered after reading the registry again: a bare older row that only looks framed.
      return this.decoder(filedUnder, table, undefined)(value, 0);
    }
    return this.decoder(filedUnder, table, fingerprint)(value, HEADER);
  }

  /** A table this app does not know: first read the registry again, then refuse it if it replaced one of ours. */
  private foreign(name: string): RowFate {
    if (this.stillToReread(this.checkedForeign, name)) {
      throw new UnknownRowSchemaError(`rows of table "${name}", which this app does not declare: reading the table schema registry again`, { table: name });
    }
    const renamed = this.renamedAway(name);
    if (renamed !== undefined) {
      throw new IncompatibleRowSchemaError(
        `table "${renamed}" was renamed to "${name}" by a newer version of the app; this instance cannot follow its rows. Finish the rollout: stop the instances of the old version`,
        { table: renamed },
      );
    }
    return 'foreign';
  }

  /** True (and noted) when `what` has not been looked up in a registry view newer than the one it was met with. */
  private stillToReread(checked: Map<string, SchemaBook>, what: string): boolean {
    const metWith = checked.get(what);
    if (metWith !== undefined && metWith !== this.book) return false;
    checked.set(what, this.book);
    return true;
  }

  /** The table of this app that a registered (newer) table `name` says it formerly was, if any. */
  private renamedAway(name: string): string | undefined {
    for (const old of this.book.formerNamesOf(name)) if (this.current.has(old)) return old;
    return undefined;
  }

  /**
   * Every way the registered schemas disagree with the app, worded for a refusal at start: a
   * registered table the app neither has, renamed nor dropped; a table version Avro cannot
   * resolve and no migration covers; a migration naming a version that does not exist.
   */
  refusals(app: string): string[] {
    const out: string[] = [];
    for (const name of this.book.tables()) {
      const renamed = this.tableFor(name) === undefined ? this.renamedAway(name) : undefined;
      if (renamed !== undefined) {
        out.push(`app "${app}": table "${renamed}" was renamed to "${name}" by a newer version of the app; this version cannot run beside it or on its state. Deploy the version that declares "${name}"`);
        continue;
      }
      if (this.tableFor(name) === undefined && !this.dropped.has(name) && name === '__timers') {
        out.push(
          `app "${app}": the state holds timers (table "__timers") but the app declares no timers or schedules now; ` +
            "keep their declarations until pending timers have fired, or declare droppedTables: ['__timers'] to discard them",
        );
        continue;
      }
      if (this.tableFor(name) === undefined && !this.dropped.has(name)) {
        out.push(
          `app "${app}": table "${name}" holds state (schema version ${this.book.versions(name).length} registered) but the app no longer declares it; ` +
            `declare droppedTables: ['${name}'] to delete its rows, or formerly: '${name}' on the table that replaces it`,
        );
      }
    }
    for (const [name, { shape }] of this.current) {
      const lineage = this.lineage(name);
      const migrate = shape.migrate;
      const currentVersion = lineage.find((e) => e.fingerprint === this.current.get(name)!.fingerprint)?.version;
      if (migrate && currentVersion !== undefined && migrate.fromVersion >= currentVersion) {
        out.push(`app "${app}": table "${name}": migrate.fromVersion ${migrate.fromVersion} covers the app's own schema (version ${currentVersion}); name the last older version whose rows need the migration`);
        continue;
      }
      if (migrate && migrate.fromVersion > lineage.length) {
        out.push(`app "${app}": table "${name}": migrate.fromVersion is ${migrate.fromVersion} but only ${lineage.length} schema version(s) are registered; name the last version whose rows need the migration`);
        continue;
      }
      for (const entry of lineage) {
        if (migrate && entry.version <= migrate.fromVersion) {
          const target = lineage[migrate.fromVersion - 1]!;
          const step = incompatibility(entry.type, target.type);
          if (step) out.push(`app "${app}": table "${name}": rows of schema version ${entry.version} cannot be read as version ${target.version} for migrate.up: ${describeIncompatibility(step)}; raise migrate.fromVersion to ${entry.version}`);
          continue;
        }
        const problem = incompatibility(entry.type, shape.valueType);
        if (problem) {
          out.push(
            `app "${app}": table "${name}": ${describeIncompatibility(problem)} (stored rows use schema version ${entry.version}); ` +
              `Avro cannot convert them. Make the change compatible (a new field needs a default; types may only widen, e.g. int to long) ` +
              `or declare migrate: { fromVersion: ${entry.version}, up(oldRow) { return /* a row of the new schema */ } } on the table`,
          );
        }
      }
    }
    return out;
  }

  /**
   * This app's registered tables that a snapshot holding `tables` knows under no name: it was
   * written by a version without them (an older instance during a rolling update), so rows they
   * had by its offset would be missing from it.
   */
  tablesMissingFrom(tables: ReadonlySet<string>): string[] {
    const missing: string[] = [];
    for (const [name, { shape }] of this.current) {
      if (this.lineage(name).length === 0) continue;
      if (tables.has(name) || shape.formerly.some((old) => tables.has(old))) continue;
      missing.push(name);
    }
    return missing;
  }

  /** The current table that rows filed under `name` belong to, if any. */
  tableFor(name: string): string | undefined {
    if (this.current.has(name)) return name;
    return this.renamed.get(name);
  }

  /** True for rows the app has let go of (a dropped table). */
  isDropped(name: string): boolean {
    return this.dropped.has(name);
  }

  /**
   * Every schema a table's rows may have been written with, numbered as `migrate.fromVersion`
   * counts: its former names' registrations first, then its own, in registration order.
   */
  lineage(table: string): RegisteredSchema[] {
    const shape = this.current.get(table)?.shape;
    if (!shape) return [];
    const seen = new Set<string>();
    const out: RegisteredSchema[] = [];
    for (const name of [...shape.formerly, table]) {
      for (const entry of this.book.versions(name)) {
        if (seen.has(entry.fingerprint)) continue;
        seen.add(entry.fingerprint);
        out.push({ ...entry, version: out.length + 1 });
      }
    }
    return out;
  }

  private decoder(filedUnder: string, table: string, fingerprint: string | undefined): Decoder {
    // Two map lookups, no string building: this runs once per restored row.
    let byFingerprint = this.decoders.get(filedUnder);
    if (!byFingerprint) {
      byFingerprint = new Map();
      this.decoders.set(filedUnder, byFingerprint);
    }
    let decode = byFingerprint.get(fingerprint);
    if (!decode) {
      decode = this.makeDecoder(filedUnder, table, fingerprint);
      byFingerprint.set(fingerprint, decode);
    }
    return decode;
  }

  private makeDecoder(filedUnder: string, tableName: string, fingerprint: string | undefined): Decoder {
    const table = this.current.get(tableName)!;
    const reader = table.shape.valueType;
    const migrate = table.shape.migrate;
    const lineage = this.lineage(tableName);
    // The current schema reads its own rows (a registry may not list it yet: tools, tests).
    if (fingerprint === table.fingerprint) return (bytes, pos) => decodeAt(reader, bytes, pos);
    // Rows from before versioning were written by the table's first registered schema.
    const writer = fingerprint === undefined ? lineage[0] : lineage.find((e) => e.fingerprint === fingerprint);
    if (fingerprint === undefined && writer === undefined) return (bytes, pos) => decodeAt(reader, bytes, pos);
    if (writer === undefined) {
      throw new UnknownRowSchemaError(
        `rows of table "${filedUnder}" were written with schema ${fingerprint}, which this instance has not seen registered yet`,
        { table: tableName },
      );
    }
    if (migrate && writer.version <= migrate.fromVersion) {
      const target = lineage[migrate.fromVersion - 1];
      if (!target) throw new MigrationError(`table "${tableName}": migrate.fromVersion ${migrate.fromVersion} is not a registered version (there are ${lineage.length})`, { table: tableName });
      const resolver = target === writer ? undefined : target.type.createResolver(writer.type);
      return (bytes, pos) => {
        const old = decodeAt(target.type, bytes, pos, resolver);
        const row = migrate.up(old);
        if (!reader.isValid(row)) {
          throw new MigrationError(`table "${tableName}": migrate.up returned a row that does not match the current schema (from version ${writer.version})`, { table: tableName });
        }
        return row;
      };
    }
    const problem = incompatibility(writer.type, reader);
    if (problem) {
      throw new IncompatibleRowSchemaError(
        `table "${tableName}": rows of schema version ${writer.version} cannot be read with this app's schema: ${describeIncompatibility(problem)}`,
        { table: tableName, ...(problem.field ? { field: problem.field } : {}) },
      );
    }
    const resolver = reader.createResolver(writer.type);
    return (bytes, pos) => decodeAt(reader, bytes, pos, resolver);
  }
}

/** `field "balance" was int, is now string` — the wording of refusals. */
export function describeIncompatibility(problem: { field: string; from: string; to: string }): string {
  const where = problem.field ? `field "${problem.field}"` : 'the value';
  if (problem.from === 'absent') return `${where} is new (${problem.to}), so old rows have no value for it`;
  return `${where} was ${problem.from} and is now ${problem.to}`;
}
