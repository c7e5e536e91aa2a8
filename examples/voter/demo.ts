/**
 * The Voter demo: runs the Voter app on the embedded log with a built-in load generator and
 * shows the live leaderboard until Ctrl-C. `npm start` runs this.
 *
 *   npm start -- --rate 50000 --phones 200000 --duration 30
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createLogger, loadConfig, startService } from '../../src/index.js';
import app, { type LeaderboardRow } from './index.js';
import { VoteGenerator } from './load-generator.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: process.env['FARAD_DEMO_RATE'] ?? '20000' },
    phones: { type: 'string', default: '100000' },
    duration: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  process.stdout.write('usage: npm start -- [--rate votes/s] [--phones N] [--duration seconds]\n');
  process.exit(0);
}
const rate = Number(args.rate);
const durationMs = args.duration === undefined ? Infinity : Number(args.duration) * 1000;
if (!(rate > 0) || !(Number(args.phones) > 0) || !(durationMs > 0)) {
  process.stderr.write('--rate, --phones and --duration must be positive numbers\n');
  process.exit(2);
}

const config = loadConfig({ overrides: { logLevel: 'warn' } });
const service = await startService(app, config, { logger: createLogger(config.logLevel) });
const event = service.ingest.inputEvent('voter.Vote');
const generator = new VoteGenerator({ phones: Number(args.phones), invalidShare: 0.01, seed: Date.now() % 2 ** 31 });

let processedThisRun = 0;
service.host.committed$.subscribe(({ records }) => (processedThisRun += records));
const leaderboard = async () => (await service.reads.query('leaderboard')).body as LeaderboardRow[];
// Reads answer once every partition has restored.
while (!service.host.readiness().ready) await new Promise((r) => setTimeout(r, 20));
const acceptedAtStart = (await leaderboard()).reduce((sum, row) => sum + row.votes, 0);

// Load: every tick, append what is due at the target rate; one append in flight at a time.
let sent = 0;
let inFlight: Promise<void> | undefined;
let stopped = false;
const started = performance.now();
const load = setInterval(() => {
  if (inFlight || stopped) return;
  const due = Math.min(Math.floor((rate * (performance.now() - started)) / 1000) - sent, 20_000);
  if (due <= 0) return;
  const now = Date.now();
  const records = Array.from({ length: due }, () => service.ingest.record(event, generator.next(), now));
  inFlight = service.ingest.send(event, records).then(
    () => {
      sent += due;
      inFlight = undefined;
    },
    (err: unknown) => {
      inFlight = undefined;
      if (!stopped) process.stderr.write(`load generator: ${String(err)}\n`);
    },
  );
}, 20);

let lastProcessed = 0;
let lastTick = performance.now();
const render = async (final = false): Promise<void> => {
  const rows = await leaderboard();
  const now = performance.now();
  const perSecond = Math.round(((processedThisRun - lastProcessed) * 1000) / (now - lastTick));
  lastProcessed = processedThisRun;
  lastTick = now;
  const accepted = rows.reduce((sum, row) => sum + row.votes, 0);
  const top = Math.max(1, ...rows.map((row) => row.votes));
  const lines = [
    `farad · Voter demo · embedded log (${config.dataDir}) · ${service.app.partitions} partitions · http://localhost:${service.address.port}`,
    '',
    `  votes sent ${sent.toLocaleString()}   processed ${processedThisRun.toLocaleString()}   ` +
      `${final ? 'average' : 'now'} ${(final ? Math.round((processedThisRun * 1000) / (now - started)) : perSecond).toLocaleString()} votes/s`,
    `  accepted ${accepted.toLocaleString()} (all runs)   rejected this run ${(processedThisRun - (accepted - acceptedAtStart)).toLocaleString()}`,
    '',
    ...rows.map(
      (row, i) =>
        `  ${i + 1}. ${row.name.padEnd(16)} ${row.votes.toLocaleString().padStart(12)}  ${'█'.repeat(Math.round((row.votes / top) * 30))}`,
    ),
    '',
    final ? '  stopped.' : '  Ctrl-C to stop',
  ];
  if (process.stdout.isTTY && !final) process.stdout.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
  else process.stdout.write(`${lines.join('\n')}\n\n`);
};
const display = setInterval(() => void render(), 1000);

const shutdown = async (): Promise<void> => {
  if (stopped) return;
  stopped = true;
  clearInterval(load);
  clearInterval(display);
  await inFlight;
  // Let the partitions catch up with what was sent (bounded), show the result, then stop.
  const deadline = performance.now() + 5000;
  while (processedThisRun < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await render(true);
  await service.stop();
  process.exit(0);
};
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
if (Number.isFinite(durationMs)) setTimeout(() => void shutdown(), durationMs);
