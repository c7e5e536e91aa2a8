/**
 * The end-of-run checks of the Kafka cluster: reads the input and output topics (read_committed,
 * counted again by kcat), the changelog's producer epochs, the balances table, the leaderboard and
 * the consistent total of every instance, and hands them to the ledger's pure checks.
 */
import { readFileSync } from 'node:fs';
import type { Kafka } from 'kafkajs';
import { soakApp } from './app.js';
import { readyz, type Cluster } from './cluster.js';
import { SingleObjects } from '../../test/integration/single-objects.js';
import { readTable } from './embedded.js';
import { endOffsets, kcatCounts, readTopic, type RawRecord } from './kafka.js';
import { checkBank, checkEpochs, checkInputs, checkLeaderboard, checkVoter, longestStall, type InputRecord, type LedgerEntry, type OutputRecord } from './ledger.js';
import type { SoakNames } from './names.js';

export interface ClusterCheck {
  readonly violations: string[];
  readonly stats: Record<string, unknown>;
}

export function readLedger(file: string): Map<string, LedgerEntry> {
  const ledger = new Map<string, LedgerEntry>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const entry = JSON.parse(line) as LedgerEntry;
    ledger.set(entry.id, entry);
  }
  return ledger;
}

export async function checkCluster(kafka: Kafka, cluster: Cluster, names: SoakNames, suffix: string, ledgerFile: string): Promise<ClusterCheck> {
  const objects = new SingleObjects(soakApp(suffix));
  const violations: string[] = [];
  const decode = (r: RawRecord): { name: string; value: Record<string, unknown> } => {
    const where = `${r.topic} ${r.partition}/${r.offset}`;
    if (!r.value) throw new Error(`not a single object at ${where}`);
    return objects.decodeBytes(r.value, where);
  };
  const decodeInput = (r: RawRecord): InputRecord => {
    const { name: type, value } = decode(r);
    return { partition: r.partition, offset: r.offset, id: r.headers['soak-id'] ?? null, type, key: r.key, value, timestamp: r.timestamp };
  };
  const decodeOutput = (r: RawRecord): OutputRecord => {
    const { name: type, value } = decode(r);
    return { topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, type, value, timestamp: r.timestamp, ...(r.producerId !== undefined ? { producerId: r.producerId } : {}), ...(r.epoch !== undefined ? { epoch: r.epoch } : {}) };
  };
  /** read_committed through kafkajs, counted again by kcat (librdkafka filters aborted transactions its own way). */
  const committed = async (topic: string): Promise<RawRecord[]> => {
    // Both count below the same end offsets: the instances may still append (a consistent query's
    // round writes its partitions' offsets to the changelog).
    const admin = kafka.admin();
    await admin.connect();
    const ends = await endOffsets(admin, topic).finally(() => admin.disconnect());
    const records = await readTopic(kafka, topic);
    const counts = new Map<number, number>();
    for (const r of records) if (r.offset < (ends.get(r.partition) ?? 0)) counts.set(r.partition, (counts.get(r.partition) ?? 0) + 1);
    const kcat = kcatCounts(topic, ends);
    if (kcat) {
      const differ = [...new Set([...counts.keys(), ...kcat.keys()])].filter((p) => (counts.get(p) ?? 0) !== (kcat.get(p) ?? 0));
      if (differ.length > 0) violations.push(`${topic}: read_committed readers disagree: ${differ.map((p) => `partition ${p}: kafkajs ${counts.get(p) ?? 0}, kcat ${kcat.get(p) ?? 0}`).join('; ')}`);
    }
    return records;
  };

  const ledger = readLedger(ledgerFile);
  const votes = (await readTopic(kafka, names.votes)).map(decodeInput);
  const transactions = (await readTopic(kafka, names.transactions)).map(decodeInput);
  const inputs = checkInputs(ledger, [...votes, ...transactions]);
  violations.push(...inputs.violations);

  const voteResults = (await committed(names.voteResults)).map(decodeOutput);
  const rejections = (await committed(names.rejections)).map(decodeOutput);
  const transferResults = (await committed(names.transferResults)).map(decodeOutput);
  const voter = checkVoter(votes, voteResults);
  violations.push(...voter.violations);

  const base = cluster.instances[0]!.base;
  const table = await readTable(base, 'balances', (v) => Number((v as { balance: number }).balance));
  const bank = checkBank(transactions, rejections, transferResults, table);
  violations.push(...bank.violations);

  for (const [n, i] of cluster.instances.entries()) {
    const board = await fetchJson(`${i.base}/queries/leaderboard`);
    if (!Array.isArray(board)) violations.push(`${cluster.name(n)}: GET /queries/leaderboard did not answer: ${JSON.stringify(board)}`);
    else violations.push(...checkLeaderboard(cluster.name(n), board as Array<{ contestantNumber: number; votes: number }>, voter.leaderboard));
    const total = (await fetchJson(`${i.base}/queries/total`)) as { total?: number } | undefined;
    if (total?.total !== bank.total) violations.push(`${cluster.name(n)}: GET /queries/total answers ${JSON.stringify(total)}, deposits − accepted withdrawals = ${bank.total}`);
  }

  // Fencing: the outputs and the changelog, committed, by producer epoch.
  const changelog = await committed(names.changelog);
  const epochs = checkEpochs([...voteResults, ...rejections, ...transferResults, ...changelog.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, type: 'change', value: {}, timestamp: r.timestamp, ...(r.producerId !== undefined ? { producerId: r.producerId } : {}), ...(r.epoch !== undefined ? { epoch: r.epoch } : {}) }))]);
  violations.push(...epochs.violations);
  const epochsSeen = new Set([...changelog, ...voteResults].map((r) => `${r.producerId}:${r.epoch}`)).size;

  const dead = await committed(names.dlq);
  if (dead.length > 0) violations.push(`${dead.length} dead letters (every event the soak sends is valid), e.g. ${JSON.stringify(dead.slice(0, 3).map((r) => r.headers))}`);

  const answers = await Promise.all(cluster.instances.map((i) => readyz(i.base)));
  const notReady = answers.map((a, n) => (a?.ready ? undefined : cluster.name(n))).filter((x) => x !== undefined);
  if (notReady.length > 0) violations.push(`instances not ready (/readyz) at the end: ${notReady.join(', ')}: ${await cluster.describe()}`);
  else if (!(await cluster.complete())) violations.push(`placement not complete at the end (each partition active once, standing by elsewhere): ${await cluster.describe()}`);

  const stall = longestStall(voter.latencies);
  return {
    violations,
    stats: {
      ...inputs.stats,
      ...voter.stats,
      ...bank.stats,
      total: bank.total,
      accounts: bank.balances.size,
      changelogRecords: changelog.length,
      producerEpochsSeen: epochsSeen,
      ...epochs.stats,
      longestStall: { ms: stall.maxLatencyMs, partition: stall.partition, at: stall.at ? new Date(stall.at).toISOString() : null },
      voteLatencyP99Ms: stall.p99Ms,
    },
  };
}

async function fetchJson(url: string): Promise<unknown> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
      const text = await res.text();
      if (res.status === 200) return JSON.parse(text);
      if (attempt === 9) return { status: res.status, body: text.slice(0, 300) };
    } catch (err) {
      if (attempt === 9) return { error: (err as Error).message };
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return undefined;
}
