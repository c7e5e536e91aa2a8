/**
 * kafkajs 2.2.4 re-arms a timer on every connection after each response, whether or not a request
 * waits (its delay comes out negative, so it fires within a millisecond, forever): each idle
 * connection wakes the event loop about a thousand times a second (tulios/kafkajs#1556, #1704).
 * farad holds a connection per partition producer, so that was most of its CPU at low load.
 * Here a check is scheduled only while a request waits: for the client-side throttle to end, or,
 * when requests are merely over the in-flight limit, as a fallback to the response that frees a
 * slot (which checks at once).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** kafkajs's own pause between checks of requests waiting on the in-flight limit. */
const CHECK_INTERVAL_MS = 10;

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
}

export function scheduleCheckPendingRequests(this: RequestQueueLike): void {
  if (this.pending.length === 0 || this.throttleCheckTimeoutId) return;
  const wait = Math.max(this.throttledUntil - Date.now(), CHECK_INTERVAL_MS);
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, wait);
}

const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: { scheduleCheckPendingRequests(): void } };
RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
