/** Timers: how many are pending across the cluster and how many fired, by timer. */
import type { ClusterView } from './api.js';
import { byId, h, setText } from './dom.js';
import { formatCount } from './format.js';
import { KeyedList } from './keyed-list.js';

type FiredTotal = ClusterView['timers']['fired'][number];

export class TimersView {
  private readonly pending = byId('timers-pending');
  private readonly fired = new KeyedList<FiredTotal, { readonly el: HTMLTableRowElement; readonly total: HTMLTableCellElement }>(
    byId('timer-rows'),
    (t) => t.timer,
    (t) => {
      const total = h('td', { class: 'num' });
      return { el: h('tr', { 'data-timer': t.timer }, h('th', { scope: 'row' }, t.timer), total), total };
    },
    (row, t) => setText(row.total, formatCount(t.total)),
  );

  update(view: ClusterView): void {
    setText(this.pending, formatCount(view.timers.pending));
    this.fired.sync([...view.timers.fired].sort((a, b) => a.timer.localeCompare(b.timer)));
  }
}
