/** A small seeded PRNG (mulberry32) and helpers on it: the soak's only source of randomness. */

import { seededRandom } from '../../src/procedures/index.js';

export type Random = () => number;

/** mulberry32, farad's own (the handlers' ctx.random). */
export const mulberry32: (seed: number) => Random = seededRandom;

/** An independent stream for one purpose (`label`) of a run's seed, so adding draws to one part never shifts another. */
export function streamOf(seed: number, label: string): Random {
  let h = 2166136261 ^ (seed >>> 0);
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 16777619);
  return mulberry32((h ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0);
}

/** An integer in [lo, hi]. */
export function between(random: Random, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

export function pick<T>(random: Random, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick from an empty list');
  return items[Math.floor(random() * items.length)]!;
}

/** Fisher-Yates, a new array. */
export function shuffle<T>(random: Random, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
