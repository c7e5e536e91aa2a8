import assert from 'node:assert/strict';
import { test } from 'node:test';
import avro from 'avsc';
import { describeInvalid } from '../../src/state/index.js';

const type = avro.Type.forSchema({
  type: 'record',
  name: 'Account',
  fields: [
    { name: 'balance', type: 'long' },
    { name: 'owner', type: { type: 'record', name: 'Owner', fields: [{ name: 'name', type: 'string' }] } },
  ],
});

test('a value with a field the schema does not declare is refused, naming the field', () => {
  // Such a field would survive in memory but not in the changelog, so replicas would diverge.
  assert.deepEqual(describeInvalid(type, { balance: 1, owner: { name: 'a' }, note: 'x' }), {
    field: 'note',
    message: 'field "note" is not in schema Account',
  });
  assert.equal(describeInvalid(type, { balance: 1, owner: { name: 'a', age: 3 } })?.field, 'owner.age');
});

test('valid values pass and wrong types still name the field', () => {
  assert.equal(describeInvalid(type, { balance: 1, owner: { name: 'a' } }), undefined);
  assert.equal(describeInvalid(type, { balance: 'x', owner: { name: 'a' } })?.field, 'balance');
});
