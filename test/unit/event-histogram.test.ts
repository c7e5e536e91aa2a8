import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { EventHistogram } from '../../src/metrics/event-histogram.js';
import { encodeChangeKey } from '../../src/codec/index.js';
import { fitsSchema, freezerFor, describeInvalid } from '../../src/state/validate.js';
import avsc from 'avsc';

const BUCKETS = [0.000005, 0.00001, 0.0001, 0.001, 0.5];
// Binary fractions: sums are exact in any order (the aggregated registry adds in another order).
const OBSERVED = [0, 2 ** -18, 2 ** -17, 2 ** -15, 0.25, 0.5, 0.75, 12, 2 ** -20];

test('EventHistogram exposes what prom-client\'s Histogram exposes for the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new EventHistogram({ name: 'x_seconds', help: 'Time.', labelName: 'event_type', buckets: BUCKETS, registers: [ours] });
  const reference = new Histogram({ name: 'x_seconds', help: 'Time.', labelNames: ['event_type'], buckets: BUCKETS, registers: [theirs] });
  for (const [i, v] of OBSERVED.entries()) {
    const type = i % 2 ? 'a.Vote' : 'b "quoted"';
    fast.labels(type).observe(v);
    reference.labels(type).observe(v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  // Across worker processes the registry sums it, like prom-client's own histograms.
  const merged = AggregatorRegistry.aggregate([await ours.getMetricsAsJSON(), await ours.getMetricsAsJSON()]);
  const doubled = new Registry();
  const twice = new Histogram({ name: 'x_seconds', help: 'Time.', labelNames: ['event_type'], buckets: BUCKETS, registers: [doubled] });
  for (let round = 0; round < 2; round++) for (const [i, v] of OBSERVED.entries()) twice.labels(i % 2 ? 'a.Vote' : 'b "quoted"').observe(v);
  assert.equal(await merged.metrics(), await doubled.metrics());
  fast.reset();
  assert.doesNotMatch(await ours.metrics(), /x_seconds_count/);
});

test('changelog keys are the JSON text [table, key]', () => {
  for (const key of [0, -0, 1, -42, 2015550123, Number.MAX_SAFE_INTEGER, '', 'a', 'quo"te', 'back\\slash', 'é😀', '\u0001']) {
    for (const table of ['votes', 'wé"ird']) assert.equal(encodeChangeKey(table, key).toString(), JSON.stringify([table, key]));
  }
});

test('rows are frozen per their schema; fitsSchema agrees with describeInvalid', () => {
  const flat = avsc.Type.forSchema({ type: 'record', name: 'F', fields: [{ name: 'n', type: 'int' }, { name: 's', type: 'string' }] });
  const nested = avsc.Type.forSchema({ type: 'record', name: 'N', fields: [{ name: 'items', type: { type: 'array', items: 'int' } }] });
  const row = freezerFor(flat)({ n: 1, s: 'x' }) as object;
  assert.ok(Object.isFrozen(row));
  const deep = freezerFor(nested)({ items: [1, 2] }) as { items: number[] };
  assert.ok(Object.isFrozen(deep) && Object.isFrozen(deep.items));
  for (const [type, value] of [
    [flat, { n: 1, s: 'x' }],
    [flat, { n: 1.5, s: 'x' }],
    [flat, { n: 1, s: 'x', extra: 1 }],
    [flat, { n: 1, s: '\ud800' }],
    [nested, { items: [1, 'two'] }],
  ] as const) {
    assert.equal(fitsSchema(type, value), describeInvalid(type, value) === undefined, JSON.stringify(value));
  }
});
