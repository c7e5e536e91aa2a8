/**
 * Send an event: pick a type, fill the form generated from its schema, send. Problems found here
 * are shown next to their fields and nothing is sent; the server's refusal is shown next to the
 * field it names, or above the form.
 */
import type { ErrorBody } from './api.js';
import { byId, h, pretty, replace, setText } from './dom.js';
import { describeError, postJson } from './http.js';
import type { AppApi } from './openapi.js';
import { schemaForm, type SchemaForm } from './schema-form.js';
import { fieldSpecOf } from './schema-model.js';

export class SendForm {
  private readonly form = byId<HTMLFormElement>('send-form');
  private readonly type = byId<HTMLSelectElement>('send-type');
  private readonly fields = byId('send-fields');
  private readonly error = byId('send-error');
  private readonly result = byId('send-result');
  private readonly submit = byId<HTMLButtonElement>('send-submit');
  private api: AppApi | undefined;
  private current: SchemaForm | undefined;

  /** `sent` runs after an event was accepted (the page polls at once to show it counted). */
  constructor(private readonly sent: () => void) {
    this.type.addEventListener('change', () => this.showType());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
  }

  setApi(api: AppApi): void {
    this.api = api;
    const chosen = this.type.value;
    replace(this.type, ...api.events.map((e) => h('option', { value: e.name }, e.name)));
    if (api.events.some((e) => e.name === chosen)) this.type.value = chosen;
    this.submit.disabled = api.events.length === 0;
    if (api.events.length === 0) setText(this.error, 'this app takes no events over HTTP');
    this.showType();
  }

  private showType(): void {
    const event = this.api?.events.find((e) => e.name === this.type.value);
    setText(this.error, '');
    setText(this.result, '');
    if (event === undefined || this.api === undefined) {
      this.current = undefined;
      replace(this.fields);
      return;
    }
    const spec = fieldSpecOf(event.schema, this.api.resolve);
    // farad's events are Avro records; a document saying otherwise is not one this page can read.
    if (spec.kind !== 'record') {
      this.current = undefined;
      replace(this.fields);
      setText(this.error, `the schema of ${event.name} in /openapi.json is not an object with fields`);
      return;
    }
    this.current = schemaForm(spec.fields, 'send-field');
    replace(this.fields, this.current.el);
  }

  private async send(): Promise<void> {
    const form = this.current;
    const type = this.type.value;
    if (form === undefined || type === '') return;
    setText(this.error, '');
    setText(this.result, '');
    const read = form.read();
    if (!read.ok) {
      read.firstInvalid.focus();
      return;
    }
    this.submit.disabled = true;
    try {
      const answer = await postJson<unknown>(`/events/${encodeURIComponent(type)}`, read.value);
      if (answer.ok) {
        setText(this.result, `accepted (HTTP ${answer.status})\n${pretty(answer.body)}`);
        this.sent();
      } else {
        this.showRefusal(form, answer.error, answer.status);
      }
    } finally {
      this.submit.disabled = false;
    }
  }

  private showRefusal(form: SchemaForm, error: ErrorBody, status: number): void {
    const problems = error.errors ?? (error.field === undefined ? [] : [{ field: error.field, message: error.message }]);
    const unplaced = problems.filter((p) => !form.showError(p.field, p.message));
    if (problems.length === 0 || unplaced.length > 0) setText(this.error, `refused (HTTP ${status}): ${describeError(error)}`);
  }
}
