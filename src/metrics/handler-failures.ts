import type { Logger } from '../log.js';
import type { HandlerFailure } from '../streams/index.js';

/** The log line of a failed handler (its `msg`), so operators and tests can find it. */
export const HANDLER_FAILED_LOG = 'handler failed; its event went to the dead-letter topic';

/** At most one line per event type per this long. */
export const HANDLER_FAILURE_LOG_WINDOW_MS = 10_000;

interface TypeWindow {
  /** When the last line of this type was written (ms). */
  lastAt: number;
  /** Failures since that line that had no line of their own. */
  suppressed: number;
  latest: HandlerFailure | undefined;
  flush: NodeJS.Timeout | undefined;
}

/**
 * Handler failures as warn lines, rate-limited per event type: the first failure of a type is
 * logged at once with its event type, partition, offset and error (message and stack); further
 * ones within `windowMs` are counted, and when the window ends the latest of them is logged
 * with `suppressed`: how many others had no line. A handler failing on every event thus costs
 * one line per type per window, and no failure goes uncounted.
 */
export class HandlerFailureLog {
  private readonly types = new Map<string, TypeWindow>();

  constructor(
    private readonly logger: Logger,
    private readonly windowMs = HANDLER_FAILURE_LOG_WINDOW_MS,
    private readonly clock: () => number = Date.now,
  ) {}

  failed(failure: HandlerFailure): void {
    const now = this.clock();
    let window = this.types.get(failure.eventType);
    if (!window) this.types.set(failure.eventType, (window = { lastAt: -Infinity, suppressed: 0, latest: undefined, flush: undefined }));
    if (now - window.lastAt >= this.windowMs && window.latest === undefined) {
      this.write(failure, 0);
      window.lastAt = now;
      return;
    }
    if (window.latest !== undefined) window.suppressed++;
    window.latest = failure;
    if (!window.flush) {
      const w = window;
      w.flush = setTimeout(() => this.flush(w), Math.max(0, w.lastAt + this.windowMs - now));
      w.flush.unref();
    }
  }

  /** Writes what a window held back now (at stop, or in tests). */
  flushAll(): void {
    for (const window of this.types.values()) this.flush(window);
  }

  private flush(window: TypeWindow): void {
    if (window.flush) clearTimeout(window.flush);
    window.flush = undefined;
    const latest = window.latest;
    if (latest === undefined) return;
    this.write(latest, window.suppressed);
    window.lastAt = this.clock();
    window.suppressed = 0;
    window.latest = undefined;
  }

  private write(failure: HandlerFailure, suppressed: number): void {
    const { error } = failure;
    // Not under `err`: pino's serializer would rename a thrown string's type to "Object".
    const described =
      error instanceof Error
        ? { type: error.name, message: error.message, stack: error.stack }
        : { type: typeof error, message: typeof error === 'string' ? error : safeString(error) };
    this.logger.warn(
      { eventType: failure.eventType, partition: failure.partition, offset: failure.offset, error: described, suppressed, windowSeconds: this.windowMs / 1000 },
      HANDLER_FAILED_LOG,
    );
  }
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  } catch {
    return String(value);
  }
}
