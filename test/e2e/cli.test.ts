/**
 * The `farad` CLI, run from source as a child process: help texts, `produce` from JSON lines into
 * a data dir then `run` processing them, line numbers in produce errors, config validation at
 * start.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import voter from '../../examples/voter/index.js';
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
  spawnCli,
  tallyVotes,
  tempDir,
  waitFor,
  withLog,
  type Tally,
  type VoteIn,
} from './helpers.js';

const APP = ['--app', 'examples/voter'];

test('farad --help, run --help, produce --help', { timeout: 30_000 }, async (t: TestContext) => {
  const [main, run, produce, helpRun, unknown] = await Promise.all([
    runCli(t, ['--help']),
    runCli(t, ['run', '--help']),
    runCli(t, ['produce', '--help']),
    runCli(t, ['help', 'run']),
    runCli(t, ['nope']),
  ]);
  assert.equal(main.code, 0, main.stderr);
  assert.match(main.stdout, /Usage: farad/);
  assert.match(main.stdout, /\brun\b/);
  assert.match(main.stdout, /\bproduce\b/);
  assert.match(main.stdout, /FARAD_DATA_DIR/);
  assert.match(main.stdout, /FARAD_HTTP_PORT/);
  assert.match(main.stdout, /FARAD_SETTINGS_<NAME>/);

  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /Usage: farad run/);
  assert.match(run.stdout, /--app <dir>/);
  assert.match(run.stdout, /--config <file>/);
  assert.equal(helpRun.stdout, run.stdout);

  assert.equal(produce.code, 0, produce.stderr);
  assert.match(produce.stdout, /Usage: farad produce/);
  assert.match(produce.stdout, /--type <event>/);
  assert.match(produce.stdout, /\[file\]/);
  assert.match(produce.stdout, /--url <url>/);

  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown command 'nope'/);
});

test('produce from a JSON-lines file (no server), then run processes them', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const env = { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' };

  // 1234 votes (more than one produce chunk), blank lines, short names, long as a string; then one marker per partition.
  const votes = generateVotes(1234, { phones: 300, invalidShare: 0.05, seed: 4242 });
  const markers = markerPhones(8, 2).map((phoneNumber) => ({ phoneNumber, contestantNumber: 2 }));
  const all: VoteIn[] = [...votes, ...markers];
  const lines = all.map((v, i) => (i % 3 === 0 ? JSON.stringify({ ...v, phoneNumber: String(v.phoneNumber) }) : JSON.stringify(v)));
  lines.splice(10, 0, '', '   ');
  const file = join(dir, 'votes.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');

  const produced = await runCli(t, ['produce', ...APP, '--type', 'Vote', file], env);
  assert.equal(produced.code, 0, produced.stderr);
  assert.match(produced.stderr, new RegExp(`produced ${all.length} events`));
  assert.ok(!existsSync(join(dataDir, 'LOCK')), 'produce released the data dir');

  // The votes are on the log, in file order per partition, and nothing is processed yet.
  await withLog(dataDir, voter, (log) => {
    const catalog = catalogOf(voter);
    const onLog = readTopic(log, 'votes', 8).map((records) => decodeAll(catalog, records));
    assert.equal(onLog.flat().length, all.length);
    for (let p = 0; p < 8; p++) {
      assert.equal(log.committedOffset('voter', 'votes', p), 0);
      const phones = new Set(onLog[p]!.map((v) => v['phoneNumber']));
      const expected = all.filter((v) => phones.has(v.phoneNumber)).map((v) => ({ type: 'voter.Vote', ...v }));
      assert.deepEqual(onLog[p], expected, `partition ${p} in file order`);
    }
  });

  const child = spawnCli(t, ['run', ...APP], env);
  const base = `http://127.0.0.1:${port}`;
  await waitFor('run to process every marker', async () => {
    if (child.process.exitCode !== null) throw new Error(`run exited ${child.process.exitCode}: ${child.stderr}`);
    for (const { phoneNumber } of markers) if ((await fetch(`${base}/tables/votesByPhone/${phoneNumber}`)).status !== 200) return false;
    return true;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  const expected = tallyVotes(all, 2);
  assert.deepEqual((await http<Tally['leaderboard']>(`${base}/queries/leaderboard`)).body, expected.leaderboard);

  // With run holding the data dir, produce goes through its HTTP API (standard input this time).
  const extra = [{ phoneNumber: 2015551234, contestantNumber: 6 }, { phoneNumber: 2015551234, contestantNumber: 6 }, { phoneNumber: 2015551234, contestantNumber: 6 }];
  const viaHttp = await runCli(t, ['produce', ...APP, '--type', 'voter.Vote', '-'], env, extra.map((v) => JSON.stringify(v)).join('\n'));
  assert.equal(viaHttp.code, 0, viaHttp.stderr);
  assert.match(viaHttp.stderr, /produced 3 events/);
  const after = tallyVotes([...all, ...extra], 2);
  await waitFor('the leaderboard to count the extra votes', async () => {
    const board = (await http<Tally['leaderboard']>(`${base}/queries/leaderboard`)).body;
    return JSON.stringify(board) === JSON.stringify(after.leaderboard);
  });
  const row = await http(`${base}/tables/votesByPhone/2015551234`);
  assert.deepEqual((row.body as { value: unknown }).value, { accepted: 2 });
  // An invalid line sent through HTTP is reported by its line number too (blank lines count).
  const bad = await runCli(t, ['produce', ...APP, '--type', 'voter.Vote', '-'], env, [JSON.stringify(extra[0]), '', '', JSON.stringify({ phoneNumber: 1 })].join('\n'));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /line 4\b.*422/);
  assert.match(bad.stderr, /contestantNumber/);

  child.process.kill('SIGTERM');
  const exit = await exitOf(child, 15_000);
  assert.equal(exit.code, 0, child.stderr);
});

test('produce reports the line number of an invalid line and exits non-zero', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const env = { FARAD_DATA_DIR: join(dir, 'data'), FARAD_LOG_LEVEL: 'warn' };
  const good = (n: number): string => JSON.stringify({ phoneNumber: 2015550000 + n, contestantNumber: 1 + (n % 6) });
  const cases: Array<{ name: string; lines: string[]; line: number; message: RegExp }> = [
    { name: 'schema violation', lines: [good(1), '', good(2), good(3), '{"phoneNumber": 2015550004, "contestantNumber": "x"}', good(5)], line: 5, message: /contestantNumber/ },
    { name: 'not JSON', lines: [good(1), good(2), '{"phoneNumber": 20155', good(4)], line: 3, message: /not valid JSON/ },
    { name: 'missing field', lines: [good(1), '{"phoneNumber": 2015550002}'], line: 2, message: /contestantNumber/ },
    {
      name: 'in a later chunk',
      lines: [...Array.from({ length: 700 }, (_, i) => good(i)), '{"phoneNumber": 2015550000, "contestantNumber": 1, "extra": 1}'],
      line: 701,
      message: /extra/,
    },
  ];
  for (const { name, lines, line, message } of cases) {
    const file = join(dir, `${name.replace(/ /g, '-')}.jsonl`);
    writeFileSync(file, lines.join('\n') + '\n');
    const result = await runCli(t, ['produce', ...APP, '--type', 'voter.Vote', file], env);
    assert.notEqual(result.code, 0, `${name}: exit code`);
    assert.match(result.stderr, new RegExp(`line ${line}\\b`), `${name}: ${result.stderr}`);
    assert.match(result.stderr, message, name);
    assert.doesNotMatch(result.stderr, /\n\s+at /, `${name}: a message, not a stack trace`);
  }
  const missing = await runCli(t, ['produce', ...APP, '--type', 'voter.Vote', join(dir, 'missing.jsonl')], env);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /missing\.jsonl/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /, 'a message, not a stack trace');
  // The bad lines themselves never reached the log.
  await withLog(join(dir, 'data'), voter, (log) => {
    const onLog = readTopic(log, 'votes', 8).flatMap((records) => decodeAll(catalogOf(voter), records));
    assert.ok(onLog.every((v) => typeof v['contestantNumber'] === 'number' && v['contestantNumber'] >= 1 && v['contestantNumber'] <= 6));
  });
});

test('a bad config fails at start with a message naming the field', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'never-created');
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const cases: Array<{ name: string; args: string[]; env?: Record<string, string>; field: RegExp; source: RegExp }> = [
    { name: 'YAML port "abc"', args: ['--config', write('port.yaml', 'http:\n  port: "abc"\n')], field: /http\.port/, source: /port\.yaml/ },
    { name: 'JSON port out of range', args: ['--config', write('port.json', '{"http": {"port": 70000}}')], field: /http\.port/, source: /port\.json/ },
    { name: 'unknown key', args: ['--config', write('typo.yaml', 'commitIntervalMs: 50\nhtpp:\n  port: 1\n')], field: /htpp/, source: /typo\.yaml/ },
    { name: 'bad log level', args: ['--config', write('level.yaml', 'logLevel: loud\n')], field: /logLevel/, source: /level\.yaml/ },
    { name: 'environment', args: [], env: { FARAD_HTTP_PORT: 'abc' }, field: /http\.port/, source: /FARAD_HTTP_PORT/ },
    { name: 'missing file', args: ['--config', join(dir, 'nope.yaml')], field: /nope\.yaml/, source: /cannot read/ },
  ];
  const results = await Promise.all(
    cases.map((c) => runCli(t, ['run', ...APP, ...c.args], { FARAD_DATA_DIR: dataDir, FARAD_HTTP_HOST: '127.0.0.1', ...c.env }, undefined, 30_000)),
  );
  cases.forEach((c, i) => {
    const result = results[i]!;
    assert.notEqual(result.code, 0, `${c.name}: should fail`);
    assert.equal(result.signal, null, `${c.name}: exits by itself`);
    assert.match(result.stderr, c.field, `${c.name}: ${result.stderr}`);
    assert.match(result.stderr, c.source, `${c.name}: ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /\n\s+at /, `${c.name}: a message, not a stack trace`);
  });
  assert.ok(!existsSync(dataDir), `nothing was started: ${existsSync(dataDir) ? readdirSync(dataDir).join(', ') : ''}`);
});

test('produce --help lists --skip-invalid', { timeout: 30_000 }, async (t: TestContext) => {
  const help = await runCli(t, ['produce', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--skip-invalid\s+send every valid line/);
});
