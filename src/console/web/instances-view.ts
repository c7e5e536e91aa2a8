/** The instances of the app: one row each, and one for each instance the gathering could not reach. */
import type { ClusterView, InstanceSummary } from './api.js';
import { byId, h, setAttr, setText } from './dom.js';
import { formatCount, formatDuration, UNKNOWN } from './format.js';
import { KeyedList } from './keyed-list.js';

type InstanceLine =
  | { readonly state: 'reachable'; readonly instance: InstanceSummary }
  | { readonly state: 'unreachable'; readonly instanceId: string; readonly url?: string; readonly error: string };

interface InstanceRow {
  readonly el: HTMLTableRowElement;
  readonly cells: readonly HTMLTableCellElement[];
}

const COLUMNS = ['id', 'url', 'ready', 'workers', 'active', 'standby', 'uptime', 'rebalances', 'failure'] as const;
const NUMERIC = new Set<string>(['workers', 'active', 'standby', 'uptime', 'rebalances']);

export class InstancesView {
  private at = 0;
  private readonly rows = new KeyedList<InstanceLine, InstanceRow>(
    byId('instance-rows'),
    (line) => (line.state === 'reachable' ? line.instance.instanceId : line.instanceId),
    () => {
      const cells = COLUMNS.map((c) => h('td', { class: NUMERIC.has(c) ? 'num' : undefined }));
      return { el: h('tr', {}, ...cells), cells };
    },
    (row, line) => this.fill(row, line),
  );

  update(view: ClusterView): void {
    this.at = view.at;
    const lines: InstanceLine[] = [
      ...[...view.instances].sort((a, b) => a.instanceId.localeCompare(b.instanceId)).map((instance) => ({ state: 'reachable' as const, instance })),
      ...view.unreachable.map((u) => ({ state: 'unreachable' as const, ...u })),
    ];
    this.rows.sync(lines);
  }

  private fill(row: InstanceRow, line: InstanceLine): void {
    const texts =
      line.state === 'reachable'
        ? [
            line.instance.instanceId,
            line.instance.url ?? UNKNOWN,
            line.instance.ready ? 'ready' : 'not ready',
            formatCount(line.instance.workers),
            formatCount(line.instance.active.length),
            formatCount(line.instance.standby.length),
            formatDuration(this.at - line.instance.startedAt),
            formatCount(line.instance.rebalances),
            line.instance.failure ?? '',
          ]
        : [line.instanceId, line.url ?? UNKNOWN, 'unreachable', UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, line.error];
    texts.forEach((text, i) => setText(row.cells[i]!, text));
    const state = line.state === 'unreachable' ? 'unreachable' : line.instance.ready ? 'ready' : 'not-ready';
    setAttr(row.el, 'data-instance', line.state === 'reachable' ? line.instance.instanceId : line.instanceId);
    setAttr(row.el, 'data-state', state);
  }
}
