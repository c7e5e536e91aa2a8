/**
 * `farad produce` and invalid lines, through the real CLI, direct to the embedded log and through
 * a running farad's HTTP API: `--skip-invalid` sends every valid line and reports each invalid
 * one with its line number and reason, and exits non-zero saying how many it skipped; without it
 * produce stops at the first invalid line, names it and the line to send again from, and the log
 * holds exactly the batches before it. What reached the log is read back and compared with the
 * valid lines of the file, worked out by the test itself.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import voter from '../../examples/voter/index.js';
import { partitionForKey } from '../../src/state/index.js';
import { catalogOf, decodeAll, exitOf, freePort, readTopic, runCli, spawnCli, tempDir, waitFor, withLog, type VoteIn } from './helpers.js';

const APP = ['--app', 'examples/voter'];
const PARTITIONS = 8;

/** One line of an input file: its text and, for a valid line, the vote it carries. */
interface Line {
  readonly text: string;
  readonly vote?: VoteIn;
  /** For an invalid line: what its report must say. */
  readonly reason?: RegExp;
}

const good = (n: number): Line => {
  const vote = { phoneNumber: 2015550000 + n, contestantNumber: 1 + (n % 6) };
  return { text: JSON.stringify(vote), vote };
};

/**
 * 1,203 lines, sent in three batches: invalid lines of every kind in the first batch, one opening
 * the second and two closing the last, blank lines between.
 */
function mixedLines(): Line[] {
  const lines: Line[] = Array.from({ length: 1200 }, (_, i) => good(i));
  const invalid: Array<[index: number, line: Line]> = [
    [2, { text: '{"phoneNumber": 20155', reason: /not valid JSON/ }],
    [6, { text: '{"phoneNumber": 2015559006, "contestantNumber": "six"}', reason: /field "contestantNumber"/ }],
    [7, { text: '{"phoneNumber": 2015559007}', reason: /contestantNumber/ }],
    [9, { text: '{"phoneNumber": 2015559009, "contestantNumber": 1, "extra": true}', reason: /extra/ }],
    [11, { text: '42', reason: /./ }],
    // Not JSON after schema violations of the same batch: still reported in line order.
    [14, { text: '{"phoneNumber": 2015559014, "contestantNumber": 1', reason: /not valid JSON/ }],
    [500, { text: '{"phoneNumber": "not a number", "contestantNumber": 2}', reason: /field "phoneNumber"/ }],
    [1199, { text: '{"phoneNumber": 2015559999, "contestantNumber": 1.5}', reason: /field "contestantNumber"/ }],
  ];
  for (const [index, line] of invalid) lines[index] = line;
  lines.splice(20, 0, { text: '' }, { text: '   ' });
  lines.push({ text: 'the end', reason: /not valid JSON/ });
  return lines;
}

function writeLines(dir: string, name: string, lines: readonly Line[]): string {
  const file = join(dir, name);
  writeFileSync(file, lines.map((l) => l.text).join('\n') + '\n');
  return file;
}

/** The 1-based line numbers of the invalid lines. */
function invalidLineNumbers(lines: readonly Line[]): number[] {
  return lines.flatMap((l, i) => (l.reason ? [i + 1] : []));
}

/** Checks that the votes topic holds exactly `expected`, each partition in file order. */
async function assertOnLog(dataDir: string, expected: readonly VoteIn[]): Promise<void> {
  await withLog(dataDir, voter, (log) => {
    const onLog = readTopic(log, 'votes', PARTITIONS).map((records) => decodeAll(catalogOf(voter), records));
    assert.equal(onLog.flat().length, expected.length, 'votes on the log');
    for (let p = 0; p < PARTITIONS; p++) {
      const mine = expected.filter((v) => partitionForKey(String(v.phoneNumber), PARTITIONS) === p).map((v) => ({ type: 'voter.Vote', ...v }));
      assert.deepEqual(onLog[p], mine, `partition ${p}`);
    }
  });
}

/** Checks the stderr of a `--skip-invalid` run: one report per invalid line, with its reason, and the summary. */
function assertSkipReports(stderr: string, lines: readonly Line[]): void {
  const reports = stderr.split('\n').filter((l) => l.startsWith('skipped line '));
  const invalid = invalidLineNumbers(lines);
  assert.deepEqual(reports.map((r) => Number(/^skipped line (\d+):/.exec(r)?.[1])), invalid, stderr);
  for (const [i, n] of invalid.entries()) assert.match(reports[i]!, lines[n - 1]!.reason!, reports[i]);
  const sent = lines.filter((l) => l.vote).length;
  assert.match(stderr, new RegExp(`^sent ${sent}, skipped ${invalid.length} \\(`, 'm'), stderr);
  assert.match(stderr, new RegExp(`^farad: skipped ${invalid.length} invalid lines \\(${invalid.join(', ')}\\)`, 'm'), stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'a message, not a stack trace');
}

test('--skip-invalid writing the log directly: every valid line is on the log, each invalid one reported, exit 2', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const lines = mixedLines();
  const result = await runCli(t, ['produce', ...APP, '--type', 'Vote', '--skip-invalid', writeLines(dir, 'mixed.jsonl', lines)], { FARAD_DATA_DIR: dataDir, FARAD_LOG_LEVEL: 'warn' });
  assert.equal(result.code, 2, result.stderr);
  assertSkipReports(result.stderr, lines);
  await assertOnLog(dataDir, lines.flatMap((l) => (l.vote ? [l.vote] : [])));

  // Nothing invalid: the same summary, exit status 0.
  const clean = Array.from({ length: 30 }, (_, i) => good(5000 + i));
  const ok = await runCli(t, ['produce', ...APP, '--type', 'Vote', '--skip-invalid', writeLines(dir, 'clean.jsonl', clean)], { FARAD_DATA_DIR: dataDir, FARAD_LOG_LEVEL: 'warn' });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /^sent 30, skipped 0 \(/m);
  await assertOnLog(dataDir, [...lines, ...clean].flatMap((l) => (l.vote ? [l.vote] : [])));
});

test('without --skip-invalid the first invalid line stops produce: named with the line to resume from; the batches before it are on the log', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const cases: Array<{ name: string; bad: number; text: string; reason: RegExp; resume: number }> = [
    { name: 'schema violation in the second batch', bad: 703, text: '{"phoneNumber": 2015559703, "contestantNumber": "x"}', reason: /field "contestantNumber"/, resume: 501 },
    { name: 'bad JSON in the third batch', bad: 1002, text: '{"phoneNumber":', reason: /not valid JSON/, resume: 1001 },
    { name: 'the first line', bad: 1, text: '[', reason: /not valid JSON/, resume: 1 },
  ];
  for (const c of cases) {
    const dataDir = join(dir, c.name.replace(/ /g, '-'));
    const lines = Array.from({ length: 1200 }, (_, i) => good(i));
    lines[c.bad - 1] = { text: c.text };
    const result = await runCli(t, ['produce', ...APP, '--type', 'Vote', writeLines(dir, `${c.bad}.jsonl`, lines)], { FARAD_DATA_DIR: dataDir, FARAD_LOG_LEVEL: 'warn' });
    assert.equal(result.code, 2, `${c.name}: ${result.stderr}`);
    const error = result.stderr.split('\n').filter((l) => l.startsWith('farad: '));
    assert.equal(error.length, 1, result.stderr);
    assert.match(error[0]!, new RegExp(`^farad: line ${c.bad}: `), c.name);
    assert.match(error[0]!, c.reason, c.name);
    assert.match(error[0]!, new RegExp(`nothing from line ${c.resume} on was sent.*send again from line ${c.resume}, or pass --skip-invalid`), c.name);
    assert.match(result.stderr, new RegExp(`^produced ${c.resume - 1} events`, 'm'), c.name);
    await assertOnLog(dataDir, lines.slice(0, c.resume - 1).map((l) => l.vote!));
  }
});

test('--skip-invalid through a running farad (--url): a 422 naming an index leaves that line out and sends the rest', { timeout: 90_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' };
  const child = spawnCli(t, ['run', ...APP], env);
  await waitFor('farad run to be ready', async () => {
    if (child.process.exitCode !== null) throw new Error(`run exited ${child.process.exitCode}: ${child.stderr}`);
    return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
  }, { timeoutMs: 60_000, intervalMs: 100 });

  const lines = mixedLines();
  const skipping = await runCli(t, ['produce', ...APP, '--type', 'voter.Vote', '--url', base, '--skip-invalid', writeLines(dir, 'mixed.jsonl', lines)], env);
  assert.equal(skipping.code, 2, skipping.stderr);
  assertSkipReports(skipping.stderr, lines);
  // A schema violation is reported by line, not by its index in the request.
  assert.doesNotMatch(skipping.stderr, /event \[\d+\]/);

  // Without the flag: refused at the first invalid line, its batch not sent.
  const strict = [good(7000), good(7001), { text: '{"phoneNumber": 2015557002}' }, good(7003)];
  const stopped = await runCli(t, ['produce', ...APP, '--type', 'voter.Vote', '--url', base, writeLines(dir, 'strict.jsonl', strict)], env);
  assert.equal(stopped.code, 2, stopped.stderr);
  assert.match(stopped.stderr, /^farad: line 3: .*answered 422: .*contestantNumber.*nothing from line 1 on was sent/m);

  child.process.kill('SIGTERM');
  assert.equal((await exitOf(child, 15_000)).code, 0, child.stderr);
  await assertOnLog(dataDir, lines.flatMap((l) => (l.vote ? [l.vote] : [])));
});
