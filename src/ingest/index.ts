/** Ingest: events from outside (HTTP, `farad produce`) validated, encoded and appended to their input topics. */
export { Ingest } from './ingest.js';
