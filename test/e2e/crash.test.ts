/**
 * Crash safety of the embedded log with the real CLI: `farad run --app examples/voter` as a child
 * process, votes streamed in many small concurrent POSTs, SIGKILL mid-stream, restart on the same
 * data dir, several times. Afterwards: no acknowledged vote lost, exactly one result per vote on
 * the log, and the leaderboard equals an independent tally of the votes topic in log order.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import voter from '../../examples/voter/index.js';
import { LogLockedError, type Service } from '../../src/index.js';
import {
  catalogOf,
  decodeAll,
  exitOf,
  freePort,
  generateVotes,
  http,
  markerPhones,
  readTopic,
  runCli,
  scanTableHttp,
  spawnCli,
  startTestService,
  tallyVotes,
  tempDir,
  waitFor,
  waitProcessed,
  withLog,
  type Child,
  type Tally,
  type VoteIn,
} from './helpers.js';

const VOTES = 20_000;
const PER_POST = 10;
const CONCURRENCY = 12;
/** SIGKILL after this many acknowledged POSTs in a cycle; the last cycle runs to the end. */
const KILL_AFTER = [350, 200, 500];

interface Post {
  readonly id: number;
  readonly votes: readonly VoteIn[];
}

const pairKey = (v: { phoneNumber: unknown; contestantNumber: unknown }): string => `${String(v.phoneNumber)}:${String(v.contestantNumber)}`;

test('crash: kill -9 mid-stream and restart lose no acknowledged vote and apply none twice', { timeout: 90_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' };

  const votes = generateVotes(VOTES, { phones: 4_000, invalidShare: 0.04, seed: 9001 });
  const pending: Post[] = [];
  for (let i = 0; i < votes.length; i += PER_POST) pending.push({ id: i / PER_POST, votes: votes.slice(i, i + PER_POST) });
  const acked: Post[] = [];
  /** How many times each vote (phone:contestant) was sent at all, acknowledged or not. */
  const attempts = new Map<string, number>();
  let failedPosts = 0;

  const start = async (): Promise<Child> => {
    const child = spawnCli(t, ['run', '--app', 'examples/voter'], env);
    await waitFor(
      'the child to answer /readyz 200',
      async () => {
        if (child.process.exitCode !== null) throw new Error(`child exited ${child.process.exitCode}: ${child.stderr}`);
        return (await fetch(`${base}/readyz`)).status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    return child;
  };

  /** Sends pending POSTs with CONCURRENCY in flight; stops taking new ones once `stopAfter` were acknowledged. */
  const stream = async (child: Child, stopAfter: number | undefined): Promise<void> => {
    let ackedNow = 0;
    let killed = false;
    const worker = async (): Promise<void> => {
      while (!killed && pending.length > 0) {
        const post = pending.shift()!;
        for (const v of post.votes) attempts.set(pairKey(v), (attempts.get(pairKey(v)) ?? 0) + 1);
        let status = 0;
        try {
          const response = await fetch(`${base}/events/voter.Vote`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(post.votes),
            signal: AbortSignal.timeout(15_000),
          });
          status = response.status;
          await response.arrayBuffer();
        } catch (err) {
          status = -1; // connection reset by the kill: unknown whether it was appended
          if (!killed && (child.process.exitCode !== null || child.process.signalCode !== null)) {
            throw new Error(`the service died on its own (${String(err)}):\n${child.stderr}`);
          }
        }
        if (status === 202) {
          acked.push(post);
          ackedNow++;
          if (stopAfter !== undefined && ackedNow >= stopAfter && !killed) {
            killed = true;
            child.process.kill('SIGKILL'); // with the other workers' POSTs in flight
          }
        } else {
          assert.ok(killed || status === -1, `POST answered ${status} while the service was up`);
          failedPosts++;
          pending.push(post); // send again after the restart
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };

  // Kill/restart cycles.
  for (const stopAfter of KILL_AFTER) {
    const child = await start();
    await stream(child, stopAfter);
    const exit = await exitOf(child, 10_000);
    assert.equal(exit.signal, 'SIGKILL', `child should have been killed: ${JSON.stringify(exit)} ${child.stderr}`);
  }
  assert.ok(pending.length > 0, 'votes left for the last run');

  // Final run: the rest, then a marker vote per partition as a barrier.
  const child = await start();
  await stream(child, undefined);
  assert.equal(pending.length, 0);
  assert.equal(acked.length, VOTES / PER_POST);
  const markers = markerPhones(8, 1).map((phoneNumber) => ({ phoneNumber, contestantNumber: 1 }));
  const marked = await http(`${base}/events/voter.Vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(markers) });
  assert.equal(marked.status, 202);
  await waitFor(
    'every partition to process its marker vote',
    async () => {
      for (const { phoneNumber } of markers) if ((await fetch(`${base}/tables/votesByPhone/${phoneNumber}`)).status !== 200) return false;
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  const leaderboard = (await http<Tally['leaderboard']>(`${base}/queries/leaderboard`)).body;
  const byPhone = new Map((await scanTableHttp(base, 'votesByPhone', 1000)).map((r) => [r.key as number, (r.value as { accepted: number }).accepted]));
  child.process.kill('SIGTERM');
  const exit = await exitOf(child, 15_000);
  assert.equal(exit.code, 0, `SIGTERM should stop the service cleanly: ${JSON.stringify(exit)}\n${child.stderr}`);

  await withLog(dataDir, voter, (log) => {
    const catalog = catalogOf(voter);
    const inputs = readTopic(log, 'votes', 8);
    const results = readTopic(log, 'vote-results', 8);

    // Everything is processed and committed.
    for (let p = 0; p < 8; p++) assert.equal(log.committedOffset('voter', 'votes', p), log.endOffset('votes', p), `partition ${p} committed`);

    // Nothing acknowledged is lost; nothing was invented.
    const inLog = new Map<string, number>();
    const logOrder: VoteIn[][] = [];
    for (let p = 0; p < 8; p++) {
      const decoded = decodeAll(catalog, inputs[p]!).map((v) => ({ phoneNumber: v['phoneNumber'] as number, contestantNumber: v['contestantNumber'] as number }));
      logOrder.push(decoded);
      for (const v of decoded) inLog.set(pairKey(v), (inLog.get(pairKey(v)) ?? 0) + 1);
    }
    const ackedCount = new Map<string, number>();
    for (const post of acked) for (const v of post.votes) ackedCount.set(pairKey(v), (ackedCount.get(pairKey(v)) ?? 0) + 1);
    for (const m of markers) {
      ackedCount.set(pairKey(m), 1);
      attempts.set(pairKey(m), 1);
    }
    for (const [pair, n] of ackedCount) assert.ok((inLog.get(pair) ?? 0) >= n, `acknowledged vote ${pair} ×${n} but the log has ${inLog.get(pair) ?? 0}`);
    for (const [pair, n] of inLog) assert.ok(n <= (attempts.get(pair) ?? 0), `the log has ${pair} ×${n}, sent ×${attempts.get(pair) ?? 0}`);
    const total = logOrder.reduce((s, l) => s + l.length, 0);
    assert.ok(total >= VOTES + markers.length);

    // Exactly one result per vote, in the same order, as the independent tally says.
    const tally = tallyVotes(logOrder.flat(), 2); // partitions hold disjoint phones, so concatenating keeps per-phone order
    let i = 0;
    for (let p = 0; p < 8; p++) {
      const decoded = decodeAll(catalog, results[p]!);
      assert.equal(decoded.length, logOrder[p]!.length, `partition ${p}: ${decoded.length} results for ${logOrder[p]!.length} votes`);
      for (const result of decoded) assert.deepEqual(result, tally.outcomes[i++], `partition ${p}`);
    }
    assert.deepEqual(leaderboard, tally.leaderboard);
    assert.deepEqual(new Map([...byPhone].sort((a, b) => a[0] - b[0])), new Map([...tally.acceptedByPhone].sort((a, b) => a[0] - b[0])));
    t.diagnostic(`votes in log ${total} (sent ${VOTES} + ${markers.length} markers), POSTs retried after a kill ${failedPosts}, accepted ${tally.accepted}`);
  });
});

test('crash: a torn journal tail is cut off on open, and later appends survive the next restart', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t);
  const journal = join(dataDir, 'journal.log');
  const votes = generateVotes(6_000, { phones: 1_000, invalidShare: 0.05, seed: 31337 });
  const leaderboardOf = async (base: string): Promise<Tally['leaderboard']> => (await http<Tally['leaderboard']>(`${base}/queries/leaderboard`)).body;
  const send = async (service: Service, part: readonly VoteIn[]): Promise<void> => {
    const event = service.ingest.inputEvent('voter.Vote');
    await service.ingest.send(event, part.map((v) => service.ingest.record(event, v)));
  };

  // Torn tails of several shapes: a header promising more bytes than follow, a short header,
  // and a complete frame whose checksum does not match.
  const garbage = [
    Buffer.concat([Buffer.from([0x88, 0x13, 0, 0, 1, 2, 3, 4]), Buffer.alloc(100, 0x5a)]),
    Buffer.from([0x10, 0x00, 0x00]),
    Buffer.concat([Buffer.from([0x04, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]), Buffer.from([2, 0, 0, 0])]),
  ];
  let sent = 0;
  for (const [round, tail] of garbage.entries()) {
    const { service, base, log } = await startTestService(t, voter, dataDir);
    await waitProcessed(service, log, base);
    assert.deepEqual(await leaderboardOf(base), tallyVotes(votes.slice(0, sent), 2).leaderboard, `round ${round}: state after the cut`);
    const part = votes.slice(sent, sent + 2_000);
    await send(service, part);
    sent += part.length;
    await waitProcessed(service, log, base);
    assert.deepEqual(await leaderboardOf(base), tallyVotes(votes.slice(0, sent), 2).leaderboard, `round ${round}: new votes`);
    await service.stop();
    const size = statSync(journal).size;
    appendFileSync(journal, tail);
    await withLog(dataDir, voter, (reopened) => {
      assert.equal(statSync(journal).size, size, `round ${round}: the torn tail is cut off`);
      let n = 0;
      for (let p = 0; p < 8; p++) n += reopened.endOffset('votes', p);
      assert.equal(n, sent, `round ${round}: every acknowledged vote is still there`);
    });
    appendFileSync(journal, tail); // and once more for the service itself to cut
  }
  const { service, base, log } = await startTestService(t, voter, dataDir);
  await waitProcessed(service, log, base);
  const expected = tallyVotes(votes, 2);
  assert.deepEqual(await leaderboardOf(base), expected.leaderboard);
  const results = readTopic(log, 'vote-results', 8).reduce((n, records) => n + records.length, 0);
  assert.equal(results, votes.length, 'one result per vote');
});

test('one owner per data dir: a second open fails while the first is live, a dead owner\'s lock is taken over', { timeout: 60_000 }, async (t: TestContext) => {
  const dataDir = tempDir(t);
  const { service } = await startTestService(t, voter, dataDir);

  // Another process.
  const port = await freePort();
  const other = await runCli(t, ['run', '--app', 'examples/voter'], { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' });
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, new RegExp(`in use by process ${process.pid}`));

  // The same process, a second time.
  await assert.rejects(() => withLog(dataDir, voter, () => undefined), LogLockedError);
  await assert.rejects(() => startTestService(t, voter, dataDir), LogLockedError);
  await service.stop();

  // After a clean stop the dir opens again; a lock left by a dead process is taken over.
  await withLog(dataDir, voter, () => undefined);
  const child = spawnCli(t, ['run', '--app', 'examples/voter'], { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' });
  await waitFor('the child to be ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { timeoutMs: 30_000, intervalMs: 50 });
  await assert.rejects(() => withLog(dataDir, voter, () => undefined), LogLockedError);
  child.process.kill('SIGKILL');
  await exitOf(child, 10_000);
  assert.equal(readFileSync(join(dataDir, 'LOCK'), 'utf8').trim(), String(child.process.pid), 'the dead owner left its lock');
  await withLog(dataDir, voter, () => undefined);
});
