#!/usr/bin/env node
// Test runner behind `npm test` (after type-checking).
//
//   node scripts/test.mjs                       all test/{unit,e2e,integration}/*.test.ts
//   node scripts/test.mjs test/unit/foo.test.ts just the given files
//
// Servers: if KAFKA_BROKERS and REDIS_URL are both set they are used as is (and
// KAFKA39_BROKERS, the Kafka 3.9 broker test/integration/voter-kafka.test.ts also runs
// against, if set; without it those cases are skipped, or fail under CI). Otherwise
// scripts/services-up.sh is run (it reuses servers that already answer: Kafka 4.x, Kafka 3.9,
// Redis), the variables are set for the tests, and afterwards scripts/services-down.sh stops
// whatever this run started -- and only that.
//
// FARAD_TEST_NO_SERVICES=1: no servers at all, and test/integration is skipped.
//
// Exit code: the test runner's.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVICES_DIR = path.join(ROOT, '.services');
const SERVICES = ['kafka', 'kafka39', 'redis'];
const TEST_DIRS = ['test/unit', 'test/e2e', 'test/browser', 'test/integration'];

const log = (msg) => console.error(`[test] ${msg}`);
const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';

const noServices = truthy(process.env.FARAD_TEST_NO_SERVICES);

function listTests(dir) {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => path.join(dir, e.name))
    .sort();
}

function selectFiles(argv) {
  if (argv.length > 0) {
    const missing = argv.filter((f) => !existsSync(path.resolve(f)));
    if (missing.length > 0) {
      log(`no such file: ${missing.join(', ')}`);
      process.exit(2);
    }
    return argv.map((f) => path.relative(ROOT, path.resolve(f)));
  }
  // The examples' own tests (farad/testing, no servers) run with the unit tests.
  const examples = readdirSync(path.join(ROOT, 'examples'), { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => listTests(path.join('examples', e.name)));
  // Browser tests need Chromium; those on Kafka (-kafka) go with the integration tests.
  return [
    ...listTests('test/unit'),
    ...examples,
    ...listTests('test/e2e'),
    ...listTests('test/browser').filter((f) => !(noServices && f.endsWith('-kafka.test.ts'))),
    ...(noServices ? [] : listTests('test/integration')),
  ];
}

// pid files present before services-up tell us what was already running, so that
// afterwards we stop only what this run started.
function pidFiles() {
  const out = {};
  for (const s of SERVICES) {
    try {
      out[s] = readFileSync(path.join(SERVICES_DIR, `${s}.pid`), 'utf8').trim();
    } catch {
      out[s] = undefined;
    }
  }
  return out;
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: 'inherit', ...opts });
    current = child;
    child.on('error', (err) => {
      log(`${cmd}: ${err.message}`);
      resolve({ code: 127, stdout: '' });
    });
    let stdout = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
      process.stdout.write(chunk);
    });
    child.on('close', (code, signal) => {
      current = undefined;
      resolve({ code: code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1), stdout });
    });
  });
}

function signalNumber(sig) {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[sig];
}

// Forward SIGINT/SIGTERM to whatever child is running and carry on to the cleanup.
let current;
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    interrupted = true;
    current?.kill(sig);
  });
}

async function main() {
  const files = selectFiles(process.argv.slice(2));
  if (files.length === 0) {
    log(`no test files found (looked in ${TEST_DIRS.join(', ')}${noServices ? '; test/integration skipped' : ''})`);
    return 1;
  }

  const env = { ...process.env };
  let started = [];

  if (noServices) {
    log('FARAD_TEST_NO_SERVICES set: not starting Kafka/Redis');
  } else if (env.KAFKA_BROKERS && env.REDIS_URL) {
    log(`using KAFKA_BROKERS=${env.KAFKA_BROKERS} REDIS_URL=${env.REDIS_URL} KAFKA39_BROKERS=${env.KAFKA39_BROKERS ?? '(not set)'}`);
  } else {
    const before = pidFiles();
    const up = await run('bash', [path.join(ROOT, 'scripts/services-up.sh')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const after = pidFiles();
    started = SERVICES.filter((s) => after[s] !== undefined && after[s] !== before[s]);
    if (up.code !== 0 || interrupted) {
      log(`services-up.sh failed (exit ${up.code})`);
      await down(started);
      return up.code || 1;
    }
    env.KAFKA_BROKERS = /^KAFKA_BROKERS=(.+)$/m.exec(up.stdout)?.[1] ?? '127.0.0.1:9092';
    env.REDIS_URL = /^REDIS_URL=(.+)$/m.exec(up.stdout)?.[1] ?? 'redis://127.0.0.1:6379';
    env.KAFKA_SASL_BROKERS = /^KAFKA_SASL_BROKERS=(.+)$/m.exec(up.stdout)?.[1] ?? '127.0.0.1:9094';
    env.KAFKA39_BROKERS = /^KAFKA39_BROKERS=(.+)$/m.exec(up.stdout)?.[1] ?? '127.0.0.1:9192';
    // The TLS listeners of the Kafka 4.x broker and the certificates (test/integration/tls.test.ts).
    env.KAFKA_TLS_BROKERS = /^KAFKA_TLS_BROKERS=(.+)$/m.exec(up.stdout)?.[1] ?? '127.0.0.1:9095';
    env.KAFKA_MTLS_BROKERS = /^KAFKA_MTLS_BROKERS=(.+)$/m.exec(up.stdout)?.[1] ?? '127.0.0.1:9096';
    env.FARAD_TEST_TLS_DIR = /^FARAD_TEST_TLS_DIR=(.+)$/m.exec(up.stdout)?.[1] ?? path.join(SERVICES_DIR, 'tls');
  }

  let code;
  try {
    log(`running ${files.length} file(s): ${files.join(' ')}`);
    ({ code } = await run(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=1', ...files],
      { env },
    ));
  } finally {
    await down(started);
  }
  return code;
}

async function down(started) {
  if (started.length === 0) return;
  log(`stopping what this run started: ${started.join(', ')}`);
  const res = spawnSync('bash', [path.join(ROOT, 'scripts/services-down.sh'), ...started], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (res.status !== 0) log(`services-down.sh exited with ${res.status ?? res.signal}`);
}

process.exitCode = await main();
