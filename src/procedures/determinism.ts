/**
 * Deterministic helpers for handlers: randomness seeded from where the event sits in the log,
 * so a replay of the same records makes the same choices.
 */

/** FNV-1a over a string; used to fold the topic name into the seed. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Seed for the event at (topic, partition, offset). */
export function eventSeed(topic: string, partition: number, offset: number): number {
  let h = fnv1a(topic) ^ Math.imul(partition + 1, 0x9e3779b1);
  h = Math.imul(h ^ (offset >>> 0), 0x85ebca6b) ^ Math.floor(offset / 0x100000000);
  return (h ^ (h >>> 13)) >>> 0;
}

/** mulberry32: small, fast, good enough for handler decisions; not for cryptography. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** True for `async function` / `async () =>` handlers, which cannot be transactional. */
export function isAsyncFunction(fn: unknown): boolean {
  return typeof fn === 'function' && fn.constructor?.name === 'AsyncFunction';
}

/** True for `function*` / `async function*` handlers: calling one returns an iterator and runs nothing. */
export function isGeneratorFunction(fn: unknown): boolean {
  const kind = typeof fn === 'function' ? fn.constructor?.name : undefined;
  return kind === 'GeneratorFunction' || kind === 'AsyncGeneratorFunction';
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
