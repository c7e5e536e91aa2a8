/**
 * The JSON Schemas of `GET /openapi.json` against what farad does: for many JSON values, a real
 * JSON Schema validator (ajv, draft 2020-12) and farad's own converter (`fromJson`) must agree on
 * accepting or refusing each; whatever `toJson` writes must fit the answer schemas; and the whole
 * document of each example app must be a valid OpenAPI 3.1 document.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import avsc from 'avsc';
import type { Schema, Type } from 'avsc';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { SchemaValidationError } from '../../src/errors.js';
import { fromJson, toJson } from '../../src/codec/json.js';
import { jsonSchemasOf, SAFE_DECIMAL, type JsonMapping, type JsonSchema } from '../../src/codec/json-schema.js';
import { openApiDocument } from '../../src/http/index.js';
import { compileApp, type CompiledApp } from '../../src/procedures/index.js';
import bank from '../../examples/bank/index.js';
import tickets from '../../examples/tickets/index.js';
import voter from '../../examples/voter/index.js';

// ---- a validator ---------------------------------------------------------------------------------

/** ajv for draft 2020-12, strict (unknown keywords are errors), OpenAPI's number formats as annotations. */
function newAjv(): Ajv2020 {
  return new Ajv2020({ strict: true, allErrors: false, formats: { int32: true, int64: true, float: true, double: true } });
}

function validatorOf(type: Type, mapping: JsonMapping): (value: unknown) => boolean {
  const { roots, definitions } = jsonSchemasOf([type], { mapping, refBase: '#/$defs/' });
  const ajv = newAjv();
  const validate = ajv.compile({ ...roots[0], $defs: definitions });
  return (value) => validate(value);
}

function accepts(type: Type, json: unknown): boolean {
  try {
    fromJson(type, json);
    return true;
  } catch (err) {
    if (err instanceof SchemaValidationError) return false;
    throw err;
  }
}

// ---- Avro schemas under test --------------------------------------------------------------------

const SCHEMAS: Record<string, Schema> = {
  primitives: {
    type: 'record',
    name: 'Primitives',
    namespace: 'test',
    fields: [
      { name: 'n', type: 'null' },
      { name: 'b', type: 'boolean' },
      { name: 'i', type: 'int' },
      { name: 'l', type: 'long' },
      { name: 'f', type: 'float' },
      { name: 'd', type: 'double' },
      { name: 'bytes', type: 'bytes' },
      { name: 's', type: 'string' },
    ],
  },
  nested: {
    type: 'record',
    name: 'Order',
    namespace: 'shop',
    doc: 'an order',
    fields: [
      { name: 'id', type: 'string', doc: 'the order id' },
      { name: 'status', type: { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID', 'SHIPPED'] } },
      { name: 'hash', type: { type: 'fixed', name: 'Hash', size: 4 } },
      {
        name: 'address',
        type: { type: 'record', name: 'Address', fields: [{ name: 'street', type: 'string' }, { name: 'zip', type: 'int' }] },
      },
      { name: 'billing', type: ['null', 'Address'], default: null },
      { name: 'items', type: { type: 'array', items: { type: 'record', name: 'Item', fields: [{ name: 'sku', type: 'string' }, { name: 'qty', type: 'int', default: 1 }] } } },
      { name: 'tags', type: { type: 'map', values: 'long' } },
      { name: 'previous', type: { type: 'array', items: 'Status' }, default: [] },
      { name: 'note', type: 'string', default: '' },
      { name: 'checksum', type: 'Hash', default: 'abcd' },
    ],
  },
  // Unions one by one (a record of many would rarely be valid as a whole), then in a record.
  optional: ['null', 'string'],
  numberOrText: ['null', 'long', 'string'],
  // Ambiguous for numbers that fit an int: avsc wraps this union; bare ints are refused.
  intOrLong: ['int', 'long'],
  floatOrBoolean: ['float', 'boolean'],
  symbolOrText: [{ type: 'enum', name: 'Color', namespace: 'u', symbols: ['RED', 'GREEN'] }, 'string'],
  mapOrRecord: [{ type: 'map', values: 'int' }, { type: 'record', name: 'Point', namespace: 'u', fields: [{ name: 'x', type: 'int' }] }],
  listOrNull: ['null', { type: 'array', items: ['null', 'bytes'] }],
  fixedOrBytes: [{ type: 'fixed', name: 'Two', namespace: 'u', size: 2 }, 'bytes'],
  nullOnly: ['null'],
  unions: {
    type: 'record',
    name: 'Unions',
    namespace: 'u',
    fields: [
      { name: 'optional', type: ['null', 'string'] },
      {
        name: 'shapes',
        type: [
          { type: 'record', name: 'Circle', namespace: 'geo', fields: [{ name: 'r', type: 'double' }] },
          { type: 'record', name: 'Square', namespace: 'geo', fields: [{ name: 'side', type: 'double' }, { name: 'label', type: ['null', 'string'], default: null }] },
        ],
      },
      { name: 'more', type: ['null', 'string', { type: 'array', items: 'int' }, { type: 'map', values: 'string' }], default: null },
    ],
  },
  recursive: {
    type: 'record',
    name: 'Node',
    namespace: 'tree',
    fields: [
      { name: 'value', type: 'int' },
      { name: 'next', type: ['null', 'Node'], default: null },
      { name: 'children', type: { type: 'array', items: 'Node' }, default: [] },
      { name: 'byName', type: { type: 'map', values: 'Node' }, default: {} },
    ],
  },
  mapOfUnions: { type: 'map', values: ['null', 'boolean', 'double', { type: 'array', items: 'string' }] },
  longs: { type: 'array', items: 'long' },
  text: 'string',
};

// ---- values: valid ones from the schema, then mutated, then random -----------------------------

/** A small seeded generator (mulberry32), so a failure repeats. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Strings and numbers at the edges of the mapping. */
const EDGE_STRINGS = ['', 'a', 'NEW', 'RED', 'ab', 'abcd', 'ÿÿ', 'Āb', '\u0000', 'é', '😀', '\ud83d\ude00x', '\ud800', 'x\udc00', '\udbff\udfff', '5', '-0', '007', '1e3', '1.0', ' 1', '9007199254740991', '-9007199254740991', '9007199254740992', '0009007199254740991', '12345678901234567', 'null', 'true'];
const EDGE_NUMBERS = [0, -0, 1, -1, 1.5, -2.25, 2147483647, 2147483648, -2147483648, -2147483649, 2 ** 40, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 1e300, -1e-300];

function randomJson(random: Random, depth = 0): unknown {
  const kind = Math.floor(random() * (depth > 2 ? 4 : 6));
  switch (kind) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return pick(random, EDGE_NUMBERS);
    case 3:
      return pick(random, EDGE_STRINGS);
    case 4:
      return Array.from({ length: Math.floor(random() * 3) }, () => randomJson(random, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      const keys = ['a', 'x', 'r', 'side', 'null', 'string', 'long', 'int', 'geo.Circle', 'Circle', 'u.Color', 'Color', 'map', 'array', 'value'];
      for (let i = Math.floor(random() * 3); i > 0; i--) out[pick(random, keys)] = randomJson(random, depth + 1);
      return out;
    }
  }
}

/** A value `fromJson` should take (mostly: a bare union value may be ambiguous), in one of the forms it reads. */
function sample(type: Type, random: Random, depth = 0): unknown {
  switch (type.typeName) {
    case 'null':
      return null;
    case 'boolean':
      return random() < 0.5;
    case 'int':
      return pick(random, [0, 7, -2147483648, 2147483647, Math.floor(random() * 1000)]);
    case 'long': {
      const n = pick(random, [0, 42, -1, 2 ** 40, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]);
      return random() < 0.3 ? String(n) : n;
    }
    case 'float':
    case 'double':
      return pick(random, [0, 1.5, -3, 1e10]);
    case 'string':
      return pick(random, ['', 'text', 'é😀', 'RED', '42']);
    case 'bytes':
      return pick(random, ['', '\u0000\u00ff', 'abc']);
    case 'fixed':
      return 'ÿ'.repeat((type as avsc.types.FixedType).size);
    case 'enum':
      return pick(random, (type as avsc.types.EnumType).symbols);
    case 'array':
      return Array.from({ length: depth > 3 ? 0 : Math.floor(random() * 3) }, () => sample((type as avsc.types.ArrayType).itemsType, random, depth + 1));
    case 'map': {
      const out: Record<string, unknown> = {};
      // As JSON.parse makes them: `__proto__` an own key, not the prototype.
      if (depth <= 3) for (const key of ['k', 'é', '__proto__'].slice(0, Math.floor(random() * 4))) setOwn(out, key, sample((type as avsc.types.MapType).valuesType as Type, random, depth + 1));
      return out;
    }
    case 'record':
    case 'error': {
      const out: Record<string, unknown> = {};
      for (const field of (type as avsc.types.RecordType).fields) {
        const hasDefault = field.defaultValue() !== undefined;
        if (hasDefault && (depth > 3 || random() < 0.4)) continue;
        out[field.name] = sample(field.type, random, depth + 1);
      }
      return out;
    }
    case 'union:wrapped':
    case 'union:unwrapped': {
      const branches = (type as avsc.types.UnwrappedUnionType).types;
      // Deep down, the null branch ends recursion.
      const branch = depth > 3 && branches.some((b) => b.typeName === 'null') ? branches.find((b) => b.typeName === 'null')! : pick(random, branches);
      const value = sample(branch, random, depth + 1);
      if (random() < 0.4) {
        const name = branch.branchName!;
        return { [random() < 0.5 ? name : name.slice(name.lastIndexOf('.') + 1)]: value };
      }
      return value;
    }
    default:
      throw new Error(`no sample for ${type.typeName}`);
  }
}

/** A changed copy: one place replaced, a field removed or added, a value wrapped. */
function mutate(json: unknown, random: Random): unknown {
  if (random() < 0.25 || json === null || typeof json !== 'object') {
    const r = random();
    if (r < 0.4) return randomJson(random);
    if (r < 0.6) return { [pick(random, ['null', 'string', 'long', 'int', 'map', 'array', 'boolean', 'double', 'geo.Square', 'Square', 'Color', 'u.Point'])]: json };
    if (r < 0.8) return pick(random, EDGE_STRINGS);
    return pick(random, EDGE_NUMBERS);
  }
  if (Array.isArray(json)) {
    const copy = [...json];
    if (copy.length > 0 && random() < 0.8) {
      const i = Math.floor(random() * copy.length);
      copy[i] = mutate(copy[i], random);
    } else copy.push(randomJson(random));
    return copy;
  }
  const copy: Record<string, unknown> = { ...(json as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const r = random();
  if (keys.length > 0 && r < 0.6) {
    const key = pick(random, keys);
    setOwn(copy, key, mutate(copy[key], random));
  } else if (keys.length > 0 && r < 0.8) {
    delete copy[pick(random, keys)];
  } else {
    copy[pick(random, ['extra', 'r', 'x', 'value', '\ud800'])] = randomJson(random);
  }
  return copy;
}

const show = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? v.replace(/[\ud800-\udfff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`) : v));

describe('Avro → JSON Schema, checked against fromJson', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`${name}: the validator accepts exactly what fromJson accepts`, () => {
      const type = avsc.Type.forSchema(schema);
      const validate = validatorOf(type, 'fromJson');
      const random = rng(name.length * 7919 + 1);
      const values: unknown[] = [...EDGE_STRINGS, ...EDGE_NUMBERS, null, true, [], {}];
      for (let i = 0; i < 400; i++) {
        const valid = sample(type, random);
        values.push(valid, mutate(valid, random), mutate(mutate(valid, random), random), randomJson(random));
      }
      let accepted = 0;
      for (const value of values) {
        const farad = accepts(type, value);
        assert.equal(validate(value), farad, `${name}: fromJson ${farad ? 'accepts' : 'refuses'} ${show(value)}, the JSON Schema does not agree`);
        if (farad) accepted++;
      }
      // Both answers are well represented, or the comparison proves little.
      assert.ok(accepted > values.length / 10, `${name}: only ${accepted} of ${values.length} values were valid`);
      assert.ok(accepted < values.length * 0.9, `${name}: ${accepted} of ${values.length} values were valid`);
    });

    it(`${name}: what toJson writes fits the answer schema`, () => {
      const type = avsc.Type.forSchema(schema);
      const validate = validatorOf(type, 'toJson');
      const random = rng(name.length * 31 + 5);
      for (let i = 0; i < 300; i++) {
        const json = sample(type, random);
        if (!accepts(type, json)) continue;
        // Through JSON text, as the answer is sent (NaN would become null).
        const written = JSON.parse(JSON.stringify(toJson(type, fromJson(type, json)))) as unknown;
        assert.ok(validate(written), `${name}: toJson wrote ${show(written)}`);
      }
    });
  }

  it('a long as a decimal string: safe integers only, as fromJson reads them', () => {
    const pattern = new RegExp(SAFE_DECIMAL, 'u');
    const long = avsc.Type.forSchema('long');
    for (const text of ['0', '-0', '9007199254740991', '-9007199254740991', '9007199254740992', '9007199254740990', '8999999999999999', '9007199254740999', '9007199254741000', '0000000000000001', '00000000000000001', '9107199254740991', '-']) {
      assert.equal(pattern.test(text), accepts(long, text), text);
    }
    for (let i = 0; i < 2000; i++) {
      const digits = String(Math.floor(Math.random() * 10 ** (1 + Math.floor(Math.random() * 16)))).padStart(Math.floor(Math.random() * 17), '0');
      const text = `${Math.random() < 0.5 ? '-' : ''}${digits}`;
      assert.equal(pattern.test(text), accepts(long, text), text);
    }
  });

  it('a recursive type is one definition that refers to itself', () => {
    const type = avsc.Type.forSchema(SCHEMAS['recursive']!);
    const { roots, definitions } = jsonSchemasOf([type], { mapping: 'fromJson', refBase: '#/$defs/' });
    assert.deepEqual(roots, [{ $ref: '#/$defs/tree.Node' }]);
    assert.deepEqual(Object.keys(definitions), ['tree.Node']);
    assert.match(JSON.stringify(definitions['tree.Node']), /"\$ref":"#\/\$defs\/tree\.Node"/);
  });

  it('a named type used twice is defined once; two different types of one name are kept apart', () => {
    const address: avsc.schema.RecordType = { type: 'record', name: 'Address', namespace: 'x', fields: [{ name: 'street', type: 'string' }] };
    const a = avsc.Type.forSchema({ type: 'record', name: 'A', namespace: 'x', fields: [{ name: 'home', type: address }, { name: 'work', type: 'Address' }] });
    const b = avsc.Type.forSchema({ type: 'record', name: 'B', namespace: 'x', fields: [{ name: 'home', type: address }] });
    const c = avsc.Type.forSchema({ type: 'record', name: 'C', namespace: 'x', fields: [{ name: 'home', type: { ...address, fields: [{ name: 'zip', type: 'int' }] } }] });
    const { roots, definitions } = jsonSchemasOf([a, b, c], { mapping: 'toJson', refBase: '#/d/', nameSuffix: '-out' });
    assert.deepEqual(roots, [{ $ref: '#/d/x.A-out' }, { $ref: '#/d/x.B-out' }, { $ref: '#/d/x.C-out' }]);
    assert.deepEqual(Object.keys(definitions).sort(), ['x.A-out', 'x.Address-out', 'x.B-out', 'x.C-out']);
    // C's Address is another type: used once, it stays inline.
    assert.deepEqual((definitions['x.C-out'] as { properties: { home: JsonSchema } }).properties.home, {
      title: 'x.Address',
      type: 'object',
      properties: { zip: { type: 'integer', format: 'int32', minimum: -2147483648, maximum: 2147483647 } },
      required: ['zip'],
      additionalProperties: false,
    });
  });
});

// ---- the document ----------------------------------------------------------------------------------

type Doc = Record<string, unknown> & { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, JsonSchema> } };
interface Operation {
  security?: unknown;
  parameters?: Array<Record<string, unknown>>;
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, unknown>;
}

function documentOf(app: CompiledApp, bearerToken = false): Doc {
  // Through JSON text, as the route sends it.
  return JSON.parse(JSON.stringify(openApiDocument(app, { bearerToken, bodyLimitBytes: 1_048_576 }))) as Doc;
}

/** A JSON Schema of the document as one standalone schema: its components as `$defs`. */
function standalone(doc: Doc, schema: JsonSchema): JsonSchema {
  const text = JSON.stringify({ ...schema, $defs: doc.components.schemas }).replaceAll('"#/components/schemas/', '"#/$defs/');
  return JSON.parse(text) as JsonSchema;
}

/** Every `$ref` in `value`. */
function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsIn(v, out);
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
}

const EXAMPLES: Record<string, CompiledApp> = { voter: compileApp(voter), bank: compileApp(bank), tickets: compileApp(tickets) };

describe('openApiDocument', () => {
  for (const [name, app] of Object.entries(EXAMPLES)) {
    for (const bearerToken of [false, true]) {
      it(`${name}${bearerToken ? ' with a token' : ''}: a valid OpenAPI 3.1 document`, async () => {
        const doc = documentOf(app, bearerToken);
        const result = await new Validator().validate(doc);
        assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
        assert.equal(doc['openapi'], '3.1.0');
        assert.equal((doc['info'] as { title: string }).title, app.name);
        // Every reference resolves; every component schema is a valid 2020-12 schema (ajv, strict).
        for (const target of refsIn(doc)) {
          const [, where, kind, key] = /^#\/(components)\/(\w+)\/(.+)$/.exec(target) ?? [];
          assert.ok(where && (doc.components as Record<string, Record<string, unknown>>)[kind!]?.[key!] !== undefined, `${target} resolves`);
        }
        const ajv = newAjv();
        for (const schemaName of Object.keys(doc.components.schemas)) ajv.compile(standalone(doc, { $ref: `#/$defs/${schemaName}` }));
      });
    }

    it(`${name}: one path per input event, table, query and served topic, and farad's own`, () => {
      const doc = documentOf(app);
      const expected = [
        ...[...app.events.values()].filter((e) => e.inputTopic).map((e) => `/events/${e.fullName}`),
        ...[...app.tables.values(), ...app.globalTables.values()].filter((t) => !t.system).flatMap((t) => [...(t.scope === 'local' && !t.global ? [] : [`/tables/${t.name}/{key}`]), `/tables/${t.name}`]),
        ...[...app.queries.keys()].map((q) => `/queries/${q}`),
        ...[...app.outputTopics, app.deadLetterTopic].map((t) => `/topics/${t}/records`),
        '/healthz',
        '/readyz',
        '/metrics',
        '/openapi.json',
      ];
      assert.deepEqual(Object.keys(doc.paths).sort(), expected.sort());
    });
  }

  it('with a token, every route but health, readiness and metrics needs it; without, none does', () => {
    const open = ['/healthz', '/readyz', '/metrics'];
    const guarded = documentOf(EXAMPLES['bank']!, true);
    for (const [path, item] of Object.entries(guarded.paths)) {
      for (const operation of Object.values(item)) {
        if (open.includes(path)) assert.equal(operation.security, undefined, path);
        else {
          assert.deepEqual(operation.security, [{ bearer: [] }, { basic: [] }], path);
          assert.ok(operation.responses['401'], `${path} answers 401`);
        }
      }
    }
    const plain = documentOf(EXAMPLES['bank']!, false);
    assert.equal(JSON.stringify(plain).includes('"security"'), false);
    assert.equal((plain.components as Record<string, unknown>)['securitySchemes'], undefined);
  });

  it('the body of POST /events/<type> accepts what ingest accepts: one event or a non-empty array of them', () => {
    const app = EXAMPLES['bank']!;
    const doc = documentOf(app);
    const deposit = app.eventsByFullName.get('bank.Deposit')!;
    const operation = doc.paths['/events/bank.Deposit']!['post']!;
    const validate = newAjv().compile(standalone(doc, operation.requestBody!.content['application/json']!.schema));
    const event = { account: 'alice', amount: 100 };
    for (const [body, ok] of [
      [event, true],
      [{ account: 'alice', amount: '100' }, true],
      [[event, { ...event, amount: -5 }], true],
      [[], false],
      [[event, { account: 'bob' }], false],
      [{ ...event, extra: 1 }, false],
      [{ account: 'alice', amount: 1.5 }, false],
      ['text', false],
    ] as const) {
      assert.equal(validate(body), ok, JSON.stringify(body));
      const items: unknown[] = Array.isArray(body) ? body : [body];
      if (typeof body === 'object' && items.length > 0) assert.equal(items.every((item) => accepts(deposit.type, item)), ok, JSON.stringify(body));
    }
    assert.deepEqual(operation.parameters, [{ $ref: '#/components/parameters/IdempotencyKey' }]);
    assert.deepEqual(Object.keys(operation.responses).sort(), ['202', '400', '413', '415', '422', '503', '507']);
  });

  it('rows are described as reads answer them: key type, partition (none for global tables), the value as toJson writes it', () => {
    const app = EXAMPLES['voter']!;
    const doc = documentOf(app);
    const row = (path: string): JsonSchema => (doc.paths[path]!['get']!.responses['200'] as { content: Record<string, { schema: JsonSchema }> }).content['application/json']!.schema;
    const byPhone = newAjv().compile(standalone(doc, row('/tables/votesByPhone/{key}')));
    assert.ok(byPhone({ table: 'votesByPhone', key: 6175550100, partition: 3, value: { accepted: 2 } }));
    assert.ok(!byPhone({ table: 'votesByPhone', key: '6175550100', partition: 3, value: { accepted: 2 } }), 'long keys are numbers');
    const contestants = newAjv().compile(standalone(doc, row('/tables/contestants/{key}')));
    assert.ok(contestants({ table: 'contestants', key: 1, value: { contestantNumber: 1, name: 'Edwina Burnam' } }));
    assert.ok(!contestants({ table: 'contestants', key: 1, partition: 0, value: { contestantNumber: 1, name: 'Edwina Burnam' } }));
    // A partition-local table has no key reads.
    assert.equal(doc.paths['/tables/votesByContestant/{key}'], undefined);
    const page = newAjv().compile(standalone(doc, row('/tables/votesByContestant')));
    assert.ok(page({ table: 'votesByContestant', items: [{ key: 1, partition: 0, value: { votes: 3 } }], next: null }));
  });

  it('the version is a hash of the document: the same app gives the same one, a token another', () => {
    const version = (doc: Doc): string => (doc['info'] as { version: string }).version;
    assert.equal(version(documentOf(EXAMPLES['voter']!)), version(documentOf(compileApp(voter))));
    assert.match(version(documentOf(EXAMPLES['voter']!)), /^[0-9a-f]{16}$/);
    assert.notEqual(version(documentOf(EXAMPLES['voter']!)), version(documentOf(EXAMPLES['voter']!, true)));
    assert.notEqual(version(documentOf(EXAMPLES['voter']!)), version(documentOf(EXAMPLES['bank']!)));
  });
});
