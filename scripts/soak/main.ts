/**
 * `npm run soak -- --minutes N --seed S`: farad under faults from a seeded schedule, checked at
 * the end against an independent ledger. See RELIABILITY.md for what it injects and checks.
 *
 *  1. fresh names for this run (app, topics, group, snapshots); three farad instances on Kafka with
 *     k = 1 and Redis snapshots, and (unless --no-embedded) one on the embedded log on a 16 MiB tmpfs;
 *  2. for N minutes: a driver process produces votes and bank commands (~210 events/s) and keeps
 *     its ledger, another POSTs to the embedded instance; the fault tracks run their schedule;
 *  3. faults stop (the one in progress finishes), the drivers stop, Kafka and Redis are running
 *     again; the cluster drains (bounded);
 *  4. the checks; one summary line; exit status 1 on any violation, with the replay command.
 * Every process it started is stopped on every way out (Ctrl-C and failures included); a broker
 * or Redis it stopped is started again.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Admin } from 'kafkajs';
import { ArgsError, parseArgs, replayCommand, type SoakArgs } from './args.js';
import { checkCluster } from './checks.js';
import { Cluster, SESSION_TIMEOUT_MS } from './cluster.js';
import { DriverHandle } from './driver-handle.js';
import { EmbeddedPhase } from './embedded.js';
import { BROKERS, createTopic, lagOf, readTopic, sleep, soakKafka } from './kafka.js';
import { allTopics, soakNames, SOAK_PARTITIONS } from './names.js';
import { killAll } from './processes.js';
import { Recorder } from './report.js';
import { buildSchedule, countKinds, estimateMs, type Fault, type Planned } from './schedule.js';
import { restoreServices } from './services.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DRAIN_TIMEOUT_MS = 150_000;

let args: SoakArgs;
try {
  args = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(err instanceof ArgsError ? err.message : String(err));
  process.exit(2);
}

const recorder = new Recorder();
const suffix = `${args.seed}_${Date.now().toString(36)}`;
const names = soakNames(suffix);
const runDir = `/tmp/farad-soak-${suffix}`;
mkdirSync(runDir, { recursive: true });
const kafka = soakKafka(`farad-soak-${suffix}`);
let admin: Admin | undefined;
let cluster: Cluster | undefined;
let embedded: EmbeddedPhase | undefined;
let driver: DriverHandle | undefined;
let aborted = false;

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (aborted) return;
    aborted = true;
    recorder.line({ event: 'interrupted', signal, replay: replayCommand(args) });
    void cleanUp(false).finally(() => process.exit(130));
  });
}

/** Stops everything this run started; restarts what a fault left stopped; deletes the run's data when it passed. */
async function cleanUp(passed: boolean): Promise<string[]> {
  const problems: string[] = [];
  cluster?.unwatch();
  await driver?.stop(10_000).catch(() => undefined);
  await embedded?.close();
  problems.push(...(await restoreServices()));
  if (cluster) {
    await Promise.all(cluster.instances.map(async (i) => (i.running ? i.stop(20_000) : undefined)));
    for (const i of cluster.instances) i.close();
  }
  killAll();
  if (passed && !args.keep) {
    if (admin) {
      await admin.deleteTopics({ topics: allTopics(names), timeout: 20_000 }).catch(() => undefined);
      const groups = await admin.listGroups().then(({ groups: all }) => all.map((g) => g.groupId).filter((g) => g === names.app || g.includes(names.app)), () => [names.app]);
      await admin.deleteGroups(groups).catch(() => undefined);
    }
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      const keys = await redis.keys(`farad:{${names.app}:*`);
      if (keys.length > 0) await redis.del(...keys);
    } catch {
      // best effort
    } finally {
      redis.disconnect();
    }
    rmSync(runDir, { recursive: true, force: true });
  }
  await admin?.disconnect().catch(() => undefined);
  return problems;
}

function ping(host: string, port: number, send?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(3000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => {
      if (!send) return done(true);
      socket.write(send);
      socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
    });
  });
}

async function runTrack<F extends Fault>(plan: ReadonlyArray<Planned<F>>, windowEnd: number, inject: (p: Planned<F>) => Promise<Record<string, unknown>>, recover?: () => Promise<number | undefined>): Promise<void> {
  for (const p of plan) {
    const at = recorder.windowStart + p.atMs;
    while (!aborted && Date.now() < at) await sleep(Math.min(250, at - Date.now()));
    if (aborted) return;
    const slack = Math.min(estimateMs(p.fault, SESSION_TIMEOUT_MS) / 2, 20_000);
    if (Date.now() > windowEnd - slack) {
      recorder.skip(p.track, p.n, p.fault.kind, `its turn came ${recorder.windowTime()} s into the window, too late to finish inside it`);
      continue;
    }
    const startedAt = Date.now();
    const violationsBefore = recorder.byTrack.get(p.track) ?? 0;
    let details: Record<string, unknown>;
    try {
      details = await inject(p);
    } catch (err) {
      recorder.violation(`${p.fault.kind} (${p.track} #${p.n}) could not be carried out: ${(err as Error).message}`, p.track);
      details = { error: (err as Error).message };
    }
    let recoveredMs: number | undefined;
    if (recover && details.skipped === undefined) {
      recoveredMs = await recover();
      if (recoveredMs === undefined) recorder.violation(`${p.fault.kind} (${p.track} #${p.n}): the cluster did not recover (every instance ready, every partition active once and standing by elsewhere) within ${DRAIN_TIMEOUT_MS / 1000} s: ${await cluster!.describe()}`, p.track);
    }
    if (details.skipped !== undefined) {
      recorder.skip(p.track, p.n, p.fault.kind, String(details.skipped));
      continue;
    }
    recorder.fault({
      track: p.track,
      n: p.n,
      kind: p.fault.kind,
      at: recorder.windowTime(startedAt),
      ok: (recorder.byTrack.get(p.track) ?? 0) === violationsBefore,
      ...details,
      ...(recover ? { recoveredAfterMs: recoveredMs ?? null } : {}),
      tookMs: Date.now() - startedAt,
    });
  }
}

async function main(): Promise<number> {
  const schedule = buildSchedule({ seed: args.seed, minutes: args.minutes, sessionTimeoutMs: SESSION_TIMEOUT_MS, embedded: args.embedded, serviceFaults: args.serviceFaults, ...(args.faults ? { faults: args.faults } : {}) });
  recorder.line({ event: 'start', seed: args.seed, minutes: args.minutes, replay: replayCommand(args), app: names.app, runDir, planned: countKinds(schedule) });

  // Preflight: the servers answer.
  const [brokerHost, brokerPort] = BROKERS[0]!.split(':') as [string, string];
  if (!(await ping(brokerHost, Number(brokerPort)))) throw new Error(`no Kafka broker answers at ${BROKERS.join(',')}; start one with npm run services:up (or set KAFKA_BROKERS)`);
  const redisUrl = new URL(REDIS_URL);
  if (!(await ping(redisUrl.hostname, Number(redisUrl.port || 6379), 'PING\r\n'))) throw new Error(`Redis does not answer PING at ${REDIS_URL}; start it with npm run services:up (or set REDIS_URL)`);

  admin = kafka.admin();
  await admin.connect();
  const appendTime = [{ name: 'message.timestamp.type', value: 'LogAppendTime' }];
  await createTopic(admin, names.votes, SOAK_PARTITIONS);
  await createTopic(admin, names.transactions, SOAK_PARTITIONS);
  // Outputs stamped with the broker's append time: when each outcome was committed (the stall measure).
  for (const topic of [names.voteResults, names.rejections, names.transferResults]) await createTopic(admin, topic, SOAK_PARTITIONS, appendTime);

  cluster = await Cluster.create(recorder, { suffix, logDir: runDir, redisUrl: REDIS_URL, brokers: BROKERS.join(',') });
  cluster.startAll();
  const readyMs = await cluster.waitComplete(120_000);
  if (readyMs === undefined) throw new Error(`the three instances did not become ready with every partition placed within 120 s: ${await cluster.describe()}\n${cluster.instances.map((i) => `--- ${i.id}\n${i.recentOutput().slice(-600)}`).join('\n')}`);
  if (args.embedded) {
    embedded = new EmbeddedPhase(recorder, runDir, args.seed, suffix);
    await embedded.start();
  }
  const ledgerFile = join(runDir, 'ledger.jsonl');
  driver = new DriverHandle({ mode: 'kafka', seed: args.seed, suffix, ledgerFile }, join(runDir, 'driver.log'));
  const producing = Date.now();
  while (driver.latest.acked === 0 && Date.now() - producing < 30_000) await sleep(100);
  if (driver.latest.acked === 0) throw new Error(`the driver acknowledged nothing within 30 s (see ${join(runDir, 'driver.log')})`);

  recorder.windowStart = Date.now();
  const windowEnd = recorder.windowStart + schedule.windowMs;
  recorder.line({ event: 'faults-start', clusterReadyAfterMs: readyMs, windowSeconds: schedule.windowMs / 1000 });
  cluster.watch();
  const c = cluster;
  await Promise.all([
    runTrack(schedule.cluster, windowEnd, (p) => c.inject(p), () => c.waitComplete(DRAIN_TIMEOUT_MS)),
    runTrack(schedule.redis, windowEnd, (p) => c.injectRedis(p)),
    embedded ? runTrack(schedule.embedded, windowEnd, (p) => embedded!.inject(p)) : Promise.resolve(),
    (async () => {
      while (!aborted && Date.now() < windowEnd) await sleep(250);
    })(),
  ]);
  if (aborted) return 130;

  // Drain: no more faults; servers up; the driver stops; the cluster catches up.
  const drainStart = Date.now();
  const { code: driverCode, progress } = await driver.stop();
  if (driverCode !== 0) recorder.violation(`the driver exited with ${driverCode} (see ${join(runDir, 'driver.log')})`);
  for (const problem of await restoreServices()) recorder.violation(`could not restart a service a fault stopped: ${problem}`);
  recorder.line({ event: 'drain', driven: progress });
  if ((await c.waitComplete(DRAIN_TIMEOUT_MS)) === undefined) recorder.violation(`the cluster was not ready with every partition placed within ${DRAIN_TIMEOUT_MS / 1000} s of the end of the faults: ${await c.describe()}`);
  let lag = new Map<number, number>();
  while (Date.now() - drainStart < DRAIN_TIMEOUT_MS) {
    lag = new Map([...(await lagOf(admin, names.app, names.votes)), ...[...(await lagOf(admin, names.app, names.transactions))].map(([p, n]) => [p + 100, n] as const)]);
    if (lag.size === 0) break;
    await sleep(1000);
  }
  if (lag.size > 0) recorder.violation(`input not consumed ${DRAIN_TIMEOUT_MS / 1000} s after the faults stopped: records left by partition (transactions: +100) ${JSON.stringify(Object.fromEntries(lag))}`);
  // Multi-partition transfers finish in rounds after their input is consumed.
  const transfers = (await readTopic(kafka, names.transactions)).filter((r) => r.key !== null && r.headers['soak-id']?.startsWith('x')).length;
  let decided = 0;
  while (Date.now() - drainStart < DRAIN_TIMEOUT_MS) {
    decided = (await readTopic(kafka, names.transferResults)).length;
    if (decided >= transfers) break;
    await sleep(2000);
  }
  const drainMs = Date.now() - drainStart;
  recorder.line({ event: 'checks', drainMs, transfers, decided });

  const result = await checkCluster(kafka, c, names, suffix, ledgerFile);
  for (const v of result.violations) recorder.violation(v);
  const embeddedResult = embedded ? await embedded.finish() : undefined;
  for (const v of embeddedResult?.violations ?? []) recorder.violation(v);

  // Every instance stops cleanly (a graceful stop commits and leaves the group).
  c.unwatch();
  for (const [n, i] of c.instances.entries()) {
    const exit = await i.stop(30_000);
    if (exit.forced || exit.code !== 0) recorder.violation(`${c.name(n)}: SIGTERM at the end ${exit.forced ? 'did not stop it within 30 s' : `ended with code ${exit.code}, signal ${exit.signal}`}, not exit status 0`);
  }

  const passed = recorder.violations.length === 0;
  const summary = {
    event: 'summary',
    result: passed ? 'pass' : 'FAIL',
    seed: args.seed,
    minutes: args.minutes,
    wallSeconds: recorder.elapsed(),
    faults: recorder.faultsByKind(),
    faultsSkipped: recorder.skipped.length,
    longestStallMs: (result.stats.longestStall as { ms: number }).ms,
    driven: { kafka: progress, embedded: embeddedResult?.progress ?? null },
    checked: result.stats,
    embedded: embeddedResult?.stats ?? null,
    checksPassed: passed,
    violations: recorder.violations.length,
    replay: replayCommand(args),
  };
  recorder.line(summary);
  const kinds = Object.entries(recorder.faultsByKind()).map(([k, v]) => `${k} ${v.count}x`).join(', ');
  if (passed) {
    console.log(`soak PASSED: seed ${args.seed}, ${args.minutes} min, faults: ${kinds}; longest stall ${(result.stats.longestStall as { ms: number }).ms} ms; ${progress.acked} events acknowledged on Kafka${embeddedResult ? `, ${String(embeddedResult.progress.acked)} on the embedded log` : ''}; every check passed`);
  } else {
    console.log(`soak FAILED: ${recorder.violations.length} violation(s) with seed ${args.seed}:`);
    for (const v of recorder.violations) console.log(`  - ${v.split('\n')[0]}`);
    console.log(`logs, ledgers and topics kept: ${runDir} (app ${names.app})`);
  }
  console.log(`replay: ${replayCommand(args)}`);
  return passed ? 0 : 1;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  recorder.violation(`the soak could not run: ${(err as Error).stack ?? String(err)}`);
  console.log(`soak FAILED to run (seed ${args.seed}): ${(err as Error).message.split('\n')[0]}\nlogs kept: ${runDir}\nreplay: ${replayCommand(args)}`);
  exitCode = 1;
}
if (!aborted) {
  const problems = await cleanUp(exitCode === 0);
  for (const p of problems) {
    console.log(`clean-up: ${p}`);
    exitCode = 1;
  }
  process.exit(exitCode);
}
