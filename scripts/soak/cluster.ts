/**
 * The Kafka cluster under test: three farad instances (k = 1, Redis snapshots) and the faults of
 * the cluster and Redis tracks. After every cluster fault the track waits for recovery: every
 * instance ready (/readyz 200), every partition active on exactly one instance and standing by on
 * another. An instance that exits without the soak asking is a violation (and is started again).
 */
import { join } from 'node:path';
import { FaradInstance, freePort } from './processes.js';
import type { Recorder } from './report.js';
import type { ClusterFault, Planned, RedisFault } from './schedule.js';
import { servicePid, startService, stopService } from './services.js';
import { sleep } from './kafka.js';
import { SOAK_PARTITIONS } from './names.js';

export const SESSION_TIMEOUT_MS = 6000;
export const SNAPSHOT_INTERVAL_MS = 5000;
const RECOVERY_TIMEOUT_MS = 150_000;

export interface Roles {
  readonly ready: boolean;
  readonly active: number[];
  readonly standby: number[];
}

export async function readyz(base: string, timeoutMs = 3000): Promise<Roles | undefined> {
  try {
    const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { partitions?: Array<{ partition: number; role: string }> };
    const of = (role: string): number[] => (body.partitions ?? []).filter((p) => p.role === role).map((p) => p.partition).sort((a, b) => a - b);
    return { ready: res.status === 200, active: of('active'), standby: of('standby') };
  } catch {
    return undefined;
  }
}

/** Sum of a counter's samples whose labels include `labels` (undefined: no answer). */
export async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    let total = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = new Map([...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((p) => [p[1]!, p[2]!]));
      if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total += Number(m[4]);
    }
    return total;
  } catch {
    return undefined;
  }
}

export class Cluster {
  readonly instances: FaradInstance[] = [];
  /** Instances a fault holds down or paused on purpose: the watchdog leaves them alone. */
  private readonly held = new Set<FaradInstance>();
  private watching: NodeJS.Timeout | undefined;
  /** True while the cluster track restarts the broker (the Redis track's snapshot check waits for it). */
  private brokerRestarting = false;

  private constructor(private readonly recorder: Recorder) {}

  static async create(recorder: Recorder, { suffix, logDir, redisUrl, brokers }: { suffix: string; logDir: string; redisUrl: string; brokers: string }): Promise<Cluster> {
    const cluster = new Cluster(recorder);
    for (let i = 1; i <= 3; i++) {
      const port = await freePort();
      const id = `soak-${suffix}-i${i}`;
      cluster.instances.push(
        new FaradInstance(
          id,
          port,
          {
            SOAK_APP_SUFFIX: suffix,
            FARAD_TRANSPORT: 'kafka',
            FARAD_KAFKA_BROKERS: brokers,
            FARAD_ADVERTISED_URL: `http://127.0.0.1:${port}`,
            FARAD_REPLICAS: '1',
            FARAD_WORKERS: '1',
            FARAD_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
            FARAD_REDIS_URL: redisUrl,
            FARAD_SNAPSHOT_INTERVAL_MS: String(SNAPSHOT_INTERVAL_MS),
          },
          join(logDir, `i${i}.log`),
        ),
      );
    }
    return cluster;
  }

  name(i: number): string {
    return `i${i + 1}`;
  }

  startAll(): void {
    for (const i of this.instances) i.start();
  }

  /** Restarts an instance that exited on its own, as a violation (every second). */
  watch(): void {
    this.watching = setInterval(() => {
      for (const [n, i] of this.instances.entries()) {
        if (i.running || this.held.has(i) || i.generation === 0) continue;
        const exit = i.unexpectedExits[i.unexpectedExits.length - 1];
        this.recorder.violation(`instance ${this.name(n)} (${i.id}) exited without being asked (code ${exit?.code}, signal ${exit?.signal}); restarted. Its last output:\n${i.recentOutput().slice(-600)}`, 'cluster');
        i.start();
      }
    }, 1000);
  }

  unwatch(): void {
    if (this.watching) clearInterval(this.watching);
  }

  /**
   * Every instance of `among` ready, every partition active on exactly one, and (with standbys)
   * standing by on another; the placement, or undefined.
   */
  async complete(among: readonly FaradInstance[] = this.instances, standbys = true): Promise<Map<FaradInstance, Roles> | undefined> {
    const roles = new Map<FaradInstance, Roles>();
    const answers = await Promise.all(among.map((i) => readyz(i.base)));
    for (const [n, i] of among.entries()) {
      const r = answers[n];
      if (!r?.ready) return undefined;
      roles.set(i, r);
    }
    const active = [...roles.values()].flatMap((r) => r.active).sort((a, b) => a - b);
    if (active.join() !== Array.from({ length: SOAK_PARTITIONS }, (_, p) => p).join()) return undefined;
    if (standbys && among.length > 1) {
      for (let p = 0; p < SOAK_PARTITIONS; p++) {
        const owner = [...roles].find(([, r]) => r.active.includes(p))![0];
        if (![...roles].some(([i, r]) => i !== owner && r.standby.includes(p))) return undefined;
      }
    }
    return roles;
  }

  /** Waits for `complete()`; ms waited, or undefined after the timeout. */
  async waitComplete(timeoutMs = RECOVERY_TIMEOUT_MS, among?: readonly FaradInstance[]): Promise<number | undefined> {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      if (await this.complete(among)) return Date.now() - start;
      await sleep(250);
    }
    return undefined;
  }

  /** What each instance answers on /readyz now, for a failure message. */
  async describe(): Promise<string> {
    const parts = await Promise.all(
      this.instances.map(async (i, n) => {
        const r = await readyz(i.base);
        return `${this.name(n)}: ${r ? `${r.ready ? 'ready' : 'NOT ready'} active [${r.active.join(',')}] standby [${r.standby.join(',')}]` : i.running ? 'no answer' : 'not running'}`;
      }),
    );
    return parts.join('; ');
  }

  // ---- the faults -------------------------------------------------------------------------------

  async inject(planned: Planned<ClusterFault>): Promise<Record<string, unknown>> {
    const f = planned.fault;
    if (f.kind === 'broker-restart') return this.brokerRestart(f.downMs);
    const victim = this.instances[f.target]!;
    const target = this.name(f.target);
    const before = await readyz(victim.base);
    const owned = before?.active ?? [];
    this.held.add(victim);
    try {
      switch (f.kind) {
        case 'kill9': {
          await victim.kill9();
          await sleep(f.downMs);
          victim.start();
          return { target, owned, downMs: f.downMs };
        }
        case 'graceful-restart': {
          const started = Date.now();
          const exit = await victim.stop(30_000);
          const stopMs = Date.now() - started;
          if (exit.forced || exit.code !== 0) {
            this.recorder.violation(`graceful restart of ${target}: SIGTERM ${exit.forced ? 'did not stop it within 30 s (killed)' : `ended with code ${exit.code}, signal ${exit.signal}`}, not exit status 0. Its last output:\n${victim.recentOutput().slice(-600)}`);
          }
          await sleep(f.downMs);
          victim.start();
          return { target, owned, stopMs, exitCode: exit.code, downMs: f.downMs };
        }
        case 'pause': {
          const others = this.instances.filter((i) => i !== victim);
          const stoppedAt = Date.now();
          victim.signal('SIGSTOP');
          // While it sleeps, the others take its partitions over (after the session timeout).
          let movedMs: number | undefined;
          while (Date.now() - stoppedAt < f.pauseMs) {
            if (movedMs === undefined && (await this.complete(others, false))) movedMs = Date.now() - stoppedAt;
            await sleep(Math.min(250, Math.max(0, f.pauseMs - (Date.now() - stoppedAt))));
          }
          victim.signal('SIGCONT');
          if (movedMs === undefined && owned.length > 0) {
            this.recorder.violation(`pause of ${target} for ${f.pauseMs} ms (session timeout ${SESSION_TIMEOUT_MS} ms): the other instances did not take over its partitions [${owned.join(',')}] meanwhile: ${await this.describe()}`, 'cluster');
          }
          return { target, owned, pauseMs: f.pauseMs, takenOverAfterMs: movedMs ?? null };
        }
      }
    } finally {
      this.held.delete(victim);
    }
  }

  private async brokerRestart(downMs: number): Promise<Record<string, unknown>> {
    if (servicePid('kafka') === undefined) return { skipped: 'the broker was not started by scripts/services-up.sh (no live .services/kafka.pid): left alone' };
    const started = Date.now();
    this.brokerRestarting = true;
    try {
      await stopService('kafka');
      const stoppedMs = Date.now() - started;
      await sleep(downMs);
      const t = Date.now();
      await startService('kafka');
      return { stopMs: stoppedMs, downMs, startMs: Date.now() - t, brokerDownMs: Date.now() - started };
    } finally {
      this.brokerRestarting = false;
    }
  }

  async injectRedis(planned: Planned<RedisFault>): Promise<Record<string, unknown>> {
    if (servicePid('redis') === undefined) return { skipped: 'Redis was not started by scripts/services-up.sh (no live .services/redis.pid): left alone' };
    const f = planned.fault;
    const started = Date.now();
    await stopService('redis');
    if (f.kind === 'redis-outage') await sleep(f.outageMs);
    await startService('redis');
    const downMs = Date.now() - started;
    // A snapshot is taken of state that changed, and state changes by commits, which need the
    // broker: when the cluster track restarts the broker meanwhile, the 30 s start once it is back.
    const brokerWait = Date.now();
    while (this.brokerRestarting && Date.now() - brokerWait < 180_000) await sleep(500);
    const waitedForBrokerMs = Date.now() - brokerWait;
    // Snapshots resume once Redis is back (they are skipped meanwhile).
    const since = await Promise.all(this.instances.map(async (i) => ({ i, generation: i.generation, ok: await metric(i.base, 'farad_snapshots_total', { outcome: 'ok' }) })));
    const skipped = (await Promise.all(this.instances.map((i) => metric(i.base, 'farad_snapshots_total', { outcome: 'skipped' })))).reduce<number>((a, b) => a + (b ?? 0), 0);
    let resumedMs: number | undefined;
    const back = Date.now();
    while (Date.now() - back < 6 * SNAPSHOT_INTERVAL_MS) {
      const now = await Promise.all(since.map(async (s) => (s.i.generation === s.generation && s.ok !== undefined ? ((await metric(s.i.base, 'farad_snapshots_total', { outcome: 'ok' })) ?? 0) > s.ok : false)));
      if (now.some(Boolean)) {
        resumedMs = Date.now() - back;
        break;
      }
      await sleep(500);
    }
    if (resumedMs === undefined) this.recorder.violation(`${f.kind}: no instance wrote a snapshot within ${(6 * SNAPSHOT_INTERVAL_MS) / 1000} s after Redis${waitedForBrokerMs > 1000 ? ' and the broker' : ''} came back`, 'redis');
    return { downMs, ...(waitedForBrokerMs > 1000 ? { waitedForBrokerMs } : {}), snapshotsResumedAfterMs: resumedMs ?? null, snapshotsSkippedSoFar: skipped };
  }
}
