/** How numbers, times and ages read on the page. Pure. */

const counts = new Intl.NumberFormat('en-US');

/** "–" stands for "not known" everywhere on the page. */
export const UNKNOWN = '–';

export function formatCount(n: number | undefined): string {
  return n === undefined ? UNKNOWN : counts.format(n);
}

/** Events per second: one decimal below 10, whole numbers above. */
export function formatRate(perSecond: number | undefined): string {
  if (perSecond === undefined) return UNKNOWN;
  if (perSecond === 0) return '0';
  return perSecond < 10 ? perSecond.toFixed(1) : counts.format(Math.round(perSecond));
}

/** A duration in the two largest units: "45 s", "3 m 05 s", "2 h 10 m", "3 d 4 h". */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return UNKNOWN;
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(s % 60).padStart(2, '0')} s`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours} h ${String(m % 60).padStart(2, '0')} m`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function formatPercent(fraction: number | undefined): string {
  return fraction === undefined ? UNKNOWN : `${Math.floor(fraction * 100)}%`;
}

/** Local wall-clock time with seconds. */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

/** Local date and time, for records that may be days old. */
export function formatDateTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { hour12: false });
}
