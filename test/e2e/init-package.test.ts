/**
 * A new user's first app, outside this repository: farad packed as its tarball (`npm pack`),
 * `farad init` in a temporary directory, `npm install` from the tarball, then the app's own
 * `npm test` (type-check + farad/testing), `npm start` serving an event sent over HTTP and one
 * sent with `npm run send`, and the mistakes init refuses. A type error in a test of the app
 * fails its `npm test`: the package's types reach the app.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { freePort, http, postJson, runCli, tempDir, waitFor } from './helpers.js';

const ROOT = new URL('../..', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell: no FARAD_* settings, npm's or the test runner's own variables. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FARAD_') && !k.startsWith('npm_') && k !== 'NODE_TEST_CONTEXT') clean[k] = v;
  return { ...clean, ...extra };
}

/** Runs a command to completion (npm and the app's scripts). */
function run(t: TestContext, command: string, args: readonly string[], cwd: string, timeoutMs = 240_000): Promise<Run> {
  const proc = spawn(command, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  t.after(() => {
    clearTimeout(timer);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

test('farad init → npm install from the packed tarball → npm test, npm start, npm run send', { timeout: 600_000 }, async (t) => {
  const dir = tempDir(t, 'farad-init-');
  const packed = await run(t, 'npm', ['pack', '--pack-destination', dir, '--silent'], ROOT);
  assert.equal(packed.code, 0, packed.stderr);
  const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);

  const appDir = join(dir, 'hello-farad');
  const init = await runCli(t, ['init', appDir, '--farad', tarball]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /npm install/);
  assert.deepEqual(readdirSync(appDir).sort(), ['.gitignore', 'README.md', 'index.test.ts', 'index.ts', 'package.json', 'tsconfig.json']);
  const pkg = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as { type: string; dependencies: Record<string, string> };
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.dependencies.farad, `file:${tarball}`);

  const installed = await run(t, 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], appDir);
  assert.equal(installed.code, 0, installed.stderr);

  const tested = await run(t, 'npm', ['test'], appDir);
  assert.equal(tested.code, 0, `${tested.stdout}\n${tested.stderr}`);
  // TAP on Node 20 when not on a terminal, the spec reporter from Node 23 on.
  assert.match(tested.stdout, /^(#|ℹ) pass 2$/m);
  assert.match(tested.stdout, /^(#|ℹ) fail 0$/m);

  // The package's types reach the app: a wrongly shaped event fails its type-check.
  writeFileSync(
    join(appDir, 'typo.test.ts'),
    "import { TestDriver } from 'farad/testing';\nimport app from './index.js';\nnew TestDriver(app).send('Visit', { page: 1, visitor: 'x' });\n",
  );
  const typo = await run(t, 'npm', ['test'], appDir);
  assert.notEqual(typo.code, 0);
  assert.match(typo.stdout + typo.stderr, /typo\.test\.ts.*error TS\d+.*'number' is not assignable to type 'string'/s);

  // The app runs with its own installed farad (bin from the tarball) and takes events.
  const port = await freePort();
  const env = { FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'warn' };
  const app = spawn('npm', ['start'], { cwd: appDir, env: userEnv(env), stdio: 'ignore', detached: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => app.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    try {
      process.kill(-app.pid!, 'SIGKILL');
    } catch {
      // the group has exited
    }
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the app is ready', async () => (await http(`${base}/readyz`)).status === 200, { timeoutMs: 60_000 });
  assert.equal((await postJson(`${base}/events/Visit`, { page: '/home', visitor: 'ada' })).status, 202);
  const bad = await postJson(`${base}/events/Visit`, { page: '/home' });
  assert.equal(bad.status, 422);
  await new Promise<void>((resolve, reject) => {
    const proc = spawn('npm', ['run', 'send', '--', '--url', base, '-'], { cwd: appDir, env: userEnv(), stdio: ['pipe', 'ignore', 'pipe'] });
    proc.stdin.end('{"page": "/home", "visitor": "alan"}\n');
    proc.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`npm run send exited ${code}`))));
  });
  await waitFor('both visits counted', async () => (await http<{ value?: { visits: number } }>(`${base}/tables/pages/%2Fhome`)).body.value?.visits === 2);
  const row = await http<{ value: unknown }>(`${base}/tables/pages/%2Fhome`);
  assert.deepEqual(row.body.value, { visits: 2, lastVisitor: 'alan' });
  assert.deepEqual((await http(`${base}/queries/top`)).body, [{ page: '/home', visits: 2 }]);
  // Ctrl-C in a terminal: the whole group gets SIGINT, farad commits and exits (npm by the signal).
  process.kill(-app.pid!, 'SIGINT');
  const { code, signal } = await exited;
  assert.ok(code === 0 || signal === 'SIGINT', `npm start ended with ${code ?? signal}`);
  await waitFor('farad stopped', async () => (await http(`${base}/healthz`).then(() => false, () => true)));
});

test('farad init refuses a directory with files and a name that cannot name an app', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'farad-init-');
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  const busy = await runCli(t, ['init', dir]);
  assert.equal(busy.code, 2);
  assert.match(busy.stderr, /is not empty/);
  assert.deepEqual(readdirSync(dir), ['notes.txt']);

  const badName = await runCli(t, ['init', join(dir, 'x'), '--name', '9lives']);
  assert.equal(badName.code, 2);
  assert.match(badName.stderr, /cannot name an app.*--name/);

  // From a checkout, the app links this farad's directory.
  const linked = await runCli(t, ['init', join(dir, 'linked')]);
  assert.equal(linked.code, 0, linked.stderr);
  const pkg = JSON.parse(readFileSync(join(dir, 'linked', 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
  assert.equal(pkg.dependencies.farad, `file:${ROOT.replace(/\/$/, '')}`);
  assert.equal(pkg.name, 'linked');
});
