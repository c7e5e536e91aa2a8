/**
 * Every partition in one compact table, kept in place: a row per partition made once, and each
 * poll writes only the cells whose text changed. At 256 partitions that is a few dozen text
 * writes per poll instead of thousands of new nodes.
 */
import type { ClusterView, PartitionRow } from './api.js';
import { byId, h, setAttr, setText } from './dom.js';
import { formatCount, formatDuration, formatPercent, formatRate, UNKNOWN } from './format.js';
import { KeyedList } from './keyed-list.js';
import type { Rates } from './rates.js';

interface Row {
  readonly el: HTMLTableRowElement;
  readonly role: HTMLTableCellElement;
  readonly owner: HTMLTableCellElement;
  readonly standbys: HTMLTableCellElement;
  readonly lag: HTMLTableCellElement;
  readonly standbyLag: HTMLTableCellElement;
  readonly rate: HTMLTableCellElement;
  readonly progress: HTMLProgressElement;
  readonly restore: HTMLSpanElement;
  readonly lastCommit: HTMLTableCellElement;
  readonly snapshotAge: HTMLTableCellElement;
  readonly timers: HTMLTableCellElement;
  readonly commitFailures: HTMLTableCellElement;
  /** The text the filter matches against: role, owner, standbys. */
  haystack: string;
}

export class PartitionsView {
  private readonly filter = byId<HTMLInputElement>('partition-filter');
  private readonly notActive = byId<HTMLInputElement>('partition-not-active');
  private readonly summary = byId('partition-summary');
  private view: ClusterView | undefined;
  private rates: Rates | undefined;
  private readonly rows = new KeyedList<PartitionRow, Row>(
    byId('partition-rows'),
    (p) => String(p.partition),
    (p) => createRow(p.partition),
    (row, p) => this.fill(row, p),
  );

  constructor() {
    this.filter.addEventListener('input', () => this.applyFilter());
    this.notActive.addEventListener('change', () => this.applyFilter());
  }

  update(view: ClusterView, rates: Rates): void {
    this.view = view;
    this.rates = rates;
    this.rows.sync(view.partitionRows);
    this.applyFilter();
  }

  private fill(row: Row, p: PartitionRow): void {
    const at = this.view?.at ?? 0;
    setAttr(row.el, 'data-role', p.role);
    setText(row.role, p.role);
    setAttr(row.role, 'title', p.holders.map((x) => `${x.instanceId}: ${x.role}${x.reason === undefined ? '' : ` (${x.reason})`}`).join('\n'));
    setAttr(row.owner, 'data-owner', p.owner ?? '');
    setText(row.owner, p.owner ?? UNKNOWN);
    setText(row.standbys, p.standbys.length === 0 ? UNKNOWN : p.standbys.join(', '));
    setText(row.lag, formatCount(p.lag));
    setText(row.standbyLag, formatCount(p.standbyLag));
    setText(row.rate, formatRate(this.rates?.partitions.get(p.partition)));
    this.fillRestore(row, p);
    setText(row.lastCommit, p.lastCommitAt === undefined ? UNKNOWN : formatDuration(at - p.lastCommitAt));
    setText(row.snapshotAge, p.snapshotAgeSeconds === undefined ? UNKNOWN : formatDuration(p.snapshotAgeSeconds * 1000));
    setText(row.timers, formatCount(p.timersPending));
    setText(row.commitFailures, formatCount(p.commitFailures));
    setAttr(row.commitFailures, 'data-nonzero', String(p.commitFailures > 0));
    row.haystack = `${p.role} ${p.owner ?? ''} ${p.standbys.join(' ')}`.toLowerCase();
  }

  /** A bar while a restore runs (or stopped short of the end); nothing once the partition is caught up. */
  private fillRestore(row: Row, p: PartitionRow): void {
    const showing = p.restoreProgress !== undefined && (p.role === 'restoring' || p.restoreProgress < 1);
    // Assigning an unchanged `hidden` still writes the attribute: compare first.
    if (row.progress.hidden === showing) row.progress.hidden = !showing;
    if (!showing) {
      setText(row.restore, p.role === 'restoring' ? 'restoring' : '');
      return;
    }
    if (row.progress.value !== p.restoreProgress) row.progress.value = p.restoreProgress;
    const rate = p.restoreRate === undefined ? '' : ` · ${formatRate(p.restoreRate)}/s`;
    setText(row.restore, `${formatPercent(p.restoreProgress)}${rate}`);
  }

  private applyFilter(): void {
    const query = this.filter.value.trim().toLowerCase();
    const onlyNotActive = this.notActive.checked;
    const partitionQuery = /^\d+$/.test(query) ? query : undefined;
    const counts = new Map<string, number>();
    let shown = 0;
    for (const row of this.rows.values()) {
      const role = row.el.dataset['role'] ?? '';
      counts.set(role, (counts.get(role) ?? 0) + 1);
      const matches =
        (!onlyNotActive || role !== 'active') &&
        (query === '' || (partitionQuery !== undefined ? row.el.dataset['partition'] === partitionQuery : row.haystack.includes(query)));
      if (row.el.hidden === matches) row.el.hidden = !matches;
      if (matches) shown++;
    }
    const byRole = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([role, n]) => `${n} ${role}`).join(' · ');
    const filtered = shown === this.rows.size ? '' : ` — showing ${shown}`;
    setText(this.summary, `${this.rows.size} partitions: ${byRole}${filtered}`);
  }
}

function createRow(partition: number): Row {
  const td = (numeric: boolean) => h('td', { class: numeric ? 'num' : undefined });
  const progress = h('progress', { max: 1, 'aria-label': `restore of partition ${partition}` });
  const restore = h('span');
  const cells = {
    role: h('td', { class: 'role' }),
    owner: td(false),
    standbys: td(false),
    lag: td(true),
    standbyLag: td(true),
    rate: td(true),
    lastCommit: td(true),
    snapshotAge: td(true),
    timers: td(true),
    commitFailures: td(true),
  };
  const el = h(
    'tr',
    { 'data-partition': partition },
    h('th', { scope: 'row', class: 'num' }, String(partition)),
    cells.role,
    cells.owner,
    cells.standbys,
    cells.lag,
    cells.standbyLag,
    cells.rate,
    h('td', { class: 'restore' }, progress, restore),
    cells.lastCommit,
    cells.snapshotAge,
    cells.timers,
    cells.commitFailures,
  );
  return { el, progress, restore, ...cells, haystack: '' };
}
