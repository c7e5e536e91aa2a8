/** Alerts that would fire (the shipped alert rules' conditions), most severe first. */
import type { Alert } from './api.js';
import { byId, h, setAttr, setText } from './dom.js';
import { formatDuration, formatTime } from './format.js';
import { KeyedList } from './keyed-list.js';

const SEVERITY_ORDER: Readonly<Record<Alert['severity'], number>> = { critical: 0, warning: 1 };

interface AlertItem {
  readonly el: HTMLLIElement;
  readonly badge: HTMLElement;
  readonly summary: HTMLElement;
  readonly since: HTMLElement;
}

export class AlertsView {
  private readonly none = byId('no-alerts');
  /** Server time of the view being shown: "for 3 m" is counted from it. */
  private at = 0;
  private readonly items = new KeyedList<Alert, AlertItem>(
    byId('alert-list'),
    (alert) => `${alert.name}${JSON.stringify(alert.labels)}`,
    (alert) => createItem(alert),
    (item, alert) => this.updateItem(item, alert),
  );

  update(alerts: readonly Alert[], at: number): void {
    this.at = at;
    this.items.sync([...alerts].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.since - b.since));
    this.none.hidden = alerts.length > 0;
  }

  private updateItem(item: AlertItem, alert: Alert): void {
    setAttr(item.el, 'data-severity', alert.severity);
    setAttr(item.el, 'data-state', alert.state);
    setText(item.badge, `${alert.severity} · ${alert.state}`);
    setText(item.summary, alert.summary);
    setText(item.since, `for ${formatDuration(this.at - alert.since)}`);
    setAttr(item.since, 'title', `since ${formatTime(alert.since)}`);
  }
}

function createItem(alert: Alert): AlertItem {
  const badge = h('span', { class: 'badge' });
  const summary = h('span', { class: 'summary' });
  const since = h('span', { class: 'since' });
  const labels = Object.entries(alert.labels).map(([k, v]) => `${k}=${v}`).join(' ');
  const el = h('li', { class: 'alert', 'data-alert': alert.name }, h('strong', {}, alert.name), ' ', badge, ' ', summary, ' ', labels === '' ? null : h('span', { class: 'labels' }, labels), ' ', since);
  return { el, badge, summary, since };
}
