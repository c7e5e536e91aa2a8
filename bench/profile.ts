/**
 * CPU profiles: in-process with node:inspector's Profiler, or the `.cpuprofile` files children
 * write with `--cpu-prof`; and a short summary of where the time goes (top self-time functions
 * and self time by module).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join, relative } from 'node:path';
import { ROOT } from './lib.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/**
 * Runs `work` under the in-process CPU sampling profiler and the sampling heap profiler (every
 * allocation site, collected objects included); writes `<dir>/<name>.cpuprofile` and
 * `<dir>/<name>.heapprofile`.
 */
export async function profiled<T>(dir: string, name: string, work: () => Promise<T>): Promise<{ result: T; file: string; heapFile: string }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 64 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as { samplingInterval: number });
  await session.post('Profiler.start');
  const file = join(dir, `${name}.cpuprofile`);
  const heapFile = join(dir, `${name}.heapprofile`);
  try {
    return { result: await work(), file, heapFile };
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    const { profile: heap } = await session.post('HeapProfiler.stopSampling');
    writeFileSync(heapFile, JSON.stringify(heap));
    session.disconnect();
  }
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Allocated bytes by allocation site (function) of a sampling heap profile, largest first. */
export function allocationSites(file: string, top = 10): Array<{ name: string; where: string; bytes: number; share: number }> {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const byFunction = new Map<string, { name: string; where: string; bytes: number }>();
  let total = 0;
  const walk = (node: HeapNode) => {
    if (node.selfSize > 0) {
      const f = node.callFrame;
      const key = `${f.functionName}|${f.url}|${f.lineNumber}`;
      const entry = byFunction.get(key) ?? { name: f.functionName || '(anonymous)', where: where(f), bytes: 0 };
      entry.bytes += node.selfSize;
      byFunction.set(key, entry);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child);
  };
  walk(head);
  return [...byFunction.values()]
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, top)
    .map((e) => ({ ...e, share: total > 0 ? e.bytes / total : 0 }));
}

export function allocationMarkdown(file: string): string[] {
  const sites = allocationSites(file);
  return [
    'Allocation sites (sampling heap profile, collected objects included):',
    '',
    '| allocated | function | where |',
    '|---:|---|---|',
    ...sites.map((s) => `| ${(s.share * 100).toFixed(1)}% | \`${s.name}\` | ${s.where || '–'} |`),
    '',
  ];
}

const sources = new Map<string, string[] | undefined>();

/**
 * tsx (esbuild) compiles each TypeScript file onto one line, so a profile's line numbers of .ts
 * files are all 1: find the function's definition in the source by its name instead.
 */
function definitionLine(path: string, name: string): number | undefined {
  if (!sources.has(path)) {
    try {
      sources.set(path, readFileSync(path, 'utf8').split('\n'));
    } catch {
      sources.set(path, undefined);
    }
  }
  const lines = sources.get(path);
  const simple = name.split('.').at(-1);
  if (!lines || !simple || !/^[\w$]+$/.test(simple)) return undefined;
  const patterns = [
    new RegExp(`^\\s*(export\\s+)?(default\\s+)?(async\\s+)?function\\*?\\s+${simple}\\b`),
    new RegExp(`^\\s*((public|private|protected|static|async|readonly|override|get|set)\\s+)*\\*?${simple}\\s*[(<]`),
    new RegExp(`^\\s*(export\\s+)?(const|let|var)\\s+${simple}\\s*=`),
    new RegExp(`^\\s*(export\\s+)?(abstract\\s+)?class\\s+${simple}\\b`),
    new RegExp(`\\b${simple}\\s*[:=]\\s*(async\\s*)?(\\([^)]*\\)|\\w+)\\s*(:[^=]*)?=>`),
  ];
  for (const pattern of patterns) {
    const index = lines.findIndex((line) => pattern.test(line));
    if (index >= 0) return index + 1;
  }
  return undefined;
}

function where(frame: CallFrame): string {
  let url = frame.url;
  let path = url;
  if (url.startsWith('file://')) path = url = decodeURIComponent(url.slice('file://'.length));
  if (url.startsWith(ROOT)) url = relative(ROOT, url);
  url = url.replace(/^node_modules\//, '');
  if (!url) return '';
  if (/\.m?ts$/.test(url) && frame.lineNumber <= 0) {
    const line = definitionLine(path, frame.functionName);
    return line === undefined ? url : `${url}:${line}`;
  }
  return `${url}:${frame.lineNumber + 1}`;
}

/** Module a function belongs to: `src/<folder>`, an npm package, node internals, or V8 itself. */
function moduleOf(frame: CallFrame): string {
  const url = frame.url;
  if (!url) {
    const name = frame.functionName;
    if (name === '(garbage collector)') return '(garbage collector)';
    if (name === '(idle)' || name === '(program)' || name === '(root)') return name;
    return '(native / V8 builtins)';
  }
  if (url.startsWith('node:')) return 'node internals';
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1]!;
  const rel = relative(ROOT, path);
  const src = /^(src\/[^/]+|bench|examples\/[^/]+)/.exec(rel);
  return src ? src[1]! : rel;
}

export interface ProfileSummary {
  /** Milliseconds sampled, without (idle). */
  busyMs: number;
  idleMs: number;
  top: Array<{ name: string; where: string; ms: number; share: number }>;
  /** Inclusive (self + callees) time of farad's own functions (src/), largest first. */
  inclusive: Array<{ name: string; where: string; ms: number; share: number }>;
  modules: Array<{ module: string; ms: number; share: number }>;
}

/** Self time per function and per module of a `.cpuprofile` (idle excluded from the shares). */
export function summarise(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0) {
    for (let i = 0; i < samples.length; i++) {
      // timeDeltas[i + 1] is the time until the next sample: the time sample i stands for.
      const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
      selfMs.set(samples[i]!, (selfMs.get(samples[i]!) ?? 0) + dt);
    }
  } else {
    const total = (profile.endTime - profile.startTime) / 1000;
    const hits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
    for (const n of profile.nodes) selfMs.set(n.id, ((n.hitCount ?? 0) * total) / hits);
  }
  const byFunction = new Map<string, { name: string; where: string; ms: number }>();
  const byModule = new Map<string, number>();
  let idleMs = 0;
  let busyMs = 0;
  for (const [id, ms] of selfMs) {
    const node = byId.get(id);
    if (!node) continue;
    const frame = node.callFrame;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
    const entry = byFunction.get(key) ?? { name: frame.functionName || '(anonymous)', where: where(frame), ms: 0 };
    entry.ms += ms;
    byFunction.set(key, entry);
    const module = moduleOf(frame);
    byModule.set(module, (byModule.get(module) ?? 0) + ms);
  }
  const share = (ms: number) => (busyMs > 0 ? ms / busyMs : 0);
  // Inclusive time: every sample counts once for each distinct src/ function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, { name: string; where: string; ms: number }>();
  for (const [id, ms] of selfMs) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame || !/\/src\//.test(frame.url) || frame.url.includes('node_modules')) continue;
      const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = inclusive.get(key) ?? { name: frame.functionName || '(anonymous)', where: where(frame), ms: 0 };
      entry.ms += ms;
      inclusive.set(key, entry);
    }
  }
  return {
    inclusive: [...inclusive.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ ...f, share: share(f.ms) })),
    busyMs,
    idleMs,
    top: [...byFunction.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ ...f, share: share(f.ms) })),
    modules: [...byModule]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([module, ms]) => ({ module, ms, share: share(ms) })),
  };
}

/** Markdown lines of a profile summary. */
export function summaryMarkdown(title: string, summary: ProfileSummary): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `**${title}** — ${Math.round(summary.busyMs)} ms on CPU sampled, ${Math.round(summary.idleMs)} ms idle.`,
    '',
    '| self | function | where |',
    '|---:|---|---|',
    ...summary.top.map((f) => `| ${pct(f.share)} | \`${f.name}\` | ${f.where || '–'} |`),
    '',
    'Inclusive time (self + callees) of farad\'s own functions:',
    '',
    '| total | function | where |',
    '|---:|---|---|',
    ...summary.inclusive.map((f) => `| ${pct(f.share)} | \`${f.name}\` | ${f.where || '–'} |`),
    '',
    'Self time by module: ' + summary.modules.map((m) => `${m.module} ${pct(m.share)}`).join(', ') + '.',
    '',
  ];
  if (summary.top.some((f) => f.name === '__name')) {
    lines.push(
      '`__name` is the keepNames helper esbuild inserts when tsx compiles TypeScript on the fly (one call per closure created); the tsc build in dist/ that the Docker image runs has no such calls.',
      '',
    );
  }
  return lines;
}
