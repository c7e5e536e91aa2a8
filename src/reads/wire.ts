/**
 * What reads look like on the wire: the headers and query parameters a caller uses to ask for a
 * stale answer, and the internal requests one instance sends another. Both the caller side (here)
 * and the answering side (the HTTP adapter) use these, so they cannot drift apart.
 */
import { QueryFailedError, QueryParamsError } from '../errors.js';
import type { Key } from '../state/index.js';
import { waitForOf, waitParams, type WaitFor } from './wait-for.js';

/**
 * Marks a request one instance sends another (`1`), answered by the worker holding the data and
 * never sent to another instance again; or one worker sends a sibling (`worker`), answered there.
 */
export const FORWARDED_HEADER = 'x-farad-forwarded';
/** FORWARDED_HEADER's value on a request between two workers of one instance. */
export const FROM_SIBLING = 'worker';
/** Set on an answer read from a standby copy. */
export const STALE_HEADER = 'x-farad-stale';
/** A caller that accepts a stale answer sends this header as `true` (or `?stale=true`). */
export const ACCEPT_STALE_HEADER = 'x-farad-accept-stale';

/** How a read may be served. */
export interface ReadMode {
  /** The caller accepts an answer from a standby copy. */
  readonly staleOk: boolean;
  /** The request came from another instance (or a sibling worker): never forward it to another instance. */
  readonly forwarded: boolean;
  /** The request came from a sibling worker: answer from this worker or fail. */
  readonly fromSibling: boolean;
  /** Wait until a write is processed before reading (`?waitFor=`), where each partition's state is. */
  readonly waitFor?: WaitFor | undefined;
}

/** A fresh read by an outside caller. */
export const FRESH: ReadMode = { staleOk: false, forwarded: false, fromSibling: false };

/** The read mode of a request, from its query string and headers. */
export function readModeOf(
  query: Readonly<Record<string, unknown>>,
  headers: Readonly<Record<string, string | string[] | undefined>>,
): ReadMode {
  const staleOk = query['stale'] === 'true' || headers[ACCEPT_STALE_HEADER] === 'true';
  const waitFor = waitForOf(query, staleOk);
  return {
    staleOk,
    forwarded: headers[FORWARDED_HEADER] === '1' || headers[FORWARDED_HEADER] === FROM_SIBLING,
    fromSibling: headers[FORWARDED_HEADER] === FROM_SIBLING,
    ...(waitFor ? { waitFor } : {}),
  };
}

/** One row of a scan as it crosses the network (value already JSON). */
export interface ScannedRow {
  readonly key: Key;
  /** Absent for global tables. */
  readonly partition?: number;
  readonly value: unknown;
}

/** Answer of `GET /internal/partials/tables/:table`: rows of the partitions asked for. */
export interface ScanPartial {
  readonly rows: ScannedRow[];
  readonly stale: boolean;
}

/** Answer of `GET /internal/partials/queries/:name`: each asked partition's partial answer. */
export interface QueryPartial {
  readonly parts: Array<{ readonly partition: number; readonly value: unknown }>;
  readonly stale: boolean;
}

/** Query-string parameters of an internal scan (`limit` may be one more than a page). */
export interface ScanPartialQuery {
  readonly partitions?: string | undefined;
  readonly after?: string | undefined;
  readonly limit?: string | undefined;
}

/** Path and query of an internal scan of `partitions`. */
export function scanPartialPath(table: string, partitions: readonly number[], after: Key | undefined, limit: number, mode: ReadMode): string {
  const query = new URLSearchParams({
    partitions: partitions.join(','),
    limit: String(limit),
    ...(after !== undefined ? { after: String(after) } : {}),
    ...(mode.staleOk ? { stale: 'true' } : {}),
    ...waitParams(mode.waitFor),
  });
  return `/internal/partials/tables/${encodeURIComponent(table)}?${query}`;
}

/** Path and query of an internal query of `partitions`; the query's own parameters ride along. */
export function queryPartialPath(name: string, params: Readonly<Record<string, string>>, partitions: readonly number[], mode: ReadMode): string {
  const query = new URLSearchParams({ ...params, partitions: partitions.join(','), ...(mode.staleOk ? { stale: 'true' } : {}), ...waitParams(mode.waitFor) });
  return `/internal/partials/queries/${encodeURIComponent(name)}?${query}`;
}

/**
 * The error in an internal query answer (`{ error, message, field? }`) that belongs to the query,
 * not to the instance that ran it: its parameters refused (`bad_query_params`, 400) or its code
 * failing (`query_failed`, 500). Raised again on the asking side, so the caller gets the answer it
 * would get had the partition run there. Undefined for anything else (the instance could not serve).
 */
export function queryErrorOf(body: unknown): QueryParamsError | QueryFailedError | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { error, message, field } = body as { error?: unknown; message?: unknown; field?: unknown };
  if (typeof message !== 'string') return undefined;
  if (error === 'bad_query_params') return new QueryParamsError(message, typeof field === 'string' ? field : undefined);
  if (error === 'query_failed') return new QueryFailedError(message);
  return undefined;
}

/** Path of a key read, as the owner of the row answers it. */
export function rowPath(table: string, key: Key, mode: ReadMode): string {
  // A read that waits is never stale (readModeOf refuses the pair): one of the two at most.
  const wait = new URLSearchParams(waitParams(mode.waitFor)).toString();
  return `/tables/${encodeURIComponent(table)}/${encodeURIComponent(String(key))}${mode.staleOk ? '?stale=true' : ''}${wait ? `?${wait}` : ''}`;
}

/** Query-string parameters meant for the query itself (farad's own are removed). */
export function queryParams(query: Readonly<Record<string, string>>): Record<string, string> {
  const { stale: _stale, partitions: _partitions, consistent: _consistent, waitFor: _waitFor, waitMs: _waitMs, ...params } = query;
  return params;
}

/** The `partitions` parameter of an internal request (`0,3,5`); malformed entries are ignored. */
export function parsePartitions(text: string | undefined): number[] {
  if (!text) return [];
  return text
    .split(',')
    .map((p) => Number(p))
    .filter((p) => Number.isInteger(p) && p >= 0);
}
