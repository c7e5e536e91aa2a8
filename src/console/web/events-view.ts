/** Events handled per type and outcome (totals, rates, a sparkline of recent polls) and ingested per type. */
import type { ClusterView } from './api.js';
import { byId, h, setAttr, setText } from './dom.js';
import { formatCount, formatRate } from './format.js';
import { KeyedList } from './keyed-list.js';
import { eventKey, History, type Rates } from './rates.js';
import { Sparkline } from './sparkline.js';

/** Polls kept for the sparklines: 60 polls of 2 s, two minutes. */
const HISTORY = 60;

type EventTotal = ClusterView['events'][number];
type IngestedTotal = ClusterView['ingested'][number];

interface EventRow {
  readonly el: HTMLTableRowElement;
  readonly total: HTMLTableCellElement;
  readonly rate: HTMLTableCellElement;
  readonly sparkline: Sparkline;
}

interface IngestedRow {
  readonly el: HTMLTableRowElement;
  readonly total: HTMLTableCellElement;
  readonly rate: HTMLTableCellElement;
}

export class EventsView {
  private readonly history = new History(HISTORY);
  private rates: Rates | undefined;
  private readonly snapshots = byId('snapshot-counts');
  private readonly events = new KeyedList<EventTotal, EventRow>(
    byId('event-rows'),
    (e) => eventKey(e.eventType, e.outcome),
    (e) => {
      const total = h('td', { class: 'num' });
      const rate = h('td', { class: 'num' });
      const sparkline = new Sparkline(`${e.eventType} ${e.outcome} per second, last 2 minutes`);
      const el = h('tr', { 'data-event-type': e.eventType, 'data-outcome': e.outcome }, h('th', { scope: 'row' }, e.eventType), h('td', { class: `outcome ${e.outcome}` }, e.outcome), total, rate, h('td', {}, sparkline.el));
      return { el, total, rate, sparkline };
    },
    (row, e) => {
      const key = eventKey(e.eventType, e.outcome);
      setText(row.total, formatCount(e.total));
      setText(row.rate, formatRate(this.rates?.events.get(key)));
      row.sparkline.draw(this.history.of(key), HISTORY);
    },
  );
  private readonly ingested = new KeyedList<IngestedTotal, IngestedRow>(
    byId('ingested-rows'),
    (e) => e.eventType,
    (e) => {
      const total = h('td', { class: 'num' });
      const rate = h('td', { class: 'num' });
      return { el: h('tr', { 'data-event-type': e.eventType }, h('th', { scope: 'row' }, e.eventType), total, rate), total, rate };
    },
    (row, e) => {
      setText(row.total, formatCount(e.total));
      setText(row.rate, formatRate(this.rates?.ingested.get(e.eventType)));
    },
  );

  update(view: ClusterView, rates: Rates): void {
    // The same rates again (a view no newer than the last) are not another point of the sparkline.
    if (rates !== this.rates && rates.seconds !== undefined) this.history.push(rates.events);
    this.rates = rates;
    const byName = (a: { eventType: string }, b: { eventType: string }) => a.eventType.localeCompare(b.eventType);
    this.events.sync([...view.events].sort((a, b) => byName(a, b) || a.outcome.localeCompare(b.outcome)));
    this.ingested.sync([...view.ingested].sort(byName));
    const { ok, failed, skipped } = view.snapshots;
    setText(this.snapshots, `${formatCount(ok)} taken · ${formatCount(failed)} failed · ${formatCount(skipped)} skipped`);
    setAttr(this.snapshots, 'data-failed', String(failed > 0));
  }
}
