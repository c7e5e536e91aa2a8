/**
 * Start-up never ends in a stack trace: the real CLI (`farad run`, `farad produce`) given a bad
 * address, data directory or variable prints one line naming the setting and where its value
 * came from, and exits with status 2. A bad file value that a variable replaces, and an unknown
 * `FARAD_*` variable, are warnings: the service starts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { exitOf, freePort, runCli, spawnCli, tempDir, waitFor } from './helpers.js';

const APP = ['--app', 'examples/voter'];

/** The one `farad: ` line of a failed command (fails the test unless there is exactly one, and no stack trace). */
function oneLine(result: { code: number | null; stderr: string }, name: string): string {
  assert.equal(result.code, 2, `${name}: exit status 2\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /\n\s+at /, `${name}: a message, not a stack trace\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /Unhandled|Error:/, `${name}: no raw error\n${result.stderr}`);
  const lines = result.stderr.split('\n').filter((line) => line.startsWith('farad: '));
  assert.equal(lines.length, 1, `${name}: one line\n${result.stderr}`);
  return lines[0]!;
}

test('farad run: a bad address, data directory or variable is one line and exit status 2', { timeout: 120_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'not a directory\n');
  const dataDir = join(dir, 'data');
  const port = String(await freePort());
  const base = { FARAD_DATA_DIR: dataDir, FARAD_HTTP_HOST: '127.0.0.1', FARAD_HTTP_PORT: port };
  const cases: Array<{ name: string; env: Record<string, string>; line: RegExp }> = [
    {
      name: 'host that is not an address of this machine',
      env: { FARAD_HTTP_HOST: '203.0.113.7' },
      line: /^farad: http\.host "203\.0\.113\.7" \[from environment variable FARAD_HTTP_HOST\] is not an address of this machine \(EADDRNOTAVAIL\); set FARAD_HTTP_HOST \(or http\.host\) to one of its addresses/,
    },
    {
      name: 'host name that does not resolve',
      env: { FARAD_HTTP_HOST: 'no-such-host.invalid' },
      line: /^farad: http\.host "no-such-host\.invalid" \[from environment variable FARAD_HTTP_HOST\] does not resolve to an address \((ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NONAME|EAI_NODATA)\); set FARAD_HTTP_HOST \(or http\.host\)/,
    },
    {
      name: 'data directory that is a file',
      env: { FARAD_DATA_DIR: aFile },
      line: new RegExp(`^farad: dataDir "${escape(aFile)}" \\[from environment variable FARAD_DATA_DIR\\] cannot be used as the data directory: it is a file, not a directory; set FARAD_DATA_DIR \\(or dataDir\\) to a directory`),
    },
    {
      name: 'data directory under a file',
      env: { FARAD_DATA_DIR: join(aFile, 'data') },
      line: /^farad: dataDir ".*a-file\/data" \[from environment variable FARAD_DATA_DIR\] cannot be used as the data directory: it, or a directory above it, is a file/,
    },
    {
      name: 'empty port',
      env: { FARAD_HTTP_PORT: '' },
      line: /^farad: invalid configuration: http\.port: empty; unset it or give an integer from 0 to 65535 \[from environment variable FARAD_HTTP_PORT\]$/,
    },
    {
      name: 'port written 1e9',
      env: { FARAD_HTTP_PORT: '1e9' },
      line: /^farad: invalid configuration: http\.port: "1e9" is not written as an integer, and 1000000000 is out of range; give an integer from 0 to 65535 \[from environment variable FARAD_HTTP_PORT\]$/,
    },
    {
      name: 'batch size written 1e3',
      env: { FARAD_MAX_BATCH_RECORDS: '1e3' },
      line: /^farad: invalid configuration: maxBatchRecords: "1e3" is not written as an integer; write 1000 \[from environment variable FARAD_MAX_BATCH_RECORDS\]$/,
    },
    {
      name: 'port out of range',
      env: { FARAD_HTTP_PORT: '70000' },
      line: /^farad: invalid configuration: http\.port: 70000 is out of range; give an integer from 0 to 65535 \[from environment variable FARAD_HTTP_PORT\]$/,
    },
  ];
  // Default log level (info): the one error line must stand out among the logs.
  // In parallel, so each its own data directory (the embedded log takes one process per directory).
  const results = await Promise.all(cases.map((c, i) => runCli(t, ['run', ...APP], { ...base, FARAD_DATA_DIR: join(dir, `data-${i}`), ...c.env }, undefined, 60_000)));
  cases.forEach((c, i) => assert.match(oneLine(results[i]!, c.name), c.line, c.name));
  assert.ok(!existsSync(join(aFile, 'data')));

  // The port in use by another process (this test's own listener).
  const { createServer } = await import('node:net');
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(Number(port), '127.0.0.1', resolve));
  t.after(() => holder.close());
  const inUse = await runCli(t, ['run', ...APP], base, undefined, 60_000);
  assert.match(oneLine(inUse, 'port in use'), new RegExp(`^farad: http\\.port ${port} \\[from environment variable FARAD_HTTP_PORT\\]: the port is in use on 127\\.0\\.0\\.1; set FARAD_HTTP_PORT \\(or http\\.port\\) to a free port$`));
});

test('farad produce: a data directory that is a file is one line and exit status 2', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'x');
  const config = join(dir, 'farad.yaml');
  writeFileSync(config, `dataDir: ${aFile}\n`);
  const result = await runCli(t, ['produce', ...APP, '--type', 'Vote', '--config', config, '-'], {}, '{"phoneNumber": 2015550001, "contestantNumber": 1}\n');
  assert.match(oneLine(result, 'produce'), new RegExp(`^farad: dataDir "${escape(aFile)}" \\[from config file ${escape(config)}\\] cannot be used as the data directory: it is a file`));
});

test('farad run: a variable replaces a bad file value, and an unknown FARAD_* variable is a warning naming the closest', { timeout: 60_000 }, async (t: TestContext) => {
  const dir = tempDir(t);
  const config = join(dir, 'farad.yaml');
  writeFileSync(config, 'http:\n  port: eighty\n  host: 127.0.0.1\n');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const port = await freePort();
  const child = spawnCli(t, ['run', ...APP, '--config', config], { FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTPPORT: '9000', FARAD_LOG_LEVEL: 'warn' });
  await waitFor('the service to answer /healthz', async () => {
    if (child.process.exitCode !== null) throw new Error(`run exited ${child.process.exitCode}: ${child.stderr}`);
    return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  const warnings = child.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { warning?: string }).warning)
    .filter((w): w is string => w !== undefined);
  assert.ok(
    warnings.includes(`http.port: "eighty" is not a number; give an integer from 0 to 65535 [from config file ${config}] has no effect: environment variable FARAD_HTTP_PORT replaces it. Fix or remove it there`),
    child.stderr,
  );
  assert.ok(
    warnings.includes('environment variable FARAD_HTTPPORT has no effect: farad has no such setting. Did you mean FARAD_HTTP_PORT (http.port)? farad --help lists every variable'),
    child.stderr,
  );
  child.process.kill('SIGTERM');
  assert.equal((await exitOf(child, 15_000)).code, 0, child.stderr);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
