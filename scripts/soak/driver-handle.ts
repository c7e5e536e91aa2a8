/** The soak's side of a driver process: its latest progress, and a stop that waits for its ledger. */
import type { ChildProcess } from 'node:child_process';
import type { DriverConfig, DriverProgress } from './driver.js';
import { forkDriver } from './processes.js';

export class DriverHandle {
  latest: DriverProgress = { kind: 'progress', sent: 0, acked: 0, failed: 0, answers: {} };
  private readonly child: ChildProcess;
  private readonly finished: Promise<{ code: number | null; progress: DriverProgress }>;

  constructor(config: DriverConfig, logFile: string) {
    this.child = forkDriver(config, logFile);
    this.child.on('message', (m: DriverProgress) => (this.latest = m));
    this.finished = new Promise((resolve) => this.child.once('exit', (code) => resolve({ code, progress: this.latest })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Asks it to stop after what is in flight; resolves once it exited (killed after `timeoutMs`). */
  async stop(timeoutMs = 60_000): Promise<{ code: number | null; progress: DriverProgress }> {
    if (this.running && this.child.connected) this.child.send({ kind: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await this.finished;
    clearTimeout(timer);
    return result;
  }
}
