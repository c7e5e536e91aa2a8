/**
 * Idempotent ingest: a request sent with an `Idempotency-Key` is appended once; a retry with the
 * same key within the window gets the first answer again and appends nothing. One member of the
 * service keeps each key: the one that owns partition `partitionForKey(key, partitions)`; the
 * others forward such requests to it (forward.ts), so a retry that lands elsewhere gets the same
 * answer. The keys live in that member's memory: they are lost when it restarts, or when the
 * partition moves to another member.
 */
import { createHash } from 'node:crypto';
import { IdempotencyKeyReusedError, InvalidIdempotencyKeyError } from '../errors.js';
import type { OutRecord } from '../streams/index.js';

/** The request header naming the key. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Set to `true` on an answer given again to a retry (nothing was appended for it). */
export const REPLAYED_HEADER = 'idempotent-replayed';
/** Longest key accepted. */
export const MAX_KEY_LENGTH = 255;

/** Printable ASCII: space to tilde. */
const PRINTABLE = /^[\x20-\x7e]+$/;

/**
 * The request's idempotency key, or undefined when it has none. Throws
 * InvalidIdempotencyKeyError (400) for a key that is empty, longer than 255 characters, not
 * printable ASCII, or given twice.
 */
export function idempotencyKeyOf(headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  const value = headers[IDEMPOTENCY_KEY_HEADER];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new InvalidIdempotencyKeyError(`Idempotency-Key is given ${value.length} times; give it once`);
  if (value.length === 0 || value.length > MAX_KEY_LENGTH || !PRINTABLE.test(value)) {
    throw new InvalidIdempotencyKeyError(
      `Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} printable ASCII characters (a UUID is a good choice); this one is ${value.length === 0 ? 'empty' : value.length > MAX_KEY_LENGTH ? `${value.length} characters long` : 'not printable ASCII'}`,
    );
  }
  return value;
}

/**
 * What makes two requests the same: the event type and the records they append (key and Avro
 * value, in order). Encoded values, not the JSON text: a retry whose JSON differs only in key
 * order or number formatting (`"5"` or `5` for a long) is the same request.
 */
export function fingerprintOf(eventType: string, records: readonly OutRecord[]): string {
  const hash = createHash('sha256').update(eventType).update('\0');
  for (const record of records) {
    for (const part of [record.key, record.value]) {
      const length = Buffer.alloc(4);
      length.writeInt32BE(part === null ? -1 : part.length);
      hash.update(length);
      if (part !== null) hash.update(part);
    }
  }
  return hash.digest('base64url');
}

/** An answer kept for retries: status and JSON body. */
export interface StoredAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** The answer to a request with a key, and whether it was given before (nothing was appended now). */
export interface KeyedAnswer {
  readonly answer: StoredAnswer;
  readonly replayed: boolean;
}

export interface IdempotencyWindow {
  /** How long a key's answer is kept after it was given (`http.idempotencyWindowSeconds`, in ms). */
  readonly windowMs: number;
  /** Most keys kept; beyond it the oldest answers are forgotten first (`http.idempotencyMaxKeys`). */
  readonly maxKeys: number;
  /** The clock (tests). */
  readonly now?: (() => number) | undefined;
}

/** A key's entry: its first request still running (others wait for it), or its answer, kept until `expiresAt`. */
type Entry =
  | { readonly state: 'running'; readonly fingerprint: string; readonly settled: Promise<void> }
  | { readonly state: 'answered'; readonly fingerprint: string; readonly answer: StoredAnswer; readonly expiresAt: number };

/**
 * The keys one member keeps, in memory and bounded: key → fingerprint and answer, in the order
 * they were answered (so the oldest go first, whether by age or by count). Only successful
 * answers are kept: a request that failed leaves nothing, and its retry runs again.
 */
export class IdempotencyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly window: IdempotencyWindow) {
    this.now = window.now ?? Date.now;
  }

  /** Keys held now (answered and running). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The answer for `key`: the one kept (`replayed`) when a request with the same fingerprint was
   * answered within the window; otherwise `first()`'s, kept when it succeeds. A request arriving
   * while one with the same key runs waits for it. Throws IdempotencyKeyReusedError (422) when
   * the key's answer belongs to a request with another fingerprint; `first()`'s error as it is.
   */
  async answer(key: string, fingerprint: string, first: () => Promise<StoredAnswer>): Promise<KeyedAnswer> {
    for (;;) {
      this.forgetExpired();
      const entry = this.entries.get(key);
      if (entry?.state === 'running') {
        await entry.settled;
        continue; // answered (compare), or failed (the key is free again)
      }
      if (entry?.state === 'answered') {
        if (entry.fingerprint !== fingerprint) {
          throw new IdempotencyKeyReusedError(
            `Idempotency-Key "${key}" was used within the last ${Math.round(this.window.windowMs / 1000)} s for a request with another event type or body; nothing was appended. Send a new request under a new key`,
          );
        }
        return { answer: entry.answer, replayed: true };
      }
      return this.run(key, fingerprint, first);
    }
  }

  private async run(key: string, fingerprint: string, first: () => Promise<StoredAnswer>): Promise<KeyedAnswer> {
    let settle: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.entries.set(key, { state: 'running', fingerprint, settled });
    try {
      const answer = await first();
      // Re-inserted: the map's order is the order answers were given, the oldest first.
      this.entries.delete(key);
      this.entries.set(key, { state: 'answered', fingerprint, answer, expiresAt: this.now() + this.window.windowMs });
      this.bound();
      return { answer, replayed: false };
    } catch (err) {
      this.entries.delete(key);
      throw err;
    } finally {
      settle();
    }
  }

  /** Drops answers past their window, oldest first (the map's head). */
  private forgetExpired(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.state === 'running') continue;
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }

  /** Keeps at most `maxKeys`, forgetting the oldest answers (running requests are never dropped). */
  private bound(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.window.maxKeys) return;
      if (entry.state === 'answered') this.entries.delete(key);
    }
  }
}
