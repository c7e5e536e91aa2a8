/**
 * `GET /openapi.json` from a running farad: protected like the reads when a token is set, a valid
 * OpenAPI 3.1 document, and a description a client can act on: a request built from it for each
 * input event is accepted, and what the reads answer fits the schemas it gives them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import voter from '../../examples/voter/index.js';
import { http, postJson, startTestService, tempDir, waitFor } from './helpers.js';

type Schema = Record<string, unknown>;
interface Doc {
  info: { title: string; version: string };
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> }; responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>;
  components: { schemas: Record<string, Schema> };
}

const TOKEN = 'openapi-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };

/** A schema of the document as a standalone JSON Schema (components as `$defs`), for ajv. */
function standalone(doc: Doc, schema: Schema): Schema {
  return JSON.parse(JSON.stringify({ ...schema, $defs: doc.components.schemas }).replaceAll('"#/components/schemas/', '"#/$defs/')) as Schema;
}

/**
 * A value of `schema`, the way a generated form fills in a field: the first alternative, required
 * properties only, the smallest array, a number within the bounds, a string of the least length.
 */
function exampleOf(doc: Doc, schema: Schema): unknown {
  if (typeof schema['$ref'] === 'string') return exampleOf(doc, doc.components.schemas[schema['$ref'].slice('#/components/schemas/'.length)]!);
  if ('const' in schema) return schema['const'];
  if (Array.isArray(schema['enum'])) return schema['enum'][0];
  for (const key of ['oneOf', 'anyOf'] as const) {
    const alternatives = schema[key] as Schema[] | undefined;
    if (alternatives) return exampleOf(doc, alternatives.find((a) => a['type'] !== 'null') ?? alternatives[0]!);
  }
  const type = Array.isArray(schema['type']) ? (schema['type'][0] as string) : (schema['type'] as string);
  switch (type) {
    case 'object': {
      const properties = (schema['properties'] ?? {}) as Record<string, Schema>;
      return Object.fromEntries(((schema['required'] ?? []) as string[]).map((name) => [name, exampleOf(doc, properties[name]!)]));
    }
    case 'array':
      return Array.from({ length: (schema['minItems'] as number | undefined) ?? 0 }, () => exampleOf(doc, schema['items'] as Schema));
    case 'integer':
    case 'number':
      return Math.min(Math.max(1, (schema['minimum'] as number | undefined) ?? 1), (schema['maximum'] as number | undefined) ?? 1);
    case 'string':
      return 'a'.repeat((schema['minLength'] as number | undefined) ?? 0);
    case 'boolean':
      return false;
    default:
      return null;
  }
}

test('GET /openapi.json: the token rules of the reads, a valid document, requests built from it accepted', { timeout: 60_000 }, async (t) => {
  const { base } = await startTestService(t, voter, tempDir(t), { http: { token: TOKEN } });
  await waitFor('/readyz 200', async () => (await fetch(`${base}/readyz`)).status === 200);

  const refused = await http<Record<string, unknown>>(`${base}/openapi.json`);
  assert.equal(refused.status, 401, refused.text);
  assert.equal(refused.body['error'], 'unauthorized');

  const answer = await http<Doc>(`${base}/openapi.json`, { headers: auth });
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  const doc = answer.body;
  const validation = await new Validator().validate(doc as unknown as Record<string, unknown>);
  assert.equal(validation.valid, true, JSON.stringify(validation.errors, null, 2));
  assert.equal(doc.info.title, 'voter');
  // Generated once: the same text again.
  assert.equal((await http(`${base}/openapi.json`, { headers: auth })).text, answer.text);

  const ajv = new Ajv2020({ strict: true, formats: { int32: true, int64: true, float: true, double: true } });
  const events = Object.entries(doc.paths).filter(([path]) => path.startsWith('/events/'));
  assert.deepEqual(events.map(([path]) => path), ['/events/voter.Vote']);
  let position = '';
  for (const [path, item] of events) {
    const schema = item['post']!.requestBody!.content['application/json']!.schema;
    const body = exampleOf(doc, schema);
    assert.ok(ajv.compile(standalone(doc, schema))(body), `the example ${JSON.stringify(body)} fits its own schema`);
    const sent = await postJson(`${base}${path}`, body, { ...auth, 'idempotency-key': randomUUID() });
    assert.equal(sent.status, 202, `${path} ${JSON.stringify(body)}: ${sent.text}`);
    assert.ok(ajv.compile(standalone(doc, item['post']!.responses['202']!.content!['application/json']!.schema))(sent.body), sent.text);
    position = String(sent.body['position']);
  }

  // What the reads answer fits what the document says they answer.
  const fits = async (path: string, template: string): Promise<void> => {
    const read = await http(`${base}${path}`, { headers: auth });
    assert.equal(read.status, 200, `${path}: ${read.text}`);
    const validate = ajv.compile(standalone(doc, doc.paths[template]!['get']!.responses['200']!.content!['application/json']!.schema));
    assert.ok(validate(read.body), `${path} answered ${read.text}; ${JSON.stringify(validate.errors)}`);
  };
  await fits(`/tables/votesByPhone/1?waitFor=${encodeURIComponent(position)}`, '/tables/votesByPhone/{key}');
  await fits(`/tables/votesByPhone?waitFor=${encodeURIComponent(position)}`, '/tables/votesByPhone');
  await fits('/tables/votesByContestant', '/tables/votesByContestant');
  await fits('/tables/contestants/1', '/tables/contestants/{key}');
  await fits('/tables/contestants?key=2', '/tables/contestants');
  await waitFor('the vote answered on vote-results', async () => {
    const page = await http<{ items: unknown[] }>(`${base}/topics/vote-results/records`, { headers: auth });
    return page.body.items.length > 0;
  });
  await fits('/topics/vote-results/records', '/topics/vote-results/records');
  await fits('/topics/voter-dlq/records', '/topics/voter-dlq/records');
  await fits('/readyz', '/readyz');
});
