import type { Target, ToPrimary, ToWorker, WorkerAnswer } from './messages.js';

interface Pending {
  readonly asker: number;
  readonly askerId: number;
  readonly waiting: Set<number>;
  readonly answers: WorkerAnswer[];
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * The primary's relay between workers (pure: `send` is the only I/O). A question goes to its
 * target workers; their answers go back to the asker together, once all answered, the time the
 * asker allowed ran out, or the workers still owing an answer exited (each then counts as a
 * failed answer, so the asker always hears back).
 */
export class Router {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly send: (worker: number, message: ToWorker) => void,
    private readonly live: () => readonly number[],
  ) {}

  /** A message from worker `from`. */
  receive(from: number, message: ToPrimary): void {
    if (message.farad === 'ask') this.ask(from, message.id, message.to, message.kind, message.payload, message.timeoutMs);
    else if (message.farad === 'answer') this.answer(message.id, message.answer);
  }

  /** Worker `worker` exited: it will not answer what it owes. */
  exited(worker: number): void {
    for (const [id, pending] of this.pending) {
      if (pending.waiting.has(worker)) this.answer(id, { worker, ok: false, error: `worker ${worker} exited` });
    }
  }

  private ask(asker: number, askerId: number, to: Target, kind: string, payload: unknown, timeoutMs: number): void {
    const live = this.live();
    const targets = to === 'all' ? [...live] : live.includes(to) ? [to] : [];
    const answers: WorkerAnswer[] = to === 'all' || targets.length > 0 ? [] : [{ worker: to, ok: false, error: `worker ${to} is not running` }];
    if (targets.length === 0) {
      this.send(asker, { farad: 'answered', id: askerId, answers });
      return;
    }
    const id = this.nextId++;
    const timer = setTimeout(() => this.expire(id), timeoutMs);
    timer.unref?.();
    this.pending.set(id, { asker, askerId, waiting: new Set(targets), answers, timer });
    for (const worker of targets) this.send(worker, { farad: 'asked', id, kind, payload });
  }

  private answer(id: number, answer: WorkerAnswer): void {
    const pending = this.pending.get(id);
    if (!pending || !pending.waiting.delete(answer.worker)) return;
    pending.answers.push(answer);
    if (pending.waiting.size === 0) this.finish(id, pending);
  }

  private expire(id: number): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    for (const worker of pending.waiting) pending.answers.push({ worker, ok: false, error: `worker ${worker} did not answer in time` });
    pending.waiting.clear();
    this.finish(id, pending);
  }

  private finish(id: number, pending: Pending): void {
    clearTimeout(pending.timer);
    this.pending.delete(id);
    const answers = [...pending.answers].sort((a, b) => a.worker - b.worker);
    this.send(pending.asker, { farad: 'answered', id: pending.askerId, answers });
  }
}
