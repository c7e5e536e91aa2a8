import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

/** One part of a running service: what stopping it takes. */
interface Started {
  readonly name: string;
  stop(): Promise<void> | void;
}

/**
 * Starts a service's components one after another and stops them in the reverse order, so the
 * order is declared once, by the order of the `start` calls. A start that fails stops what had
 * started before it.
 */
export class Lifecycle {
  private readonly started: Started[] = [];
  private stopping: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  /** Runs `start`; `stop` (given its result) runs when the service stops, before earlier components stop. */
  async start<T>(name: string, start: () => Promise<T> | T, stop: (started: T) => Promise<void> | void): Promise<T> {
    let value: T;
    try {
      value = await start();
    } catch (err) {
      this.logger.debug({ component: name, err: describeError(err) }, 'component failed to start; stopping the others');
      await this.stop();
      throw err;
    }
    this.started.push({ name, stop: () => stop(value) });
    this.logger.debug({ component: name }, 'component started');
    return value;
  }

  /** Stops every started component, last started first; a component that fails to stop is logged and skipped. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const component of this.started.reverse()) {
        try {
          await component.stop();
          this.logger.debug({ component: component.name }, 'component stopped');
        } catch (err) {
          this.logger.warn({ component: component.name, err: describeError(err) }, 'component failed to stop cleanly');
        }
      }
    })();
    return this.stopping;
  }
}
