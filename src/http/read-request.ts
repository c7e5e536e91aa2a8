import type { FastifyReply, FastifyRequest } from 'fastify';
import { readModeOf, STALE_HEADER, type ReadMode, type RowRead } from '../reads/index.js';
import { RequestRejectedError } from './problem.js';

/** The read mode a request asks for: stale allowed (`?stale=true`, `x-farad-accept-stale`)? sent by another instance? */
export function modeOf(request: FastifyRequest): ReadMode {
  return readModeOf(request.query as Record<string, unknown>, request.headers);
}

/** Tells the caller the answer came, at least partly, from a standby copy. */
export function markStale(reply: FastifyReply, stale: boolean): void {
  if (stale) void reply.header(STALE_HEADER, 'true');
}

/** Query string of `GET /tables/:table`: a repeated parameter arrives as an array. */
export interface TableQuery {
  readonly key?: string | string[] | undefined;
  readonly after?: string | string[] | undefined;
  readonly limit?: string | string[] | undefined;
}

/** What `GET /tables/:table?…` asks for: one row (`?key=`), or a page (`?after=&limit=`). */
export type TableRead =
  | { readonly kind: 'row'; readonly key: string }
  | { readonly kind: 'page'; readonly after?: string | undefined; readonly limit?: string | undefined };

/**
 * The read a table's query string asks for. `key` reads one row, as `/tables/:table/:key` does
 * (for keys that are awkward in a path); it cannot be combined with the paging parameters, and
 * no parameter may be given twice.
 */
export function tableReadOf(query: TableQuery): TableRead {
  const key = once(query, 'key');
  const after = once(query, 'after');
  const limit = once(query, 'limit');
  if (key === undefined) return { kind: 'page', after, limit };
  const paging = [after === undefined ? [] : ['after'], limit === undefined ? [] : ['limit']].flat();
  if (paging.length > 0) {
    throw new RequestRejectedError(
      'bad_request',
      `key reads one row and ${paging.join(' and ')} page through the table; give either key, or after and limit`,
    );
  }
  return { kind: 'row', key };
}

/** Answers a key read: the row, or the owning instance's answer relayed as it came. */
export function sendRow(reply: FastifyReply, read: RowRead): FastifyReply {
  markStale(reply, read.stale);
  if (read.kind === 'relayed') return reply.code(read.status).send(read.body);
  return reply.send(read.body);
}

/** A parameter's one value; given several times (`?limit=1&limit=2`) it is refused, not guessed. */
function once(query: TableQuery, name: keyof TableQuery): string | undefined {
  const value = query[name];
  if (!Array.isArray(value)) return value;
  throw new RequestRejectedError('bad_request', `${name} is given ${value.length} times; give it once`);
}
