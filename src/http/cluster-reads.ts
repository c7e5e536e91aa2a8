import type { CompiledApp, CompiledTable } from '../procedures/index.js';
import type { Key, PartitionState } from '../state/index.js';
import { type Executor } from '../streams/index.js';
import { toJson } from '../codec/index.js';
import { HttpProblem } from './problem.js';

/** Marks a request one instance sends another, so it is answered locally and never forwarded again. */
export const FORWARDED_HEADER = 'x-farad-forwarded';

/** What this instance knows about the rest of the cluster. */
export interface Cluster {
  /** This instance's warm standby copy of a partition, for stale reads. */
  standbyState(partition: number): PartitionState | undefined;
  /** Base URL of the other instance that owns a partition now, if known. */
  ownerUrl(partition: number): string | undefined;
}

export interface ReadOptions {
  stale?: string;
}

export interface ReadMode {
  /** The caller accepts an answer from a standby copy. */
  readonly staleOk: boolean;
  /** The request came from another instance. */
  readonly forwarded: boolean;
  readonly authorization: string | undefined;
}

export interface ScannedRow {
  readonly key: Key;
  readonly partition?: number;
  /** Already JSON (toJson), whichever instance produced it. */
  readonly value: unknown;
}

type Location = { kind: 'local'; state: PartitionState; stale: boolean } | { kind: 'remote'; url: string };

/**
 * Reads that may span instances: a partition is read here when it is active here (or, for
 * callers that accept stale data, when a standby copy is here); otherwise from its owner.
 * A partition that no one can serve now answers 503 with Retry-After.
 */
export class ClusterReads {
  constructor(
    private readonly app: CompiledApp,
    private readonly executor: Executor,
    private readonly cluster: Cluster | undefined,
    private readonly token: string | undefined,
  ) {}

  locate(partition: number, mode: ReadMode): Location {
    const hosted = this.executor.partition(partition);
    if (hosted?.roles.role === 'active') return { kind: 'local', state: hosted.state, stale: false };
    if (mode.staleOk) {
      const standby = this.cluster?.standbyState(partition);
      if (standby) return { kind: 'local', state: standby, stale: true };
    }
    const url = mode.forwarded ? undefined : this.cluster?.ownerUrl(partition);
    if (url) return { kind: 'remote', url };
    const role = hosted?.roles.role;
    throw new HttpProblem(
      503,
      'partition_unavailable',
      role
        ? `partition ${partition} is ${role} here; retry shortly${this.cluster ? ', or accept a stale answer with ?stale=true' : ''}`
        : `partition ${partition} has no reachable owner right now (moving between instances); retry shortly${this.cluster ? ', or accept a stale answer with ?stale=true' : ''}`,
      { partition, ...(role ? { role } : {}) },
      { 'retry-after': '1' },
    );
  }

  /** Relays a request to the instance that owns the data. */
  async forward(base: string, path: string): Promise<{ status: number; headers: Record<string, string>; body: unknown }> {
    const response = await this.fetch(base, path);
    const headers: Record<string, string> = {};
    const stale = response.headers.get('x-farad-stale');
    if (stale) headers['x-farad-stale'] = stale;
    return { status: response.status, headers, body: await response.json() };
  }

  /** Rows after `after` of every partition (at most `limit` per partition), local and remote. */
  async scan(table: CompiledTable, after: Key | undefined, limit: number, mode: ReadMode): Promise<{ rows: ScannedRow[]; stale: boolean }> {
    const { local, remote } = this.split(mode);
    const answer = this.localScan(table, local, after, limit, mode);
    const rows = [...answer.rows];
    let stale = answer.stale;
    for (const [url, partitions] of remote) {
      const query = new URLSearchParams({ partitions: partitions.join(','), limit: String(limit), ...(after !== undefined ? { after: String(after) } : {}), ...(mode.staleOk ? { stale: 'true' } : {}) });
      const response = await this.fetch(url, `/internal/partials/tables/${encodeURIComponent(table.name)}?${query}`);
      const body = (await response.json()) as { rows?: ScannedRow[]; stale?: boolean; message?: string };
      if (!response.ok) throw new HttpProblem(503, 'partition_unavailable', `${url}: ${body.message ?? response.statusText}`, {}, { 'retry-after': '1' });
      rows.push(...(body.rows ?? []));
      stale ||= body.stale === true;
    }
    return { rows, stale };
  }

  localScan(table: CompiledTable, partitions: readonly number[], after: Key | undefined, limit: number, mode: ReadMode): { rows: ScannedRow[]; stale: boolean } {
    const rows: ScannedRow[] = [];
    let stale = false;
    for (const partition of partitions) {
      const where = this.locate(partition, { ...mode, forwarded: true });
      if (where.kind !== 'local') continue;
      stale ||= where.stale;
      for (const [key, value] of where.state.scanCommitted(table.name, { after, limit })) {
        rows.push({ key, partition, value: toJson(table.valueType, value) });
      }
    }
    return { rows, stale };
  }

  /** Every partition's partial answer to a query, in partition order. */
  async queryPartials(name: string, params: Record<string, string>, mode: ReadMode): Promise<{ values: unknown[]; stale: boolean }> {
    const { local, remote } = this.split(mode);
    const byPartition = new Map<number, unknown>();
    const mine = this.localQueryPartials(name, params, local, mode);
    let stale = mine.stale;
    for (const { partition, value } of mine.parts) byPartition.set(partition, value);
    for (const [url, partitions] of remote) {
      const query = new URLSearchParams({ ...params, partitions: partitions.join(','), ...(mode.staleOk ? { stale: 'true' } : {}) });
      const response = await this.fetch(url, `/internal/partials/queries/${encodeURIComponent(name)}?${query}`);
      const body = (await response.json()) as { parts?: Array<{ partition: number; value: unknown }>; stale?: boolean; message?: string };
      if (!response.ok) throw new HttpProblem(503, 'partition_unavailable', `${url}: ${body.message ?? response.statusText}`, {}, { 'retry-after': '1' });
      for (const { partition, value } of body.parts ?? []) byPartition.set(partition, value);
      stale ||= body.stale === true;
    }
    for (let p = 0; p < this.app.partitions; p++) {
      if (!byPartition.has(p)) throw new HttpProblem(503, 'partition_unavailable', `partition ${p} did not answer; retry shortly`, { partition: p }, { 'retry-after': '1' });
    }
    return { values: [...byPartition].sort(([a], [b]) => a - b).map(([, value]) => value), stale };
  }

  localQueryPartials(name: string, params: Record<string, string>, partitions: readonly number[], mode: ReadMode): { parts: Array<{ partition: number; value: unknown }>; stale: boolean } {
    const parts: Array<{ partition: number; value: unknown }> = [];
    let stale = false;
    for (const partition of partitions) {
      const where = this.locate(partition, { ...mode, forwarded: true });
      if (where.kind !== 'local') continue;
      stale ||= where.stale;
      // Partials cross the network as JSON, so local ones take the same round trip.
      parts.push({ partition, value: JSON.parse(JSON.stringify(this.executor.queryPartial(name, where.state, params)) ?? 'null') });
    }
    return { parts, stale };
  }

  /** Partitions served here, and the rest grouped by the instance to ask. */
  private split(mode: ReadMode): { local: number[]; remote: Map<string, number[]> } {
    const local: number[] = [];
    const remote = new Map<string, number[]>();
    for (let p = 0; p < this.app.partitions; p++) {
      const where = this.locate(p, mode);
      if (where.kind === 'local') local.push(p);
      else remote.set(where.url, [...(remote.get(where.url) ?? []), p]);
    }
    return { local, remote };
  }

  private async fetch(base: string, path: string): Promise<Response> {
    try {
      return await fetch(`${base.replace(/\/$/, '')}${path}`, {
        headers: { [FORWARDED_HEADER]: '1', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new HttpProblem(503, 'partition_unavailable', `instance ${base} did not answer (${(err as Error).message}); retry shortly`, {}, { 'retry-after': '1' });
    }
  }
}
