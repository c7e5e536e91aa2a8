/**
 * Rates are the page's own: the difference of two polls' totals over the time between them
 * (server time, so the browser's clock does not matter). Pure.
 */
import type { ClusterView } from './api.js';

export interface Rates {
  /** Seconds between the two views; undefined on the first poll (no rates yet). */
  readonly seconds: number | undefined;
  /** Per `eventKey(type, outcome)`. */
  readonly events: ReadonlyMap<string, number>;
  readonly ingested: ReadonlyMap<string, number>;
  readonly deadLetters: ReadonlyMap<string, number>;
  readonly partitions: ReadonlyMap<number, number>;
  /** Timers fired per second, by timer. */
  readonly timers: ReadonlyMap<string, number>;
}

export function eventKey(eventType: string, outcome: string): string {
  return `${eventType}\u0000${outcome}`;
}

/** Before two views were seen. */
export const NO_RATES: Rates = { seconds: undefined, events: new Map(), ingested: new Map(), deadLetters: new Map(), partitions: new Map(), timers: new Map() };

export function ratesBetween(prev: ClusterView | undefined, next: ClusterView): Rates {
  const seconds = prev === undefined ? undefined : (next.at - prev.at) / 1000;
  if (prev === undefined || seconds === undefined || seconds <= 0) return NO_RATES;
  const per = <T, K>(before: readonly T[], after: readonly T[], key: (item: T) => K, total: (item: T) => number): Map<K, number> => {
    const old = new Map<K, number>();
    for (const item of before) old.set(key(item), total(item));
    const out = new Map<K, number>();
    for (const item of after) {
      // A counter that went down belongs to an instance that restarted: no rate from it this time.
      const delta = total(item) - (old.get(key(item)) ?? 0);
      out.set(key(item), delta >= 0 ? delta / seconds : 0);
    }
    return out;
  };
  return {
    seconds,
    events: per(prev.events, next.events, (e) => eventKey(e.eventType, e.outcome), (e) => e.total),
    ingested: per(prev.ingested, next.ingested, (e) => e.eventType, (e) => e.total),
    deadLetters: per(prev.deadLetters, next.deadLetters, (d) => d.reason, (d) => d.total),
    partitions: per(prev.partitionRows, next.partitionRows, (p) => p.partition, (p) => p.eventsTotal),
    timers: per(prev.timers.fired, next.timers.fired, (t) => t.timer, (t) => t.total),
  };
}

/** The last `capacity` values of each series (one value per poll), for sparklines. */
export class History {
  private readonly series = new Map<string, number[]>();

  constructor(private readonly capacity: number) {}

  /** Appends this poll's value of every series; a series without one this poll gets 0. */
  push(values: ReadonlyMap<string, number>): void {
    for (const key of values.keys()) if (!this.series.has(key)) this.series.set(key, []);
    for (const [key, points] of this.series) {
      points.push(values.get(key) ?? 0);
      if (points.length > this.capacity) points.shift();
    }
  }

  of(key: string): readonly number[] {
    return this.series.get(key) ?? [];
  }
}
