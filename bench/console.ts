/**
 * What the console costs. console-256x10: one gathering of an app with 256 partitions on 10
 * instances (nine of them answering over HTTP on loopback, as other instances would), its time
 * and its size. console-open: the Voter on Kafka with the console open on the instance (its
 * page polls `/console/api/cluster` every 2 s and the newest dead letters every 10 s), against
 * kafka-eos-k0 without it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ClusterConsole, type InstanceReport, type MetricValues } from '../src/console/index.js';
import { FaradMetrics } from '../src/metrics/index.js';
import type { PartitionStatus } from '../src/partition/index.js';
import { Peers } from '../src/reads/index.js';
import { progress, quantile, round, sleep, type BenchContext, type FaradInstance, type ScenarioReport } from './lib.js';

const PARTITIONS = 256;
const INSTANCES = 10;
const EVENT_TYPES = ['voter.Vote', 'voter.Reset', 'voter.Close'];

/** Instance `i` of 10: partitions p with p % 10 == i active, p % 10 == i + 1 standby; figures as a busy instance has them. */
function hostedBy(i: number): PartitionStatus[] {
  const out: PartitionStatus[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    if (p % INSTANCES === i) out.push({ partition: p, role: 'active' });
    else if (p % INSTANCES === (i + 1) % INSTANCES) out.push({ partition: p, role: 'standby' });
  }
  return out;
}

function metricsOf(hosted: readonly PartitionStatus[]): FaradMetrics {
  const metrics = new FaradMetrics(
    () => [],
    () => hosted.filter((h) => h.role === 'active').map((h) => ({ partition: h.partition, lag: h.partition * 3 })),
    () => [],
    () => hosted.filter((h) => h.role === 'active').map((h) => ({ partition: h.partition, pending: 2 })),
  );
  for (const { partition, role } of hosted) {
    metrics.roleChanged(partition, undefined, role);
    if (role === 'standby') metrics.standbyLag(partition, 5);
    else {
      for (const type of EVENT_TYPES) metrics.eventsHandled(type, partition, 1000 + partition, 1);
      metrics.batchCommitted(partition, 100, 0.002);
      metrics.restoreProgress(partition, 10, 10);
      metrics.snapshotTaken(partition, 4096, 0.01);
    }
  }
  return metrics;
}

function consoleOf(i: number, instances: () => Array<{ instanceId: string; url: string | undefined }>): ClusterConsole {
  const hosted = hostedBy(i);
  const metrics = metricsOf(hosted);
  return new ClusterConsole({
    facts: { app: 'voter', transport: 'kafka', partitions: PARTITIONS, replicas: 1, servedBy: `i${i}` },
    identity: () => ({ instanceId: `i${i}`, url: undefined, workers: 2, startedAt: Date.now() - 3_600_000 }),
    health: async () => ({ ready: true, partitions: hosted }),
    metrics: async () => (await metrics.registry.getMetricsAsJSON()) as MetricValues[],
    instances,
    peers: new Peers({ timeoutMs: 5000 }),
    deadLetterTopic: 'voter-dlq',
  });
}

export async function console256x10(ctx: BenchContext): Promise<ScenarioReport> {
  const rounds = ctx.size('console-256x10', 200, 20);
  // Nine other instances: each answers its report over HTTP, as /console/api/instance does.
  const servers: Server[] = [];
  const members: Array<{ instanceId: string; url: string | undefined }> = [{ instanceId: 'i0', url: undefined }];
  const reportBytes: number[] = [];
  try {
    for (let i = 1; i < INSTANCES; i++) {
      const own = consoleOf(i, () => []);
      const server = createServer((_req, res) => {
        void own.report().then((r: InstanceReport) => {
          const body = JSON.stringify(r);
          reportBytes.push(Buffer.byteLength(body));
          res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      members.push({ instanceId: `i${i}`, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    }
    const gatherer = consoleOf(0, () => members);
    const ms: number[] = [];
    let bytes = 0;
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      const view = await gatherer.cluster();
      bytes = Buffer.byteLength(JSON.stringify(view));
      ms.push(performance.now() - started);
      if (view.unreachable.length > 0) throw new Error(`instances unreachable: ${JSON.stringify(view.unreachable)}`);
      if (view.partitionRows.some((row) => row.role !== 'active' || row.standbys.length !== 1)) throw new Error('the gathered view lost partitions');
    }
    const p50 = quantile(ms, 0.5);
    const p99 = quantile(ms, 0.99);
    progress(`console-256x10: gathering p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, view ${(bytes / 1024).toFixed(0)} KiB`);
    return {
      rows: [{ scenario: 'console-256x10', eventsPerSec: round(1000 / p50), p50Ms: round(p50, 2), p99Ms: round(p99, 2), baseline: null, baselineEventsPerSec: null, ratio: null }],
      details: [
        `One \`/console/api/cluster\` gathering of an app with ${PARTITIONS} partitions on ${INSTANCES} instances (k=1: each holds ~26 active and ~26 standby partitions, 3 event types), ${rounds} times: this instance's report from its metrics and nine others' over HTTP on loopback. eventsPerSec is gatherings per second at p50.`,
        `The view the page receives every 2 s: ${(bytes / 1024).toFixed(0)} KiB of JSON; one instance's report: ${(Math.max(...reportBytes) / 1024).toFixed(0)} KiB.`,
      ],
      metrics: { viewBytes: bytes },
    };
  } finally {
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * While the run lasts, what an open console page asks of `instance`: the cluster view every 2 s,
 * and the newest dead letters at first and when their counts change. Returns a stop that says
 * how long the answers took.
 */
export function consolePage(instance: FaradInstance): () => Promise<{ polls: number; p50Ms: number; maxMs: number }> {
  let stopped = false;
  const ms: number[] = [];
  const loop = (async () => {
    let deadLetters: string | undefined;
    while (!stopped) {
      const started = performance.now();
      const answer = await fetch(`${instance.base}/console/api/cluster`);
      if (!answer.ok) throw new Error(`the console answered ${answer.status}: ${await answer.text()}`);
      const view = (await answer.json()) as { deadLetters: unknown };
      // The page reads the newest dead letters at first and whenever their counts change.
      const counts = JSON.stringify(view.deadLetters);
      if (counts !== deadLetters) {
        deadLetters = counts;
        const letters = await fetch(`${instance.base}/console/api/dead-letters?limit=20`);
        if (!letters.ok) throw new Error(`the console answered ${letters.status}: ${await letters.text()}`);
        await letters.arrayBuffer();
      }
      ms.push(performance.now() - started);
      await sleep(2000);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return { polls: ms.length, p50Ms: quantile(ms, 0.5), maxMs: Math.max(0, ...ms) };
  };
}
