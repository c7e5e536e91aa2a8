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
    if (!matches(header.startsWith('Bearer ') ? header.slice(7) : '', expected)) {
      metrics.ingestRejected.inc({ reason: 'unauthorized' });
      throw new RequestRejectedError('unauthorized', 'missing or wrong bearer token (Authorization: Bearer <FARAD_HTTP_TOKEN>)');
    }
  };
}

/**
 * The console's check: the bearer token, or HTTP Basic with the token as password (any user
 * name), which a browser asks for once and then sends with the page's requests itself.
 */
export function consoleAuth(token: string | undefined): AuthHook {
  const expected = token ? Buffer.from(token) : undefined;
  return async (request) => {
    if (!expected) return;
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : header.startsWith('Basic ') ? basicPassword(header.slice(6)) : '';
    if (!matches(given, expected)) {
      throw new RequestRejectedError('login_required', 'the console needs the instance\'s token (http.token): sign in with any user name and the token as password, or send Authorization: Bearer <token>');
    }
  };
}

function basicPassword(encoded: string): string {
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? '' : decoded.slice(colon + 1);
}

/** Compared in constant time, so the answer's timing does not reveal the token. */
function matches(given: string, expected: Buffer): boolean {
  const bytes = Buffer.from(given);
  return bytes.length === expected.length && timingSafeEqual(bytes, expected);
}
