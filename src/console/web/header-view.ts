/** The header: what app this is, where it runs, when it was last heard from, and whether it still is. */
import type { ClusterView, ErrorBody } from './api.js';
import { byId, setText } from './dom.js';
import { formatTime } from './format.js';
import { describeError } from './http.js';

export class HeaderView {
  private readonly app = byId('app-name');
  private readonly transport = byId('transport');
  private readonly partitions = byId('partition-count');
  private readonly replicas = byId('replicas');
  private readonly instances = byId('instance-count');
  private readonly servedBy = byId('served-by');
  private readonly updated = byId('updated');
  private readonly connection = byId('connection');

  update(view: ClusterView): void {
    setText(this.app, view.app);
    document.title = `${view.app} · farad console`;
    setText(this.transport, view.transport);
    setText(this.partitions, String(view.partitions));
    setText(this.replicas, String(view.replicas));
    const unreachable = view.unreachable.length > 0 ? ` (+${view.unreachable.length} unreachable)` : '';
    setText(this.instances, `${view.instances.length}${unreachable}`);
    setText(this.servedBy, view.servedBy);
    setText(this.updated, formatTime(view.at));
    this.setConnection('live', 'live');
  }

  /** The data shown stays, marked stale, until a poll succeeds again. */
  failed(error: ErrorBody, status: number): void {
    const why = status === 401 ? 'not authorized: reload the page to sign in with the token' : describeError(error);
    this.setConnection('disconnected', `disconnected — retrying (${why})`);
  }

  private setConnection(state: 'live' | 'disconnected', text: string): void {
    document.body.dataset['connection'] = state;
    setText(this.connection, text);
  }
}
