#!/usr/bin/env node
import { Command, Option } from 'commander';
import { dataDirError, environmentVariables, loadConfig, type Config } from '../config/index.js';
import { FaradError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { startService } from '../service/index.js';
import type { App } from '../procedures/index.js';
import { availableCores, superviseWorkers, workerLinkFromEnvironment } from '../workers/index.js';
import { initApp, nextSteps } from './init.js';
import { loadApp } from './load-app.js';
import { produce } from './produce.js';
import { repartitionCommand } from './repartition.js';
import { snapshotCommand } from './snapshot.js';
import { DEAD_LETTER_REASONS } from '../streams/index.js';
import { DEFAULT_BATCH_SIZE, dlqList, dlqReplay, parseSinceOption } from './dlq.js';
import { parseCountOption, parseFromOption, parsePositiveOption, stdoutLines, tail } from './tail.js';

/**
 * A worker's young generation: 32 MB semi-spaces instead of V8's 16 MB default; the event
 * loop's short-lived records (decoded events, undo entries, output records) then die young, so
 * fewer are copied and promoted, and less CPU goes to garbage collection per event.
 */
const WORKER_V8_FLAGS = ['--max-semi-space-size=32'];

const program = new Command('farad')
  .description('farad: stored procedures over partitioned, replicated in-memory state, fed by Kafka or an embedded log')
  .showHelpAfterError()
  .addHelpText('after', `\nEvery setting can be overridden by environment:\n  ${environmentVariables().join('\n  ')}`);

program
  .command('run')
  .description('run an app (transport from FARAD_TRANSPORT, embedded by default) until SIGINT/SIGTERM')
  .requiredOption('--app <dir>', 'directory (or file) of the app: its default export is defineApp({...})')
  .option('--config <file>', 'YAML or JSON configuration file')
  .action(async (opts: { app: string; config?: string }) => {
    const app = await loadApp(opts.app);
    const config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.log.level);
    const worker = workerLinkFromEnvironment();
    const workers = config.transport === 'kafka' ? config.workers || availableCores() : 1;
    if (!worker && workers > 1) {
      process.exitCode = await superviseWorkers({ workers, logger, execArgv: WORKER_V8_FLAGS });
      return;
    }
    const service = await startService(app, config, { logger, worker }).catch(explained(config));
    worker?.started();
    service.done.catch(() => {
      logger.fatal('processing stopped on an error it cannot recover from; exiting so the instance is restarted');
      void service.stop().finally(() => process.exit(1));
    });
    const stop = (why: string) => {
      logger.info({ why }, 'stopping');
      service.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    if (worker) {
      // The primary says when to stop (a terminal's Ctrl-C reaches every process of the group).
      worker.onStop(stop);
      process.on('SIGINT', () => undefined);
      process.once('SIGTERM', () => stop('SIGTERM'));
    } else {
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    }
  });

program
  .command('produce')
  .description('append events from JSON lines (one event per line) and show progress')
  .requiredOption('--app <dir>', 'directory (or file) of the app')
  .requiredOption('--type <event>', 'event type: Avro full name (voter.Vote) or short name (Vote)')
  .option('--config <file>', 'YAML or JSON configuration file')
  .option('--url <url>', 'send through a running farad at this URL instead of writing the log directly')
  .addOption(new Option('--token <token>', 'bearer token for --url').env('FARAD_HTTP_TOKEN'))
  .option('--skip-invalid', 'send every valid line, report each invalid one (line number, reason) on stderr, and exit 2 if any was skipped')
  .argument('[file]', "JSON-lines file, or '-' for standard input", '-')
  .action(async (file: string, opts: { app: string; type: string; config?: string; url?: string; token?: string; skipInvalid?: boolean }) => {
    const app = await loadApp(opts.app);
    const config: Config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    logWarnings(config, logger);
    await produce(app, config, { type: opts.type, input: file, url: opts.url, token: opts.token, skipInvalid: opts.skipInvalid }, logger).catch(explained(config));
  });

program
  .command('init')
  .description('create a new app in <dir>: package.json (farad as a dependency), tsconfig, one event, one procedure, a test with farad/testing')
  .argument('<dir>', 'directory to create (must be new or empty)')
  .option('--name <name>', "app name (default: the directory's name)")
  .option('--farad <spec>', 'the farad dependency to write: a version range, a tarball (.tgz) or a directory (default: this farad)')
  .action((dir: string, opts: { name?: string; farad?: string }) => {
    const files = initApp(dir, opts);
    process.stdout.write(`${nextSteps(dir, files).join('\n')}\n`);
  });

const snapshot = program.command('snapshot').description('list, take and restore partition snapshots in Redis (needs redis.url / FARAD_REDIS_URL)');
const partitionsOption = new Option('--partition <p...>', 'only these partitions').argParser((value: string, previous: number[] = []) => [...previous, Number(value)]);
for (const [action, description] of [
  ['list', 'list stored snapshots per partition'],
  ['take', 'take snapshots now: current snapshot + changelog tail, written as a new snapshot (safe while farad runs)'],
  ['restore', 'restore partitions from their snapshot + changelog tail and report; with --id, publish that snapshot as current'],
] as const) {
  const sub = snapshot
    .command(action)
    .description(description)
    .requiredOption('--app <dir>', 'directory (or file) of the app')
    .option('--config <file>', 'YAML or JSON configuration file')
    .addOption(partitionsOption);
  if (action === 'restore') sub.option('--id <id>', 'snapshot id (from `farad snapshot list`)');
  sub.action(async (opts: { app: string; config?: string; partition?: number[]; id?: string }) => {
    const app = await loadApp(opts.app);
    const config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    logWarnings(config, logger);
    await snapshotCommand(app, config, { action, partitions: opts.partition, id: opts.id }, logger, (line) => process.stdout.write(`${line}\n`)).catch(explained(config));
  });
}

program
  .command('repartition')
  .description('grow the app to more partitions; with --plan, read its state and say where every row would go (changes nothing)')
  .requiredOption('--app <dir>', 'directory (or file) of the app')
  .requiredOption('--partitions <n>', 'the new partition count, larger than today', parsePositiveOption)
  .option('--config <file>', 'YAML or JSON configuration file')
  .option('--plan', 'only report what the move would do')
  .action(async (opts: { app: string; partitions: number; config?: string; plan?: boolean }) => {
    const app = await loadApp(opts.app);
    const config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    logWarnings(config, logger);
    await repartitionCommand(app, config, { partitions: opts.partitions, plan: opts.plan === true }, logger, (line) => process.stdout.write(`${line}\n`)).catch(explained(config));
  });

program
  .command('tail')
  .description('print a topic of the app as JSON lines, decoded (outputs, dead letters, changelog, inputs, ...); reads only, safe while farad runs')
  .argument('<topic>', 'a topic of the app: an input or output, <app>-dlq, <app>-changelog, <app>-dlq-replays, ...')
  .requiredOption('--app <dir>', 'directory (or file) of the app')
  .option('--config <file>', 'YAML or JSON configuration file')
  .option('--from <where>', 'beginning, end, or an offset (in every partition read)', parseFromOption, 'beginning' as const)
  .option('--follow', 'keep printing records as they are written, until Ctrl-C')
  .option('--partition <p>', 'only this partition', parseCountOption)
  .option('--limit <n>', 'stop after n records', parseCountOption)
  .action(async (topic: string, opts: { app: string; config?: string; from: 'beginning' | 'end' | number; follow?: boolean; partition?: number; limit?: number }) => {
    const app = await loadApp(opts.app);
    const config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    logWarnings(config, logger);
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    const options = { topic, from: opts.from, follow: opts.follow ?? false, partition: opts.partition, limit: opts.limit };
    await tail(app, config, options, logger, stdoutLines(), stop.signal).catch(explained(config));
  });

const dlq = program.command('dlq').description('list and replay dead letters (<app>-dlq)');
const reasonOption = new Option('--reason <reason>', 'only dead letters of this reason').choices(DEAD_LETTER_REASONS);
const sinceOption = new Option('--since <when>', 'only dead letters from then on (record time): an ISO time, or a duration back from now (1h, 30m, 2d)').argParser(parseSinceOption);
dlq
  .command('list')
  .description('the dead letters: a summary by reason and event type, then one line each (replayed or not, and why not)')
  .requiredOption('--app <dir>', 'directory (or file) of the app')
  .option('--config <file>', 'YAML or JSON configuration file')
  .addOption(reasonOption)
  .addOption(sinceOption)
  .action(async (opts: { app: string; config?: string; reason?: string; since?: number }) => {
    const app = await loadApp(opts.app);
    const config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    logWarnings(config, logger);
    await dlqList(app, config, { reason: opts.reason, since: opts.since }, logger, stdoutLines()).catch(explained(config));
  });
dlq
  .command('replay')
  .description('write dead letters back to their input topic partition (after a fix), each exactly once, recorded in <app>-dlq-replays; progress on stderr')
  .requiredOption('--app <dir>', 'directory (or file) of the app')
  .option('--config <file>', 'YAML or JSON configuration file')
  .addOption(reasonOption)
  .addOption(sinceOption)
  .option('--dry-run', 'show what would be replayed; write nothing')
  .option('--batch-size <n>', 'dead letters per atomic commit (Kafka transaction, journal frame)', parsePositiveOption, DEFAULT_BATCH_SIZE)
  .option('--url <url>', 'replay through the running farad at this URL (embedded log; found on http.port when it holds the data directory)')
  .addOption(new Option('--token <token>', 'bearer token for the running farad').env('FARAD_HTTP_TOKEN'))
  .action(async (opts: { app: string; config?: string; reason?: string; since?: number; dryRun?: boolean; batchSize: number; url?: string; token?: string }) => {
    const app = await loadApp(opts.app);
    const config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    logWarnings(config, logger);
    const options = { filter: { reason: opts.reason, since: opts.since }, dryRun: opts.dryRun ?? false, batchSize: opts.batchSize, url: opts.url, token: opts.token };
    await dlqReplay(app, config, options, logger, stdoutLines()).catch(explained(config));
  });

/**
 * Re-throws a start-up failure the OS reported about a setting (a data directory that is a file,
 * say) as a ConfigError naming the setting and its source, so it ends as one line, exit status 2.
 */
function explained(config: Config): (err: unknown) => never {
  return (err) => {
    throw dataDirError(err, config) ?? err;
  };
}

/** `run` logs the config's warnings when it starts the service; the other commands log them here. */
function logWarnings(config: Config, logger: Logger): void {
  for (const warning of config.warnings) logger.warn({ warning }, 'setting has no effect');
}

/** The app's setting names, so `FARAD_SETTINGS_MAX_QPS` finds `maxQPS`. */
function settingNamesOf(app: App): string[] {
  return Object.keys(app.spec.settings ?? {});
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Start-up and command errors farad understands (config, app, data directory, address) are
  // one line and exit status 2; anything else is a bug, reported with its stack.
  if (err instanceof FaradError) {
    process.stderr.write(`farad: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
