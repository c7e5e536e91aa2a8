/**
 * Reading your own writes. `POST /events` answers a position: for each input topic partition
 * the write went to, the offset just past its last record there. A read given that position
 * (`?waitFor=`) waits, where each partition's state is, until the partition's committed input
 * offset has reached it, so its answer includes the write. The wait is bounded; past it the read
 * answers 503 `write_not_visible_yet` (retry shortly).
 *
 * The position's text is `topic:partition:offset` per partition written, joined by commas
 * (`votes:3:1042,votes:5:77`). Callers should treat it as opaque and pass it back as it came.
 */
import { InvalidPositionError, WriteNotVisibleError } from '../errors.js';
import type { InputWatch } from '../partition/index.js';
import type { CompiledApp } from '../procedures/index.js';

/** A write's position: per input topic partition written, the offset just past its last record there. */
export type InputPosition = ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly offset: number }>;

/**
 * Longest a read waits for a write, in all: it ends before a forwarded read's own timeout (10 s),
 * so a read forwarded to the partition's owner gets the owner's answer, not a timeout.
 */
export const WAIT_FOR_LIMIT_MS = 8_000;

/** A read's wait for a write: the position, and until when it may wait (epoch ms). */
export interface WaitFor {
  readonly position: InputPosition;
  readonly deadline: number;
}

/** Longest `waitFor` text read (a write of every partition of a few topics fits easily). */
const MAX_TOKEN_LENGTH = 65_536;
/** Kafka's topic names: letters, digits, `.`, `_` and `-`. */
const ENTRY = /^([A-Za-z0-9._-]{1,249}):(\d{1,9}):(\d{1,16})$/;

/** The text of a position (what `POST /events` answers as `position`). */
export function formatPosition(position: InputPosition): string {
  return position.map(({ topic, partition, offset }) => `${topic}:${partition}:${offset}`).join(',');
}

/** A position from its text; throws InvalidPositionError (400 `bad_wait_for`) for text farad never answers. */
export function parsePosition(text: unknown): InputPosition {
  if (Array.isArray(text)) throw new InvalidPositionError(`waitFor is given ${text.length} times; give it once`);
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TOKEN_LENGTH) {
    throw new InvalidPositionError('waitFor must be the position a POST /events answered (e.g. "votes:3:1042"), passed back as it came');
  }
  const byPartition = new Map<string, { topic: string; partition: number; offset: number }>();
  for (const entry of text.split(',')) {
    const match = ENTRY.exec(entry);
    const offset = Number(match?.[3]);
    if (!match || !Number.isSafeInteger(offset)) {
      throw new InvalidPositionError(`waitFor "${clip(text)}" is not a position farad answered: "${clip(entry)}" is not topic:partition:offset`);
    }
    const topic = match[1]!;
    const partition = Number(match[2]);
    const at = `${partition}/${topic}`;
    if (offset > (byPartition.get(at)?.offset ?? -1)) byPartition.set(at, { topic, partition, offset });
  }
  return [...byPartition.values()];
}

/** Throws InvalidPositionError when `position` names a topic this app does not read, or a partition it does not have. */
export function checkPosition(app: CompiledApp, position: InputPosition): void {
  const inputs = new Set(app.inputTopics);
  for (const { topic, partition } of position) {
    if (!inputs.has(topic)) {
      throw new InvalidPositionError(`waitFor names topic "${topic}", which this app does not read (inputs: ${app.inputTopics.join(', ')}); pass back the position POST /events answered`);
    }
    if (partition >= app.partitions) {
      throw new InvalidPositionError(`waitFor names partition ${partition} of "${topic}", which has ${app.partitions}; pass back the position POST /events answered`);
    }
  }
}

/**
 * Waits, for partitions read here, until a position's writes are committed there. A partition
 * that stops being active here meanwhile ends its wait early: the reader then finds it moved
 * (and answers as reads do when a partition moves).
 */
export class WriteVisibility {
  constructor(
    private readonly app: CompiledApp,
    /** The partitions active here and how far their input is committed; none: no wait can be answered. */
    private readonly watch: InputWatch | undefined,
  ) {}

  /** Waits for `wait`'s writes to the partitions among `partitions` (all read here); throws WriteNotVisibleError past its deadline. */
  async here(partitions: readonly number[], wait: WaitFor | undefined): Promise<void> {
    if (!wait) return;
    checkPosition(this.app, wait.position);
    const targets = targetsOf(wait.position, partitions);
    if (targets.size === 0) return;
    const watch = this.watch;
    if (!watch) throw new Error('reads were given no InputWatch: waitFor cannot be answered (wire the partition host into Reads)');
    const timedOut = new AbortController();
    const timer = setTimeout(() => timedOut.abort(), Math.max(0, wait.deadline - Date.now()));
    try {
      await Promise.all(
        [...targets].map(async ([partition, offsets]) => {
          const outcome = await watch.awaitInput(partition, offsets, timedOut.signal);
          if (outcome === 'aborted') throw notVisible(watch, partition, offsets);
        }),
      );
    } finally {
      clearTimeout(timer);
      timedOut.abort(); // ends the other partitions' waits when one failed
    }
  }
}

/** Per partition among `partitions`, the offset per topic the position needs there. */
function targetsOf(position: InputPosition, partitions: readonly number[]): Map<number, Map<string, number>> {
  const wanted = new Set(partitions);
  const out = new Map<number, Map<string, number>>();
  for (const { topic, partition, offset } of position) {
    if (!wanted.has(partition)) continue;
    let offsets = out.get(partition);
    if (!offsets) out.set(partition, (offsets = new Map()));
    offsets.set(topic, offset);
  }
  return out;
}

function notVisible(watch: InputWatch, partition: number, offsets: ReadonlyMap<string, number>): WriteNotVisibleError {
  const [topic, offset] = [...offsets].find(([t, o]) => (watch.committedInput(partition, t) ?? -1) < o) ?? [...offsets][0]!;
  const committed = watch.committedInput(partition, topic);
  return new WriteNotVisibleError(
    `partition ${partition} has not processed the write yet (${topic} committed up to ${committed ?? 'an offset not known here'}, the write ends at ${offset}) in the time a read waits (at most ${WAIT_FOR_LIMIT_MS / 1000} s, or waitMs); retry shortly`,
    { partition, topic, offset },
  );
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Query parameter of a read that waits for a write: the position `POST /events` answered. */
export const WAIT_FOR_PARAM = 'waitFor';
/** Query parameter bounding the wait, in ms (at most WAIT_FOR_LIMIT_MS); forwarded reads carry what is left of it. */
export const WAIT_MS_PARAM = 'waitMs';

/**
 * The wait a read's query string asks for, if any: `waitFor` (a position) and optionally
 * `waitMs` (a shorter bound). Throws InvalidPositionError for a malformed one, or one combined
 * with a stale read (a standby copy's state is not tied to input offsets: waiting needs the owner).
 */
export function waitForOf(query: Readonly<Record<string, unknown>>, staleOk: boolean, now = Date.now()): WaitFor | undefined {
  const text = query[WAIT_FOR_PARAM];
  if (text === undefined) return undefined;
  const position = parsePosition(text);
  if (staleOk) throw new InvalidPositionError('waitFor reads from the partition\'s owner and cannot be combined with a stale read (?stale=true or x-farad-accept-stale)');
  const ms = query[WAIT_MS_PARAM];
  let limit = WAIT_FOR_LIMIT_MS;
  if (ms !== undefined) {
    const n = typeof ms === 'string' && /^\d{1,9}$/.test(ms) ? Number(ms) : NaN;
    if (!Number.isInteger(n)) throw new InvalidPositionError(`waitMs must be an integer number of milliseconds (at most ${WAIT_FOR_LIMIT_MS})`);
    limit = Math.min(limit, n);
  }
  return { position, deadline: now + limit };
}

/** The query parameters that carry a read's wait to the instance or worker it is forwarded to (what is left of it). */
export function waitParams(wait: WaitFor | undefined, now = Date.now()): Record<string, string> {
  if (!wait) return {};
  return { [WAIT_FOR_PARAM]: formatPosition(wait.position), [WAIT_MS_PARAM]: String(Math.max(0, Math.round(wait.deadline - now))) };
}
