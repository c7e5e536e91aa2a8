/**
 * Dead-letter replay: read the dead letters and the replay log, plan (dead-letters.ts), then write
 * each chunk's re-injected records together with their replay log entries in one atomic commit
 * (a Kafka transaction, or one embedded journal frame). A dead letter whose id is in the replay
 * log is never replayed again, so a replay cut short and run again replays each one exactly once
 * — provided replays of one app never run side by side: Kafka fences a second one by its
 * transactional id; the embedded log runs them one at a time in the process that holds it.
 */
import { TransportError } from '../errors.js';
import {
  parseDeadLetter,
  parseReplayEntry,
  planReplay,
  replayLogTopicOf,
  replayRecords,
  type DeadLetter,
  type DeadLetterFilter,
  type PlannedLetter,
  type ReplayApp,
  type ReplayEntry,
} from './dead-letters.js';
import type { EventLog } from './event-log.js';
import type { OutRecord } from './records.js';
import { formatPosition, readAll, type TopicSource } from './topic-reader.js';

/** A source that may not have a topic yet (the replay log before the first replay). */
export interface ReplaySource extends TopicSource {
  hasTopic?(topic: string): boolean;
}

/** Every dead letter of the app, partition by partition. */
export async function readDeadLetters(source: TopicSource, app: ReplayApp & { readonly deadLetterTopic: string }): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  const partitions = source.partitionsOf(app.deadLetterTopic);
  for (let p = 0; p < partitions; p++) for (const record of await readAll(source, app.deadLetterTopic, p)) letters.push(parseDeadLetter(record));
  return letters;
}

/** The replay log: replayed dead letters by id (the first entry of an id wins: it is the replay that happened). */
export async function readReplayLog(source: ReplaySource, app: ReplayApp): Promise<Map<string, ReplayEntry>> {
  const topic = replayLogTopicOf(app).name;
  const replayed = new Map<string, ReplayEntry>();
  if (source.hasTopic && !source.hasTopic(topic)) return replayed;
  for (const record of await readAll(source, topic, 0)) {
    const entry = parseReplayEntry(record);
    const id = record.key?.toString('utf8');
    if (entry && id !== undefined && !replayed.has(id)) replayed.set(id, entry);
  }
  return replayed;
}

export interface ReplayRun {
  readonly app: ReplayApp & { readonly deadLetterTopic: string };
  readonly source: ReplaySource;
  /** Writes one chunk atomically: all of its records or none. */
  readonly commit: (records: readonly OutRecord[]) => Promise<void>;
  readonly filter: DeadLetterFilter;
  /** Dead letters per commit. */
  readonly batchSize: number;
  /** Replay at most this many (the rest stay for a later run). */
  readonly max?: number | undefined;
  /** Plan only; write nothing. */
  readonly dryRun?: boolean | undefined;
  readonly now?: (() => number) | undefined;
  /** After each commit: dead letters replayed so far, of how many. */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

/** A dead letter on its way back to its input. */
export interface ReplayableLetter extends PlannedLetter {
  readonly verdict: Extract<PlannedLetter['verdict'], { kind: 'replay' }>;
}

function isReplayable(planned: PlannedLetter): planned is ReplayableLetter {
  return planned.verdict.kind === 'replay';
}

export interface ReplayReport {
  /** Every dead letter matching the filter, with its verdict as of the start. */
  readonly plan: readonly PlannedLetter[];
  /** The dead letters this run replayed (committed). */
  readonly replayed: readonly ReplayableLetter[];
  /** Replayable dead letters left for a later run (`max`). */
  readonly remaining: number;
}

/** Plans and runs a replay: chunks of `batchSize` dead letters, each committed atomically with its replay log entries. */
export async function replayDeadLetters(run: ReplayRun): Promise<ReplayReport> {
  const now = run.now ?? Date.now;
  const replayed = await readReplayLog(run.source, run.app);
  const letters = await readDeadLetters(run.source, run.app);
  const plan = planReplay(run.app, letters, replayed, run.filter);
  const due = plan.filter(isReplayable);
  const chosen = run.max === undefined ? due : due.slice(0, run.max);
  const done: ReplayableLetter[] = [];
  if (run.dryRun) return { plan, replayed: [], remaining: due.length };
  const replayLog = replayLogTopicOf(run.app).name;
  const size = Math.max(1, run.batchSize);
  for (let i = 0; i < chosen.length; i += size) {
    const chunk = chosen.slice(i, i + size);
    const at = now();
    const records: OutRecord[] = [];
    for (const { letter, verdict } of chunk) records.push(...replayRecords(letter, verdict.to, replayLog, at));
    await run.commit(records);
    done.push(...chunk);
    run.onProgress?.(done.length, chosen.length);
  }
  return { plan, replayed: done, remaining: due.length - done.length };
}

/** One replayed dead letter, as an answer shows it. */
export interface ReplayedLetter {
  readonly dlq: { readonly partition: number; readonly offset: number };
  readonly to: { readonly topic: string; readonly partition: number };
  readonly reason: string;
  readonly eventType: string | null;
}

/** What one step of a replay inside the running instance did. */
export interface ReplayStep {
  /** The dead-letter topic's end when the run began (`formatPosition`): pass it to the following steps. */
  readonly before: string;
  readonly replayed: ReplayedLetter[];
  /** Replayable dead letters still waiting (more steps to run). */
  readonly remaining: number;
  /** Matching dead letters replayed before, and ones that cannot be replayed (timers). */
  readonly alreadyReplayed: number;
  readonly notReplayable: number;
}

/**
 * Replays inside the instance that holds the embedded log (`POST /dlq/replay`): its `append`
 * writes one journal frame, so a step's re-injected records and their replay log entries are
 * durable together or not at all. Steps run one at a time, so no dead letter is replayed twice.
 */
export class DeadLetterReplays {
  private queue: Promise<unknown> = Promise.resolve();
  private ready: Promise<void> | undefined;

  constructor(
    private readonly app: ReplayApp & { readonly deadLetterTopic: string },
    private readonly log: EventLog,
  ) {}

  /** The app this instance runs: a replay asked for another app's dead letters is refused. */
  get appName(): string {
    return this.app.name;
  }

  /**
   * Replays up to `max` dead letters matching `filter` that were not replayed yet, in one atomic
   * append. A run's first step leaves `filter.before` unset: it is the dead-letter topic's end
   * now, answered in `before` for the steps after it.
   */
  step(filter: DeadLetterFilter, max: number): Promise<ReplayStep> {
    const next = this.queue.then(() => this.run(filter, max));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async run(filter: DeadLetterFilter, max: number): Promise<ReplayStep> {
    this.ready ??= this.log.ensureTopics([replayLogTopicOf(this.app)]).catch((err: unknown) => {
      this.ready = undefined;
      throw new TransportError(`could not create the replay log topic "${replayLogTopicOf(this.app).name}"`, {}, { cause: err });
    });
    await this.ready;
    const before = filter.before ?? (await endsOf(this.log, this.app.deadLetterTopic));
    const report = await replayDeadLetters({
      app: this.app,
      source: this.log,
      commit: (records) => this.log.append(records).then(() => undefined),
      filter: { ...filter, before },
      batchSize: max,
      max,
    });
    return {
      before: formatPosition(before),
      replayed: report.replayed.map(({ letter, verdict }) => ({
        dlq: { partition: letter.record.partition, offset: letter.record.offset },
        to: verdict.to,
        reason: letter.reason,
        eventType: letter.eventType ?? null,
      })),
      remaining: report.remaining,
      alreadyReplayed: report.plan.filter((p) => p.verdict.kind === 'replayed').length,
      notReplayable: report.plan.filter((p) => p.verdict.kind === 'not_replayable').length,
    };
  }
}

/** Every partition's end offset now. */
export async function endsOf(source: TopicSource, topic: string): Promise<Map<number, number>> {
  const ends = new Map<number, number>();
  for (let p = 0; p < source.partitionsOf(topic); p++) ends.set(p, await source.endOffset(topic, p));
  return ends;
}
