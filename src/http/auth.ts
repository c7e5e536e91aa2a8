import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FaradMetrics } from '../metrics/index.js';
import { RequestRejectedError } from './problem.js';

/** An `onRequest` hook that requires `Authorization: Bearer <token>` (none when no token is set). */
export type AuthHook = (request: FastifyRequest) => Promise<void>;

/**
 * Bearer-token check for the API routes (health, readiness and metrics stay open for probes).
 * It runs before the body is read, so nothing about an unauthenticated request is looked at.
 */
export function bearerAuth(token: string | undefined, metrics: FaradMetrics): AuthHook {
  const expected = token ? Buffer.from(token) : undefined;
  return async (request) => {
    if (!expected) return;
    const header = request.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    // Compared in constant time, so the answer's timing does not reveal the token.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      metrics.ingestRejected.inc({ reason: 'unauthorized' });
      throw new RequestRejectedError('unauthorized', 'missing or wrong bearer token (Authorization: Bearer <FARAD_HTTP_TOKEN>)');
    }
  };
}
