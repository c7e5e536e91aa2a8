/** The console page's rates: the difference of two polls' totals over the server time between them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_RATES, ratesBetween } from '../../src/console/web/rates.js';
import type { ClusterView } from '../../src/console/web/api.js';

function view(at: number, fired: number, events: number): ClusterView {
  return {
    app: 'tickets',
    transport: 'embedded',
    partitions: 1,
    replicas: 0,
    at,
    servedBy: 'a',
    instances: [],
    unreachable: [],
    partitionRows: [{ partition: 0, role: 'active', standbys: [], holders: [], eventsTotal: events, commitFailures: 0 }],
    events: [{ eventType: 'tickets.Hold', outcome: 'ok', total: events }],
    ingested: [],
    deadLetters: [],
    timers: { pending: 3, fired: [{ timer: 'timer:expire', total: fired }] },
    snapshots: { ok: 0, failed: 0, skipped: 0 },
    alerts: [],
  };
}

test('rates per second between two polls: events, partitions and timers fired', () => {
  assert.equal(ratesBetween(undefined, view(1000, 0, 0)), NO_RATES);
  const rates = ratesBetween(view(1000, 4, 10), view(3000, 10, 50));
  assert.equal(rates.seconds, 2);
  assert.equal(rates.timers.get('timer:expire'), 3);
  assert.equal(rates.partitions.get(0), 20);
  assert.equal(rates.events.get('tickets.Hold\u0000ok'), 20);
});

test('a counter that went down (its instance restarted) gives no negative rate', () => {
  const rates = ratesBetween(view(1000, 10, 50), view(3000, 2, 5));
  assert.equal(rates.timers.get('timer:expire'), 0);
  assert.equal(rates.partitions.get(0), 0);
});
