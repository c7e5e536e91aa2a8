/**
 * Polls one JSON endpoint every `intervalMs` while the page is visible. One request at a time:
 * the next one is scheduled after the answer, so a slow server is never asked twice at once.
 */
import type { ErrorBody } from './api.js';
import { getJson } from './http.js';

export interface PollerOptions<T> {
  readonly url: string;
  readonly intervalMs: number;
  /** A request that takes longer counts as failed (then retried at the next tick). */
  readonly timeoutMs: number;
  readonly onData: (body: T) => void;
  readonly onError: (error: ErrorBody, status: number) => void;
}

export class Poller<T> {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight = false;
  /** Asked for a tick while one ran: run another right after it. */
  private again = false;

  constructor(private readonly options: PollerOptions<T>) {}

  start(): void {
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) this.cancel();
      else this.now();
    });
    this.now();
  }

  /** Polls at once (after a send, so its counters show without waiting for the tick). */
  now(): void {
    this.cancel();
    if (this.inFlight) this.again = true;
    else void this.tick();
  }

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    this.inFlight = true;
    const { url, timeoutMs, onData, onError } = this.options;
    try {
      const answer = await getJson<T>(url, AbortSignal.timeout(timeoutMs));
      if (answer.ok) onData(answer.body);
      else onError(answer.error, answer.status);
    } catch (err) {
      // A bug in rendering one answer must not stop the polling.
      console.error(err);
      onError({ error: 'console_error', message: err instanceof Error ? err.message : String(err) }, 0);
    } finally {
      this.inFlight = false;
    }
    if (this.again) {
      this.again = false;
      void this.tick();
    } else if (!document.hidden) {
      this.timer = setTimeout(() => void this.tick(), this.options.intervalMs);
    }
  }
}
