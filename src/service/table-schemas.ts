import { RowCodec, SchemaBook, schemaRecordOf, type SchemaRecord } from '../codec/index.js';
import { CorruptDataError, StateSchemaError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CompiledApp } from '../procedures/index.js';
import type { EventLog, TopicSpec } from '../streams/index.js';

/** The farad-owned topic where every table schema that wrote rows is registered. */
export function schemaTopicOf(app: CompiledApp): TopicSpec {
  return { name: `${app.name}-schemas`, partitions: 1, compacted: true };
}

/**
 * The app's table schema registry on its own log: one record per (table, schema fingerprint),
 * in registration order, which numbers the versions. Read at start (it is small), checked against
 * the app, then extended with the app's current schemas before any partition starts.
 */
export class TableSchemaRegistry {
  private readonly topic: string;

  constructor(
    private readonly app: CompiledApp,
    private readonly log: EventLog,
  ) {
    this.topic = schemaTopicOf(app).name;
  }

  /** Every registration, oldest first. */
  async read(): Promise<SchemaBook> {
    const records: SchemaRecord[] = [];
    for await (const chunk of this.log.readRange(this.topic, 0, 0)) {
      for (const record of chunk) {
        if (record.value === null) continue;
        records.push(parseRecord(record.value, this.topic, record.offset));
      }
    }
    return new SchemaBook(records);
  }

  /** Registers the app's current table schemas that the book does not hold yet. */
  async register(book: SchemaBook): Promise<void> {
    const missing = [...this.app.tables.values()]
      .map((table) => schemaRecordOf(table.name, table.valueType, table.formerly))
      .filter((record) => !book.find(record.table, record.fingerprint));
    if (missing.length === 0) return;
    await this.log.append(
      missing.map((record) => ({
        topic: this.topic,
        partition: 0,
        timestamp: Date.now(),
        key: Buffer.from(`${record.table}@${record.fingerprint}`),
        value: Buffer.from(JSON.stringify(record)),
      })),
    );
    for (const record of missing) book.add(record);
  }
}

/**
 * Reads the registry, refuses an app whose tables cannot read the stored state (one message per
 * problem, naming app, table, field, old and new types and the fix), then registers the app's
 * schemas. Returns the row codec every partition uses, and a way to re-read the registry when
 * rows name a schema another instance registered since.
 */
export async function loadTableSchemas(app: CompiledApp, log: EventLog, logger: Logger): Promise<{ rows: RowCodec; refresh: () => Promise<void> }> {
  const registry = new TableSchemaRegistry(app, log);
  const book = await registry.read();
  const rows = new RowCodec(app.tables.values(), app.droppedTables, book);
  const refusals = rows.refusals(app.name);
  if (refusals.length > 0) throw new StateSchemaError(refusals.join('\n'));
  await registry.register(book);
  rows.updateBook(book);
  logger.debug({ tables: book.tables().map((t) => `${t}@v${book.versions(t).length}`) }, 'table schemas registered');
  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (refreshing ??= registry
      .read()
      .then((latest) => rows.updateBook(latest))
      .finally(() => (refreshing = undefined)));
  return { rows, refresh };
}

function parseRecord(bytes: Buffer, topic: string, offset: number): SchemaRecord {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as Partial<SchemaRecord>;
    if (typeof parsed.table === 'string' && typeof parsed.fingerprint === 'string' && parsed.schema !== undefined) {
      return { table: parsed.table, fingerprint: parsed.fingerprint, schema: parsed.schema, ...(Array.isArray(parsed.formerly) ? { formerly: parsed.formerly } : {}) };
    }
  } catch {
    // fall through
  }
  throw new CorruptDataError(`topic "${topic}" offset ${offset} is not a table schema registration`, { topic, offset });
}
