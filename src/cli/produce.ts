import { constants, createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/index.js';
import { FaradError, LogLockedError, SchemaValidationError, TransportError, type ErrorContext } from '../errors.js';
import type { Logger } from '../log.js';
import { compileApp, type App } from '../procedures/index.js';
import { Ingest } from '../ingest/index.js';
import { createCodec, openTransport } from '../service/index.js';
import type { EventLog } from '../streams/index.js';

/** Lines sent together: one append (direct) or one request (`--url`). */
const CHUNK = 500;
/** Line numbers the final summary names at most. */
const NAMED_LINES = 20;

export interface ProduceOptions {
  readonly type: string;
  /** JSON-lines file, or '-' / undefined for standard input. */
  readonly input: string | undefined;
  /** Send through a running farad's HTTP API instead of writing the log directly. */
  readonly url: string | undefined;
  readonly token: string | undefined;
  /**
   * Send every valid line and report each invalid one (line number, reason) on stderr, instead of
   * stopping at the first; produce then fails at the end, saying how many it skipped.
   */
  readonly skipInvalid?: boolean | undefined;
}

/** A line of the input that is not a valid event. */
export class InputLineError extends FaradError {
  readonly code = 'input_line';
}

/** `--skip-invalid` sent every valid line and skipped some: the exit status tells scripts. */
export class SkippedLinesError extends FaradError {
  readonly code = 'skipped_lines';
}

/** An input line that is not a valid event, and why. */
interface InvalidLine {
  readonly line: number;
  readonly reason: string;
  readonly context?: ErrorContext | undefined;
}

/**
 * What to do with a batch holding an invalid line: refuse the whole batch (nothing of it is sent,
 * like an HTTP array) and stop, or send every valid line and return the invalid ones.
 */
type OnInvalid = 'stop' | 'skip';

/**
 * Appends events from JSON lines. Writes Kafka, or the embedded log directly when no farad holds it,
 * otherwise (or with --url) posts them to the running instance. Progress goes to stderr.
 *
 * Lines go in batches of CHUNK. By default the first invalid line stops produce: the batches
 * before its batch are sent, its batch and the rest are not, and the error names the line to fix
 * and the line to send again from. With `skipInvalid` every valid line is sent and each invalid
 * one reported; a SkippedLinesError at the end makes the exit status say so. Returns the number
 * of events sent.
 */
export async function produce(app: App, config: Config, options: ProduceOptions, logger: Logger): Promise<number> {
  const compiled = compileApp(app, config.settings);
  if (options.input !== undefined && options.input !== '-') {
    try {
      await access(options.input, constants.R_OK);
    } catch (err) {
      throw new InputLineError(`cannot read ${options.input}: ${(err as Error).message}`);
    }
  }
  let sink: Sink;
  if (options.url) sink = httpSink(options.url, options.type, options.token);
  else {
    try {
      sink = await directSink(compiled, config, options.type, logger);
    } catch (err) {
      if (!(err instanceof LogLockedError)) throw err;
      const url = `http://127.0.0.1:${config.http.port}`;
      logger.info({ url }, 'data directory is in use by a running farad; sending through its HTTP API');
      sink = httpSink(url, options.type, config.http.token ?? options.token);
    }
  }

  // Only now open the input: readline emits lines as soon as it has a reader, and lines emitted
  // before the `for await` below starts (e.g. while the sink was opening) would be lost.
  const lines = createInterface({
    input: options.input === undefined || options.input === '-' ? process.stdin : createReadStream(options.input),
    crlfDelay: Infinity,
  });
  const onInvalid: OnInvalid = options.skipInvalid ? 'skip' : 'stop';
  const progress = new Progress(onInvalid === 'skip');
  const skipped: number[] = [];
  const skip = (invalid: InvalidLine): void => {
    skipped.push(invalid.line);
    progress.skip(`skipped line ${invalid.line}: ${invalid.reason}`);
  };
  let lineNo = 0;
  let batch: unknown[] = [];
  // Line number of each event in `batch` (blank lines are skipped, so they are not consecutive).
  let batchLines: number[] = [];
  // Lines since the last batch that are not JSON (skipping), reported with the batch's, in line order.
  let unparsed: InvalidLine[] = [];
  const flush = async (): Promise<void> => {
    const invalid = await sink.send(batch, batchLines, onInvalid);
    progress.add(batch.length - invalid.length);
    [...unparsed, ...invalid].sort((a, b) => a.line - b.line).forEach(skip);
    batch = [];
    batchLines = [];
    unparsed = [];
  };
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch (err) {
        const invalid = { line: lineNo, reason: `not valid JSON: ${(err as Error).message}` };
        if (onInvalid === 'stop') throw stopped(invalid, batchLines[0] ?? lineNo);
        unparsed.push(invalid);
        continue;
      }
      batch.push(json);
      batchLines.push(lineNo);
      if (batch.length >= CHUNK) await flush();
    }
    if (batch.length > 0 || unparsed.length > 0) await flush();
  } finally {
    await sink.close();
    progress.done();
  }
  if (skipped.length > 0) {
    const named = skipped.slice(0, NAMED_LINES).join(', ') + (skipped.length > NAMED_LINES ? ', …' : '');
    throw new SkippedLinesError(
      `skipped ${skipped.length} invalid ${skipped.length === 1 ? 'line' : 'lines'} (${named}), each reported above with its reason; fix ${skipped.length === 1 ? 'it' : 'them'} and send ${skipped.length === 1 ? 'it' : 'them'} again`,
    );
  }
  return progress.count;
}

/**
 * The error that stops produce at an invalid line: the line and why, and where to send again
 * from (nothing of the invalid line's batch, which starts at `batchStart`, was sent).
 */
function stopped(invalid: InvalidLine, batchStart: number): InputLineError {
  return new InputLineError(
    `line ${invalid.line}: ${invalid.reason}; nothing from line ${batchStart} on was sent (lines go ${CHUNK} at a time, and a batch with an invalid line is not sent): ` +
      `fix line ${invalid.line} and send again from line ${batchStart}, or pass --skip-invalid to send every valid line`,
    invalid.context,
  );
}

interface Sink {
  /**
   * Sends `events`; `lines[i]` is the input line number of `events[i]`. An invalid event either
   * stops the batch (`stop`: nothing of it is sent, an InputLineError is thrown) or is left out
   * (`skip`: every valid event is sent and the invalid ones are returned).
   */
  send(events: readonly unknown[], lines: readonly number[], onInvalid: OnInvalid): Promise<InvalidLine[]>;
  close(): Promise<void>;
}

/** Writes straight to the configured transport (the embedded log's files, or Kafka). */
async function directSink(app: ReturnType<typeof compileApp>, config: Config, type: string, logger: Logger): Promise<Sink> {
  const log: EventLog = await openTransport(app, config, logger);
  try {
    await log.ensureTopics(app.inputTopics.map((name) => ({ name, partitions: app.partitions, exactPartitions: 'input' as const })));
    const ingest = new Ingest(app, await createCodec(app, config), log);
    const event = ingest.inputEvent(type);
    return {
      async send(events, lines, onInvalid) {
        const records = [];
        const invalid: InvalidLine[] = [];
        for (const [i, json] of events.entries()) {
          try {
            records.push(ingest.fromJson(event, json));
          } catch (err) {
            if (!(err instanceof SchemaValidationError)) throw err;
            const line = { line: lines[i]!, reason: err.message, context: err.context };
            if (onInvalid === 'stop') throw stopped(line, lines[0]!);
            invalid.push(line);
          }
        }
        if (records.length > 0) await ingest.send(event, records);
        return invalid;
      },
      close: () => log.close(),
    };
  } catch (err) {
    await log.close();
    throw err;
  }
}

/**
 * Posts events as JSON arrays. farad appends an array whole or refuses it with 422 naming the
 * `index` of an invalid event; skipping, that event is left out and the rest posted again.
 */
function httpSink(base: string, type: string, token: string | undefined): Sink {
  const url = `${base.replace(/\/$/, '')}/events/${encodeURIComponent(type)}`;

  /** Undefined once appended; the refused event's index and farad's reason when the array was refused for it. */
  const post = async (events: readonly unknown[]): Promise<{ index: number; reason: string } | undefined> => {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(events),
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new TransportError(`cannot reach farad at ${base} (${cause}); is it running? Pass its address with --url or FARAD_HTTP_PORT`);
    }
    if (response.status === 202) return undefined;
    const body = (await response.json().catch(() => ({}))) as { message?: string; index?: unknown };
    const message = body.message ?? response.statusText;
    if (response.status === 422 && typeof body.index === 'number' && Number.isInteger(body.index) && body.index >= 0 && body.index < events.length) {
      // farad says which event as `event [i]: `; the line number says it better.
      const prefix = `event [${body.index}]: `;
      return { index: body.index, reason: `${url} answered 422: ${message.startsWith(prefix) ? message.slice(prefix.length) : message}` };
    }
    throw new InputLineError(`${url} answered ${response.status}: ${message}`);
  };

  return {
    async send(events, lines, onInvalid) {
      let pending = events.map((event, i) => ({ event, line: lines[i]! }));
      const invalid: InvalidLine[] = [];
      while (pending.length > 0) {
        const refused = await post(pending.map((p) => p.event));
        if (refused === undefined) break;
        const line = { line: pending[refused.index]!.line, reason: refused.reason };
        if (onInvalid === 'stop') throw stopped(line, lines[0]!);
        invalid.push(line);
        pending = pending.filter((_, i) => i !== refused.index);
      }
      return invalid;
    },
    close: async () => undefined,
  };
}

/** Progress on stderr, at most twice a second, and the lines skipped as they are found. */
class Progress {
  count = 0;
  private skipped = 0;
  private readonly started = performance.now();
  private lastPrint = 0;

  /** `skipping`: the summary says how many lines were sent and skipped. */
  constructor(private readonly skipping: boolean) {}

  add(n: number): void {
    this.count += n;
    const now = performance.now();
    if (now - this.lastPrint > 500) {
      this.lastPrint = now;
      this.print(false);
    }
  }

  /** Counts a skipped line and reports it on a line of its own (on a terminal, over the progress line). */
  skip(report: string): void {
    this.skipped++;
    process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${report}\n` : `${report}\n`);
  }

  done(): void {
    this.print(true);
  }

  private print(final: boolean): void {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? Math.round(this.count / seconds) : 0;
    const text = this.skipping ? `sent ${this.count}, skipped ${this.skipped} (${rate} events/s)` : `produced ${this.count} events (${rate}/s)`;
    if (process.stderr.isTTY) process.stderr.write(`\r${text}${final ? '\n' : ''}`);
    else if (final) process.stderr.write(`${text}\n`);
  }
}
