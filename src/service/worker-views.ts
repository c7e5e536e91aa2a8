import type { FastifyInstance } from 'fastify';
import { AggregatorRegistry } from 'prom-client';
import type { HealthSource, MetricsSource, Readiness } from '../http/index.js';
import { REPORTED_METRICS, type MetricValues } from '../console/index.js';
import type { FaradMetrics } from '../metrics/index.js';
import type { PartitionStatus, ServiceHealth } from '../partition/index.js';
import { HTTP_KIND, type WorkerLink } from '../workers/index.js';

const HEALTH_KIND = 'health';
const METRICS_KIND = 'metrics';
const CONSOLE_METRICS_KIND = 'console-metrics';

/** One worker's health, as it answers a sibling. */
interface WorkerHealth {
  readonly failure: string | undefined;
  readonly ready: boolean;
  readonly partitions: readonly PartitionStatus[];
}

/**
 * Answers siblings' questions about this worker: its health, its metrics (prom-client JSON, for
 * aggregation) and GETs on its HTTP API (reads forwarded to the partitions it owns).
 */
export function serveSiblings(link: WorkerLink, deps: { readonly health: ServiceHealth; readonly metrics: FaradMetrics; readonly http: FastifyInstance }): void {
  link.serve(HEALTH_KIND, (): WorkerHealth => {
    const { ready, partitions } = deps.health.readiness();
    return { failure: deps.health.failure(), ready, partitions };
  });
  link.serve(METRICS_KIND, () => deps.metrics.registry.getMetricsAsJSON());
  link.serve(CONSOLE_METRICS_KIND, () => deps.metrics.valuesOf(REPORTED_METRICS));
  link.serve(HTTP_KIND, async (payload) => {
    const { path, headers } = payload as { path: string; headers: Record<string, string> };
    const response = await deps.http.inject({ method: 'GET', url: path, headers });
    const relayed: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) if (typeof value === 'string') relayed[name] = value;
    return { status: response.statusCode, headers: relayed, body: response.body };
  });
}

/**
 * The instance's health when it runs several workers: failed when any worker failed for good;
 * ready when every worker answers and is ready (a worker being restarted makes it not ready).
 */
export function instanceHealth(link: WorkerLink): HealthSource {
  const gather = async (): Promise<{ answers: WorkerHealth[]; missing: number[] }> => {
    const answers = await link.ask('all', HEALTH_KIND, null);
    const healthy = answers.flatMap((a) => (a.ok ? [a.payload as WorkerHealth] : []));
    const answered = new Set(answers.filter((a) => a.ok).map((a) => a.worker));
    const missing = Array.from({ length: link.workers }, (_, w) => w).filter((w) => !answered.has(w));
    return { answers: healthy, missing };
  };
  return {
    async failure() {
      const { answers } = await gather();
      return answers.find((a) => a.failure !== undefined)?.failure;
    },
    async readiness(): Promise<Readiness> {
      const { answers, missing } = await gather();
      const partitions = answers.flatMap((a) => a.partitions);
      return { ready: missing.length === 0 && answers.every((a) => a.ready), partitions };
    },
  };
}

/** `/metrics` of the instance: every worker's metrics aggregated (counters and histograms summed, as prom-client's cluster mode does). */
export function instanceMetrics(link: WorkerLink, metrics: FaradMetrics): MetricsSource {
  return {
    contentType: metrics.registry.contentType,
    async exposition() {
      const answers = await link.ask('all', METRICS_KIND, null);
      const perWorker = answers.flatMap((a) => (a.ok ? [a.payload as object[]] : []));
      return AggregatorRegistry.aggregate(perWorker).metrics();
    },
  };
}

/** The values of the metrics the console reports, every worker's aggregated (prom-client JSON). */
export function instanceMetricValues(link: WorkerLink): () => Promise<MetricValues[]> {
  return async () => {
    const answers = await link.ask('all', CONSOLE_METRICS_KIND, null);
    const perWorker = answers.flatMap((a) => (a.ok ? [a.payload as object[]] : []));
    return (await AggregatorRegistry.aggregate(perWorker).getMetricsAsJSON()) as MetricValues[];
  };
}
