import type { FastifyInstance } from 'fastify';
import type { Reads } from '../../reads/index.js';
import type { AuthHook } from '../auth.js';
import { markStale, modeOf } from '../read-request.js';

/** `GET /queries/:name?...`: a named query over every partition, merged; its parameters come from the query string. */
export function queryRoutes(http: FastifyInstance, deps: { readonly reads: Reads; readonly auth: AuthHook }): void {
  const { reads, auth } = deps;

  http.get<{ Params: { name: string }; Querystring: Record<string, string> }>('/queries/:name', { onRequest: auth }, async (request, reply) => {
    const answer = await reads.query(request.params.name, request.query, modeOf(request));
    markStale(reply, answer.stale);
    return reply.send(answer.body);
  });
}
