import type { FastifyInstance } from 'fastify';

/** Where `GET /metrics` gets its text: this process's registry, or every worker's aggregated. */
export interface MetricsSource {
  readonly contentType: string;
  exposition(): Promise<string>;
}

/** `GET /metrics`: the Prometheus exposition (open, for scrapers). */
export function metricsRoutes(http: FastifyInstance, source: MetricsSource): void {
  http.get('/metrics', async (_request, reply) => {
    const body = await source.exposition();
    return reply.type(source.contentType).send(body);
  });
}
