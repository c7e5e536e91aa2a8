/**
 * Reads of tables and queries, wherever the data is: local, forwarded to the owner, gathered
 * from every instance, or stale from a standby copy. Adapters (HTTP, console) call `Reads`; it
 * sees the partition core only through `PartitionDirectory` and throws typed errors.
 */
export { Reads, type ReadsOptions, type Answer, type RowBody, type RowRead, type TablePage } from './reads.js';
export { QueryRunner } from './queries.js';
export { locate, locateHere, type Location, type LocalCopy } from './locate.js';
export { pageOf, type Page } from './paging.js';
export { findTable, parseKey, parseLimit, MAX_PAGE, DEFAULT_PAGE } from './params.js';
export { Peers, type PeersOptions, type Relayed } from './peers.js';
export { formatPosition, parsePosition, WAIT_FOR_LIMIT_MS, type InputPosition, type WaitFor } from './wait-for.js';
export {
  FORWARDED_HEADER,
  FROM_SIBLING,
  STALE_HEADER,
  ACCEPT_STALE_HEADER,
  FRESH,
  readModeOf,
  type ReadMode,
  type ScannedRow,
  type ScanPartial,
  type QueryPartial,
  type ScanPartialQuery,
} from './wire.js';
