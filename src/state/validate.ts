import type avro from 'avsc';

export interface Invalid {
  /** Path of the first bad field, e.g. `address.zip` or `items[2]`; empty for the value itself. */
  readonly field: string;
  readonly message: string;
}

/** Why `value` does not fit `type`, naming the first bad field; undefined when it fits. */
export function describeInvalid(type: avro.Type, value: unknown): Invalid | undefined {
  let first: Invalid | undefined;
  const ok = type.isValid(value, {
    // A field the schema does not declare would live in memory but vanish from the changelog,
    // so a restored or standby copy would differ from the active one.
    noUndeclaredFields: true,
    errorHook(path: string[], bad: unknown, badType: avro.Type) {
      if (first) return;
      if (badType.typeName === 'record' && bad !== null && typeof bad === 'object') {
        const declared = new Set((badType as unknown as { fields: Array<{ name: string }> }).fields.map((f) => f.name));
        const extra = Object.keys(bad).filter((k) => !declared.has(k));
        if (extra.length > 0) {
          const at = fieldPath(path);
          const field = at ? `${at}.${extra[0]}` : extra[0]!;
          first = { field, message: `field "${field}" is not in schema ${badType.name ?? 'record'}` };
          return;
        }
      }
      const field = fieldPath(path);
      const expected = badType.typeName === 'record' || badType.typeName === 'enum' ? `${badType.typeName} ${badType.name ?? ''}`.trim() : badType.typeName;
      const got = bad === undefined ? 'nothing (missing)' : `${typeof bad} ${truncate(JSON.stringify(bad) ?? String(bad))}`;
      first = { field, message: `${field ? `field "${field}"` : 'value'}: expected ${expected}, got ${got}` };
    },
  });
  if (ok) return undefined;
  return first ?? { field: '', message: `value does not match schema ${type.name ?? type.typeName}` };
}

/** avsc's path parts as `a.b[2].c`. */
function fieldPath(path: readonly string[]): string {
  return path.reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export type TableKeyType = 'string' | 'int' | 'long';

/** Why a key does not fit its table's key type, or undefined when it fits. */
export function checkKey(keyType: TableKeyType, key: unknown): string | undefined {
  if (keyType === 'string') return typeof key === 'string' ? undefined : 'must be a string';
  if (typeof key !== 'number' || !Number.isSafeInteger(key)) return `must be an integer (${keyType})`;
  if (keyType === 'int' && (key < -2147483648 || key > 2147483647)) return 'is outside the int range';
  return undefined;
}

/** Freezes a value and everything it holds, so table rows cannot change outside a put. */
export function deepFreeze<V>(value: V): V {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value) || ArrayBuffer.isView(value)) return value;
  Object.freeze(value);
  for (const inner of Object.values(value as object)) deepFreeze(inner);
  return value;
}
