import type { FastifyInstance } from 'fastify';
import type { ServiceHealth } from '../../partition/index.js';

/**
 * `GET /healthz` (liveness: 503 once processing stopped for good) and `GET /readyz` (readiness:
 * 503 until every partition this instance owns is active; standbys are listed too). Both open,
 * for probes.
 */
export function healthRoutes(http: FastifyInstance, health: ServiceHealth): void {
  http.get('/healthz', async (_request, reply) => {
    const failure = health.failure();
    if (failure !== undefined) return reply.code(503).send({ status: 'failed', message: `processing stopped: ${failure}` });
    return { status: 'ok' };
  });

  http.get('/readyz', async (_request, reply) => {
    const { ready, partitions } = health.readiness();
    const listed = [...partitions]
      .sort((a, b) => a.partition - b.partition)
      .map(({ partition, role, reason, code }) => ({
        partition,
        role,
        ...(reason !== undefined ? { reason } : {}),
        ...(code !== undefined ? { code } : {}),
      }));
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', partitions: listed });
  });
}
