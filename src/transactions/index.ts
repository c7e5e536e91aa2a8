export { MultiPartitionProtocol } from './protocol.js';
export { ConsistentQueries } from './consistent-queries.js';
