import { toJson } from '../codec/index.js';
import { ConsistencyUnavailableError, InvalidPositionError, LocalTableReadError, PartitionUnavailableError, RowNotFoundError } from '../errors.js';
import type { InputWatch, PartitionDirectory } from '../partition/index.js';
import { globalViews, type CompiledApp, type CompiledQuery, type CompiledTable } from '../procedures/index.js';
import { partitionForKey, type GlobalTableView, type Key } from '../state/index.js';
import { locate, locateHere } from './locate.js';
import { pageOf } from './paging.js';
import { MAX_PAGE, findTable, parseKey, parseLimit } from './params.js';
import { Peers, type PeersOptions } from './peers.js';
import { QueryRunner } from './queries.js';
import { WriteVisibility } from './wait-for.js';
import {
  FRESH,
  parsePartitions,
  queryParams,
  queryErrorOf,
  queryPartialPath,
  rowPath,
  scanPartialPath,
  type QueryPartial,
  type ReadMode,
  type ScannedRow,
  type ScanPartial,
  type ScanPartialQuery,
} from './wire.js';

export interface ReadsOptions {
  readonly app: CompiledApp;
  /** Which partitions this instance holds, in which role, and where their owners are. */
  readonly directory: PartitionDirectory;
  /** How to reach other instances (their bearer token, timeout). */
  readonly peers?: PeersOptions | undefined;
  /** Runs consistent queries (apps with a multi-partition protocol). */
  readonly consistent?: { ask(name: string, params: Readonly<Record<string, string>>): Promise<unknown> } | undefined;
  /** How far the partitions active here have committed their input: reads that wait for a write (`waitFor`) wait on it. */
  readonly writes?: InputWatch | undefined;
}

/** An answer and whether any of it came from a standby copy. */
export interface Answer<T> {
  readonly body: T;
  readonly stale: boolean;
}

/** A row as `GET /tables/:table/:key` shows it (`partition` absent for global tables). */
export interface RowBody {
  readonly table: string;
  readonly key: Key;
  readonly partition?: number;
  readonly value: unknown;
}

/** A key read: the row, or the owning instance's answer relayed unchanged (status and body). */
export type RowRead =
  | ({ readonly kind: 'row' } & Answer<RowBody>)
  | { readonly kind: 'relayed'; readonly status: number; readonly body: unknown; readonly stale: boolean };

/** A page of `GET /tables/:table`; pass `next` as `after` for the following page. */
export interface TablePage {
  readonly table: string;
  readonly items: ScannedRow[];
  readonly next: Key | null;
}

/**
 * Every read of tables and queries, wherever the data is: a partition is read here when it is
 * active here (or from a standby copy here, for callers that accept stale data), otherwise from
 * its owner; scans and queries gather every partition. Values come back as JSON. Failures are
 * typed errors (UnknownTableError, InvalidParameterError, PartitionUnavailableError, ...); a
 * query's own code refusing its parameters is a QueryParamsError, any other throw a
 * QueryFailedError, wherever the partition ran.
 */
export class Reads {
  private readonly app: CompiledApp;
  private readonly directory: PartitionDirectory;
  private readonly peers: Peers;
  private readonly globals: Record<string, GlobalTableView>;
  private readonly queries: QueryRunner;

  constructor(options: ReadsOptions) {
    this.app = options.app;
    this.directory = options.directory;
    this.peers = new Peers(options.peers);
    this.globals = globalViews(options.app);
    this.queries = new QueryRunner(options.app, this.globals);
    this.consistent = options.consistent;
    this.visibility = new WriteVisibility(options.app, options.writes);
  }

  private readonly consistent: ReadsOptions['consistent'];
  private readonly visibility: WriteVisibility;

  /** One row by key (as text). Partition-local tables have no single row per key: read them by scan or query. */
  async get(tableName: string, keyText: string, mode: ReadMode = FRESH): Promise<RowRead> {
    const table = findTable(this.app, tableName);
    const key = parseKey(table, keyText);
    if (table.global) {
      const value = this.globals[table.name]!.get(key);
      if (value === undefined) throw notFound(table, key);
      return { kind: 'row', body: { table: table.name, key, value: toJson(table.valueType, value) }, stale: false };
    }
    if (table.scope === 'local') {
      throw new LocalTableReadError(
        `table "${table.name}" is partition-local (one row per key in every partition); read it through a query or a scan`,
        { table: table.name },
      );
    }
    const partition = partitionForKey(String(key), this.app.partitions);
    let where = locate(this.directory, partition, mode);
    if (where.kind === 'local' && mode.waitFor) {
      // A read that waits for a write waits here, then reads wherever the partition is by then.
      await this.visibility.here([partition], mode.waitFor);
      where = locate(this.directory, partition, mode);
    }
    if (where.kind === 'remote') return { kind: 'relayed', ...(await this.peers.relay(where.url, rowPath(table.name, key, mode))) };
    const value = where.state.readCommitted(table.name, key);
    if (value === undefined) throw notFound(table, key, partition);
    return { kind: 'row', body: { table: table.name, key, partition, value: toJson(table.valueType, value) }, stale: where.stale };
  }

  /** A page of rows in key order, after the key `after` (as text), `limit` (1..MAX_PAGE, default DEFAULT_PAGE) rows. */
  async scan(tableName: string, page: { readonly after?: string | undefined; readonly limit?: string | undefined } = {}, mode: ReadMode = FRESH): Promise<Answer<TablePage>> {
    const table = findTable(this.app, tableName);
    const limit = parseLimit(page.limit);
    const after = page.after === undefined ? undefined : parseKey(table, page.after);
    // One row more than a page from every source tells whether another page follows.
    const gathered = table.global
      ? { rows: this.globals[table.name]!.scan({ after, limit: limit + 1 }).map(([key, value]) => ({ key, value: toJson(table.valueType, value) })), stale: false }
      : await this.gatherRows(table, after, limit + 1, mode);
    const { rows, next } = pageOf(gathered.rows, limit, table.scope === 'local');
    const items = rows.map((r) => ({ key: r.key, ...(r.partition !== undefined ? { partition: r.partition } : {}), value: r.value }));
    return { body: { table: table.name, items, next }, stale: gathered.stale };
  }

  /**
   * The merged answer of a named query over every partition. `params` are the request's query
   * parameters; farad's own (`stale`, `partitions`) never reach the query.
   */
  async query(name: string, params: Readonly<Record<string, string>> = {}, mode: ReadMode = FRESH): Promise<Answer<unknown>> {
    const query = this.queries.find(name);
    const own = queryParams(params);
    if (query.consistent === true || params['consistent'] === 'true') {
      if (!this.consistent) {
        throw new ConsistencyUnavailableError(
          `query "${name}" cannot run consistently: this app has no multi-partition procedures or consistent queries (declare the query with consistent: true)`,
        );
      }
      if (mode.waitFor) throw new InvalidPositionError(`query "${name}" runs consistently, which cannot wait for a write (waitFor); ask it without waitFor, or without consistent=true`);
      // A read-only multi-partition transaction: one serializable cut of every partition.
      return { body: await this.consistent.ask(name, own), stale: false };
    }
    const gathered = await this.gatherParts(name, query, own, mode);
    const byPartition = new Map<number, unknown>(gathered.parts.map(({ partition, value }) => [partition, value]));
    const stale = gathered.stale;
    for (let p = 0; p < this.app.partitions; p++) {
      if (!byPartition.has(p)) throw new PartitionUnavailableError(`partition ${p} did not answer; retry shortly`, undefined, { partition: p });
    }
    const parts = [...byPartition].sort(([a], [b]) => a - b).map(([, value]) => value);
    return { body: this.queries.merge(name, query, parts, own), stale };
  }

  /** Answer to another instance's internal scan: rows of the partitions it asked for, all held by this instance. */
  async scanPartial(tableName: string, request: ScanPartialQuery, mode: ReadMode): Promise<ScanPartial> {
    const table = findTable(this.app, tableName);
    const after = request.after === undefined ? undefined : parseKey(table, request.after);
    // The asker wants one row more than a page.
    return this.gatherRows(table, after, parseLimit(request.limit, MAX_PAGE + 1), mode, parsePartitions(request.partitions));
  }

  /** Answer to another instance's internal query: partial answers of the partitions named in `params.partitions`. */
  async queryPartial(name: string, params: Readonly<Record<string, string>>, mode: ReadMode): Promise<QueryPartial> {
    return this.gatherParts(name, this.queries.find(name), queryParams(params), mode, parsePartitions(params['partitions']));
  }

  /** Rows after `after` of `partitions` (at most `limit` per partition), here and elsewhere. */
  private async gatherRows(table: CompiledTable, after: Key | undefined, limit: number, mode: ReadMode, partitions = this.allPartitions()): Promise<ScanPartial> {
    const { local, remote } = this.split(mode, partitions);
    await this.visibility.here(local, mode.waitFor);
    const mine = this.scanHere(table, local, after, limit, mode);
    const rows = [...mine.rows];
    let stale = mine.stale;
    for (const [url, theirPartitions] of remote) {
      const theirs = await this.peers.partial<Partial<ScanPartial>>(url, scanPartialPath(table.name, theirPartitions, after, limit, mode));
      rows.push(...(theirs.rows ?? []));
      stale ||= theirs.stale === true;
    }
    return { rows, stale };
  }

  /** Each of `partitions`' partial answer to a query, here and elsewhere. */
  private async gatherParts(name: string, query: CompiledQuery, params: Readonly<Record<string, string>>, mode: ReadMode, partitions = this.allPartitions()): Promise<QueryPartial> {
    const { local, remote } = this.split(mode, partitions);
    await this.visibility.here(local, mode.waitFor);
    const mine = this.queryHere(name, query, params, local, mode);
    const parts = [...mine.parts];
    let stale = mine.stale;
    for (const [url, theirPartitions] of remote) {
      const theirs = await this.peers.partial<Partial<QueryPartial>>(url, queryPartialPath(name, params, theirPartitions, mode), queryErrorOf);
      parts.push(...(theirs.parts ?? []));
      stale ||= theirs.stale === true;
    }
    return { parts, stale };
  }

  private scanHere(table: CompiledTable, partitions: readonly number[], after: Key | undefined, limit: number, mode: ReadMode): ScanPartial {
    const rows: ScannedRow[] = [];
    let stale = false;
    for (const partition of partitions) {
      const where = locateHere(this.directory, partition, mode);
      stale ||= where.stale;
      for (const [key, value] of where.state.scanCommitted(table.name, { after, limit })) {
        rows.push({ key, partition, value: toJson(table.valueType, value) });
      }
    }
    return { rows, stale };
  }

  private queryHere(name: string, query: CompiledQuery, params: Readonly<Record<string, string>>, partitions: readonly number[], mode: ReadMode): QueryPartial {
    const parts: Array<{ partition: number; value: unknown }> = [];
    let stale = false;
    for (const partition of partitions) {
      const where = locateHere(this.directory, partition, mode);
      stale ||= where.stale;
      parts.push({ partition, value: this.queries.partial(name, query, where.state, params) });
    }
    return { parts, stale };
  }

  /** Which of `partitions` are read here, and the rest grouped by the instance (or sibling worker) to ask. */
  private split(mode: ReadMode, partitions: readonly number[]): { local: number[]; remote: Map<string, number[]> } {
    const local: number[] = [];
    const remote = new Map<string, number[]>();
    for (const p of partitions) {
      const where = locate(this.directory, p, mode);
      if (where.kind === 'local') local.push(p);
      else remote.set(where.url, [...(remote.get(where.url) ?? []), p]);
    }
    return { local, remote };
  }

  private allPartitions(): number[] {
    return Array.from({ length: this.app.partitions }, (_, p) => p);
  }
}

function notFound(table: CompiledTable, key: Key, partition?: number): RowNotFoundError {
  return new RowNotFoundError(`table "${table.name}" has no row with key ${JSON.stringify(key)}`, { table: table.name, partition });
}
