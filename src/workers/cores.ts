import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';

/**
 * How many cores this process may use: the CPUs it may run on, capped by a cgroup CPU quota
 * (a container's CPU limit), rounded up. Node's availableParallelism() sees the CPUs, not the
 * quota, so a pod limited to 2 CPUs on a 64-core node would otherwise start 64 workers.
 */
export function availableCores(read: (path: string) => string | undefined = readText): number {
  return coresFrom(availableParallelism(), cgroupQuota(read));
}

/** CPUs allowed by a quota of `quota` µs per `period` µs, or undefined when unlimited or unknown. */
export interface CpuQuota {
  readonly quota: number;
  readonly period: number;
}

/** `parallelism` capped by `quota` (rounded up, at least 1). */
export function coresFrom(parallelism: number, quota: CpuQuota | undefined): number {
  if (!quota || quota.quota <= 0 || quota.period <= 0) return Math.max(1, parallelism);
  return Math.max(1, Math.min(parallelism, Math.ceil(quota.quota / quota.period)));
}

/** The CPU quota of cgroup v2 (`cpu.max`: "max 100000" or "200000 100000") or v1 (cfs quota and period). */
export function cgroupQuota(read: (path: string) => string | undefined): CpuQuota | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2 && v2.length === 2) return v2[0] === 'max' ? undefined : quotaOf(v2[0], v2[1]);
  const quota = read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim();
  if (quota === undefined || quota === '-1') return undefined;
  return quotaOf(quota, read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
}

function quotaOf(quota: string | undefined, period: string | undefined): CpuQuota | undefined {
  const q = Number(quota);
  const p = Number(period);
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? { quota: q, period: p } : undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
