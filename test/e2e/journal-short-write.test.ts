/**
 * A journal write that stops short, as on a disk that fills up mid-write (reproduced without
 * root by a file size limit, `ulimit -f`: write(2) then returns the bytes that fit, and no
 * error). Found by the soak: farad acknowledged the whole group, wrote the next one past the end
 * of the file, and the restart refused the journal as corrupt — acknowledged events lost. Now the
 * request that did not fit is refused, and a restart (kill -9, then without the limit) opens the
 * journal and holds every acknowledged deposit, each exactly once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { freePort, postJson, ROOT, sleep, tempDir, waitFor } from './helpers.js';

const ACCOUNTS = 100;

function startFarad(t: TestContext, dataDir: string, port: number, fileSizeLimitKiB?: number) {
  // SIGXFSZ ignored: the write over the limit then fails (EFBIG) instead of killing the process.
  const limit = fileSizeLimitKiB === undefined ? '' : `trap '' XFSZ; ulimit -f ${fileSizeLimitKiB}; `;
  const child = spawn('bash', ['-c', `${limit}exec "${process.execPath}" --import tsx src/cli/main.ts run --app examples/bank`], {
    cwd: ROOT,
    env: { ...process.env, FARAD_DATA_DIR: dataDir, FARAD_HTTP_PORT: String(port), FARAD_HTTP_HOST: '127.0.0.1', FARAD_LOG_LEVEL: 'error', FARAD_TRANSPORT: 'embedded' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    child.kill('SIGKILL');
  });
  return { child, exited, output: () => output };
}

async function ready(base: string, farad: { output(): string }): Promise<void> {
  await waitFor(`farad ready at ${base}`, async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\n${farad.output().slice(-2000)}`);
  });
}

test('a journal write cut short by a full disk is refused, never acknowledged; the restart keeps every acknowledged event', { timeout: 120_000 }, async (t) => {
  const dataDir = tempDir(t, 'farad-short-write-');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const limited = startFarad(t, dataDir, port, 256);
  await ready(base, limited);

  // One deposit of 1 into every account per request, until a request does not fit.
  const batch = Array.from({ length: ACCOUNTS }, (_, i) => ({ account: `a${i}`, amount: 1 }));
  let acknowledged = 0;
  let refused: { status: number; body: unknown } | undefined;
  for (let i = 0; i < 400 && !refused; i++) {
    const answer = await postJson(`${base}/events/Deposit`, batch);
    if (answer.status === 202) acknowledged++;
    else refused = { status: answer.status, body: answer.body };
  }
  assert.ok(refused, 'a request reached the file size limit');
  assert.equal(refused.status, 507, `the request that did not fit is refused as disk_full: ${JSON.stringify(refused)}`);
  assert.match(JSON.stringify(refused.body), /disk_full.*largest size allowed/);
  assert.ok(acknowledged > 5, `${acknowledged} requests were acknowledged before`);
  t.diagnostic(`${acknowledged} requests of ${ACCOUNTS} deposits acknowledged, then ${refused.status} ${JSON.stringify(refused.body)}`);

  limited.child.kill('SIGKILL');
  await limited.exited;
  const restarted = startFarad(t, dataDir, port);
  await ready(base, restarted);
  await waitFor('every acknowledged deposit applied', async () => {
    const row = await fetch(`${base}/tables/balances/a${ACCOUNTS - 1}`);
    return row.status === 200 && ((await row.json()) as { value: { balance: number } }).value.balance === acknowledged;
  }, { timeoutMs: 30_000 }).catch(() => undefined);
  await sleep(500);
  for (let i = 0; i < ACCOUNTS; i++) {
    const row = await fetch(`${base}/tables/balances/a${i}`);
    assert.equal(row.status, 200, `account a${i}\n${restarted.output().slice(-2000)}`);
    assert.equal(((await row.json()) as { value: { balance: number } }).value.balance, acknowledged, `a${i}: each acknowledged deposit exactly once`);
  }
});
