/** Timers: how many are pending across the cluster, and how many fired (in all and per second now), by timer. */
import type { ClusterView } from './api.js';
import { byId, h, setText } from './dom.js';
import { formatCount, formatRate } from './format.js';
import { KeyedList } from './keyed-list.js';
import type { Rates } from './rates.js';

type FiredTotal = ClusterView['timers']['fired'][number];

export class TimersView {
  private readonly pending = byId('timers-pending');
  private rates: Rates | undefined;
  private readonly fired = new KeyedList<FiredTotal, { readonly el: HTMLTableRowElement; readonly total: HTMLTableCellElement; readonly rate: HTMLTableCellElement }>(
    byId('timer-rows'),
    (t) => t.timer,
    (t) => {
      const total = h('td', { class: 'num' });
      const rate = h('td', { class: 'num' });
      return { el: h('tr', { 'data-timer': t.timer }, h('th', { scope: 'row' }, t.timer), total, rate), total, rate };
    },
    (row, t) => {
      setText(row.total, formatCount(t.total));
      setText(row.rate, formatRate(this.rates?.seconds === undefined ? undefined : (this.rates.timers.get(t.timer) ?? 0)));
    },
  );

  update(view: ClusterView, rates: Rates): void {
    this.rates = rates;
    setText(this.pending, formatCount(view.timers.pending));
    this.fired.sync([...view.timers.fired].sort((a, b) => a.timer.localeCompare(b.timer)));
  }
}
