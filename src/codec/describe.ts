/** Shared wording for validation errors: how values, types and field paths are shown. */
import type { Type } from 'avsc';

const MAX_STRING = 40;

/** A value as shown after "got": `string "abc"`, `number 1.5`, `null`, `array`, `object`. */
export function describeValue(val: unknown): string {
  if (val === null) return 'null';
  if (val === undefined) return 'nothing';
  if (Array.isArray(val)) return `array (${val.length} items)`;
  if (Buffer.isBuffer(val)) return `bytes (${val.length})`;
  switch (typeof val) {
    case 'string':
      return `string ${JSON.stringify(val.length > MAX_STRING ? `${val.slice(0, MAX_STRING)}…` : val)}`;
    case 'object':
      return 'object';
    default:
      return `${typeof val} ${String(val)}`;
  }
}

/** A type as shown after "expected": `int`, `record ns.Address`, `["null","string"]`. */
export function describeType(type: Type): string {
  if (type.typeName.startsWith('union')) return JSON.stringify(type.schema({ noDeref: true }));
  return type.name === undefined ? type.typeName : `${type.typeName} ${type.name}`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Joins path segments: `items[2].qty`, `tags["a key"]`. Numbers are array indices. */
export function formatPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (!IDENTIFIER.test(seg)) out += `[${JSON.stringify(seg)}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}
