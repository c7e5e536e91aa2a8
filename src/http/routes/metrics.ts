import type { FastifyInstance } from 'fastify';
import type { FaradMetrics } from '../../metrics/index.js';

/** `GET /metrics`: the Prometheus exposition (open, for scrapers). */
export function metricsRoutes(http: FastifyInstance, metrics: FaradMetrics): void {
  http.get('/metrics', async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}
