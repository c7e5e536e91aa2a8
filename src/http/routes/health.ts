import type { FastifyInstance } from 'fastify';
import type { PartitionStatus } from '../../partition/index.js';

/** Liveness and readiness of the instance (of all its workers when it runs several). */
export interface HealthSource {
  /** Undefined while the instance works; otherwise why processing stopped for good. */
  failure(): string | undefined | Promise<string | undefined>;
  /** Ready when every partition the instance owns is active; standbys are listed too. */
  readiness(): Readiness | Promise<Readiness>;
}

export interface Readiness {
  readonly ready: boolean;
  readonly partitions: readonly PartitionStatus[];
}

/**
 * `GET /healthz` (liveness: 503 once processing stopped for good) and `GET /readyz` (readiness:
 * 503 until every partition this instance owns is active; standbys are listed too). Both open,
 * for probes.
 */
export function healthRoutes(http: FastifyInstance, health: HealthSource): void {
  http.get('/healthz', async (_request, reply) => {
    const failure = await health.failure();
    if (failure !== undefined) return reply.code(503).send({ status: 'failed', message: `processing stopped: ${failure}` });
    return { status: 'ok' };
  });

  http.get('/readyz', async (_request, reply) => {
    const { ready, partitions } = await health.readiness();
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
