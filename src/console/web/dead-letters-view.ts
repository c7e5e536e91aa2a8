/**
 * Dead letters: counts by reason from the cluster view, and the newest records, fetched again
 * only when a count moved (not every poll). Each record expands to its whole JSON.
 */
import type { ClusterView, DeadLetterPage, RecordLine } from './api.js';
import { byId, h, pretty, setText } from './dom.js';
import { formatCount, formatDateTime, formatRate } from './format.js';
import { describeError, getJson } from './http.js';
import { KeyedList } from './keyed-list.js';
import type { Rates } from './rates.js';

const NEWEST = 20;
/**
 * A count moves when a handler fails, before its batch (and the dead letter) is committed: a
 * list read then can miss it. It is read again on the next polls, this many times at most (the
 * topic may also hold fewer records than the counts, after retention).
 */
const RETRIES_WHILE_SHORT = 5;

type ReasonTotal = ClusterView['deadLetters'][number];

interface ReasonRow {
  readonly el: HTMLTableRowElement;
  readonly total: HTMLTableCellElement;
  readonly rate: HTMLTableCellElement;
}

export class DeadLettersView {
  private rates: Rates | undefined;
  private readonly status = byId('dead-letter-status');
  /** The counts the list on screen was fetched for; undefined: not fetched yet. */
  private fetchedFor: string | undefined;
  private fetching = false;
  /** Reads for `shortFor` (counts) that came back with fewer records than they count. */
  private short = 0;
  private shortFor: string | undefined;
  private readonly reasons = new KeyedList<ReasonTotal, ReasonRow>(
    byId('dead-letter-reasons'),
    (d) => d.reason,
    (d) => {
      const total = h('td', { class: 'num' });
      const rate = h('td', { class: 'num' });
      return { el: h('tr', { 'data-reason': d.reason }, h('th', { scope: 'row' }, d.reason), total, rate), total, rate };
    },
    (row, d) => {
      setText(row.total, formatCount(d.total));
      setText(row.rate, formatRate(this.rates?.deadLetters.get(d.reason)));
    },
  );
  private readonly records = new KeyedList<RecordLine, { readonly el: HTMLLIElement }>(
    byId('dead-letter-list'),
    (r) => `${r.topic}:${r.partition}:${r.offset}`,
    (r) => ({ el: recordItem(r) }),
    () => undefined,
  );

  update(view: ClusterView, rates: Rates): void {
    this.rates = rates;
    const sorted = [...view.deadLetters].sort((a, b) => a.reason.localeCompare(b.reason));
    this.reasons.sync(sorted);
    const counts = sorted.map((d) => `${d.reason}=${d.total}`).join(',');
    const expected = Math.min(NEWEST, sorted.reduce((sum, d) => sum + d.total, 0));
    if (counts !== this.fetchedFor && !this.fetching) void this.fetchNewest(counts, expected);
  }

  private async fetchNewest(counts: string, expected: number): Promise<void> {
    this.fetching = true;
    try {
      const answer = await getJson<DeadLetterPage>(`/console/api/dead-letters?limit=${NEWEST}`);
      if (!answer.ok) {
        setText(this.status, `could not read the dead letters: ${describeError(answer.error)}`);
        return;
      }
      if (this.shortFor !== counts) {
        this.shortFor = counts;
        this.short = 0;
      }
      // Short of what the counts say: read again on the next polls, a few times.
      if (answer.body.items.length >= expected || ++this.short > RETRIES_WHILE_SHORT) this.fetchedFor = counts;
      this.records.sync(answer.body.items);
      setText(this.status, answer.body.items.length === 0 ? 'no dead letters' : `the newest ${answer.body.items.length}, newest first`);
    } finally {
      this.fetching = false;
    }
  }
}

/** A summary line of what matters when paged (when, why, which event, key), the rest on demand. */
function recordItem(r: RecordLine): HTMLLIElement {
  const dl = r.deadLetter;
  const reason = dl?.reason ?? r.headers?.['farad.dlq.reason'] ?? 'unknown reason';
  const eventType = dl?.eventType ?? r.eventType ?? r.type;
  const when = typeof r.timestamp === 'number' ? formatDateTime(r.timestamp) : '';
  return h(
    'li',
    { 'data-offset': `${r.partition}:${r.offset}` },
    h(
      'details',
      {},
      h(
        'summary',
        {},
        h('time', {}, when),
        ' ',
        h('strong', {}, reason),
        eventType ? ` ${eventType}` : null,
        r.key === null ? null : h('span', { class: 'key' }, ` key ${r.key}`),
        dl?.error === undefined ? null : h('span', { class: 'error-text' }, ` ${dl.error}`),
      ),
      h('pre', { class: 'json' }, pretty(r)),
    ),
  );
}
