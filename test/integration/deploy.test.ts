/**
 * Deployment checks with the real tools (issue 5): the Helm chart in helm/farad, its alert rules
 * and its Grafana dashboard.
 *
 * - `bash scripts/tools-up.sh` provides helm (built from source with Go), tools/k8svalidate
 *   (strict decoding into the Kubernetes API's Go types), promtool and prometheus (Debian).
 *   A tool that is missing and cannot be installed FAILS the first test (nothing is skipped).
 * - helm lint --strict and helm template, with the default values and ci/example-values.yaml;
 *   values that break values.schema.json (or the chart's cross-field checks) must be refused.
 * - Every rendered manifest must pass k8svalidate; the config the chart renders (ConfigMap file +
 *   the StatefulSet's FARAD_* variables) must be accepted by farad's own loadConfig.
 * - promtool check rules / test rules on files/alerts.yaml and on the rendered PrometheusRule.
 * - A real Prometheus scrapes a real farad (embedded transport, the Voter app); every dashboard
 *   and alert expression is evaluated through /api/v1/query and may only name metrics that
 *   farad's /metrics exposes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { environmentVariables, loadConfig } from '../../src/config/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = path.join(ROOT, 'helm/farad');
const EXAMPLE_VALUES = path.join(CHART, 'ci/example-values.yaml');
const ALERTS_FILE = path.join(CHART, 'files/alerts.yaml');
const ALERTS_TEST_FILE = path.join(CHART, 'ci/alerts-test.yaml');
const DASHBOARD_FILE = path.join(CHART, 'files/dashboard.json');
const TOOLS_TIMEOUT_MS = 40 * 60_000; // a cold helm build on 2 cores takes minutes

type Json = Record<string, unknown>;
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [key: string]: unknown };

interface Tools {
  HELM: string;
  K8SVALIDATE: string;
  PROMTOOL: string;
  PROMETHEUS: string;
  [key: string]: string;
}

const work = mkdtempSync(path.join(tmpdir(), 'farad-deploy-'));
let tools: Tools | undefined;
const children = new Set<ChildProcess>();

after(async () => {
  await Promise.all([...children].map((child) => stop(child)));
  rmSync(work, { recursive: true, force: true });
});

// ---- process helpers -------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], { timeoutMs = 60_000, input, env }: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

function show(r: RunResult): string {
  return `exit ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;
}

async function mustRun(cmd: string, args: readonly string[], opts?: Parameters<typeof run>[2]): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  assert.equal(r.code, 0, `${path.basename(cmd)} ${args.join(' ')} failed: ${show(r)}`);
  return r;
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process has exited. */
function stop(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, logs?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}${logs ? `\n${logs().slice(-3000)}` : ''}`);
    }
    await sleep(200);
  }
}

function needTools(): Tools {
  if (!tools) throw new Error('the deployment tools are not available: see the failure of the first test (scripts/tools-up.sh)');
  return tools;
}

// ---- chart helpers ---------------------------------------------------------------------------

async function helmTemplate(release: string, namespace: string, valuesFiles: string[] = []): Promise<{ file: string; docs: Manifest[] }> {
  const { HELM } = needTools();
  const args = ['template', release, CHART, '--namespace', namespace, ...valuesFiles.flatMap((f) => ['-f', f])];
  const r = await mustRun(HELM, args);
  const file = path.join(work, `${release}.yaml`);
  writeFileSync(file, r.stdout);
  const docs = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null && typeof d === 'object');
  return { file, docs };
}

function one(docs: Manifest[], kind: string, name?: string): Manifest {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

function get(obj: unknown, ...keys: (string | number)[]): any {
  let cur: any = obj;
  for (const k of keys) cur = cur?.[k];
  return cur;
}

function writeTmp(name: string, text: string): string {
  const file = path.join(work, name);
  writeFileSync(file, text);
  return file;
}

// ---- PromQL helpers --------------------------------------------------------------------------

const PROMQL_KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2',
]);

/**
 * Metric names an expression selects: identifiers that are series selectors, i.e. neither
 * function names (followed by "("), keywords, label names in by/on/... clauses or in {...}
 * matchers, durations nor string contents.
 */
function metricNames(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/#[^\n]*/g, ' '); // comments
  s = s.replace(/\{[^}]*\}/g, ' {} '); // label matchers
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  s = s.replace(/\[[^\]]*\]/g, ' '); // ranges and subqueries
  const names = new Set<string>();
  const re = /[a-zA-Z_:][a-zA-Z0-9_:]*/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const word = m[0];
    const before = s[m.index - 1] ?? '';
    if (/[0-9.]/.test(before)) continue; // 1e3, 5m inside numbers
    const rest = s.slice(m.index + word.length);
    if (/^\s*\(/.test(rest)) continue; // function call
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** Names a /metrics exposition defines, with the series suffixes of histograms and summaries. */
function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line);
    if (!m) continue;
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** Grafana's built-in interval variables and the dashboard's template variables, made concrete. */
function concreteExpr(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}/g, '1m')
    .replace(/\$__interval|\$\{__interval\}/g, '15s')
    .replace(/\$__range|\$\{__range\}/g, '5m')
    .replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, '.*');
}

interface DashboardExpr {
  where: string;
  expr: string;
}

function dashboardExprs(dashboard: Json): DashboardExpr[] {
  const out: DashboardExpr[] = [];
  const visit = (panels: unknown) => {
    for (const p of (panels as Json[] | undefined) ?? []) {
      for (const t of (p.targets as Json[] | undefined) ?? []) {
        if (typeof t.expr === 'string') out.push({ where: `panel "${String(p.title)}" target ${String(t.refId)}`, expr: t.expr });
      }
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  for (const v of (get(dashboard, 'templating', 'list') as Json[] | undefined) ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (get(v, 'query', 'query') as string);
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q.trim());
    assert.ok(m, `variable ${String(v.name)}: expected label_values(<selector>, <label>), got ${q}`);
    out.push({ where: `variable ${String(v.name)}`, expr: m[1]! });
  }
  return out;
}

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function alertRules(): AlertRule[] {
  const file = parseYaml(readFileSync(ALERTS_FILE, 'utf8')) as { groups: { name: string; rules: AlertRule[] }[] };
  return file.groups.flatMap((g) => g.rules);
}

// ---- the tests -------------------------------------------------------------------------------

test('tools: scripts/tools-up.sh provides helm, k8svalidate, promtool and prometheus', { timeout: TOOLS_TIMEOUT_MS + 10_000 }, async () => {
  const started = Date.now();
  const r = await run('bash', [path.join(ROOT, 'scripts/tools-up.sh')], { timeoutMs: TOOLS_TIMEOUT_MS });
  assert.equal(
    r.code,
    0,
    `scripts/tools-up.sh could not provide the deployment tools (helm, tools/k8svalidate, promtool, prometheus); ` +
      `these checks need them and are not skipped.\n${show(r)}`,
  );
  const found: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) found[m[1]!] = m[2]!;
  }
  for (const key of ['HELM', 'K8SVALIDATE', 'PROMTOOL', 'PROMETHEUS']) {
    const file = found[key];
    assert.ok(file, `scripts/tools-up.sh printed no ${key}=<path>:\n${show(r)}`);
    assert.doesNotThrow(() => accessSync(file, constants.X_OK), `${key}=${file} is not an executable file`);
  }
  tools = found as Tools;
  const helm = await mustRun(tools.HELM, ['version', '--template', '{{.Version}}']);
  assert.match(helm.stdout, /^v3\.16\.\d+$/, 'helm version');
  console.error(`[deploy] tools ready in ${Date.now() - started} ms: helm ${helm.stdout}, prometheus ${found.PROMETHEUS_VERSION ?? '?'}, ${found.GO_VERSION ?? ''}`);
});

test('helm lint --strict passes with the default and the example values', async () => {
  const { HELM } = needTools();
  for (const extra of [[], ['-f', EXAMPLE_VALUES]]) {
    const r = await mustRun(HELM, ['lint', '--strict', CHART, ...extra]);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test('helm template (default values): objects, StatefulSet essentials, strict Kubernetes schema', async () => {
  const { K8SVALIDATE } = needTools();
  const { file, docs } = await helmTemplate('farad', 'default');
  const kinds = docs.map((d) => d.kind).sort();
  assert.deepEqual(kinds, ['ConfigMap', 'PodDisruptionBudget', 'Service', 'Service', 'ServiceAccount', 'StatefulSet']);
  assert.ok(!docs.some((d) => d.kind === 'Secret'), 'the chart must reference existing Secrets, never create them');

  const sts = one(docs, 'StatefulSet', 'farad');
  const spec = sts.spec as Json;
  assert.equal(spec.replicas, 3);
  assert.equal(spec.podManagementPolicy, 'Parallel');
  assert.equal(spec.serviceName, 'farad-headless');
  const pod = get(spec, 'template', 'spec') as Json;
  assert.ok((pod.terminationGracePeriodSeconds as number) >= 60, 'terminationGracePeriodSeconds >= 60');
  assert.equal(get(pod, 'securityContext', 'runAsNonRoot'), true);
  assert.equal(get(pod, 'securityContext', 'seccompProfile', 'type'), 'RuntimeDefault');
  const antiAffinity = get(pod, 'affinity', 'podAntiAffinity', 'preferredDuringSchedulingIgnoredDuringExecution', 0, 'podAffinityTerm');
  assert.equal(antiAffinity?.topologyKey, 'kubernetes.io/hostname');
  assert.deepEqual(antiAffinity?.labelSelector?.matchLabels, get(spec, 'selector', 'matchLabels'));

  const c = get(pod, 'containers', 0) as Json;
  assert.deepEqual(c.args, ['run', '--app', 'dist/examples/voter', '--config', '/etc/farad/config/farad.yaml']);
  const sc = c.securityContext as Json;
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.runAsNonRoot, true);
  assert.deepEqual(get(sc, 'capabilities', 'drop'), ['ALL']);
  assert.equal(get(sc, 'seccompProfile', 'type'), 'RuntimeDefault');
  const env = new Map((c.env as Json[]).map((e) => [e.name as string, e]));
  assert.equal(get(env.get('FARAD_INSTANCE_ID'), 'valueFrom', 'fieldRef', 'fieldPath'), 'metadata.name');
  assert.equal(get(env.get('FARAD_RACK'), 'valueFrom', 'fieldRef', 'fieldPath'), 'spec.nodeName');
  assert.equal(get(env.get('FARAD_REPLICAS'), 'value'), '1');
  assert.equal(get(c, 'livenessProbe', 'httpGet', 'path'), '/healthz');
  assert.equal(get(c, 'readinessProbe', 'httpGet', 'path'), '/readyz');
  assert.equal(get(c, 'startupProbe', 'httpGet', 'path'), '/healthz');
  const mounts = new Map((c.volumeMounts as Json[]).map((m) => [m.mountPath as string, m.name as string]));
  const volumes = new Map((pod.volumes as Json[]).map((v) => [v.name as string, v]));
  for (const dir of ['/tmp', '/data']) {
    const volume = volumes.get(mounts.get(dir) ?? '');
    assert.ok(volume?.emptyDir, `${dir} must be an emptyDir volume`);
  }
  assert.equal(env.get('FARAD_DATA_DIR'), undefined, 'the embedded data directory is not set for kafka (it would have no effect)');

  const headless = one(docs, 'Service', 'farad-headless');
  assert.equal(get(headless, 'spec', 'clusterIP'), 'None');
  assert.equal(get(one(docs, 'PodDisruptionBudget'), 'spec', 'maxUnavailable'), 1, 'PDB maxUnavailable = replicas (k) = 1');

  const v = await run(K8SVALIDATE, [file]);
  assert.equal(v.code, 0, `k8svalidate rejected the default render:\n${show(v)}`);
  assert.match(v.stdout, /^ok: 6 object\(s\)/);
});

test('helm template (ci/example-values.yaml): 6 instances, k=2, TLS/SASL from Secrets, monitoring objects', async () => {
  const { K8SVALIDATE } = needTools();
  const { file, docs } = await helmTemplate('votes', 'streaming', [EXAMPLE_VALUES]);
  assert.ok(!docs.some((d) => d.kind === 'Secret'), 'the chart must not create Secrets');
  const sts = one(docs, 'StatefulSet', 'votes-farad');
  assert.equal(get(sts, 'spec', 'replicas'), 6);
  assert.equal(get(one(docs, 'PodDisruptionBudget'), 'spec', 'maxUnavailable'), 2, 'PDB maxUnavailable = k = 2');
  const c = get(sts, 'spec', 'template', 'spec', 'containers', 0) as Json;
  const env = new Map((c.env as Json[]).map((e) => [e.name as string, e]));
  assert.equal(get(env.get('FARAD_REPLICAS'), 'value'), '2');
  assert.equal(get(env.get('FARAD_KAFKA_SASL_PASSWORD'), 'valueFrom', 'secretKeyRef', 'name'), 'farad-kafka-sasl');
  assert.equal(get(env.get('FARAD_KAFKA_SSL_CA_FILE'), 'value'), '/etc/farad/kafka-tls/ca.pem');
  assert.equal(get(env.get('FARAD_REDIS_PASSWORD'), 'valueFrom', 'secretKeyRef', 'name'), 'farad-redis');
  assert.equal(get(env.get('FARAD_HTTP_TOKEN'), 'valueFrom', 'secretKeyRef', 'name'), 'farad-http');
  for (const e of env.values()) {
    assert.ok(!/PASSWORD|TOKEN/.test(e.name as string) || e.valueFrom, `${String(e.name)} must come from a Secret, not a literal value`);
  }

  const sm = one(docs, 'ServiceMonitor');
  assert.equal(get(sm, 'spec', 'endpoints', 0, 'path'), '/metrics');
  const rule = one(docs, 'PrometheusRule');
  const fileGroups = (parseYaml(readFileSync(ALERTS_FILE, 'utf8')) as { groups: { name: string; rules: AlertRule[] }[] }).groups;
  const renderedGroups = get(rule, 'spec', 'groups') as { name: string; rules: AlertRule[] }[];
  assert.deepEqual(
    renderedGroups,
    fileGroups.map((g) => ({ ...g, rules: g.rules.map((r) => ({ ...r, labels: { ...r.labels, team: 'streaming' } })) })),
    'the PrometheusRule embeds files/alerts.yaml (plus additionalRuleLabels)',
  );
  const dash = one(docs, 'ConfigMap', 'votes-farad-dashboard');
  assert.equal(dash.metadata.namespace, 'monitoring');
  assert.equal(dash.metadata.labels?.grafana_dashboard, '1');
  assert.deepEqual(JSON.parse(get(dash, 'data', 'farad.json') as string), JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')));

  const v = await run(K8SVALIDATE, [file]);
  assert.equal(v.code, 0, `k8svalidate rejected the example render:\n${show(v)}`);
  assert.match(v.stdout, /PrometheusRule=1/);
  assert.match(v.stdout, /ServiceMonitor=1/);

  // The rendered PrometheusRule's groups are a valid Prometheus rule file too.
  const rulesFile = writeTmp('rendered-rules.yaml', stringifyYaml({ groups: renderedGroups }));
  await mustRun(needTools().PROMTOOL, ['check', 'rules', rulesFile]);
});

test('the rendered configuration (ConfigMap file + FARAD_* env) is accepted by farad loadConfig', async () => {
  const known = new Set(environmentVariables());
  for (const [release, values] of [['farad', []], ['votes', [EXAMPLE_VALUES]]] as const) {
    const { docs } = await helmTemplate(release, 'ns1', [...values]);
    const fullname = release === 'farad' ? 'farad' : `${release}-farad`; // templates/_helpers.tpl farad.fullname
    const configMap = one(docs, 'ConfigMap', fullname);
    const configFile = writeTmp(`${release}-farad.yaml`, get(configMap, 'data', 'farad.yaml') as string);
    const c = get(one(docs, 'StatefulSet'), 'spec', 'template', 'spec', 'containers', 0) as Json;
    const env: NodeJS.ProcessEnv = {};
    for (const e of c.env as Json[]) {
      const name = e.name as string;
      if (name.startsWith('FARAD_')) assert.ok(known.has(name) || name.startsWith('FARAD_SETTINGS_'), `${name} is not an environment variable farad reads`);
      const fieldPath = get(e, 'valueFrom', 'fieldRef', 'fieldPath') as string | undefined;
      const resource = get(e, 'valueFrom', 'resourceFieldRef', 'resource') as string | undefined;
      const value =
        fieldPath === 'metadata.name'
          ? `${fullname}-0`
          : fieldPath === 'spec.nodeName'
            ? 'node-a'
            : resource !== undefined
              ? String(cpusOf(get(c, 'resources', ...resource.split('.'))))
              : e.valueFrom
                ? 'from-secret'
                : String(e.value);
      env[name] = value.replace(/\$\((\w+)\)/g, (_, ref: string) => env[ref] ?? '');
    }
    const config = loadConfig({ file: configFile, env });
    assert.equal(config.instanceId, `${fullname}-0`);
    assert.ok(config.workers >= 1, 'the pod\'s CPUs become FARAD_WORKERS (the kubelet rounds a resourceFieldRef up with divisor 1)');
    assert.equal(config.rack, 'node-a');
    assert.equal(config.transport, 'kafka');
    assert.deepEqual(config.warnings, [], 'the chart sets no setting that has no effect on its transport');
    assert.equal(config.advertisedUrl, `http://${fullname}-0.${fullname}-headless.ns1.svc.cluster.local:8080`);
    if (release === 'votes') {
      assert.equal(config.replicas, 2);
      assert.equal(config.kafka.brokers.length, 3);
      assert.equal(config.kafka.ssl.enabled, true);
      assert.equal(config.kafka.ssl.caFile, '/etc/farad/kafka-tls/ca.pem');
      assert.equal(config.kafka.sasl.mechanism, 'scram-sha-512');
      assert.equal(config.redis.url, 'redis://redis-master.redis.svc:6379/0');
      assert.equal(config.commitIntervalMs, 50);
      assert.equal(config.settings.maxVotesPerPhone, 2);
    } else {
      assert.equal(config.replicas, 1);
      assert.deepEqual(config.kafka.brokers, ['kafka:9092']);
    }
  }
});

test('NOTES.txt renders and warns about instances beyond the partition count', async () => {
  const { HELM } = needTools();
  // helm template does not render NOTES.txt: render it through a copy of the chart in which a
  // ConfigMap template passes it to tpl.
  const chart = path.join(work, 'notes-chart');
  cpSync(CHART, chart, { recursive: true });
  copyFileSync(path.join(chart, 'templates/NOTES.txt'), path.join(chart, 'files/NOTES.txt'));
  writeFileSync(
    path.join(chart, 'templates/zz-notes.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n    {{- tpl (.Files.Get "files/NOTES.txt") . | nindent 4 }}\n',
  );
  const notes = async (...args: string[]) => {
    const r = await mustRun(HELM, ['template', 'votes', chart, '--show-only', 'templates/zz-notes.yaml', ...args]);
    return get(parseYaml(r.stdout), 'data', 'notes') as string;
  };
  const example = await notes('-f', EXAMPLE_VALUES);
  assert.match(example, /6 instance\(s\), k = 2 standby copies per partition/);
  assert.match(example, /\(TLS\) \(SASL scram-sha-512\)/);
  assert.doesNotMatch(example, /WARNING/);
  const tooMany = await notes('--set', 'replicaCount=10', '--set', 'app.partitions=8');
  assert.match(tooMany, /WARNING: replicaCount \(10\) exceeds the app's partition count \(8\)/);
});

test('values that break values.schema.json or the chart rules are refused', async () => {
  const { HELM } = needTools();
  // schema: values.schema.json refuses them (helm lint and helm template fail). rule: a check in
  // templates/_helpers.tpl (farad.validate) that a JSON schema cannot express; `fail` stops
  // helm template/install, while helm lint only reports it (lint mode turns fail into a message).
  const cases: { name: string; values: Json; expect: RegExp; by?: 'rule' }[] = [
    { name: 'unknown key', values: { replicaCont: 3 }, expect: /replicaCont|Additional property/i },
    { name: 'wrong type', values: { replicaCount: 'three' }, expect: /replicaCount/ },
    { name: 'bad enum', values: { transport: 'pulsar' }, expect: /transport/ },
    { name: 'nested unknown key', values: { kafka: { tls: { enable: true } } }, expect: /enable/ },
    { name: 'SASL without a Secret', values: { kafka: { sasl: { mechanism: 'plain' } } }, expect: /existingSecret/ },
    { name: 'bad broker address', values: { kafka: { brokers: ['kafka'] } }, expect: /brokers/ },
    { name: 'bad redis url', values: { redis: { url: 'http://redis:6379' } }, expect: /redis/ },
    { name: 'embedded with 3 instances', values: { transport: 'embedded', replicas: 0 }, expect: /replicaCount/ },
    { name: 'k >= instances', values: { replicaCount: 2, replicas: 2 }, expect: /replicaCount >= 3/, by: 'rule' },
    { name: 'mTLS cert without key', values: { kafka: { tls: { enabled: true, existingSecret: 's', certKey: 'tls.crt' } } }, expect: /keyKey/, by: 'rule' },
  ];
  for (const c of cases) {
    const file = writeTmp(`bad-${c.name.replace(/\W+/g, '-')}.yaml`, stringifyYaml(c.values));
    for (const args of [['lint', '--strict', CHART, '-f', file], ['template', 'bad', CHART, '-f', file]]) {
      const r = await run(HELM, args);
      if (!(c.by === 'rule' && args[0] === 'lint')) {
        assert.notEqual(r.code, 0, `helm ${args[0]} accepted values with ${c.name}: ${JSON.stringify(c.values)}\n${show(r)}`);
      }
      assert.match(r.stdout + r.stderr, c.expect, `helm ${args[0]} (${c.name}) did not name the problem:\n${show(r)}`);
    }
  }
});

test('k8svalidate rejects unknown fields, wrong types and broken references, naming them', async () => {
  const { K8SVALIDATE } = needTools();
  const { docs } = await helmTemplate('farad', 'default');
  const mutate = (name: string, change: (docs: Manifest[]) => void) => {
    const copy = structuredClone(docs);
    change(copy);
    return writeTmp(`mutated-${name}.yaml`, copy.map((d) => stringifyYaml(d)).join('---\n'));
  };
  const sts = (d: Manifest[]) => d.find((x) => x.kind === 'StatefulSet')!;
  const cases: { name: string; file: string; expect: RegExp }[] = [
    {
      name: 'unknown field',
      file: mutate('unknown', (d) => (get(sts(d), 'spec', 'template', 'spec', 'containers', 0).imagePullPolicyy = 'Always')),
      expect: /\(StatefulSet\/farad\): unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolicyy"/,
    },
    {
      name: 'wrong type',
      file: mutate('type', (d) => (get(sts(d), 'spec').replicas = 'three')),
      expect: /\(StatefulSet\/farad\): .*replicas/,
    },
    {
      name: 'selector mismatch',
      file: mutate('selector', (d) => (get(sts(d), 'spec', 'selector', 'matchLabels')['app.kubernetes.io/name'] = 'other')),
      expect: /does not match the pod template's labels/,
    },
    {
      name: 'probe port',
      file: mutate('probe', (d) => (get(sts(d), 'spec', 'template', 'spec', 'containers', 0, 'readinessProbe', 'httpGet').port = 'metrics')),
      expect: /readinessProbe\.httpGet\.port "metrics" is not a named port/,
    },
    {
      name: 'service selector',
      file: mutate('svc', (d) => (d.find((x) => x.kind === 'Service' && x.metadata.name === 'farad')!.spec as Json).selector = { app: 'nothing' }),
      expect: /\(Service\/farad\): spec\.selector app=nothing selects no rendered pod template/,
    },
    {
      name: 'unknown kind',
      file: mutate('kind', (d) => d.push({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })),
      expect: /unknown apiVersion\/kind example\.com\/v1\/Widget/,
    },
  ];
  for (const c of cases) {
    const r = await run(K8SVALIDATE, [c.file]);
    assert.equal(r.code, 1, `k8svalidate accepted a manifest with ${c.name}:\n${show(r)}`);
    assert.match(r.stderr, c.expect, `k8svalidate (${c.name}) did not name the problem:\n${show(r)}`);
    assert.ok(r.stderr.includes(c.file), 'errors name the file');
  }
});

test('promtool: alert rules check, and their unit tests (ci/alerts-test.yaml) pass', async () => {
  const { PROMTOOL } = needTools();
  const check = await mustRun(PROMTOOL, ['check', 'rules', ALERTS_FILE]);
  assert.match(check.stdout, /SUCCESS: \d+ rules found/);
  await mustRun(PROMTOOL, ['test', 'rules', ALERTS_TEST_FILE]);

  const rules = alertRules();
  const names = new Set<string>();
  for (const r of rules) {
    assert.ok(r.alert, `only alerting rules expected, got ${JSON.stringify(r)}`);
    names.add(r.alert);
    assert.match(r.labels?.severity ?? '', /^(critical|warning|info)$/, `${r.alert}: severity label`);
    assert.ok(r.annotations?.summary, `${r.alert}: summary annotation`);
    assert.ok(r.annotations?.description, `${r.alert}: description annotation`);
  }
  for (const required of [
    'FaradPartitionWithoutActiveOwner',
    'FaradConsumerLagGrowing',
    'FaradDeadLetters',
    'FaradStandbyLagHigh',
    'FaradSnapshotsFailing',
    'FaradSnapshotTooOld',
    'FaradRestoreTooLong',
  ]) {
    assert.ok(names.has(required), `alert ${required} is missing`);
  }
  const tested = readFileSync(ALERTS_TEST_FILE, 'utf8');
  for (const name of names) assert.ok(tested.includes(`alertname: ${name}`), `ci/alerts-test.yaml has no test of ${name}`);
});

test('dashboard: Grafana JSON shape, templated datasource, the panels the issue asks for', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Json;
  assert.ok(typeof dashboard.schemaVersion === 'number' && dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, 'schemaVersion ~39');
  assert.ok(dashboard.uid && dashboard.title);
  const vars = get(dashboard, 'templating', 'list') as Json[];
  const ds = vars.find((v) => v.name === 'datasource');
  assert.equal(ds?.type, 'datasource');
  assert.equal(ds?.query, 'prometheus');
  assert.ok(vars.some((v) => v.name === 'instance'), 'an instance variable');
  const panels = dashboard.panels as Json[];
  const ids = new Set<unknown>();
  for (const p of panels) {
    assert.ok(!ids.has(p.id), `duplicate panel id ${String(p.id)}`);
    ids.add(p.id);
    const g = p.gridPos as { x: number; w: number; h: number; y: number };
    assert.ok(g && g.x >= 0 && g.x + g.w <= 24 && g.h > 0, `panel "${String(p.title)}" gridPos`);
    if (p.type === 'row') continue;
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `panel "${String(p.title)}" datasource`);
    for (const t of p.targets as Json[]) assert.deepEqual(t.datasource, { type: 'prometheus', uid: '${datasource}' }, `panel "${String(p.title)}" target datasource`);
  }
  const all = dashboardExprs(dashboard).map((e) => e.expr).join('\n');
  for (const needle of [
    /farad_events_processed_total/,
    /histogram_quantile\(0\.5, sum by \(le, event_type\) \(rate\(farad_handler_duration_seconds_bucket/,
    /histogram_quantile\(0\.99, sum by \(le, event_type\) \(rate\(farad_handler_duration_seconds_bucket/,
    /farad_commit_duration_seconds_bucket/,
    /farad_batch_records_bucket/,
    /farad_consumer_lag_records/,
    /farad_standby_lag_records/,
    /farad_partition_role/,
    /farad_restore_progress_ratio/,
    /farad_state_keys/,
    /farad_state_bytes/,
    /farad_snapshots_total/,
    /farad_dead_letters_total/,
    /farad_rebalances_total/,
    /farad_failovers_total/,
    /farad_log_bytes/,
    /farad_timers_pending/,
    /farad_timers_fired_total/,
    /histogram_quantile\(0\.99, sum by \(le, timer\) \(rate\(farad_timer_lag_seconds_bucket/,
    /process_cpu_seconds_total/,
    /process_resident_memory_bytes/,
  ]) {
    assert.match(all, needle);
  }
  assert.ok(panels.some((p) => p.type === 'table' && /roles/i.test(String(p.title))), 'a partition roles table');
});

test('metricNames() finds the selected metrics only', () => {
  assert.deepEqual(
    metricNames('histogram_quantile(0.99, sum by (le, event_type) (rate(farad_handler_duration_seconds_bucket{job=~".*", x="a b"}[1m])))'),
    ['farad_handler_duration_seconds_bucket'],
  );
  assert.deepEqual(
    metricNames('(a_total > 3600) and on (namespace, instance) (b{role="active"} == 1) unless ignoring(x) c offset 5m or vector(0)').sort(),
    ['a_total', 'b', 'c'],
  );
  assert.deepEqual(metricNames('absent(up == 1) * 1e3'), ['up']);
});

test('a real Prometheus scrapes farad; every dashboard and alert expression evaluates and uses exposed metrics only', { timeout: 180_000 }, async () => {
  const { PROMETHEUS } = needTools();
  const dataDir = mkdtempSync(path.join(work, 'farad-data-'));
  const faradPort = await freePort();
  const promPort = await freePort();
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FARAD_')));

  // farad: embedded transport, the Voter app, loopback only. `timeout` makes it stop by itself
  // even if this test process dies.
  let faradLog = '';
  const farad = spawn(
    'timeout',
    ['--signal=TERM', '170', process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'run', '--app', 'examples/voter'],
    {
      cwd: ROOT,
      env: {
        ...baseEnv,
        FARAD_TRANSPORT: 'embedded',
        FARAD_DATA_DIR: dataDir,
        FARAD_HTTP_HOST: '127.0.0.1',
        FARAD_HTTP_PORT: String(faradPort),
        FARAD_REPLICAS: '0',
        FARAD_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(farad);
  farad.stdout!.on('data', (d: Buffer) => (faradLog += d.toString()));
  farad.stderr!.on('data', (d: Buffer) => (faradLog += d.toString()));
  const faradUrl = `http://127.0.0.1:${faradPort}`;
  await waitFor('farad /readyz', async () => ((await fetch(`${faradUrl}/readyz`)).status === 200 ? true : undefined), 60_000, () => faradLog);

  const post = async (body: unknown, contentType = 'application/json') =>
    fetch(`${faradUrl}/events/voter.Vote`, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const votes = Array.from({ length: 40 }, (_, i) => ({ phoneNumber: 5_085_550_000 + (i % 25), contestantNumber: (i % 7) + 1 }));
  assert.equal((await post(votes)).status, 202);
  assert.equal((await post('{not json')).status, 400);

  // Prometheus: scrape every second, with the alert rules loaded (so it evaluates them too).
  const promDir = mkdtempSync(path.join(work, 'prometheus-'));
  const promConfig = writeTmp(
    'prometheus.yml',
    stringifyYaml({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [ALERTS_FILE],
      scrape_configs: [{ job_name: 'farad', metrics_path: '/metrics', static_configs: [{ targets: [`127.0.0.1:${faradPort}`] }] }],
    }),
  );
  let promLog = '';
  const prometheus = spawn(
    'timeout',
    [
      '--signal=TERM',
      '170',
      PROMETHEUS,
      `--config.file=${promConfig}`,
      `--storage.tsdb.path=${path.join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { cwd: promDir, env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(prometheus);
  prometheus.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
  prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
  const promUrl = `http://127.0.0.1:${promPort}`;

  const api = async (pathAndQuery: string): Promise<any> => {
    const res = await fetch(`${promUrl}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data?: unknown; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${body.errorType ?? ''} ${body.error ?? res.status}`);
    return body.data;
  };
  const query = (expr: string) => api(`/api/v1/query?query=${encodeURIComponent(expr)}`) as Promise<{ resultType: string; result: unknown[] }>;

  await waitFor(
    'the farad target to be up',
    async () => {
      const data = await api('/api/v1/targets');
      const target = data.activeTargets?.[0];
      return target?.health === 'up' ? target : undefined;
    },
    60_000,
    () => promLog,
  );
  // Enough scrapes for rate()/increase() over 1m windows to have two samples.
  await waitFor(
    'three scrapes of farad_events_processed_total',
    async () => {
      const r = await query('count_over_time(farad_events_processed_total[1m])');
      return r.result.some((s: any) => Number(s.value[1]) >= 3) ? true : undefined;
    },
    30_000,
    () => promLog,
  );

  // Metric names farad exposes.
  const exposition = await (await fetch(`${faradUrl}/metrics`)).text();
  const exposed = exposedNames(exposition);
  assert.ok(exposed.has('farad_partition_role') && exposed.has('process_cpu_seconds_total'), 'farad /metrics exposes its metrics');

  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Json;
  const exprs: DashboardExpr[] = [
    ...dashboardExprs(dashboard),
    ...alertRules().map((r) => ({ where: `alert ${r.alert ?? r.record}`, expr: r.expr })),
  ];
  const problems: string[] = [];
  const empty: string[] = [];
  for (const { where, expr } of exprs) {
    const concrete = concreteExpr(expr);
    for (const name of metricNames(concrete)) {
      if (!exposed.has(name)) problems.push(`${where}: metric ${name} is not exposed by farad's /metrics`);
    }
    try {
      const r = await query(concrete);
      if (r.result.length === 0) empty.push(where);
    } catch (err) {
      problems.push(`${where}: query failed: ${(err as Error).message}\n    ${concrete}`);
    }
  }
  assert.deepEqual(problems, [], `dashboard/alert expressions with problems:\n${problems.join('\n')}`);

  // The core panels must show data from this farad (proves the variable substitution matches).
  for (const where of [
    'panel "Events / s" target A',
    'panel "Events processed by type and outcome" target A',
    'panel "Handler latency p50 / p99" target B',
    'panel "Partition roles" target A',
    'panel "Keys per table" target A',
    'panel "CPU" target A',
    'variable instance',
  ]) {
    assert.ok(exprs.some((e) => e.where === where), `no ${where} in the dashboard`);
    assert.ok(!empty.includes(where), `${where} returned no data from a live farad`);
  }
  console.error(`[deploy] ${exprs.length} expressions evaluated; empty on an idle single embedded instance: ${empty.length}`);

  // Prometheus evaluated the rule file itself without errors.
  await sleep(2_000);
  const rules = await api('/api/v1/rules');
  const loaded = (rules.groups as any[]).flatMap((g) => g.rules as any[]);
  assert.equal(loaded.length, alertRules().length, 'Prometheus loaded every rule');
  for (const r of loaded) assert.equal(r.health, 'ok', `rule ${r.name} evaluation: ${r.lastError ?? ''}`);
  const firing = loaded.filter((r) => r.state === 'firing').map((r) => r.name);
  assert.deepEqual(firing, [], 'no alert fires for a healthy single instance');

  await stop(prometheus);
  await stop(farad);
  assert.ok(existsSync(promConfig));
});

/** CPUs of a Kubernetes quantity ("500m", "2"), rounded up as the kubelet does for a resourceFieldRef with divisor 1. */
function cpusOf(quantity: unknown): number {
  const text = String(quantity);
  return Math.max(1, Math.ceil(text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text)));
}
