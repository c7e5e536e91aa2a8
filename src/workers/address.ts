/**
 * How one worker process of an instance names another: reads forwarded to a sibling go to
 * `farad-worker://<index>/<path>` and travel over the IPC channel, not the network, so an
 * instance keeps one HTTP port and one advertised URL however many workers it runs.
 */
const WORKER_SCHEME = 'farad-worker:';

/** The base URL of sibling worker `worker`. */
export function workerUrl(worker: number): string {
  return `${WORKER_SCHEME}//${worker}`;
}

/** The worker a `workerUrl` (with or without a path) names, or undefined for any other URL. */
export function workerOfUrl(url: string): number | undefined {
  if (!url.startsWith(`${WORKER_SCHEME}//`)) return undefined;
  const worker = Number(url.slice(WORKER_SCHEME.length + 2).split('/')[0]);
  return Number.isInteger(worker) && worker >= 0 ? worker : undefined;
}
