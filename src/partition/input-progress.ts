/**
 * How far an active partition's input has been processed and committed: the committed (next)
 * offset per input topic, as this owner knows it. Reads that wait for a write (`?waitFor=`) wait
 * here until the offsets reach the write's; the commit that gets there wakes them (no polling).
 */

/** How a wait ended: the offsets were reached, the partition stopped being active here, or the caller gave up. */
export type InputWaitOutcome = 'reached' | 'moved' | 'aborted';

interface Waiter {
  readonly targets: ReadonlyMap<string, number>;
  readonly settle: (outcome: InputWaitOutcome) => void;
}

/**
 * One activation's progress (a new owner starts a new one). It learns offsets two ways: from
 * this owner's commits, once their state is readable (`commitEnded`), and, for input committed
 * before this owner took the partition, from the log once (`until`'s `learn`). The log may
 * already count a commit of this owner whose state is not yet readable; what it answers while a
 * commit is in flight is therefore applied only when that commit has ended.
 */
export class InputProgress {
  private readonly committed = new Map<string, number>();
  private readonly waiters = new Set<Waiter>();
  private ended = false;
  private committing = false;
  /** The log's answer that came while a commit was in flight, applied when it ends. */
  private heldBack: ReadonlyMap<string, number> | undefined;
  /** The log's committed offsets, asked once per activation (on the first wait that needs them). */
  private learning: Promise<void> | undefined;

  /** The committed offset of `topic` known here, if any. */
  offsetOf(topic: string): number | undefined {
    return this.committed.get(topic);
  }

  /** True when every topic's committed offset is at least its target. */
  reached(targets: ReadonlyMap<string, number>): boolean {
    for (const [topic, offset] of targets) if ((this.committed.get(topic) ?? -1) < offset) return false;
    return true;
  }

  /** A batch's commit begins. */
  commitStarted(): void {
    this.committing = true;
  }

  /** A batch's commit ended: its input offsets, once it committed and its state is readable. */
  commitEnded(offsets: Iterable<{ readonly topic: string; readonly offset: number }>): void {
    this.committing = false;
    this.advance(offsets);
    const held = this.heldBack;
    this.heldBack = undefined;
    if (held) this.advance([...held].map(([topic, offset]) => ({ topic, offset })));
  }

  /**
   * A batch's commit failed and its state was rolled back. What the log answered meanwhile may
   * count that batch (a commit the broker took though the client saw it fail): dropped, and the
   * log is asked again by the next wait.
   */
  commitFailed(): void {
    this.committing = false;
    if (this.heldBack) this.learning = undefined;
    this.heldBack = undefined;
  }

  /**
   * Resolves `reached` once the committed offsets reach `targets`; `moved` when the partition
   * stops being active here (its new owner has the answer); `aborted` when `signal` aborts.
   * `learn` answers the log's committed offsets; it is asked at most once per activation, by
   * the first wait that what this owner committed itself does not answer.
   */
  async until(targets: ReadonlyMap<string, number>, signal: AbortSignal, learn: () => Promise<ReadonlyMap<string, number>>): Promise<InputWaitOutcome> {
    if (this.ended) return 'moved';
    if (this.reached(targets)) return 'reached';
    if (signal.aborted) return 'aborted';
    this.learning ??= learn().then(
      (offsets) => this.learnt(offsets),
      () => {
        this.learning = undefined; // the next wait asks again
      },
    );
    return new Promise<InputWaitOutcome>((resolve) => {
      const waiter: Waiter = {
        targets,
        settle: (outcome) => {
          this.waiters.delete(waiter);
          signal.removeEventListener('abort', onAbort);
          resolve(outcome);
        },
      };
      const onAbort = (): void => waiter.settle('aborted');
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** The partition is no longer active here: every wait ends (the reader looks for the new owner). */
  end(): void {
    this.ended = true;
    for (const waiter of [...this.waiters]) waiter.settle('moved');
  }

  private learnt(offsets: ReadonlyMap<string, number>): void {
    if (!this.committing) {
      this.advance([...offsets].map(([topic, offset]) => ({ topic, offset })));
      return;
    }
    const held = new Map(this.heldBack ?? []);
    for (const [topic, offset] of offsets) held.set(topic, Math.max(offset, held.get(topic) ?? -1));
    this.heldBack = held;
  }

  /** Committed offsets move forward only: a lower one (read earlier, answered later) changes nothing. */
  private advance(offsets: Iterable<{ readonly topic: string; readonly offset: number }>): void {
    let moved = false;
    for (const { topic, offset } of offsets) {
      if (offset > (this.committed.get(topic) ?? -1)) {
        this.committed.set(topic, offset);
        moved = true;
      }
    }
    if (!moved) return;
    for (const waiter of [...this.waiters]) if (this.reached(waiter.targets)) waiter.settle('reached');
  }
}
