import { constants, createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/index.js';
import { FaradError, LogLockedError, SchemaValidationError, TransportError } from '../errors.js';
import type { Logger } from '../log.js';
import { compileApp, type App } from '../procedures/index.js';
import { Ingest } from '../ingest/index.js';
import { createCodec, openTransport } from '../service/index.js';
import type { EventLog } from '../streams/index.js';

const CHUNK = 500;

export interface ProduceOptions {
  readonly type: string;
  /** JSON-lines file, or '-' / undefined for standard input. */
  readonly input: string | undefined;
  /** Send through a running farad's HTTP API instead of writing the log directly. */
  readonly url: string | undefined;
  readonly token: string | undefined;
}

/** A line of the input that is not a valid event. */
export class InputLineError extends FaradError {
  readonly code = 'input_line';
}

/**
 * Appends events from JSON lines. Writes Kafka, or the embedded log directly when no farad holds it,
 * otherwise (or with --url) posts them to the running instance. Progress goes to stderr.
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
  const progress = new Progress();
  let lineNo = 0;
  let batch: unknown[] = [];
  // Line number of each event in `batch` (blank lines are skipped, so they are not consecutive).
  let batchLines: number[] = [];
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch (err) {
        throw new InputLineError(`line ${lineNo}: not valid JSON: ${(err as Error).message}`);
      }
      batch.push(json);
      batchLines.push(lineNo);
      if (batch.length >= CHUNK) {
        await sink.send(batch, batchLines);
        progress.add(batch.length);
        batch = [];
        batchLines = [];
      }
    }
    if (batch.length > 0) {
      await sink.send(batch, batchLines);
      progress.add(batch.length);
    }
  } finally {
    await sink.close();
    progress.done();
  }
  return progress.count;
}

interface Sink {
  /** `lines[i]` is the input line number of `events[i]`, for error messages. */
  send(events: unknown[], lines: readonly number[]): Promise<void>;
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
      async send(events, lines) {
        const records = events.map((json, i) => {
          try {
            return ingest.fromJson(event, json);
          } catch (err) {
            if (err instanceof SchemaValidationError) throw new InputLineError(`line ${lines[i]}: ${err.message}`, err.context);
            throw err;
          }
        });
        await ingest.send(event, records);
      },
      close: () => log.close(),
    };
  } catch (err) {
    await log.close();
    throw err;
  }
}

function httpSink(base: string, type: string, token: string | undefined): Sink {
  const url = `${base.replace(/\/$/, '')}/events/${encodeURIComponent(type)}`;
  return {
    async send(events, lines) {
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
      if (response.status !== 202) {
        const body = (await response.json().catch(() => ({}))) as { message?: string; index?: number };
        const where = body.index !== undefined ? `line ${lines[body.index] ?? '?'}: ` : '';
        throw new InputLineError(`${where}${url} answered ${response.status}: ${body.message ?? response.statusText}`);
      }
    },
    close: async () => undefined,
  };
}

/** Progress on stderr, at most twice a second. */
class Progress {
  count = 0;
  private readonly started = performance.now();
  private lastPrint = 0;

  add(n: number): void {
    this.count += n;
    const now = performance.now();
    if (now - this.lastPrint > 500) {
      this.lastPrint = now;
      this.print(false);
    }
  }

  done(): void {
    this.print(true);
  }

  private print(final: boolean): void {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? Math.round(this.count / seconds) : 0;
    const text = `produced ${this.count} events (${rate}/s)`;
    if (process.stderr.isTTY) process.stderr.write(`\r${text}${final ? '\n' : ''}`);
    else if (final) process.stderr.write(`${text}\n`);
  }
}
