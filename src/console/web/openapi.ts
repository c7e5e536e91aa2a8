/**
 * What the page needs from the app's OpenAPI document: its event types with the JSON Schema of
 * one event, its tables, and its queries with their parameters. Pure: no DOM, no fetch.
 */

/** A JSON Schema object, as the document holds it. */
export type JsonSchema = { readonly [keyword: string]: unknown };

export interface EventType {
  /** As in the path: `/events/<name>`. */
  readonly name: string;
  /** The schema of one event (the document also allows an array of them). */
  readonly schema: JsonSchema;
}

export interface QueryParam {
  readonly name: string;
  readonly required: boolean;
  readonly description?: string;
}

export interface Query {
  readonly name: string;
  readonly summary?: string;
  /** Parameters the document names one by one. */
  readonly params: readonly QueryParam[];
  /** Whether any other name=value is passed on to the query too (a free-form `params` object). */
  readonly freeForm: boolean;
}

export interface AppApi {
  readonly events: readonly EventType[];
  readonly tables: readonly string[];
  readonly queries: readonly Query[];
  /** The schema a local `$ref` (`#/components/schemas/...`) points to, the schema itself otherwise. */
  readonly resolve: (schema: JsonSchema) => JsonSchema;
}

/** Query-string parameters of farad's own (consistency, waiting), not the query's. */
const FARAD_QUERY_PARAMS = new Set(['stale', 'consistent', 'waitFor', 'waitMs']);

export function appApiOf(doc: unknown): AppApi {
  const root = asObject(doc);
  const paths = asObject(root['paths']);
  const resolve = (schema: JsonSchema): JsonSchema => resolveRef(root, schema);
  const events: EventType[] = [];
  const tables: string[] = [];
  const queries: Query[] = [];
  for (const [path, item] of Object.entries(paths)) {
    const operations = asObject(item);
    let m: RegExpMatchArray | null;
    if ((m = /^\/events\/([^/{}]+)$/.exec(path)) && operations['post'] !== undefined) {
      const schema = eventSchema(asObject(operations['post']), resolve);
      if (schema !== undefined) events.push({ name: decodeURIComponent(m[1]!), schema });
    } else if ((m = /^\/tables\/([^/{}]+)$/.exec(path)) && operations['get'] !== undefined) {
      tables.push(decodeURIComponent(m[1]!));
    } else if ((m = /^\/queries\/([^/{}]+)$/.exec(path)) && operations['get'] !== undefined) {
      queries.push(queryOf(decodeURIComponent(m[1]!), asObject(operations['get']), root));
    }
  }
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  return { events: events.sort(byName), tables: tables.sort(), queries: queries.sort(byName), resolve };
}

/** The request body's schema; of `oneOf: [event, array of events]`, the single event. */
function eventSchema(post: JsonSchema, resolve: (s: JsonSchema) => JsonSchema): JsonSchema | undefined {
  const body = asObject(post['requestBody']);
  const json = asObject(asObject(body['content'])['application/json']);
  if (json['schema'] === undefined) return undefined;
  const schema = resolve(asObject(json['schema']));
  const branches = Array.isArray(schema['oneOf']) ? (schema['oneOf'] as unknown[]).map((b) => resolve(asObject(b))) : undefined;
  return branches?.find((b) => b['type'] !== 'array') ?? schema;
}

function queryOf(name: string, get: JsonSchema, root: JsonSchema): Query {
  const params: QueryParam[] = [];
  let freeForm = false;
  for (const raw of Array.isArray(get['parameters']) ? (get['parameters'] as unknown[]) : []) {
    const param = resolveRef(root, asObject(raw));
    if (param['in'] !== 'query' || typeof param['name'] !== 'string' || FARAD_QUERY_PARAMS.has(param['name'])) continue;
    const schema = asObject(param['schema']);
    // An object exploded into the query string: any name=value goes through.
    if (schema['type'] === 'object' && param['explode'] !== false) {
      freeForm = true;
      continue;
    }
    const description = typeof param['description'] === 'string' ? param['description'] : undefined;
    params.push({ name: param['name'], required: param['required'] === true, ...(description === undefined ? {} : { description }) });
  }
  const summary = typeof get['summary'] === 'string' ? get['summary'] : undefined;
  return { name, params, freeForm, ...(summary === undefined ? {} : { summary }) };
}

/** Follows local `$ref`s (`#/a/b`, JSON Pointer escapes), a chain of them too; a loop ends at the last hop. */
function resolveRef(root: JsonSchema, schema: JsonSchema): JsonSchema {
  let current = schema;
  for (let hops = 0; typeof current['$ref'] === 'string' && hops < 32; hops++) {
    const ref = current['$ref'];
    if (!ref.startsWith('#/')) return current;
    let target: unknown = root;
    for (const part of ref.slice(2).split('/')) target = asObject(target)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (typeof target !== 'object' || target === null) return current;
    // Keywords beside a $ref (a field's description, default) apply too.
    const { $ref: _ref, ...siblings } = current;
    current = { ...(target as JsonSchema), ...siblings };
  }
  return current;
}

function asObject(value: unknown): JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonSchema) : {};
}
