/** Run a named query: its parameters (named in the document, or free name=value pairs), then its JSON answer or error. */
import { byId, h, pretty, replace, setText } from './dom.js';
import { describeError, getJson } from './http.js';
import type { AppApi, Query } from './openapi.js';

interface ParamRow {
  readonly el: HTMLElement;
  /** The parameter's name: fixed for a named one, typed for a free one. */
  readonly name: () => string;
  readonly value: HTMLInputElement;
}

export class QueriesView {
  private readonly form = byId<HTMLFormElement>('query-form');
  private readonly select = byId<HTMLSelectElement>('query-select');
  private readonly params = byId('query-params');
  private readonly paramRows = byId('query-param-rows');
  private readonly add = byId<HTMLButtonElement>('query-add-param');
  private readonly run = byId<HTMLButtonElement>('query-run');
  private readonly error = byId('query-error');
  private readonly result = byId('query-result');
  private queries: readonly Query[] = [];
  private rows: ParamRow[] = [];
  private freeCount = 0;

  constructor() {
    this.select.addEventListener('change', () => this.showQuery());
    this.add.addEventListener('click', () => this.addFree());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.runQuery();
    });
  }

  setApi(api: AppApi): void {
    this.queries = api.queries;
    const chosen = this.select.value;
    replace(this.select, ...api.queries.map((q) => h('option', { value: q.name }, q.name)));
    if (api.queries.some((q) => q.name === chosen)) this.select.value = chosen;
    this.run.disabled = api.queries.length === 0;
    if (api.queries.length === 0) setText(this.error, 'this app has no named queries');
    this.showQuery();
  }

  private selected(): Query | undefined {
    return this.queries.find((q) => q.name === this.select.value);
  }

  private showQuery(): void {
    const query = this.selected();
    this.rows = [];
    replace(this.paramRows);
    setText(this.result, '');
    this.params.hidden = query === undefined || (query.params.length === 0 && !query.freeForm);
    this.add.hidden = query?.freeForm !== true;
    for (const param of query?.params ?? []) {
      const id = `query-param-${param.name}`;
      const value = h('input', { id, name: param.name, type: 'text', required: param.required, autocomplete: 'off' });
      const el = h('div', { class: 'field' }, h('label', { for: id }, param.name, param.required ? ' (required)' : ''), value, param.description ? h('small', { class: 'hint' }, param.description) : null);
      this.rows.push({ el, name: () => param.name, value });
      this.paramRows.appendChild(el);
    }
    if (query?.freeForm === true && query.params.length === 0) this.addFree();
  }

  /** A name=value pair the query receives as a string. */
  private addFree(): void {
    const n = ++this.freeCount;
    const name = h('input', { id: `query-free-name-${n}`, type: 'text', autocomplete: 'off', placeholder: 'name' });
    const value = h('input', { id: `query-free-value-${n}`, type: 'text', autocomplete: 'off', placeholder: 'value' });
    const el = h('div', { class: 'field pair' }, h('label', { for: name.id }, 'name'), name, h('label', { for: value.id }, 'value'), value);
    this.rows.push({ el, name: () => name.value.trim(), value });
    this.paramRows.appendChild(el);
  }

  private async runQuery(): Promise<void> {
    const query = this.selected();
    if (query === undefined) return;
    setText(this.error, '');
    setText(this.result, '');
    const search = new URLSearchParams();
    for (const row of this.rows) if (row.name() !== '' && row.value.value !== '') search.append(row.name(), row.value.value);
    const missing = query.params.filter((p) => p.required && !search.has(p.name)).map((p) => p.name);
    if (missing.length > 0) {
      setText(this.error, `required: ${missing.join(', ')}`);
      return;
    }
    const qs = search.toString();
    this.run.disabled = true;
    try {
      const answer = await getJson<unknown>(`/queries/${encodeURIComponent(query.name)}${qs === '' ? '' : `?${qs}`}`);
      if (answer.ok) setText(this.result, pretty(answer.body));
      else setText(this.error, `HTTP ${answer.status}: ${describeError(answer.error)}`);
    } finally {
      this.run.disabled = false;
    }
  }
}
