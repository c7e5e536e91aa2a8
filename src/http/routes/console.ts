import type { FastifyInstance, FastifyReply } from 'fastify';
import { InvalidParameterError } from '../../errors.js';
import { INSTANCE_REPORT_PATH, type ClusterConsole, type ConsoleAssets } from '../../console/index.js';
import type { AuthHook } from '../auth.js';

export interface ConsoleRouteDeps {
  readonly console: ClusterConsole;
  readonly assets: ConsoleAssets;
  /** The console's check: bearer token or HTTP Basic with the token as password. */
  readonly auth: AuthHook;
}

const MAX_DEAD_LETTERS = 100;

/**
 * Only this origin's own files and requests: nothing from a CDN, nothing inline, no framing.
 * Inline styles (`style=` for bar widths) are the one exception.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/**
 * `GET /console`: the page; `/console/assets/<file>`: its style and script; `/console/api/cluster`:
 * the app across every instance; `/console/api/instance`: this instance alone (what the others
 * gather); `/console/api/dead-letters?limit=`: the newest dead letters.
 */
export function consoleRoutes(http: FastifyInstance, deps: ConsoleRouteDeps): void {
  const { console, assets, auth } = deps;

  const page = async (_request: unknown, reply: FastifyReply): Promise<FastifyReply> => send(reply, 'index.html');
  http.get('/console', { onRequest: auth }, page);
  http.get('/console/', { onRequest: auth }, page);

  http.get<{ Params: { name: string } }>('/console/assets/:name', { onRequest: auth }, async (request, reply) => send(reply, request.params.name));

  http.get('/console/api/cluster', { onRequest: auth }, async (_request, reply) => reply.header('cache-control', 'no-store').send(await console.cluster()));

  http.get(INSTANCE_REPORT_PATH, { onRequest: auth }, async (_request, reply) => reply.header('cache-control', 'no-store').send(await console.report()));

  http.get<{ Querystring: { limit?: string } }>('/console/api/dead-letters', { onRequest: auth }, async (request, reply) => {
    const limit = parseLimit(request.query.limit);
    return reply.header('cache-control', 'no-store').send({ items: await console.deadLetters(limit) });
  });

  async function send(reply: FastifyReply, name: string): Promise<FastifyReply> {
    const asset = assets.get(name);
    if (!asset) return reply.code(404).send({ error: 'not_found', message: `the console has no file "${name}"` });
    const { contentType, body } = await asset;
    return reply
      .header('content-type', contentType)
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-cache')
      .send(body);
  }
}

function parseLimit(text: string | undefined): number {
  if (text === undefined || text === '') return 20;
  const limit = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DEAD_LETTERS) {
    throw new InvalidParameterError('bad_limit', `limit must be an integer from 1 to ${MAX_DEAD_LETTERS}, not ${JSON.stringify(text)}`);
  }
  return limit;
}
