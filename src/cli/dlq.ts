import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from 'commander';
import type { Config } from '../config/index.js';
import { FaradError, LogLockedError, TransportError } from '../errors.js';
import type { Logger } from '../log.js';
import { compileApp, type App, type CompiledApp } from '../procedures/index.js';
import { openTransport } from '../service/index.js';
import {
  EmbeddedLog,
  KafkaTopicReader,
  KafkaTransactionalWriter,
  parseSince,
  planReplay,
  readDeadLetters,
  readReplayLog,
  replayDeadLetters,
  replayLogTopicOf,
  replayTransactionalId,
  type DeadLetterFilter,
  type PlannedLetter,
  type ReplayStep,
} from '../streams/index.js';
import { openToolSource, type LineSink } from './tail.js';

/** Dead letters per atomic commit (Kafka transaction, journal frame, HTTP step). */
export const DEFAULT_BATCH_SIZE = 500;

export interface DlqReplayOptions {
  readonly filter: DeadLetterFilter;
  readonly dryRun: boolean;
  readonly batchSize: number;
  /** A running farad (embedded log) to replay through; found on `http.port` when it holds the data dir. */
  readonly url: string | undefined;
  readonly token: string | undefined;
}

/** A replay could not be done as asked (an instance refused it, a step failed). */
export class ReplayError extends FaradError {
  readonly code = 'dlq_replay';
}

/**
 * `farad dlq list`: the dead letters matching the filter — a summary by reason and event type,
 * then one line each with where it came from and what a replay would do with it. Reads without
 * taking anything from a running farad.
 */
export async function dlqList(app: App, config: Config, filter: DeadLetterFilter, logger: Logger, out: LineSink): Promise<PlannedLetter[]> {
  const compiled = compileApp(app, config.settings);
  const plan = await readPlan(compiled, config, filter, logger);
  await printPlan(compiled, plan, filter, out);
  return plan;
}

async function readPlan(app: CompiledApp, config: Config, filter: DeadLetterFilter, logger: Logger): Promise<PlannedLetter[]> {
  const source = await openToolSource(app, config, logger);
  try {
    if (!source.hasTopic(app.deadLetterTopic)) return [];
    const replayed = await readReplayLog(source, app);
    return planReplay(app, await readDeadLetters(source, app), replayed, filter);
  } finally {
    await source.close();
  }
}

async function printPlan(app: CompiledApp, plan: readonly PlannedLetter[], filter: DeadLetterFilter, out: LineSink): Promise<void> {
  const count = (kind: PlannedLetter['verdict']['kind'], of: readonly PlannedLetter[] = plan): number => of.filter((p) => p.verdict.kind === kind).length;
  const scope = [filter.reason && `reason ${filter.reason}`, filter.since !== undefined && `since ${new Date(filter.since).toISOString()}`].filter(Boolean).join(', ');
  await out(
    `${app.deadLetterTopic}: ${plan.length} dead letter${plan.length === 1 ? '' : 's'}${scope ? ` (${scope})` : ''}: ` +
      `${count('replay')} to replay, ${count('replayed')} replayed, ${count('not_replayable')} not replayable`,
  );
  if (plan.length === 0) return;
  const groups = new Map<string, PlannedLetter[]>();
  for (const p of plan) {
    const key = `${p.letter.reason}\u0000${p.letter.eventType ?? '(unknown)'}`;
    let list = groups.get(key);
    if (!list) groups.set(key, (list = []));
    list.push(p);
  }
  await out('');
  await out(`${'reason'.padEnd(16)}${'event type'.padEnd(28)}${'count'.padStart(7)}${'to replay'.padStart(11)}${'replayed'.padStart(10)}${'not replayable'.padStart(16)}`);
  for (const [key, list] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [reason, eventType] = key.split('\u0000') as [string, string];
    await out(`${reason.padEnd(16)}${eventType.padEnd(28)}${String(list.length).padStart(7)}${String(count('replay', list)).padStart(11)}${String(count('replayed', list)).padStart(10)}${String(count('not_replayable', list)).padStart(16)}`);
  }
  await out('');
  await out(`${'dlq'.padEnd(10)}${'time'.padEnd(26)}${'reason'.padEnd(16)}${'event type'.padEnd(24)}${'source'.padEnd(28)}${'status'.padEnd(40)}error`);
  for (const { letter, verdict } of plan) {
    const source = letter.source ? `${letter.source.topic}/${letter.source.partition}@${letter.source.offset}` : letter.timer ? '(timer)' : '(none)';
    const again = letter.replayOf ? ` (replay of ${letter.replayOf} failed again)` : '';
    const status =
      verdict.kind === 'replay'
        ? `to replay -> ${verdict.to.topic}/${verdict.to.partition}${again}`
        : verdict.kind === 'replayed'
          ? `replayed ${new Date(verdict.entry.replayedAt).toISOString()}`
          : `not replayable: ${verdict.why}`;
    await out(
      `${letter.id.padEnd(10)}${new Date(letter.record.timestamp).toISOString().padEnd(26)}${letter.reason.padEnd(16)}${(letter.eventType ?? '(unknown)').padEnd(24)}${source.padEnd(28)}${status.padEnd(40)}${oneLine(letter.error)}`,
    );
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/**
 * `farad dlq replay`: writes the matching dead letters that were not replayed yet back to their
 * source input topic partition, each together with its replay log entry in one atomic commit, so
 * each is replayed exactly once however often the command runs or wherever it was cut short.
 * On Kafka: transactions under the fixed transactional id `<app>-dlq-replay` (a concurrent replay
 * is fenced). On the embedded log: journal frames, written by this process when no farad holds the
 * data directory, else by that farad (`POST /dlq/replay`), one step at a time. Timers are listed
 * but not replayed (they are no input record).
 */
export async function dlqReplay(app: App, config: Config, options: DlqReplayOptions, logger: Logger, out: LineSink): Promise<{ replayed: number }> {
  const compiled = compileApp(app, config.settings);
  const progress = new Progress();
  if (options.dryRun) {
    const plan = await readPlan(compiled, config, options.filter, logger);
    await out(`dry run: would replay ${plan.filter((p) => p.verdict.kind === 'replay').length} dead letters; nothing was written`);
    await printPlan(compiled, plan, options.filter, out);
    return { replayed: 0 };
  }
  if (config.transport === 'kafka') return replayOnKafka(compiled, config, options, logger, out, progress);
  if (options.url) return replayThrough(options.url, options.token, compiled, options, out, progress);
  let log: EmbeddedLog;
  try {
    const opened = await openTransport(compiled, config, logger);
    if (!(opened instanceof EmbeddedLog)) throw new TransportError('expected the embedded log');
    log = opened;
  } catch (err) {
    if (!(err instanceof LogLockedError)) throw err;
    const url = `http://127.0.0.1:${config.http.port}`;
    logger.info({ url }, 'data directory is in use by a running farad; replaying through its HTTP API');
    return replayThrough(url, config.http.token ?? options.token, compiled, options, out, progress);
  }
  try {
    await log.ensureTopics([replayLogTopicOf(compiled)]);
    const report = await replayDeadLetters({
      app: compiled,
      source: log,
      // One append is one journal frame: the records and their replay log entries, all or none.
      commit: (records) => log.append(records).then(() => undefined),
      filter: options.filter,
      batchSize: options.batchSize,
      onProgress: (done, total) => progress.update(done, total),
    });
    progress.done();
    await summarize(report.plan, report.replayed.length, out);
    return { replayed: report.replayed.length };
  } finally {
    await log.close();
  }
}

async function replayOnKafka(app: CompiledApp, config: Config, options: DlqReplayOptions, logger: Logger, out: LineSink, progress: Progress): Promise<{ replayed: number }> {
  const reader = await KafkaTopicReader.open(config.kafka, logger);
  let writer: KafkaTransactionalWriter | undefined;
  try {
    await reader.ensureTopics([replayLogTopicOf(app)], config.kafkaTopics.replicationFactor);
    await reader.describe([app.deadLetterTopic, ...app.inputTopics]);
    if (!reader.hasTopic(app.deadLetterTopic)) {
      await out(`${app.deadLetterTopic} does not exist yet: nothing to replay`);
      return { replayed: 0 };
    }
    // Fence first, then read the replay log: a replay cut short had its open transaction aborted
    // by now, and one still running can commit nothing more, so the log read is the whole truth.
    writer = await KafkaTransactionalWriter.open(reader.kafka, replayTransactionalId(app), config.kafkaProducer.transactionTimeoutMs);
    const w = writer;
    const report = await replayDeadLetters({
      app,
      source: reader,
      commit: (records) => w.commit(records),
      filter: options.filter,
      batchSize: options.batchSize,
      onProgress: (done, total) => progress.update(done, total),
    });
    progress.done();
    await summarize(report.plan, report.replayed.length, out);
    return { replayed: report.replayed.length };
  } finally {
    await writer?.close();
    await reader.close();
  }
}

/** Replays through the farad that holds the embedded log: `POST /dlq/replay` steps of `batchSize` until none is left. */
async function replayThrough(base: string, token: string | undefined, app: CompiledApp, options: DlqReplayOptions, out: LineSink, progress: Progress): Promise<{ replayed: number }> {
  const url = `${base.replace(/\/$/, '')}/dlq/replay`;
  let replayed = 0;
  let total: number | undefined;
  let first: ReplayStep | undefined;
  let last: ReplayStep | undefined;
  for (;;) {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        // `before`: the dead letters there were when the run began; replays that fail again wait for the next run.
        body: JSON.stringify({ app: app.name, reason: options.filter.reason, since: options.filter.since, limit: options.batchSize, before: last?.before }),
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new TransportError(`cannot reach farad at ${base} (${cause}); is it running? Pass its address with --url or FARAD_HTTP_PORT`);
    }
    const body = (await response.json().catch(() => ({}))) as Partial<ReplayStep> & { message?: string };
    if (response.status !== 200) throw new ReplayError(`${url} answered ${response.status}: ${body.message ?? response.statusText}`);
    const step = body as ReplayStep;
    first ??= step;
    last = step;
    total ??= step.replayed.length + step.remaining;
    replayed += step.replayed.length;
    if (step.replayed.length > 0) progress.update(replayed, total);
    if (step.remaining === 0 || step.replayed.length === 0) break;
  }
  progress.done();
  await out(
    `replayed ${replayed} dead letters of ${app.deadLetterTopic} through ${base} (${first?.alreadyReplayed ?? 0} replayed before, ${first?.notReplayable ?? 0} not replayable: see farad dlq list)`,
  );
  return { replayed };
}

async function summarize(plan: readonly PlannedLetter[], replayed: number, out: LineSink): Promise<void> {
  for (const { letter, verdict } of plan) {
    if (verdict.kind === 'not_replayable') await out(`skipped ${letter.id} (${letter.reason}, ${letter.eventType ?? '(unknown)'}): ${verdict.why}`);
  }
  const before = plan.filter((p) => p.verdict.kind === 'replayed').length;
  const skipped = plan.filter((p) => p.verdict.kind === 'not_replayable').length;
  await out(`replayed ${replayed} dead letters (${before} replayed before, ${skipped} not replayable)`);
}

/** Progress on stderr: at once after the first commit, then at most five times a second, and the last. */
class Progress {
  private readonly started = performance.now();
  private lastPrint = -Infinity;
  private current: { done: number; total: number } | undefined;
  private printed: number | undefined;

  update(done: number, total: number): void {
    this.current = { done, total };
    if (performance.now() - this.lastPrint >= 200) this.print(false);
  }

  done(): void {
    if (this.current && this.current.done !== this.printed) this.print(true);
    else if (this.current && process.stderr.isTTY) process.stderr.write('\n');
  }

  private print(final: boolean): void {
    const { done, total } = this.current!;
    this.lastPrint = performance.now();
    this.printed = done;
    const seconds = (this.lastPrint - this.started) / 1000;
    const text = `replayed ${done}/${total} dead letters (${seconds > 0 ? Math.round(done / seconds) : 0}/s)`;
    if (process.stderr.isTTY) process.stderr.write(`\r${text}${final ? '\n' : ''}`);
    else process.stderr.write(`${text}\n`);
  }
}

/** `--since`: an ISO time or a duration back from now (`1h`, `30m`, `2d`, `1h30m`). */
export function parseSinceOption(value: string): number {
  const since = parseSince(value, Date.now());
  if (since === undefined) throw new InvalidArgumentError('give an ISO time (2024-05-01T12:00:00Z) or a duration back from now (90s, 15m, 1h, 2d, 1h30m)');
  return since;
}
