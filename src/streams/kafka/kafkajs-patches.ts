/**
 * farad's fixes to kafkajs 2.2.4, in one place. Imported first by every module of this folder
 * that uses kafkajs: two of them must be in place before kafkajs loads.
 */
export { readCommittedFixed } from './read-committed.js';
export { fastProduceInstalled } from './fast-produce.js';
export { fastRecordsInstalled } from './fast-records.js';
export { appliedOffsets, stableOffsets } from './offset-fetch-stable.js';
export { consumerRetryFixed } from './consumer-retry-fix.js';
import './coordinator-cache.js';
import './request-queue-fix.js';
