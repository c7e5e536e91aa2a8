import type { FastifyInstance } from 'fastify';
import type { Reads } from '../../reads/index.js';
import type { AuthHook } from '../auth.js';
import { markStale, modeOf, sendRow, tableReadOf, type TableQuery } from '../read-request.js';

/**
 * `GET /tables/:table/:key` or `GET /tables/:table?key=` (one row, from the partition's owner) and
 * `GET /tables/:table?after=&limit=` (a page in key order). `?stale=true` or
 * `x-farad-accept-stale: true` allows a standby's copy; such answers carry `x-farad-stale: true`.
 */
export function tableRoutes(http: FastifyInstance, deps: { readonly reads: Reads; readonly auth: AuthHook }): void {
  const { reads, auth } = deps;

  http.get<{ Params: { table: string; key: string } }>('/tables/:table/:key', { onRequest: auth }, async (request, reply) =>
    sendRow(reply, await reads.get(request.params.table, request.params.key, modeOf(request))),
  );

  http.get<{ Params: { table: string }; Querystring: TableQuery }>('/tables/:table', { onRequest: auth }, async (request, reply) => {
    const asked = tableReadOf(request.query);
    if (asked.kind === 'row') return sendRow(reply, await reads.get(request.params.table, asked.key, modeOf(request)));
    const page = await reads.scan(request.params.table, asked, modeOf(request));
    markStale(reply, page.stale);
    return page.body;
  });
}
