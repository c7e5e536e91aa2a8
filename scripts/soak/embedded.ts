/**
 * The embedded-log phase: one farad instance on the embedded log, its data directory on a small
 * tmpfs the soak mounts (16 MiB), with tiny segments and retention so the cleaner rewrites and
 * deletes segments all the time, driven over HTTP by a driver process of its own. Its faults:
 *   compaction-kill  kill -9 the moment a rewrite's `.tmp` file appears (or at the next file event),
 *                    then start it again;
 *   disk-full        fill the filesystem: farad must refuse (507 disk_full) or stall, say so in its
 *                    log, and go on once the filler is deleted;
 * and at the end its state against the driver's ledger (checkEmbedded).
 */
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, unlinkSync, watch, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { DriverHandle } from './driver-handle.js';
import { sleep } from './kafka.js';
import { checkEmbedded, type EmbeddedEntry, type Report } from './ledger.js';
import { FaradInstance, freePort, run } from './processes.js';
import type { Recorder } from './report.js';
import type { EmbeddedFault, Planned } from './schedule.js';
import { readyz } from './cluster.js';

export const TMPFS_SIZE = '16m';

export class EmbeddedPhase {
  private instance!: FaradInstance;
  private driver!: DriverHandle;
  private mounted = false;
  readonly dataDir: string;
  private readonly ledgerFile: string;
  private held = false;
  private givenUp = false;
  private watching: NodeJS.Timeout | undefined;

  constructor(
    private readonly recorder: Recorder,
    private readonly dir: string,
    private readonly seed: number,
    private readonly suffix: string,
  ) {
    this.dataDir = join(dir, 'mnt', 'data');
    this.ledgerFile = join(dir, 'embedded-ledger.jsonl');
  }

  get mountPoint(): string {
    return join(this.dir, 'mnt');
  }

  async start(): Promise<void> {
    mkdirSync(this.mountPoint, { recursive: true });
    const res = await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', this.mountPoint], 10_000);
    if (res.code !== 0) throw new Error(`cannot mount a ${TMPFS_SIZE} tmpfs at ${this.mountPoint} for the embedded phase (needs root or CAP_SYS_ADMIN): ${res.output.trim()}; run with --no-embedded to skip it`);
    this.mounted = true;
    mkdirSync(this.dataDir);
    const port = await freePort();
    this.instance = new FaradInstance(
      `soak-${this.suffix}-embedded`,
      port,
      {
        SOAK_APP_SUFFIX: this.suffix,
        FARAD_TRANSPORT: 'embedded',
        FARAD_DATA_DIR: this.dataDir,
        FARAD_RETENTION_SEGMENT_BYTES: '65536',
        FARAD_RETENTION_BYTES: '65536',
      },
      join(this.dir, 'embedded.log'),
    );
    this.instance.start();
    if ((await this.waitReady(60_000)) === undefined) throw new Error(`the embedded instance did not become ready within 60 s:\n${this.instance.recentOutput()}`);
    this.driver = new DriverHandle({ mode: 'embedded', seed: this.seed, suffix: this.suffix, ledgerFile: this.ledgerFile, url: this.instance.base }, join(this.dir, 'embedded-driver.log'));
    this.watching = setInterval(() => {
      if (this.held || this.instance.running || this.givenUp) return;
      const exit = this.instance.unexpectedExits[this.instance.unexpectedExits.length - 1];
      // An instance that cannot start (a journal it refuses to open) is reported once, not restarted forever.
      if (this.instance.unexpectedExits.length > 3) {
        this.givenUp = true;
        this.recorder.violation(`the embedded instance keeps exiting (code ${exit?.code}); no more restarts. Its last output:\n${this.instance.recentOutput().slice(-600)}`, 'embedded');
        return;
      }
      this.recorder.violation(`the embedded instance exited without being asked (code ${exit?.code}, signal ${exit?.signal}); restarted. Its last output:\n${this.instance.recentOutput().slice(-600)}`, 'embedded');
      this.instance.start();
    }, 1000);
  }

  async waitReady(timeoutMs: number): Promise<number | undefined> {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      if ((await readyz(this.instance.base))?.ready) return Date.now() - start;
      await sleep(100);
    }
    return undefined;
  }

  async inject(planned: Planned<EmbeddedFault>): Promise<Record<string, unknown>> {
    const f = planned.fault;
    this.held = true;
    try {
      return f.kind === 'compaction-kill' ? await this.compactionKill(f.downMs, f.hunt) : await this.diskFull(f.holdMs);
    } finally {
      this.held = false;
    }
  }

  private async compactionKill(downMs: number, hunt: 'rewrite' | 'any'): Promise<Record<string, unknown>> {
    const started = Date.now();
    let trigger: string | undefined;
    const watcher = watch(this.dataDir, (_event, name) => {
      if (trigger !== undefined || !name) return;
      if (hunt === 'any' || String(name).endsWith('.tmp')) {
        trigger = String(name);
        this.instance.signal('SIGKILL');
      }
    });
    const deadline = started + 30_000;
    while (trigger === undefined && Date.now() < deadline) await sleep(20);
    watcher.close();
    if (trigger === undefined) {
      trigger = '(none within 30 s: killed anyway)';
      this.instance.signal('SIGKILL');
    }
    await this.instance.exited();
    const leftovers = readdirSync(this.dataDir).filter((n) => n.endsWith('.tmp') || n === 'journal.next');
    await sleep(downMs);
    this.instance.start();
    const readyMs = await this.waitReady(60_000);
    if (readyMs === undefined) this.recorder.violation(`embedded: not ready within 60 s of its restart after kill -9 during compaction:\n${this.instance.recentOutput().slice(-600)}`, 'embedded');
    return { hunt, waitedMs: Date.now() - started - downMs - (readyMs ?? 0), trigger, inRewrite: leftovers.some((n) => n.endsWith('.tmp')), leftovers, downMs, readyAfterRestartMs: readyMs ?? null };
  }

  private async diskFull(holdMs: number): Promise<Record<string, unknown>> {
    const filler = join(this.mountPoint, 'soak-filler');
    const logBefore = readFileSync(this.instance.logFile, 'utf8').length;
    const before = { ...this.driver.latest.answers };
    const ackedBefore = this.driver.latest.acked;
    const fs = statfsSync(this.mountPoint);
    const freeBefore = fs.bavail * fs.bsize;
    const fd = openSync(filler, 'w');
    let filled = 0;
    for (const size of [1 << 20, 1 << 12, 1 << 9]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          filled += writeSync(fd, chunk);
        } catch {
          break;
        }
      }
    }
    closeSync(fd);
    const fullAt = Date.now();
    await sleep(holdMs);
    const during = diffAnswers(before, this.driver.latest.answers);
    const ackedDuring = this.driver.latest.acked - ackedBefore;
    const crashed = !this.instance.running;
    unlinkSync(filler);
    const freedAt = Date.now();
    const log = readFileSync(this.instance.logFile, 'utf8').slice(logBefore);
    const saidFull = /disk is full|disk_full|ENOSPC/i.test(log);
    if (crashed) this.recorder.violation(`embedded: the instance exited while the disk was full (farad must refuse writes and recover, not stop):\n${this.instance.recentOutput().slice(-600)}`, 'embedded');
    if (!saidFull) this.recorder.violation(`embedded: the disk was full for ${holdMs} ms but the instance's log never said so (no "disk is full"/ENOSPC line)`, 'embedded');
    if (!during['507'] && ackedDuring > 20) this.recorder.violation(`embedded: the disk was full for ${holdMs} ms, yet ${ackedDuring} requests were acknowledged and none refused with 507`, 'embedded');
    // Recovery: writes acknowledged again, and ready.
    const ackedAtFree = this.driver.latest.acked;
    let recoveredMs: number | undefined;
    while (Date.now() - freedAt < 60_000) {
      if (this.instance.running && this.driver.latest.acked > ackedAtFree + 5 && (await readyz(this.instance.base))?.ready) {
        recoveredMs = Date.now() - freedAt;
        break;
      }
      await sleep(200);
    }
    if (recoveredMs === undefined) this.recorder.violation(`embedded: writes were not acknowledged again within 60 s after the disk had space again:\n${this.instance.recentOutput().slice(-600)}`, 'embedded');
    return { holdMs, freeBytesBefore: freeBefore, fillerBytes: filled, answersWhileFull: during, ackedWhileFull: ackedDuring, fullForMs: freedAt - fullAt, loggedDiskFull: saidFull, recoveredAfterMs: recoveredMs ?? null };
  }

  /** Stops the driver, lets the instance finish, checks its state against the ledger, stops it. */
  async finish(): Promise<Report & { progress: Record<string, unknown> }> {
    if (this.watching) clearInterval(this.watching);
    const { code, progress } = await this.driver.stop();
    const violations: string[] = [];
    if (code !== 0) violations.push(`embedded driver exited with ${code} (see embedded-driver.log)`);
    if (!this.instance.running || (await this.waitReady(this.givenUp ? 1000 : 60_000)) === undefined) {
      violations.push(`embedded instance not ready at the end, its state cannot be checked:\n${this.instance.recentOutput().slice(-600)}`);
      await this.instance.stop(10_000);
      return { violations, stats: {}, progress: { ...progress } };
    }
    // Processing catches up within a commit or two; wait until the state stops changing.
    let last = '';
    for (let i = 0; i < 30; i++) {
      const board = await getJson(`${this.instance.base}/queries/leaderboard`);
      const now = JSON.stringify(board);
      if (board && now === last) break;
      last = now;
      await sleep(1000);
    }
    const entries = readFileSync(this.ledgerFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as EmbeddedEntry);
    const votes = await readTable(this.instance.base, 'votesByPhone', (v) => Number((v as { accepted: number }).accepted));
    const balances = await readTable(this.instance.base, 'balances', (v) => Number((v as { balance: number }).balance));
    const leaderboard = ((await getJson(`${this.instance.base}/queries/leaderboard`)) ?? []) as Array<{ contestantNumber: number; votes: number }>;
    const report = checkEmbedded(entries, votes, balances, leaderboard);
    const exit = await this.instance.stop(30_000);
    if (exit.forced || exit.code !== 0) violations.push(`embedded instance: SIGTERM at the end ${exit.forced ? 'did not stop it within 30 s' : `ended with code ${exit.code}`}, not 0`);
    const du = statfsSync(this.mountPoint);
    return { violations: [...violations, ...report.violations], stats: { ...report.stats, diskUsedBytes: (du.blocks - du.bfree) * du.bsize }, progress: { ...progress } };
  }

  /** Stops everything and unmounts (on every way out). Never throws. */
  async close(): Promise<void> {
    if (this.watching) clearInterval(this.watching);
    await this.driver?.stop(5000).catch(() => undefined);
    if (this.instance?.running) await this.instance.stop(10_000).catch(() => undefined);
    this.instance?.close();
    if (this.mounted) {
      const res = await run('umount', [this.mountPoint], 20_000);
      if (res.code !== 0) await run('umount', ['-l', this.mountPoint], 20_000);
      this.mounted = false;
    }
    if (existsSync(this.mountPoint)) rmSync(this.mountPoint, { recursive: true, force: true });
  }
}

function diffAnswers(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

async function getJson(url: string): Promise<unknown> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return res.status === 200 ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

/** Every row of a table (paged GET /tables/:table), values mapped. */
export async function readTable<T>(base: string, table: string, map: (value: unknown) => T): Promise<Map<string, T>> {
  const rows = new Map<string, T>();
  let after: string | null = null;
  for (;;) {
    const url: string = `${base}/tables/${table}?limit=1000${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
    let res: Response | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      res = await fetch(url, { signal: AbortSignal.timeout(15_000) }).catch(() => undefined);
      if (res?.status === 200) break;
      await sleep(500);
    }
    if (res?.status !== 200) throw new Error(`GET ${url}: ${res?.status ?? 'no answer'} ${res ? await res.text() : ''}`);
    const page = (await res.json()) as { items: Array<{ key: string | number; value: unknown }>; next: string | number | null };
    for (const item of page.items) rows.set(String(item.key), map(item.value));
    if (page.next === null) return rows;
    after = String(page.next);
  }
}
