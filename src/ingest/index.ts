/** Ingest: events from outside (HTTP, `farad produce`) validated, encoded and appended to their input topics. */
export { Ingest } from './ingest.js';
export {
  IdempotencyCache,
  fingerprintOf,
  idempotencyKeyOf,
  IDEMPOTENCY_KEY_HEADER,
  MAX_KEY_LENGTH,
  REPLAYED_HEADER,
  type IdempotencyWindow,
  type KeyedAnswer,
  type StoredAnswer,
} from './idempotency.js';
export {
  hopOf,
  keyOwner,
  IngestForwarder,
  serveForwardedIngest,
  INGEST_KIND,
  type ForwardedIngest,
  type ForwarderOptions,
  type Hop,
  type KeyOwner,
  type RelayedIngest,
  type SiblingLink,
} from './forward.js';
export { KeyedIngest, type KeyedIngestOptions } from './keyed.js';
