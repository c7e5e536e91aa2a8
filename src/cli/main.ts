#!/usr/bin/env node
import { Command, Option } from 'commander';
import { dataDirError, environmentVariables, loadConfig, type Config } from '../config/index.js';
import { FaradError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { startService } from '../service/index.js';
import type { App } from '../procedures/index.js';
import { availableCores, superviseWorkers, workerLinkFromEnvironment } from '../workers/index.js';
import { loadApp } from './load-app.js';
import { produce } from './produce.js';
import { snapshotCommand } from './snapshot.js';

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
  .argument('[file]', "JSON-lines file, or '-' for standard input", '-')
  .action(async (file: string, opts: { app: string; type: string; config?: string; url?: string; token?: string }) => {
    const app = await loadApp(opts.app);
    const config: Config = loadConfig({ file: opts.config, settingNames: settingNamesOf(app) });
    const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
    logWarnings(config, logger);
    await produce(app, config, { type: opts.type, input: file, url: opts.url, token: opts.token }, logger).catch(explained(config));
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
