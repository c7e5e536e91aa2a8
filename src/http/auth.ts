import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FaradMetrics } from '../metrics/index.js';
import { RequestRejectedError } from './problem.js';

/** An `onRequest` hook that requires the token (none when no token is set). */
export type AuthHook = (request: FastifyRequest) => Promise<void>;

/**
 * Bearer-token check for the API routes (health, readiness and metrics stay open for probes).
 * It runs before the body is read, so nothing about an unauthenticated request is looked at.
 */
export function bearerAuth(token: string | undefined, metrics: FaradMetrics): AuthHook {
  const expected = token ? Buffer.from(token) : undefined;
  return async (request) => {
    if (!expected) return;
    if (!matches(tokenGiven(request.headers.authorization ?? ''), expected)) {
      metrics.ingestRejected.inc({ reason: 'unauthorized' });
      throw new RequestRejectedError('unauthorized', 'missing or wrong bearer token (Authorization: Bearer <FARAD_HTTP_TOKEN>, or HTTP Basic with the token as password)');
    }
  };
}

/**
 * The console's check: the same token, and a 401 that makes a browser ask for it (any user
 * name, the token as password). The browser then sends it with the page's requests itself, so
 * the API routes take HTTP Basic too (a cross-site page cannot make a browser send farad's JSON
 * requests: they need a CORS preflight farad does not grant).
 */
export function consoleAuth(token: string | undefined): AuthHook {
  const expected = token ? Buffer.from(token) : undefined;
  return async (request) => {
    if (!expected) return;
    if (!matches(tokenGiven(request.headers.authorization ?? ''), expected)) {
      throw new RequestRejectedError('login_required', 'the console needs the instance\'s token (http.token): sign in with any user name and the token as password, or send Authorization: Bearer <token>');
    }
  };
}

/** The token of `Authorization: Bearer <token>`, or the password of HTTP Basic (any user name). */
function tokenGiven(header: string): string {
  return header.startsWith('Bearer ') ? header.slice(7) : header.startsWith('Basic ') ? basicPassword(header.slice(6)) : '';
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
