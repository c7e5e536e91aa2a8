/** Browse a table: pages of rows in key order (value as JSON), or one row by key. */
import type { TablePage, TableRow } from './api.js';
import { byId, h, pretty, replace, setText } from './dom.js';
import { describeError, errorCode, getJson } from './http.js';
import type { AppApi } from './openapi.js';

export class TablesView {
  private readonly select = byId<HTMLSelectElement>('table-select');
  private readonly limit = byId<HTMLInputElement>('table-limit');
  private readonly first = byId<HTMLButtonElement>('table-first');
  private readonly next = byId<HTMLButtonElement>('table-next');
  private readonly page = byId('table-page');
  private readonly lookup = byId<HTMLFormElement>('table-lookup');
  private readonly key = byId<HTMLInputElement>('table-key');
  private readonly error = byId('table-error');
  private readonly rows = byId('table-rows');
  /** The `next` of the page shown, and that page's number (1-based). */
  private after: string | null = null;
  private pageNumber = 0;

  constructor() {
    this.select.addEventListener('change', () => void this.loadPage(undefined));
    this.first.addEventListener('click', () => void this.loadPage(undefined));
    this.next.addEventListener('click', () => {
      if (this.after !== null) void this.loadPage(this.after);
    });
    this.lookup.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.loadKey(this.key.value);
    });
  }

  setApi(api: AppApi): void {
    const chosen = this.select.value;
    replace(this.select, ...api.tables.map((t) => h('option', { value: t }, t)));
    if (api.tables.includes(chosen)) this.select.value = chosen;
    const none = api.tables.length === 0;
    for (const control of [this.select, this.limit, this.first, this.key]) control.disabled = none;
    if (none) setText(this.error, 'this app has no tables readable over HTTP');
    else if (this.pageNumber === 0) void this.loadPage(undefined);
  }

  private tablePath(): string {
    return `/tables/${encodeURIComponent(this.select.value)}`;
  }

  private async loadPage(after: string | undefined): Promise<void> {
    const limit = Math.min(1000, Math.max(1, Math.floor(Number(this.limit.value)) || 20));
    const query = new URLSearchParams({ limit: String(limit), ...(after === undefined ? {} : { after }) });
    const answer = await getJson<TablePage>(`${this.tablePath()}?${query}`);
    if (!answer.ok) {
      this.showError(describeError(answer.error));
      return;
    }
    this.pageNumber = after === undefined ? 1 : this.pageNumber + 1;
    this.after = answer.body.next;
    this.next.disabled = this.after === null;
    const count = answer.body.items.length;
    setText(this.page, `page ${this.pageNumber} · ${count} row${count === 1 ? '' : 's'}${this.after === null ? ' · last page' : ''}`);
    this.show(answer.body.items);
  }

  private async loadKey(key: string): Promise<void> {
    if (key === '') return;
    const answer = await getJson<TableRow>(`${this.tablePath()}/${encodeURIComponent(key)}`);
    // Not a page any more: "next page" would continue from a page not shown.
    this.pageNumber = 0;
    this.after = null;
    this.next.disabled = true;
    if (answer.ok) {
      setText(this.page, `key ${key}`);
      this.show([answer.body]);
    } else if (answer.status === 404 && errorCode(answer.error) === 'not_found') {
      setText(this.page, `key ${key}`);
      this.show([]);
      setText(this.error, `no row with key ${JSON.stringify(key)}`);
    } else {
      this.showError(describeError(answer.error));
    }
  }

  private show(items: readonly TableRow[]): void {
    setText(this.error, '');
    replace(
      this.rows,
      ...items.map((row) =>
        h('tr', { 'data-key': row.key }, h('th', { scope: 'row' }, row.key), h('td', { class: 'num' }, row.partition ?? ''), h('td', {}, h('pre', { class: 'json' }, pretty(row.value)))),
      ),
    );
  }

  private showError(message: string): void {
    setText(this.error, message);
    replace(this.rows);
  }
}
