/**
 * mp-transfers: multi-partition transactions on the embedded log (the bank example, 4
 * partitions). (1) Transfers alone: multi-partition transactions per second, against the same
 * number of single-partition deposits. (2) A steady 1% share of transfers among deposits: events
 * per second against deposits alone, i.e. what that share costs single-partition throughput.
 */
import { performance } from 'node:perf_hooks';
import bank from '../examples/bank/index.js';
import { createLogger, EmbeddedLog, Ingest, loadConfig, startService, type OutRecord } from '../src/index.js';
import { compileApp, MP_TABLE } from '../src/procedures/index.js';
import { createCodec } from '../src/service/index.js';
import { progress, ratio, removeDir, round, tempDir, type BenchContext, type ScenarioReport } from './lib.js';

const ACCOUNTS = 10_000;

interface Run {
  seconds: number;
  events: number;
}

/** Appends deposits (and transfers, every `transferEvery`-th event) to a fresh log, then times the service until all is processed. */
async function run(label: string, events: number, transferEvery: number | undefined, onlyTransfers = false): Promise<Run> {
  const dataDir = tempDir('farad-bench-mp-');
  const compiled = compileApp(bank);
  const logger = createLogger('warn');
  const config = loadConfig({ env: {}, overrides: { transport: 'embedded', dataDir, logLevel: 'warn', http: { port: 0, host: '127.0.0.1' } } });
  try {
    const catalog = await createCodec(compiled, config);
    const log = await EmbeddedLog.open({ dataDir, logger, group: compiled.name, inputTopics: compiled.inputTopics, changelogTopic: compiled.changelogTopic, partitions: compiled.partitions });
    await log.ensureTopics(compiled.inputTopics.map((name) => ({ name, partitions: compiled.partitions, exactPartitions: 'input' as const })));
    const ingest = new Ingest(compiled, catalog, log);
    const deposit = ingest.inputEvent('bank.Deposit');
    const transfer = ingest.inputEvent('bank.Transfer');
    const account = (i: number) => `a${i % ACCOUNTS}`;
    // Every account starts with money, so transfers mostly complete.
    const opening: OutRecord[] = Array.from({ length: ACCOUNTS }, (_, i) => ingest.record(deposit, { account: account(i), amount: 1_000_000 }));
    await log.append(opening);
    const records: OutRecord[] = [];
    for (let i = 0; i < events; i++) {
      const isTransfer = onlyTransfers || (transferEvery !== undefined && i % transferEvery === 0);
      records.push(
        isTransfer
          ? ingest.record(transfer, { transferId: `t${i}`, from: account(i * 7919), to: account(i * 104_729 + 1), amount: 1 + (i % 50) })
          : ingest.record(deposit, { account: account(i * 31), amount: 1 + (i % 100) }),
      );
      if (records.length === 20_000) await log.append(records.splice(0));
    }
    await log.append(records);
    await log.close();

    const service = await startService(bank, config, { http: false, logger });
    const t0 = performance.now();
    for (;;) {
      const lag = service.log.consumerLag();
      if (lag.length === compiled.partitions && lag.every((l) => l.lag === 0) && settled(service)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const seconds = (performance.now() - t0) / 1000;
    await service.stop();
    progress(`mp-transfers: ${label}: ${events.toLocaleString('en-US')} events in ${seconds.toFixed(2)} s (${Math.round(events / seconds).toLocaleString('en-US')}/s)`);
    return { seconds, events };
  } finally {
    removeDir(dataDir);
  }
}

/** No multi-partition round open or queued, no partition held. */
function settled(service: Awaited<ReturnType<typeof startService>>): boolean {
  for (let p = 0; p < service.app.partitions; p++) {
    const state = service.host.local(p)?.state;
    if (!state) return false;
    for (const [key, row] of state.store(MP_TABLE).entries()) {
      if (key !== 'coordinator' && key !== 'participant') return false; // a queued request or a vote
      const s = JSON.parse((row as { json: string }).json) as { held?: number | null; head?: number; tail?: number; open?: unknown };
      if (s.held || s.head !== s.tail || s.open) return false;
    }
  }
  return true;
}

export async function mpTransfers(_ctx: BenchContext, n: number, mix: number): Promise<ScenarioReport> {
  const transfers = await run('transfers only', n, undefined, true);
  const deposits = await run('deposits only (baseline)', n, undefined);
  const mixed = await run('1% transfers among deposits', mix, 100);
  const depositsMix = await run('deposits only, same count (baseline)', mix, undefined);
  const mpRate = transfers.events / transfers.seconds;
  const spRate = deposits.events / deposits.seconds;
  const mixRate = mixed.events / mixed.seconds;
  const spMixRate = depositsMix.events / depositsMix.seconds;
  return {
    rows: [
      { scenario: 'mp-transfers', eventsPerSec: round(mpRate), p50Ms: null, p99Ms: null, baseline: 'single-partition-deposits', baselineEventsPerSec: round(spRate), ratio: ratio(mpRate, spRate) },
      { scenario: 'mp-1pct-share', eventsPerSec: round(mixRate), p50Ms: null, p99Ms: null, baseline: 'single-partition-deposits', baselineEventsPerSec: round(spMixRate), ratio: ratio(mixRate, spMixRate) },
    ],
    details: [
      `Bank example on the embedded log, 4 partitions, ${ACCOUNTS.toLocaleString('en-US')} accounts, events already in the log; timed from service start until input is read to its end and no multi-partition round is open.`,
      `mp-transfers: ${n.toLocaleString('en-US')} transfers between random accounts (nearly all across partitions): ${Math.round(mpRate).toLocaleString('en-US')} multi-partition transactions/s, against ${Math.round(spRate).toLocaleString('en-US')} single-partition deposits/s.`,
      `mp-1pct-share: ${mix.toLocaleString('en-US')} events, every 100th a transfer: ${Math.round(mixRate).toLocaleString('en-US')} events/s, against ${Math.round(spMixRate).toLocaleString('en-US')} events/s of deposits alone (ratio = what a steady 1% share of multi-partition transactions leaves of single-partition throughput).`,
    ],
  };
}
