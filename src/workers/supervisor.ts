import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log.js';
import { INSTANCE_STARTED_AT_ENV, WORKER_COUNT_ENV, WORKER_INDEX_ENV } from './environment.js';
import { isFaradMessage, type ToPrimary, type ToWorker } from './messages.js';
import { Router } from './router.js';


export interface SupervisorOptions {
  readonly workers: number;
  readonly logger: Logger;
  /** V8 flags for the workers, after the primary's own (`process.execArgv`). */
  readonly execArgv?: readonly string[];
  /** How long a graceful stop may take before the workers still running are killed. */
  readonly stopTimeoutMs?: number;
}

/** Restart delay after a crash: doubles from 1 s to 30 s, back to 1 s once a worker ran a minute. */
const FIRST_RESTART_MS = 1_000;
const MAX_RESTART_MS = 30_000;
const HEALTHY_RUN_MS = 60_000;

/**
 * The primary process of an instance with several workers (node:cluster). It runs no partitions
 * and no HTTP itself: it forks the workers (each a full group member that shares the instance's
 * id, HTTP port and failure domain), relays their questions to each other, restarts a worker that
 * crashes, and on SIGTERM/SIGINT stops them all gracefully. Resolves with the exit status: 0
 * after a stop; a worker's own status when the instance failed to start (2 for a bad setting).
 */
export function superviseWorkers(options: SupervisorOptions): Promise<number> {
  const { logger } = options;
  const running = new Map<number, Worker>();
  const startedAt = new Map<number, number>();
  const restartDelay = new Map<number, number>();
  let anyStarted = false;
  let stopping = false;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  let exitCode = 0;

  const send = (index: number, message: ToWorker): void => {
    const worker = running.get(index);
    if (worker?.isConnected()) worker.send(message);
  };
  const router = new Router(send, () => [...running.keys()].sort((a, b) => a - b));

  cluster.setupPrimary({ execArgv: [...process.execArgv, ...(options.execArgv ?? [])] });

  const instanceStartedAt = Date.now();
  const fork = (index: number): void => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index), [WORKER_COUNT_ENV]: String(options.workers), [INSTANCE_STARTED_AT_ENV]: String(instanceStartedAt) });
    running.set(index, worker);
    startedAt.set(index, Date.now());
    worker.on('message', (message: unknown) => {
      if (!isFaradMessage<ToPrimary>(message)) return;
      if (message.farad === 'started') {
        if (!anyStarted) logger.info({ worker: index }, 'first worker started');
        anyStarted = true;
        return;
      }
      router.receive(index, message);
    });
    worker.on('exit', (code, signal) => {
      running.delete(index);
      router.exited(index);
      if (stopping) {
        if (running.size === 0) finish(exitCode);
        return;
      }
      if (!anyStarted) {
        // The instance never came up (a bad setting, an unreachable broker): fail as one process would.
        logger.error({ worker: index, code, signal }, 'worker failed to start; stopping the instance');
        exitCode = code ?? 1;
        stop();
        return;
      }
      const ranMs = Date.now() - (startedAt.get(index) ?? 0);
      const delay = ranMs >= HEALTHY_RUN_MS ? FIRST_RESTART_MS : Math.min(MAX_RESTART_MS, restartDelay.get(index) ?? FIRST_RESTART_MS);
      restartDelay.set(index, Math.min(MAX_RESTART_MS, delay * 2));
      logger.error({ worker: index, code, signal, restartInMs: delay }, 'worker exited; restarting it (its partitions move to the other members meanwhile)');
      setTimeout(() => {
        if (!stopping) fork(index);
      }, delay);
    });
  };

  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    if (running.size === 0) return finish(exitCode);
    for (const index of running.keys()) send(index, { farad: 'stop' });
    const kill = setTimeout(() => {
      for (const [index, worker] of running) {
        logger.error({ worker: index }, 'worker did not stop in time; killing it');
        worker.process.kill('SIGKILL');
      }
    }, options.stopTimeoutMs ?? 120_000);
    kill.unref();
  };

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      logger.info({ signal, workers: running.size }, 'stopping the workers');
      stop();
    });
  }
  for (let index = 0; index < options.workers; index++) fork(index);
  logger.info({ workers: options.workers }, 'workers forked');
  return done;
}
