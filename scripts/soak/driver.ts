/**
 * The workload driver: a process of its own (forked by the soak with an IPC channel), so that the
 * soak's faults, checks and timers never slow the load down, and the load never hides in the
 * soak's event loop. Two modes:
 *
 *  kafka     produces the cluster's events (ClusterWorkload) every 100 ms with an idempotent
 *            kafkajs producer, acks=all, each record with its `soak-id` header; appends one
 *            ledger line per event: acked (Kafka acknowledged it: it must be applied) or failed
 *            (the send failed: it may or may not have landed; the checks read the input topic).
 *            A producer whose send failed is replaced (a fresh producer id, no stale sequences).
 *  embedded  POSTs the embedded instance's requests (EmbeddedWorkload), two in flight at most;
 *            202 = acked, 4xx and 507 = refused (nothing appended), no answer = uncertain.
 *
 * Messages to the parent: {kind:'progress', ...counts} every second; {kind:'done', ...} at the end.
 * From the parent: {kind:'stop'}: finish what is in flight, write the ledger, exit.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { Partitioners, type Producer } from 'kafkajs';
import { soakApp } from './app.js';
import { SingleObjects } from '../../test/integration/single-objects.js';
import { soakKafka, sleep } from './kafka.js';
import { soakNames } from './names.js';
import type { EmbeddedEntry, LedgerEntry } from './ledger.js';
import { ClusterWorkload, EmbeddedWorkload, TICK_MS, type EmbeddedRequest, type SoakEvent } from './workload.js';

export interface DriverConfig {
  readonly mode: 'kafka' | 'embedded';
  readonly seed: number;
  readonly suffix: string;
  readonly ledgerFile: string;
  /** Embedded mode: the instance's base URL. */
  readonly url?: string;
}

export interface DriverProgress {
  readonly kind: 'progress' | 'done';
  readonly sent: number;
  readonly acked: number;
  readonly failed: number;
  /** Embedded mode: answers by HTTP status (or 'error'). */
  readonly answers: Readonly<Record<string, number>>;
}

const send = (message: DriverProgress): void => {
  process.send?.(message);
};

let stopping = false;
process.on('message', (m: { kind?: string }) => {
  if (m.kind === 'stop') stopping = true;
});
// The soak's Ctrl-C reaches the driver too: the parent stops it.
process.on('SIGINT', () => undefined);
process.on('disconnect', () => process.exit(0));

async function kafkaDriver(config: DriverConfig): Promise<void> {
  const names = soakNames(config.suffix);
  const objects = new SingleObjects(soakApp(config.suffix));
  const topicOf = (e: SoakEvent): string => (e.type === 'Vote' ? names.votes : names.transactions);
  const kafka = soakKafka(`farad-soak-driver-${config.suffix}`);
  const workload = new ClusterWorkload(config.seed);
  const counts = { sent: 0, acked: 0, failed: 0 };
  const connect = async (): Promise<Producer> => {
    for (;;) {
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, retry: { retries: 6, maxRetryTime: 5000 } });
      try {
        await p.connect();
        return p;
      } catch {
        await p.disconnect().catch(() => undefined);
        await sleep(500);
      }
    }
  };
  let producer = await connect();
  writeFileSync(config.ledgerFile, '');
  const progress = setInterval(() => send({ kind: 'progress', ...counts, answers: {} }), 1000);
  while (!stopping) {
    const started = Date.now();
    const events = workload.tick();
    const byTopic = new Map<string, SoakEvent[]>();
    for (const e of events) {
      const topic = topicOf(e);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), e]);
    }
    let status: LedgerEntry['status'] = 'acked';
    try {
      await producer.sendBatch({
        acks: -1,
        timeout: 10_000,
        topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list.map((e) => ({ key: e.key, value: objects.encode(e.type, e.value), headers: { 'soak-id': e.id } })) })),
      });
    } catch {
      status = 'failed';
      await producer.disconnect().catch(() => undefined);
      producer = await connect();
    }
    counts.sent += events.length;
    counts[status] += events.length;
    appendFileSync(config.ledgerFile, events.map((e) => JSON.stringify({ ...e, status })).join('\n') + '\n');
    const wait = TICK_MS - (Date.now() - started);
    if (wait > 0) await sleep(wait);
  }
  clearInterval(progress);
  await producer.disconnect().catch(() => undefined);
  send({ kind: 'done', ...counts, answers: {} });
}

async function embeddedDriver(config: DriverConfig): Promise<void> {
  const url = config.url!;
  const workload = new EmbeddedWorkload(config.seed);
  const counts = { sent: 0, acked: 0, failed: 0 };
  const answers: Record<string, number> = {};
  writeFileSync(config.ledgerFile, '');
  const progress = setInterval(() => send({ kind: 'progress', ...counts, answers }), 1000);
  const one = async (request: EmbeddedRequest): Promise<void> => {
    let status: EmbeddedEntry['status'];
    let answer: string;
    try {
      const res = await fetch(`${url}/events/${request.type}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request.events),
        signal: AbortSignal.timeout(8000),
      });
      await res.text();
      answer = String(res.status);
      status = res.status === 202 ? 'acked' : (res.status >= 400 && res.status < 500) || res.status === 507 ? 'refused' : 'uncertain';
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      // Refused connections carried nothing; anything else may have been appended.
      status = code === 'ECONNREFUSED' ? 'refused' : 'uncertain';
      answer = code ?? (err as Error).name;
    }
    answers[answer] = (answers[answer] ?? 0) + 1;
    counts.sent++;
    if (status === 'acked') counts.acked++;
    else counts.failed++;
    if (status === 'uncertain' && request.type === 'Deposit') for (const d of request.events) workload.retire(d.account);
    const entry: EmbeddedEntry = { id: request.id, type: request.type, events: request.events, status, answer };
    appendFileSync(config.ledgerFile, JSON.stringify(entry) + '\n');
    if (status !== 'acked') await sleep(200);
  };
  const lanes = Array.from({ length: 2 }, async () => {
    while (!stopping) {
      const started = Date.now();
      await one(workload.next());
      const wait = 50 - (Date.now() - started);
      if (wait > 0) await sleep(wait);
    }
  });
  await Promise.all(lanes);
  clearInterval(progress);
  send({ kind: 'done', ...counts, answers });
}

const config = JSON.parse(process.argv[2] ?? '{}') as DriverConfig;
(config.mode === 'embedded' ? embeddedDriver(config) : kafkaDriver(config)).then(
  () => setTimeout(() => process.exit(0), 100),
  (err: unknown) => {
    console.error(`soak driver (${config.mode}) failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
