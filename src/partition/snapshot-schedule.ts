import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import type { Snapshots } from '../replication/index.js';
import type { PartitionState } from '../state/index.js';

/** When an active partition's next snapshot is due: every `intervalMs`, and only if its state changed. */
export class SnapshotSchedule {
  /** True until a snapshot of this run's state exists. */
  private dirty = true;
  private last = performance.now();

  constructor(
    private readonly snapshots: Snapshots | undefined,
    private readonly logger: Logger,
  ) {}

  changed(): void {
    this.dirty = true;
  }

  due(): boolean {
    const interval = this.snapshots?.intervalMs ?? 0;
    return interval > 0 && this.dirty && performance.now() - this.last >= interval;
  }

  /** Runs between batches, so the state is exactly the committed state at `changelogOffset`. */
  async take(state: PartitionState, changelogOffset: number): Promise<void> {
    if (!this.snapshots || !this.dirty || state.inTransaction) return;
    this.last = performance.now();
    try {
      await this.snapshots.save(state.partition, state, changelogOffset);
      this.dirty = false;
    } catch (err) {
      this.logger.warn({ partition: state.partition, err: describeError(err) }, 'snapshot skipped');
    }
  }
}
