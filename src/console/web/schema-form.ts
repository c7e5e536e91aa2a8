/**
 * A form for a record's fields (schema-model.ts), one labelled input per field, named by its path
 * (`amount`, `address.city`), each with its error element (`[data-error-for="<path>"]`).
 */
import { h } from './dom.js';
import { initialText, parseField, type FieldEntry, type FieldSpec } from './schema-model.js';

export type FormRead = { readonly ok: true; readonly value: Record<string, unknown> } | { readonly ok: false; readonly firstInvalid: HTMLElement };

export interface SchemaForm {
  readonly el: HTMLElement;
  /** The event; or, after showing each problem next to its field, the first field at fault. */
  read(): FormRead;
  /** Shows `message` at the field `path` names, or the nearest field enclosing it (`items[2].qty` → `items`); false if none. */
  showError(path: string, message: string): boolean;
}

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

/** Where a field's problems are shown. */
interface Slot {
  readonly error: HTMLElement;
  readonly focus: HTMLElement;
}

type Reader = () => { readonly ok: true; readonly value: unknown; readonly omit?: boolean } | { readonly ok: false };

export function schemaForm(fields: readonly FieldEntry[], idPrefix: string): SchemaForm {
  const slots = new Map<string, Slot>();
  let firstInvalid: HTMLElement | undefined;

  const fail = (path: string, message: string): void => {
    const slot = slots.get(path);
    if (slot === undefined) return;
    slot.error.textContent = message;
    slot.focus.setAttribute('aria-invalid', 'true');
    firstInvalid ??= slot.focus;
  };

  const idOf = (path: string) => `${idPrefix}-${path.replace(/[^A-Za-z0-9_-]/g, '_')}`;

  function errorElement(path: string): HTMLElement {
    return h('span', { class: 'field-error', id: `${idOf(path)}-error`, 'data-error-for': path });
  }

  /** The inputs of a record's fields, and the reader assembling its object. */
  function record(entries: readonly FieldEntry[], prefix: string, container: HTMLElement): Reader {
    const readers = entries.map((entry) => {
      const path = prefix === '' ? entry.name : `${prefix}.${entry.name}`;
      return [entry.name, field(entry, path, container)] as const;
    });
    return () => {
      const value: Record<string, unknown> = {};
      let ok = true;
      for (const [name, read] of readers) {
        const r = read();
        if (!r.ok) ok = false;
        else if (r.omit !== true) value[name] = r.value;
      }
      return ok ? { ok: true, value } : { ok: false };
    };
  }

  function field(entry: FieldEntry, path: string, container: HTMLElement): Reader {
    const { spec } = entry;
    const error = errorElement(path);
    if (spec.kind === 'record') {
      const fieldset = h('fieldset', { 'data-field': path }, h('legend', {}, entry.name), spec.description ? h('p', { class: 'hint' }, spec.description) : null, error);
      container.appendChild(fieldset);
      slots.set(path, { error, focus: fieldset });
      return record(spec.fields, path, fieldset);
    }
    const id = idOf(path);
    const control = controlFor(spec, entry, path, id);
    const hintId = `${id}-hint`;
    control.setAttribute('aria-describedby', `${hintId} ${id}-error`);
    container.appendChild(
      h(
        'div',
        { class: 'field', 'data-field': path },
        h('label', { for: id }, entry.name, ' ', h('span', { class: 'type' }, typeHint(spec, entry))),
        control,
        h('small', { class: 'hint', id: hintId }, spec.description ?? ''),
        error,
      ),
    );
    slots.set(path, { error, focus: control });
    return () => {
      const parsed = parseField(spec, control.value, entry.required);
      if (!parsed.ok) {
        fail(path, parsed.message);
        return { ok: false };
      }
      return 'omit' in parsed ? { ok: true, value: undefined, omit: true } : { ok: true, value: parsed.value };
    };
  }

  const el = h('div', { class: 'schema-form' });
  const readAll = record(fields, '', el);

  const clearErrors = (): void => {
    for (const slot of slots.values()) {
      slot.error.textContent = '';
      slot.focus.removeAttribute('aria-invalid');
    }
  };

  return {
    el,
    read() {
      clearErrors();
      firstInvalid = undefined;
      const r = readAll();
      if (r.ok) return { ok: true, value: r.value as Record<string, unknown> };
      return { ok: false, firstInvalid: firstInvalid ?? el };
    },
    showError(path, message) {
      for (let p: string | undefined = path; p !== undefined && p !== ''; p = enclosing(p)) {
        if (!slots.has(p)) continue;
        fail(p, p === path ? message : `${path}: ${message}`);
        return true;
      }
      return false;
    },
  };
}

/** `a.b[2].c` → `a.b[2]` → `a.b` → `a` → undefined. */
function enclosing(path: string): string | undefined {
  const m = /^(.*)(?:\.[^.[\]]+|\[\d+\])$/.exec(path);
  return m?.[1];
}

function controlFor(spec: Exclude<FieldSpec, { kind: 'record' }>, entry: FieldEntry, path: string, id: string): Control {
  const initial = initialText(spec, entry.default);
  const attrs = { id, name: path };
  switch (spec.kind) {
    case 'enum':
    case 'boolean': {
      const choices = spec.kind === 'enum' ? spec.symbols : ['true', 'false'];
      const empty = spec.nullable ? '(null)' : entry.required ? '(choose)' : '(default)';
      const select = h('select', attrs, h('option', { value: '' }, empty), ...choices.map((c) => h('option', { value: c }, c)));
      select.value = initial;
      return select;
    }
    case 'json': {
      const placeholder = spec.expect === 'array' ? '[ ]' : spec.expect === 'object' ? '{ }' : 'JSON';
      const area = h('textarea', { ...attrs, rows: 3, spellcheck: 'false', placeholder });
      area.value = initial;
      return area;
    }
    case 'integer':
    case 'number':
    case 'text': {
      // type=text for numbers too: a number input hides what was typed when it does not parse.
      const inputmode = spec.kind === 'integer' ? 'numeric' : spec.kind === 'number' ? 'decimal' : undefined;
      const input = h('input', { ...attrs, type: 'text', autocomplete: 'off', inputmode });
      input.value = initial;
      return input;
    }
  }
}

function typeHint(spec: FieldSpec, entry: FieldEntry): string {
  const kind =
    spec.kind === 'json' ? (spec.expect === 'any' ? 'JSON' : `JSON ${spec.expect}`) : spec.kind === 'enum' ? 'one of' : spec.kind === 'boolean' ? 'true/false' : spec.kind;
  const empty = spec.nullable ? 'empty: null' : entry.required ? 'required' : 'optional';
  return `(${kind}, ${empty})`;
}
