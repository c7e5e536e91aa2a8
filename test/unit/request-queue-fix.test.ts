import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scheduleCheckPendingRequests } from '../../src/streams/kafka/request-queue-fix.js';

function queue(pending: number, throttledUntil = -1) {
  let checks = 0;
  const q = {
    pending: Array.from({ length: pending }),
    throttledUntil,
    throttleCheckTimeoutId: null as NodeJS.Timeout | null,
    checkPendingRequests() {
      checks++;
      this.pending.length = 0;
      scheduleCheckPendingRequests.call(q);
    },
    get checks() {
      return checks;
    },
  };
  return q;
}

test('an idle connection arms no timer (kafkajs re-armed one every millisecond, forever)', async () => {
  const q = queue(0);
  scheduleCheckPendingRequests.call(q);
  assert.equal(q.throttleCheckTimeoutId, null);
});

test('a waiting request is checked once, after the throttle or the in-flight pause, and then nothing more', async () => {
  const q = queue(1, Date.now() + 40);
  const started = Date.now();
  scheduleCheckPendingRequests.call(q);
  assert.notEqual(q.throttleCheckTimeoutId, null);
  scheduleCheckPendingRequests.call(q); // already armed: not twice
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(q.checks, 1);
  assert.ok(Date.now() - started >= 35);
  assert.equal(q.throttleCheckTimeoutId, null);
});
