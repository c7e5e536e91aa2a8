import type { PartitionDirectory } from '../partition/index.js';
import { partitionForKey } from '../state/index.js';
import { keyOwner, type ForwardedIngest, type Hop, type IngestForwarder, type KeyOwner, type RelayedIngest } from './forward.js';
import { IdempotencyCache, type IdempotencyWindow, type KeyedAnswer, type StoredAnswer } from './idempotency.js';

export interface KeyedIngestOptions {
  /** The app's partition count: a key belongs to partition `partitionForKey(key, partitions)`. */
  readonly partitions: number;
  /** Where partitions are active; none: a single process, which keeps every key itself. */
  readonly directory?: PartitionDirectory | undefined;
  /** How requests reach the member that keeps their key. */
  readonly forwarder?: IngestForwarder | undefined;
  readonly window: IdempotencyWindow;
}

/**
 * Requests with an `Idempotency-Key`, as one member of the service handles them: it keeps the
 * keys of the partitions active here (`answer`) and names the member that keeps any other key
 * (`ownerOf`, `forward`).
 */
export class KeyedIngest {
  private readonly cache: IdempotencyCache;

  constructor(private readonly options: KeyedIngestOptions) {
    this.cache = new IdempotencyCache(options.window);
  }

  /** One process that keeps every key, with the settings' defaults (a day, 100,000 keys): an HTTP API over a single process. */
  static alone(): KeyedIngest {
    return new KeyedIngest({ partitions: 1, window: { windowMs: 86_400_000, maxKeys: 100_000 } });
  }

  /** Where the request with `key` is answered (throws PartitionUnavailableError when its owner cannot be reached now). */
  ownerOf(key: string, hop: Hop): KeyOwner {
    const { directory, partitions } = this.options;
    if (!directory) return { kind: 'here' };
    return keyOwner(directory, partitionForKey(key, partitions), hop);
  }

  /** The owner's answer to a request forwarded to it. */
  forward(url: string, request: ForwardedIngest): Promise<RelayedIngest> {
    const forwarder = this.options.forwarder;
    if (!forwarder) throw new Error(`no forwarder to reach ${url} (give KeyedIngest one with its directory)`);
    return forwarder.forward(url, request);
  }

  /** The answer to a request whose key is kept here: given again to a retry, or `first()`'s (see IdempotencyCache.answer). */
  answer(key: string, fingerprint: string, first: () => Promise<StoredAnswer>): Promise<KeyedAnswer> {
    return this.cache.answer(key, fingerprint, first);
  }

  /** Keys kept here now. */
  get keys(): number {
    return this.cache.size;
  }
}
