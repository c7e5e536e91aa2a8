import { workerOfUrl } from './address.js';
import { INSTANCE_STARTED_AT_ENV, WORKER_COUNT_ENV, WORKER_INDEX_ENV } from './environment.js';
import { isFaradMessage, type Target, type ToPrimary, type ToWorker, type WorkerAnswer } from './messages.js';

/** The IPC end of a worker process (`process` in a cluster worker). */
export interface Channel {
  send(message: ToPrimary): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
}

/** Answers one kind of question from sibling workers. */
export type Handler = (payload: unknown) => unknown;

/** What a sibling's HTTP API answered to a GET (see `WorkerLink.fetch`). */
interface RelayedHttp {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The kind of question that runs a GET on the asked worker's HTTP API. */
export const HTTP_KIND = 'http';

/**
 * A worker's link to its siblings through the primary: ask one worker or all of them a question
 * and get their answers; answer theirs with the handlers registered by kind. `fetch` is a fetch
 * that sends `workerUrl` requests to the sibling's HTTP API over this link and any other URL to
 * the network, so reads reach a sibling exactly as they reach another instance.
 */
export class WorkerLink {
  private nextId = 1;
  private readonly waiting = new Map<number, (answers: readonly WorkerAnswer[]) => void>();
  private readonly handlers = new Map<string, Handler>();
  private stopListeners: Array<(why: string) => void> = [];

  constructor(
    /** This worker's index (0-based). */
    readonly worker: number,
    /** How many workers the instance runs. */
    readonly workers: number,
    private readonly channel: Channel,
    /** When the instance's primary process started (ms since the epoch). */
    readonly instanceStartedAt: number = Date.now(),
  ) {
    channel.on('message', (message) => {
      if (isFaradMessage<ToWorker>(message)) this.receive(message);
    });
    channel.on('disconnect', () => {
      for (const id of [...this.waiting.keys()]) this.settle(id, [{ worker: -1, ok: false, error: 'the primary process is gone' }]);
      this.stopRequested('the primary process is gone');
    });
  }

  /** Tells the primary this worker's service runs. */
  started(): void {
    this.channel.send({ farad: 'started' });
  }

  /** Calls `listener` once when the primary asks this worker to stop, or the primary is gone. */
  onStop(listener: (why: string) => void): void {
    this.stopListeners.push(listener);
  }

  /** Answers questions of `kind` with `handler` (its result, awaited, is the answer's payload). */
  serve(kind: string, handler: Handler): void {
    this.handlers.set(kind, handler);
  }

  /**
   * Asks `to` (one worker, or every worker including this one); resolves with each answer,
   * failures included. The primary answers within `timeoutMs`; should it be gone, the question
   * fails here shortly after.
   */
  ask(to: Target, kind: string, payload: unknown, timeoutMs = 5_000): Promise<readonly WorkerAnswer[]> {
    const id = this.nextId++;
    const failed = (error: string): WorkerAnswer[] => [{ worker: typeof to === 'number' ? to : -1, ok: false, error }];
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, failed('the primary process did not relay an answer')), timeoutMs + 1_000);
      timer.unref?.();
      this.waiting.set(id, (answers) => {
        clearTimeout(timer);
        resolve(answers);
      });
      try {
        this.channel.send({ farad: 'ask', id, to, kind, payload, timeoutMs });
      } catch (err) {
        this.settle(id, failed(`cannot reach the primary process: ${(err as Error).message}`));
      }
    });
  }

  private settle(id: number, answers: readonly WorkerAnswer[]): void {
    const resolve = this.waiting.get(id);
    this.waiting.delete(id);
    resolve?.(answers);
  }

  /** `fetch` that reaches sibling workers' `workerUrl`s over this link (GET only) and anything else over the network. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const worker = workerOfUrl(url);
    if (worker === undefined) return fetch(input, init);
    const path = url.slice(url.indexOf('/', url.indexOf('//') + 2));
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const timeoutMs = 10_000;
    init?.signal?.throwIfAborted();
    const asked = this.ask(worker, HTTP_KIND, { path, headers }, timeoutMs);
    const [answer] = init?.signal ? await abortable(asked, init.signal) : await asked;
    if (!answer?.ok) throw new Error(answer?.error ?? `worker ${worker} did not answer`);
    const relayed = answer.payload as RelayedHttp;
    return new Response(relayed.body, { status: relayed.status, headers: relayed.headers });
  };

  private stopRequested(why: string): void {
    const listeners = this.stopListeners;
    this.stopListeners = [];
    for (const listener of listeners) listener(why);
  }

  private receive(message: ToWorker): void {
    if (message.farad === 'stop') {
      this.stopRequested('the instance is stopping');
    } else if (message.farad === 'answered') {
      this.settle(message.id, message.answers);
    } else if (message.farad === 'asked') {
      void this.answer(message.id, message.kind, message.payload);
    }
  }

  private async answer(id: number, kind: string, payload: unknown): Promise<void> {
    const handler = this.handlers.get(kind);
    let answer: WorkerAnswer;
    try {
      if (!handler) throw new Error(`worker ${this.worker} does not answer "${kind}" yet`);
      answer = { worker: this.worker, ok: true, payload: await handler(payload) };
    } catch (err) {
      answer = { worker: this.worker, ok: false, error: (err as Error).message };
    }
    this.channel.send({ farad: 'answer', id, answer });
  }
}

/** `promise`, or a rejection as soon as `signal` aborts (a caller's timeout applies to siblings too). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** This process's link when it is a worker forked by `superviseWorkers`, else undefined. */
export function workerLinkFromEnvironment(env: NodeJS.ProcessEnv = process.env): WorkerLink | undefined {
  const index = Number(env[WORKER_INDEX_ENV]);
  const count = Number(env[WORKER_COUNT_ENV]);
  if (!Number.isInteger(index) || !Number.isInteger(count) || env[WORKER_INDEX_ENV] === undefined || !process.send) return undefined;
  const startedAt = Number(env[INSTANCE_STARTED_AT_ENV]);
  return new WorkerLink(index, count, process as unknown as Channel, Number.isSafeInteger(startedAt) ? startedAt : Date.now());
}
