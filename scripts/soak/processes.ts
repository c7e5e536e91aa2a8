/**
 * Supervision of every process the soak starts: farad instances (restartable, one log file per
 * instance with every generation appended) and the drivers. Everything started is registered, and
 * `killAll()` (synchronous, for process 'exit') SIGKILLs whatever still runs, stopped ones too.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { freePort } from '../../test/support/wait.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP = join(ROOT, 'scripts/soak/app.ts');

const running = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** SIGKILLs every child still running (also on the way out after a failure or Ctrl-C). */
export function killAll(): void {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}

export { freePort };

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * One farad instance: `farad run --app scripts/soak/app.ts` with a fixed instance id, port and
 * environment; started again after a kill on the same port (so its advertised URL stays right).
 */
export class FaradInstance {
  private child: ChildProcess | undefined;
  private log: WriteStream;
  private exitPromise: Promise<Exit> = Promise.resolve({ code: 0, signal: null });
  /** Set while the soak itself stops or kills it: any other exit is unexpected. */
  private expectingExit = false;
  generation = 0;
  startedAt = 0;
  readonly unexpectedExits: Array<Exit & { at: number; generation: number }> = [];
  private tail = '';

  constructor(
    readonly id: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    readonly logFile: string,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last 4 KB of output, for failure messages. */
  recentOutput(): string {
    return this.tail;
  }

  start(): void {
    if (this.running) throw new Error(`${this.id} is already running`);
    this.generation++;
    this.startedAt = Date.now();
    this.expectingExit = false;
    this.log.write(`\n===== soak: start ${this.id} generation ${this.generation} at ${new Date().toISOString()} =====\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'run', '--app', APP], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        FARAD_HTTP_PORT: String(this.port),
        FARAD_HTTP_HOST: '127.0.0.1',
        FARAD_INSTANCE_ID: this.id,
        FARAD_LOG_LEVEL: process.env['FARAD_SOAK_LOG_LEVEL'] ?? 'warn',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child);
    const keep = (chunk: Buffer): void => {
      this.log.write(chunk);
      this.tail = (this.tail + chunk.toString()).slice(-4096);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const generation = this.generation;
    this.exitPromise = new Promise<Exit>((resolve) =>
      child.once('exit', (code, signal) => {
        this.log.write(`\n===== soak: ${this.id} generation ${generation} exited (code ${code}, signal ${signal}) =====\n`);
        if (!this.expectingExit) this.unexpectedExits.push({ code, signal, at: Date.now(), generation });
        resolve({ code, signal });
      }),
    );
    this.child = child;
  }

  signal(signal: NodeJS.Signals): void {
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.expectingExit = true;
    if (this.running) this.child!.kill(signal);
  }

  exited(): Promise<Exit> {
    return this.exitPromise;
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with the exit. */
  async stop(timeoutMs = 30_000): Promise<Exit & { forced: boolean }> {
    if (!this.running) return { ...(await this.exitPromise), forced: false };
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.signal('SIGKILL');
    }, timeoutMs);
    const exit = await this.exitPromise;
    clearTimeout(timer);
    return { ...exit, forced };
  }

  async kill9(): Promise<void> {
    this.signal('SIGKILL');
    await this.exitPromise;
  }

  close(): void {
    this.log.end();
  }
}

/** A driver process (scripts/soak/driver.ts) with its IPC channel. */
export function forkDriver(config: object, logFile: string): ChildProcess {
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = fork(join(ROOT, 'scripts/soak/driver.ts'), [JSON.stringify(config)], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  return track(child);
}

/** Runs a command to its end; resolves with its exit code and output (for the services scripts). */
export function run(command: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = track(spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
