import type { FastifyReply, FastifyRequest } from 'fastify';
import { readModeOf, STALE_HEADER, type ReadMode } from '../reads/index.js';

/** The read mode a request asks for: stale allowed (`?stale=true`, `x-farad-accept-stale`)? sent by another instance? */
export function modeOf(request: FastifyRequest): ReadMode {
  return readModeOf(request.query as Record<string, unknown>, request.headers);
}

/** Tells the caller the answer came, at least partly, from a standby copy. */
export function markStale(reply: FastifyReply, stale: boolean): void {
  if (stale) void reply.header(STALE_HEADER, 'true');
}
