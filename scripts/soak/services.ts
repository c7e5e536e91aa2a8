/**
 * Broker and Redis faults, done exactly as scripts/services-down.sh and scripts/services-up.sh
 * stop and start them (same pid files, data directories and configuration), and only when
 * services-up started them (a pid file in .services/): a server someone else runs is left alone
 * and the fault is skipped. Whatever the soak stopped is started again before it exits.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, run } from './processes.js';

export type Service = 'kafka' | 'redis';

const PATTERN: Record<Service, string> = { kafka: 'kafka.Kafka', redis: 'redis-server' };
const down = new Set<Service>();

/** The pid of the server services-up started, if it runs (the same checks as services-down.sh). */
export function servicePid(service: Service): number | undefined {
  try {
    const pid = Number(readFileSync(join(ROOT, '.services', `${service}.pid`), 'utf8').replace(/\D/g, ''));
    if (!pid) return undefined;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return cmdline.includes(PATTERN[service]) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function stopService(service: Service): Promise<void> {
  down.add(service);
  const res = await run('bash', [join(ROOT, 'scripts/services-down.sh'), service], 90_000);
  if (res.code !== 0) throw new Error(`scripts/services-down.sh ${service} failed (${res.code}): ${res.output.slice(-2000)}`);
}

export async function startService(service: Service): Promise<void> {
  const res = await run('bash', [join(ROOT, 'scripts/services-up.sh'), service], 180_000);
  if (res.code !== 0) throw new Error(`scripts/services-up.sh ${service} failed (${res.code}): ${res.output.slice(-2000)}`);
  down.delete(service);
}

/** Starts again whatever a fault left stopped (on every way out). Never throws. */
export async function restoreServices(): Promise<string[]> {
  const problems: string[] = [];
  for (const service of [...down]) {
    try {
      await startService(service);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}

export function servicesDown(): Service[] {
  return [...down];
}
