import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError } from 'commander';
import { RowCodec } from '../codec/index.js';
import type { Config } from '../config/index.js';
import { UnknownTopicError } from '../errors.js';
import type { Logger } from '../log.js';
import { compileApp, type App, type CompiledApp } from '../procedures/index.js';
import { createCodec } from '../service/index.js';
import {
  appTopicsOf,
  EmbeddedLogReader,
  KafkaTopicReader,
  readAll,
  RecordDescriber,
  schemaBookOf,
  schemaTopicName,
  type AppTopic,
  type LogRecord,
  type TopicSource,
} from '../streams/index.js';

/** How often `--follow` looks at the embedded log's files for new records. */
const FOLLOW_POLL_MS = 200;

export interface TailOptions {
  readonly topic: string;
  readonly from: 'beginning' | 'end' | number;
  /** Keep printing new records until `signal` aborts. */
  readonly follow: boolean;
  /** Only this partition (else every partition). */
  readonly partition: number | undefined;
  /** Stop after this many records. */
  readonly limit: number | undefined;
}

/** Where a line goes (stdout, with backpressure). */
export type LineSink = (line: string) => Promise<void> | void;

/**
 * An app's topics as an operator tool reads them, on either transport, without taking anything
 * from a running farad: the embedded log's files read-only (no lock), or Kafka as a
 * read_committed reader outside the app's group.
 */
export interface ToolSource extends TopicSource {
  hasTopic(topic: string): boolean;
  startOffset(topic: string, partition: number): Promise<number> | number;
  /** Records of the partitions from the given offsets on, as they are written, until `signal` aborts. */
  follow(topic: string, from: ReadonlyMap<number, number>, signal: AbortSignal): AsyncIterable<readonly LogRecord[]>;
  close(): Promise<void>;
}

/** Opens the configured transport for reading (`farad tail`, `farad dlq list`). */
export async function openToolSource(app: CompiledApp, config: Config, logger: Logger): Promise<ToolSource> {
  if (config.transport === 'embedded') return embeddedSource(await EmbeddedLogReader.open(config.embedded.dataDir));
  const reader = await KafkaTopicReader.open(config.kafka, logger);
  try {
    await reader.describe(appTopicsOf(app).map((t) => t.name));
  } catch (err) {
    await reader.close();
    throw err;
  }
  return {
    hasTopic: (topic) => reader.hasTopic(topic),
    partitionsOf: (topic) => reader.partitionsOf(topic),
    startOffset: (topic, partition) => reader.startOffset(topic, partition),
    endOffset: (topic, partition) => reader.endOffset(topic, partition),
    readRange: (topic, partition, from) => reader.readRange(topic, partition, from),
    follow: (topic, from, signal) => reader.follow(topic, from, signal),
    close: () => reader.close(),
  };
}

function embeddedSource(reader: EmbeddedLogReader): ToolSource {
  return {
    hasTopic: (topic) => reader.hasTopic(topic),
    partitionsOf: (topic) => reader.partitionsOf(topic),
    startOffset: (topic, partition) => reader.startOffset(topic, partition),
    endOffset: (topic, partition) => reader.endOffset(topic, partition),
    readRange: (topic, partition, from) => reader.readRange(topic, partition, from),
    async *follow(topic, from, signal) {
      const next = new Map(from);
      while (!signal.aborted) {
        await reader.refresh();
        if (reader.hasTopic(topic)) {
          for (const [partition, offset] of next) {
            for await (const chunk of reader.readRange(topic, partition, offset)) {
              next.set(partition, chunk[chunk.length - 1]!.offset + 1);
              yield chunk;
            }
          }
        }
        await sleep(FOLLOW_POLL_MS, undefined, { signal }).catch(() => undefined);
      }
    },
    close: async () => reader.close(),
  };
}

/** The app's topic named `name`; UnknownTopicError listing the app's topics otherwise. */
export function appTopic(app: CompiledApp, name: string): AppTopic {
  const topics = appTopicsOf(app);
  const topic = topics.find((t) => t.name === name);
  if (!topic) {
    throw new UnknownTopicError(`app "${app.name}" has no topic "${name}"; its topics: ${topics.map((t) => `${t.name} (${t.role.replace('_', ' ')})`).join(', ')}`, { topic: name });
  }
  return topic;
}

/** A describer for the app's records; changelog rows are read with every table schema registered in `<app>-schemas`. */
export async function describerFor(app: CompiledApp, config: Config, source: ToolSource, withRows: boolean): Promise<RecordDescriber> {
  const codec = await createCodec(app, config);
  if (!withRows) return new RecordDescriber(app, codec, undefined);
  const schemas = schemaTopicName(app);
  const book = schemaBookOf(source.hasTopic(schemas) ? await readAll(source, schemas, 0) : []);
  return new RecordDescriber(app, codec, new RowCodec(app.tables.values(), app.droppedTables, book));
}

/**
 * `farad tail`: every record of one of the app's topics, decoded, as a JSON line, partition by
 * partition up to the end (as of the start), or — following — as they are written, until
 * `signal` aborts. Returns how many were printed.
 */
export async function tail(app: App, config: Config, options: TailOptions, logger: Logger, out: LineSink, signal: AbortSignal): Promise<number> {
  const compiled = compileApp(app, config.settings);
  const topic = appTopic(compiled, options.topic);
  const source = await openToolSource(compiled, config, logger);
  try {
    if (!source.hasTopic(topic.name)) {
      throw new UnknownTopicError(`topic "${topic.name}" of app "${compiled.name}" does not exist yet (farad creates the app's topics when it starts)`, { topic: topic.name });
    }
    const describer = await describerFor(compiled, config, source, topic.role === 'changelog');
    const partitions = source.partitionsOf(topic.name);
    if (options.partition !== undefined && options.partition >= partitions) {
      throw new UnknownTopicError(`topic "${topic.name}" has ${partitions} partitions (0 to ${partitions - 1}); there is no partition ${options.partition}`, { topic: topic.name });
    }
    const wanted = options.partition === undefined ? Array.from({ length: partitions }, (_, p) => p) : [options.partition];
    const from = new Map<number, number>();
    for (const p of wanted) {
      from.set(p, options.from === 'beginning' ? await source.startOffset(topic.name, p) : options.from === 'end' ? await source.endOffset(topic.name, p) : options.from);
    }
    const limit = options.limit ?? Infinity;
    let printed = 0;
    const print = async (records: readonly LogRecord[]): Promise<boolean> => {
      const take = records.slice(0, limit - printed);
      await describer.prepare(take);
      for (const record of take) await out(JSON.stringify(describer.describe(record)));
      printed += take.length;
      return printed < limit;
    };
    if (limit <= 0) return 0;
    if (options.follow) {
      const stop = new AbortController();
      const onAbort = (): void => stop.abort();
      signal.addEventListener('abort', onAbort);
      try {
        for await (const chunk of source.follow(topic.name, from, stop.signal)) {
          if (!(await print(chunk))) break;
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        stop.abort();
      }
      return printed;
    }
    for (const [partition, offset] of from) {
      if (offset >= (await source.endOffset(topic.name, partition))) continue;
      for await (const chunk of source.readRange(topic.name, partition, offset)) {
        if (signal.aborted || !(await print(chunk))) return printed;
      }
    }
    return printed;
  } finally {
    await source.close();
  }
}

// ---- command-line arguments -------------------------------------------------------------------

/** `--from`: beginning, end, or an offset. */
export function parseFromOption(value: string): 'beginning' | 'end' | number {
  if (value === 'beginning' || value === 'end') return value;
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  throw new InvalidArgumentError('give beginning, end or an offset (a non-negative integer)');
}

/** A non-negative integer argument (`--partition`, `--limit`). */
export function parseCountOption(value: string): number {
  if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  throw new InvalidArgumentError('give a non-negative integer');
}

/** Lines to stdout, waiting when the pipe is full; a closed pipe (`| head`) ends the command quietly. */
export function stdoutLines(): LineSink {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  return (line) => {
    if (process.stdout.write(`${line}\n`)) return;
    return new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  };
}

/** A positive integer argument (`--batch-size`). */
export function parsePositiveOption(value: string): number {
  if (/^\d+$/.test(value) && Number(value) >= 1 && Number.isSafeInteger(Number(value))) return Number(value);
  throw new InvalidArgumentError('give a positive integer');
}
