import type { FastifyInstance } from 'fastify';
import type { Reads, ScanPartialQuery } from '../../reads/index.js';
import type { AuthHook } from '../auth.js';
import { modeOf } from '../read-request.js';

/**
 * What one instance asks another while gathering a scan or a query: the partitions this
 * instance holds, answered from here and never forwarded further.
 */
export function internalRoutes(http: FastifyInstance, deps: { readonly reads: Reads; readonly auth: AuthHook }): void {
  const { reads, auth } = deps;

  http.get<{ Params: { name: string }; Querystring: Record<string, string> }>('/internal/partials/queries/:name', { onRequest: auth }, async (request) =>
    reads.queryPartial(request.params.name, request.query, modeOf(request)),
  );

  http.get<{ Params: { table: string }; Querystring: ScanPartialQuery }>('/internal/partials/tables/:table', { onRequest: auth }, async (request) =>
    reads.scanPartial(request.params.table, request.query, modeOf(request)),
  );
}
