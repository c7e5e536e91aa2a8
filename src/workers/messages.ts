/**
 * The IPC messages between an instance's primary process and its workers. Workers cannot reach
 * each other directly; a worker asks the primary, which relays the question to one worker or to
 * all of them and relays their answers back in one message.
 */

/** Which workers a question is for. */
export type Target = number | 'all';

/** One worker's answer to a question. */
export type WorkerAnswer =
  | { readonly worker: number; readonly ok: true; readonly payload: unknown }
  | { readonly worker: number; readonly ok: false; readonly error: string };

/** Worker → primary. */
export type ToPrimary =
  /** A question for `to`; the primary answers with `answered` and the same id. */
  | { readonly farad: 'ask'; readonly id: number; readonly to: Target; readonly kind: string; readonly payload: unknown; readonly timeoutMs: number }
  /** This worker's answer to the primary's `asked` with this id. */
  | { readonly farad: 'answer'; readonly id: number; readonly answer: WorkerAnswer }
  /** This worker started (its service runs) or gave up starting on a setting (`exitCode` 2 follows). */
  | { readonly farad: 'started' };

/** Primary → worker. */
export type ToWorker =
  | { readonly farad: 'asked'; readonly id: number; readonly kind: string; readonly payload: unknown }
  | { readonly farad: 'answered'; readonly id: number; readonly answers: readonly WorkerAnswer[] }
  /** Stop gracefully (commit, hand the partitions over) and exit. */
  | { readonly farad: 'stop' };

/** Whether `message` is one of farad's (IPC channels also carry other libraries' messages). */
export function isFaradMessage<T extends { farad: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { farad?: unknown }).farad === 'string';
}
