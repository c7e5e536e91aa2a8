/**
 * kill -9 during compaction and segment deletion loses nothing. A child process
 * (churn-child.ts) churns an embedded log with 64 KiB segments and 64 KiB retention, so the
 * cleaner rewrites and deletes segments all the time; it prints every acknowledged write. The
 * parent SIGKILLs it at random points — half of the time right as a rewrite's `.tmp` file
 * appears — reopens the directory and checks it against the tally of acknowledged writes: the
 * latest value of every key, every unprocessed input record, the committed offsets, the topics,
 * and every surviving record at the offset it was written at. Then the child goes on.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger, EmbeddedLog, type LogRecord } from '../../src/index.js';
import { BATCH, CHURN_TOPICS, WORKERS } from './churn-child.js';
import { ROOT, prng, sleep, tempDir, waitFor } from './helpers.js';

const CYCLES = 12;
/** Aimed kills can all miss on a busy machine (the rewrite ends first): more cycles until one lands. */
const MAX_CYCLES = 40;

interface Change {
  readonly key: string;
  /** The value's sequence number; undefined: a delete. */
  readonly seq: number | undefined;
  readonly offset: number;
}

/** What the child acknowledged, across all its runs. */
class Tally {
  /** Input records: `${w}:${offset}` → seq. */
  readonly inputs = new Map<string, number>();
  readonly committed = new Array<number>(WORKERS).fill(0);
  /** Changelog records by `${w}:${offset}`. */
  readonly changes = new Map<string, Change>();
  /** Latest acknowledged change per key. */
  readonly latest = new Map<string, Change & { partition: number }>();
  readonly changelogEnd = new Array<number>(WORKERS).fill(0);
  readonly ackedSeqs = new Set<number>();
  /** A batch each worker sent and saw no ack for (yet). */
  readonly inFlight = new Array<string | undefined>(WORKERS).fill(undefined);
  /** Keys a batch without an ack deleted after their last acknowledged write: on disk or not, either is right. */
  readonly maybeDeleted = new Set<string>();
  maxSeq = 0;
  commits = 0;

  line(text: string): void {
    const parts = text.split(' ');
    if (parts[0] === 'in') {
      const [w, offset, seq] = parts.slice(1).map(Number) as [number, number, number];
      this.inputs.set(`${w}:${offset}`, seq);
      this.maxSeq = Math.max(this.maxSeq, seq);
    } else if (parts[0] === 'try') {
      this.inFlight[Number(parts[1])] = parts[2];
    } else if (parts[0] === 'commit') {
      this.inFlight[Number(parts[1])] = undefined;
      const [w, committed, next] = parts.slice(1, 4).map(Number) as [number, number, number];
      this.committed[w] = Math.max(this.committed[w]!, committed);
      this.changelogEnd[w] = Math.max(this.changelogEnd[w]!, next);
      parts[4]!.split(',').forEach((entry, i) => {
        const [key, value] = entry.split('=') as [string, string];
        const change: Change = { key, seq: value === 'del' ? undefined : Number(value), offset: next - BATCH + i };
        this.changes.set(`${w}:${change.offset}`, change);
        this.latest.set(key, { ...change, partition: w });
        this.maybeDeleted.delete(key);
        if (change.seq !== undefined) {
          this.maxSeq = Math.max(this.maxSeq, change.seq);
          this.ackedSeqs.add(change.seq);
        }
      });
      this.commits++;
    }
  }

  /** The child is gone: its batches without an ack may or may not be on disk. */
  killed(): void {
    for (const batch of this.inFlight) {
      for (const entry of batch?.split(',') ?? []) {
        const [key, value] = entry.split('=') as [string, string];
        if (value === 'del') this.maybeDeleted.add(key);
      }
    }
    this.inFlight.fill(undefined);
  }
}

function readAll(log: EmbeddedLog, topic: string, partition: number): LogRecord[] {
  const out: LogRecord[] = [];
  for (let from = 0; ; ) {
    const chunk = log.read(topic, partition, from, 10_000);
    if (chunk.length === 0) return out;
    out.push(...chunk);
    from = chunk[chunk.length - 1]!.offset + 1;
  }
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

/** Reopens the directory (recovery runs) and checks it against the tally. */
async function verify(dataDir: string, tally: Tally, cycle: number): Promise<{ changelogRecords: number; changelogStart: number }> {
  const log = await EmbeddedLog.open({
    dataDir,
    logger: createLogger('silent'),
    group: CHURN_TOPICS.group,
    inputTopics: [CHURN_TOPICS.input],
    changelogTopic: CHURN_TOPICS.changelog,
    partitions: WORKERS,
  });
  let changelogRecords = 0;
  let changelogStart = 0;
  try {
    for (const topic of [CHURN_TOPICS.input, CHURN_TOPICS.output, CHURN_TOPICS.changelog]) {
      assert.ok(log.hasTopic(topic), `cycle ${cycle}: topic ${topic} survived`);
      assert.equal(log.partitionsOf(topic), WORKERS);
    }
    for (let w = 0; w < WORKERS; w++) {
      const committed = log.committedOffset(CHURN_TOPICS.group, CHURN_TOPICS.input, w);
      assert.ok(committed >= tally.committed[w]!, `cycle ${cycle}: partition ${w} committed ${committed} < acknowledged ${tally.committed[w]}`);
      // Unprocessed input is all there; whatever input is left is what was written at its offset.
      const inputs = new Map(readAll(log, CHURN_TOPICS.input, w).map((r) => [r.offset, r.value!.toString()]));
      for (const [where, seq] of tally.inputs) {
        const [pw, offset] = where.split(':').map(Number) as [number, number];
        if (pw !== w) continue;
        if (offset >= committed) assert.equal(inputs.get(offset), String(seq), `cycle ${cycle}: unprocessed input ${w}@${offset} lost`);
        else if (inputs.has(offset)) assert.equal(inputs.get(offset), String(seq), `cycle ${cycle}: input ${w}@${offset} changed`);
      }
      assert.ok(log.endOffset(CHURN_TOPICS.changelog, w) >= tally.changelogEnd[w]!, `cycle ${cycle}: changelog ${w} end went back`);
      // Surviving changelog records sit at the offsets they were written at.
      const changelog = readAll(log, CHURN_TOPICS.changelog, w);
      changelogRecords += changelog.length;
      changelogStart = Math.max(changelogStart, log.startOffset(CHURN_TOPICS.changelog, w));
      const found = new Map<string, LogRecord>();
      for (const r of changelog) {
        const acked = tally.changes.get(`${w}:${r.offset}`);
        if (acked) {
          assert.equal(r.key!.toString(), acked.key, `cycle ${cycle}: changelog ${w}@${r.offset} has another key`);
          assert.equal(r.value?.toString(), acked.seq === undefined ? undefined : String(acked.seq), `cycle ${cycle}: changelog ${w}@${r.offset} has another value`);
        } else {
          // Written but not acknowledged (the kill came between the fsync and the ack line): one of this worker's keys, a sequence number never acknowledged.
          assert.ok(r.key!.toString().startsWith(`w${w}-`), `cycle ${cycle}: changelog ${w}@${r.offset} has a key of another worker`);
          assert.ok(r.value === null || !tally.ackedSeqs.has(Number(r.value.toString())), `cycle ${cycle}: changelog ${w}@${r.offset} repeats an acknowledged value`);
        }
        found.set(r.key!.toString(), r);
      }
      // The latest value of every key is what was acknowledged last (or a later write that was in flight).
      for (const [key, last] of tally.latest) {
        if (last.partition !== w) continue;
        const record = found.get(key);
        const later = record !== undefined && record.offset > last.offset;
        if (last.seq === undefined) {
          assert.ok(record === undefined || record.value === null || later, `cycle ${cycle}: deleted key ${key} came back`);
        } else {
          if (record === undefined && tally.maybeDeleted.has(key)) continue; // a delete that was in flight, its marker since dropped
          assert.ok(record !== undefined, `cycle ${cycle}: key ${key} lost (last acknowledged ${last.seq} at ${last.offset})`);
          assert.ok(record.offset === last.offset || later, `cycle ${cycle}: key ${key} at ${record.offset}, acknowledged at ${last.offset}`);
        }
      }
    }
    // Outputs: whatever retention left is intact and in offset order.
    for (let w = 0; w < WORKERS; w++) {
      const outputs = readAll(log, CHURN_TOPICS.output, w);
      outputs.forEach((r, i) => {
        assert.equal(r.value!.length, 200);
        if (i > 0) assert.ok(r.offset > outputs[i - 1]!.offset);
      });
    }
  } finally {
    await log.close();
  }
  return { changelogRecords, changelogStart };
}

test('compaction crash: kill -9 during segment rewrites and deletions loses nothing acknowledged', { timeout: 240_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t, 'farad-compaction-crash-');
  const tally = new Tally();
  const random = prng(4242);
  let midRewrite = 0;
  let maxDirBytes = 0;
  let last = { changelogRecords: 0, changelogStart: 0 };
  let cycles = 0;
  for (let cycle = 0; cycle < CYCLES || (midRewrite === 0 && cycle < MAX_CYCLES); cycle++) {
    cycles++;
    const firstSeq = tally.maxSeq + 100_000;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/churn-child.ts', dataDir, String(firstSeq)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let buffered = '';
    let stderr = '';
    let ready = false;
    const commitsBefore = tally.commits;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!; // a line cut by the kill is not an acknowledgement
      for (const line of lines) {
        if (line === 'ready') ready = true;
        else tally.line(line);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    const alive = (): void => {
      if (child.exitCode !== null) throw new Error(`child exited ${child.exitCode}: ${stderr}`);
    };
    await waitFor('the child to churn', () => (alive(), ready && tally.commits - commitsBefore >= 40), { timeoutMs: 30_000, intervalMs: 5 });

    if (cycle % 2 === 0 || cycle >= CYCLES) {
      // Right as a rewrite starts writing its file.
      await waitFor('a segment rewrite to start', () => (alive(), readdirSync(dataDir).some((n) => n.endsWith('.tmp'))), { timeoutMs: 20_000, intervalMs: 1 });
      await sleep(Math.floor(random() * 4));
    } else {
      await sleep(Math.floor(random() * 400));
    }
    child.kill('SIGKILL');
    const exit = await exited;
    assert.equal(exit.signal, 'SIGKILL', `child should have been killed: ${JSON.stringify(exit)} ${stderr}`);
    tally.killed();
    const names = readdirSync(dataDir);
    if (names.some((n) => n.endsWith('.tmp'))) midRewrite++;
    maxDirBytes = Math.max(maxDirBytes, dirBytes(dataDir));
    last = await verify(dataDir, tally, cycle);
  }
  t.diagnostic(
    `${cycles} kills, ${midRewrite} left a half-written rewrite behind; ${tally.commits} commits acknowledged; ` +
      `largest data dir ${(maxDirBytes / 1024).toFixed(0)} KiB; changelog holds ${last.changelogRecords} records (${tally.latest.size} keys), starting at offset ${last.changelogStart}`,
  );
  assert.ok(midRewrite > 0, `at least one kill landed in the middle of a rewrite (${cycles} kills)`);
  // The feature at work: without cleaning, the directory would hold every write.
  assert.ok(maxDirBytes < 4 * 1024 * 1024, `data dir reached ${maxDirBytes} bytes`);
  assert.ok(last.changelogRecords < tally.commits * BATCH / 4, 'the changelog was compacted');
});
