import { RepartitionError } from '../errors.js';

/**
 * The layout record: which generation of the app's topics is current, and how far a move to the
 * next one has got (docs/repartition.md). One record per app, written at each step; the step it
 * names decides what a crashed move does when the command runs again. Pure.
 */
export type MoveState = 'planned' | 'quiescing' | 'copying' | 'switched' | 'done';

export interface LayoutRecord {
  /** The generation instances process: the new one from `switched` on, the old one before. */
  readonly generation: number;
  readonly partitions: number;
  /** Absent on an app that never moved. */
  readonly move?: {
    readonly state: MoveState;
    /** The generation being moved to and its partition count. */
    readonly toGeneration: number;
    readonly toPartitions: number;
    /** Per old input topic, the next offset of each old partition the old layout had not consumed. */
    readonly cut?: Readonly<Record<string, readonly number[]>>;
    readonly startedAt: number;
  };
}

/** The layout of an app that never moved. */
export function initialLayout(partitions: number): LayoutRecord {
  return { generation: 0, partitions };
}

/** A topic's name in a generation: generation 0 keeps the name, later ones add `.g<n>`. */
export function generationTopic(topic: string, generation: number): string {
  return generation === 0 ? topic : `${topic}.g${generation}`;
}

const ORDER: readonly MoveState[] = ['planned', 'quiescing', 'copying', 'switched', 'done'];

/** Starts a move to `toPartitions`; refuses while another is under way. */
export function planMove(layout: LayoutRecord, toPartitions: number, now: number): LayoutRecord {
  if (layout.move && layout.move.state !== 'done') {
    throw new RepartitionError(`a move to ${layout.move.toPartitions} partitions is ${layout.move.state}; run the command again with --partitions ${layout.move.toPartitions} to finish it, or --rollback to undo it`);
  }
  if (!Number.isInteger(toPartitions) || toPartitions <= layout.partitions) {
    throw new RepartitionError(`--partitions must be an integer larger than today's ${layout.partitions} (farad grows an app; it does not shrink one), got ${toPartitions}`);
  }
  return { generation: layout.generation, partitions: layout.partitions, move: { state: 'planned', toGeneration: layout.generation + 1, toPartitions, startedAt: now } };
}

/** The next step of a move; at `switched` the new generation becomes current. */
export function advance(layout: LayoutRecord, to: MoveState, cut?: Readonly<Record<string, readonly number[]>>): LayoutRecord {
  const move = layout.move;
  if (!move) throw new RepartitionError('no move is under way');
  const from = ORDER.indexOf(move.state);
  if (ORDER.indexOf(to) !== from + 1) throw new RepartitionError(`a move goes ${ORDER.join(' → ')}; it cannot go from ${move.state} to ${to}`);
  if (to === 'copying' && !cut) throw new RepartitionError('the copy starts from the cut: the input offsets each old partition stopped at');
  const next = { ...move, state: to, ...(cut ? { cut } : {}) };
  return to === 'switched' || to === 'done' ? { generation: move.toGeneration, partitions: move.toPartitions, move: next } : { ...layout, move: next };
}

/** What running the command again does with a move a crash interrupted. */
export type Recovery = 'nothing' | 'roll back or finish' | 'finish';

/**
 * Before the switch nothing of the new generation is in use: the move may be rolled back (new
 * topics deleted, the quiesce flag cleared) or run on from its step. From the switch on the new
 * generation is the app's: the move can only be finished.
 */
export function recoveryOf(layout: LayoutRecord): Recovery {
  const state = layout.move?.state;
  if (state === undefined || state === 'done') return 'nothing';
  return state === 'switched' ? 'finish' : 'roll back or finish';
}

/** The layout after a rollback (only before the switch). */
export function rollBack(layout: LayoutRecord): LayoutRecord {
  if (recoveryOf(layout) !== 'roll back or finish') throw new RepartitionError(layout.move ? `the move is ${layout.move.state}: past the switch it can only be finished` : 'no move is under way');
  return { generation: layout.generation, partitions: layout.partitions };
}

/** Reads a layout record, refusing anything malformed with what is wrong. */
export function parseLayout(text: string): LayoutRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new RepartitionError(`the layout record is not JSON: ${(err as Error).message}`);
  }
  const r = raw as Partial<LayoutRecord> | null;
  const count = (v: unknown, min: number): v is number => Number.isInteger(v) && (v as number) >= min;
  if (!r || !count(r.generation, 0) || !count(r.partitions, 1)) throw new RepartitionError(`the layout record needs a generation (integer ≥ 0) and partitions (integer ≥ 1): ${text}`);
  if (r.move !== undefined) {
    const m = r.move;
    if (!ORDER.includes(m.state) || !count(m.toGeneration, 1) || !count(m.toPartitions, 1) || !Number.isFinite(m.startedAt)) throw new RepartitionError(`the layout record's move is malformed: ${JSON.stringify(m)}`);
  }
  return r as LayoutRecord;
}
