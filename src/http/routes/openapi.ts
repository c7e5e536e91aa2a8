import type { FastifyInstance } from 'fastify';
import type { CompiledApp } from '../../procedures/index.js';
import type { AuthHook } from '../auth.js';
import { openApiDocument } from '../openapi.js';

export interface OpenApiRouteDeps {
  readonly app: CompiledApp;
  /** `http.token` is set: the document says which routes need it, and this route is one of them. */
  readonly bearerToken: boolean;
  readonly bodyLimitBytes: number;
  readonly auth: AuthHook;
}

/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of the app's HTTP API, generated once at start.
 * It reveals the app's schemas, tables and queries, so it needs the bearer token as the reads do.
 */
export function openApiRoutes(http: FastifyInstance, deps: OpenApiRouteDeps): void {
  const text = JSON.stringify(openApiDocument(deps.app, { bearerToken: deps.bearerToken, bodyLimitBytes: deps.bodyLimitBytes }));
  http.get('/openapi.json', { onRequest: deps.auth }, async (_request, reply) => reply.type('application/json; charset=utf-8').send(text));
}
