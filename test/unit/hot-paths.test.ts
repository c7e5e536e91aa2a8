// farad's per-event fast paths give what their reference implementations give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { EventHistogram } from '../../src/metrics/event-histogram.js';
import { decodeChangeKey, encodeChangeKey } from '../../src/codec/index.js';
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

test('changelog keys are the JSON text [table, key], and read back as JSON.parse reads them', () => {
  const keys = [0, -0, 1, -42, 2015550123, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, '', 'a', 'quo"te', 'back\\slash', 'é😀', '\u0001', '12', '-3', '","', ']'];
  for (const key of keys) {
    for (const table of ['votes', 'wé"ird', 'x', '__timers']) {
      const bytes = encodeChangeKey(table, key);
      assert.equal(bytes.toString(), JSON.stringify([table, key]));
      assert.deepEqual(decodeChangeKey(bytes), { table, key: (JSON.parse(bytes.toString()) as [string, string | number])[1] });
      assert.ok(Object.is(decodeChangeKey(bytes).key, JSON.parse(bytes.toString())[1]), `${table} ${String(key)}`);
    }
  }
  // Not what farad writes: the same answer or the same refusal as a plain JSON.parse.
  for (const text of ['["t",01]', '["t",1e3]', '["t",1.5]', '["t",-]', '["t",99999999999999999]', '["t" ,1]', '["t",1 ]', '["t","a\\"b"]', '["t\\u0041",1]', '["t",]', '["t","]', '[1,2]', 'x']) {
    let reference: unknown;
    try {
      const parsed = JSON.parse(text) as unknown[];
      reference = Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && ['string', 'number'].includes(typeof parsed[1]) ? { table: parsed[0], key: parsed[1] } : 'refused';
    } catch {
      reference = 'refused';
    }
    let ours: unknown;
    try {
      ours = decodeChangeKey(Buffer.from(text));
    } catch {
      ours = 'refused';
    }
    assert.deepEqual(ours, reference, text);
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
