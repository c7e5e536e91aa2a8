import assert from 'node:assert/strict';
import { test } from 'node:test';
import avro from 'avsc';
import { UnknownSchemaError } from '../../src/errors.js';
import { ConfluentCodec, parseEventType, SchemaCatalog, type SchemaRegistry } from '../../src/codec/index.js';

const voteV1 = parseEventType({
  type: 'record',
  name: 'Vote',
  namespace: 'voter',
  fields: [
    { name: 'phoneNumber', type: 'long' },
    { name: 'contestantNumber', type: 'int' },
  ],
});
const voteV2Schema = {
  type: 'record',
  name: 'Vote',
  namespace: 'voter',
  fields: [
    { name: 'phoneNumber', type: 'long' },
    { name: 'contestantNumber', type: 'int' },
    { name: 'channel', type: 'string', default: 'sms' },
  ],
} as const;

/** In-memory registry: this unit test is about framing and resolution, not HTTP. */
function memoryRegistry(): SchemaRegistry & { texts: Map<number, string> } {
  const texts = new Map<number, string>();
  return {
    texts,
    async schemaById(id) {
      return texts.get(id);
    },
    async register(_subject, schema) {
      for (const [id, text] of texts) if (text === schema) return id;
      texts.set(texts.size + 1, schema);
      return texts.size;
    },
  };
}

test('encodes as magic 0 + big-endian schema id + Avro body', async () => {
  const registry = memoryRegistry();
  await registry.register('other', '"string"'); // id 1, so the app's id is not trivially 1
  const codec = await ConfluentCodec.create(new SchemaCatalog([voteV1]), registry, [voteV1]);
  const bytes = codec.encode('voter.Vote', { phoneNumber: 6175551234, contestantNumber: 3 });
  assert.equal(bytes[0], 0);
  assert.equal(bytes.readUInt32BE(1), 2);
  assert.deepEqual(bytes.subarray(5), voteV1.toBuffer({ phoneNumber: 6175551234, contestantNumber: 3 }));
  assert.deepEqual({ ...(codec.decode(bytes).value as object) }, { phoneNumber: 6175551234, contestantNumber: 3 });
});

test('reads a newer writer schema with an added defaulted field through schema resolution', async () => {
  const registry = memoryRegistry();
  const codec = await ConfluentCodec.create(new SchemaCatalog([voteV1]), registry, [voteV1]);
  const v2 = avro.Type.forSchema(voteV2Schema as unknown as avro.Schema);
  const v2Id = await registry.register('voter.Vote', JSON.stringify(v2.schema()));
  const body = v2.toBuffer({ phoneNumber: 2125550000, contestantNumber: 5, channel: 'web' });
  const record = Buffer.concat([Buffer.from([0, 0, 0, 0, v2Id]), body]);
  assert.throws(() => codec.decode(record), UnknownSchemaError, 'not fetched yet');
  await codec.prepare([record]);
  const decoded = codec.decode(record);
  assert.equal(decoded.name, 'voter.Vote');
  assert.deepEqual({ ...(decoded.value as object) }, { phoneNumber: 2125550000, contestantNumber: 5 });
});

test('an id the registry does not have, or a schema of another type, is an unknown schema', async () => {
  const registry = memoryRegistry();
  const codec = await ConfluentCodec.create(new SchemaCatalog([voteV1]), registry, [voteV1]);
  const foreignId = await registry.register('x', JSON.stringify({ type: 'record', name: 'Other', fields: [] }));
  for (const id of [99, foreignId]) {
    const record = Buffer.from([0, 0, 0, 0, id, 1, 2]);
    await codec.prepare([record]);
    assert.throws(() => codec.decode(record), UnknownSchemaError);
  }
});

test('single-object records are still decoded when a registry is configured', async () => {
  const catalog = new SchemaCatalog([voteV1]);
  const codec = await ConfluentCodec.create(catalog, memoryRegistry(), [voteV1]);
  const bytes = catalog.encode('voter.Vote', { phoneNumber: 1, contestantNumber: 1 });
  assert.deepEqual({ ...(codec.decode(bytes).value as object) }, { phoneNumber: 1, contestantNumber: 1 });
});
