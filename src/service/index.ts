export { startService, createCodec, openTransport, type Service, type StartOptions } from './service.js';
export { Ingest, NotAnInputError } from './ingest.js';
export { createSnapshotStore, createSnapshotter, loadSnapshotInto } from './replication.js';
