import { Cron } from 'croner';
import { AppDefinitionError } from '../errors.js';
import type { ScheduleDef } from './app.js';
import type { CompiledSchedule } from './timers.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** Milliseconds of an interval given as a number of ms or a string like '30s', '5m', '1h'. */
export function parseInterval(every: number | string): number | undefined {
  if (typeof every !== 'number' && typeof every !== 'string') return undefined;
  if (typeof every === 'number') return Number.isFinite(every) && every >= 1 ? Math.round(every) : undefined;
  const match = DURATION.exec(every.trim());
  if (!match) return undefined;
  const ms = Math.round(Number(match[1]) * UNITS[match[2]!]!);
  return ms >= 1 ? ms : undefined;
}

/** Checks a schedule's rhythm and returns when it runs next. */
export function compileSchedule(name: string, def: ScheduleDef<unknown>): CompiledSchedule {
  const where = `schedule "${name}"`;
  const runOn = def.runOn ?? 'partitions';
  if (runOn !== 'partitions' && runOn !== 'app') throw new AppDefinitionError(`${where}: runOn must be 'partitions' or 'app', got ${JSON.stringify(def.runOn)}`);
  if ((def.every === undefined) === (def.cron === undefined)) {
    throw new AppDefinitionError(`${where}: give exactly one of every (e.g. '5m' or 300000) and cron (e.g. '*/5 * * * *')`);
  }
  if (def.every !== undefined) {
    const interval = parseInterval(def.every);
    if (interval === undefined) throw new AppDefinitionError(`${where}: every must be a positive number of ms or a duration like '30s', '5m', '1h'; got ${JSON.stringify(def.every)}`);
    // Runs fall on multiples of the interval since the epoch: every partition and every
    // instance agree on them, and a restart keeps the rhythm.
    return { name, runOn, spec: `every ${interval}ms`, next: (after) => (Math.floor(after / interval) + 1) * interval };
  }
  const timezone = def.timezone ?? 'UTC';
  if (typeof def.cron !== 'string') throw new AppDefinitionError(`${where}: cron must be a string like '*/5 * * * *', got ${JSON.stringify(def.cron)}`);
  let cron: Cron;
  let first: Date | null;
  try {
    cron = new Cron(def.cron, { timezone, paused: true });
    // croner checks the time zone only when it computes a time.
    first = cron.nextRun(new Date());
  } catch (err) {
    throw new AppDefinitionError(`${where}: invalid cron expression ${JSON.stringify(def.cron)} or timezone ${JSON.stringify(timezone)}: ${(err as Error).message}`);
  }
  if (!first) throw new AppDefinitionError(`${where}: cron expression ${JSON.stringify(def.cron)} never runs`);
  return {
    name,
    runOn,
    spec: `cron ${def.cron!.trim()} ${timezone}`,
    next(after) {
      const next = cron.nextRun(new Date(after));
      // A cron with a last run (a fixed year) ends: park it far in the future.
      return next ? next.getTime() : Number.MAX_SAFE_INTEGER;
    },
  };
}
