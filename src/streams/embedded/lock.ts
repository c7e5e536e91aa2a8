import { closeSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LogLockedError } from '../../errors.js';

/** Lock files this process holds (real paths): the pid in the file cannot tell two opens in one process apart. */
const heldHere = new Set<string>();

/**
 * One owner per data directory: a lock file holding the owner's pid; locks of dead processes are
 * taken over. Within one process, a directory can be open only once at a time too.
 */
export class DataDirLock {
  private released = false;

  private constructor(private readonly path: string) {}

  static acquire(path: string): DataDirLock {
    const real = join(realpathSync(dirname(path)), basename(path));
    if (heldHere.has(real)) {
      throw new LogLockedError(`data directory is already open in this process (${path}); close it first, or point FARAD_DATA_DIR elsewhere`);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(real, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        heldHere.add(real);
        return new DataDirLock(real);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const owner = Number(readFileSync(real, 'utf8').trim());
        // Our own pid here is a lock of a dead process that had our pid (this process holds none).
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
          throw new LogLockedError(
            `data directory is in use by process ${owner} (${path}); stop it, or point FARAD_DATA_DIR elsewhere`,
          );
        }
        unlinkSync(real); // left behind by a process that died
      }
    }
    throw new LogLockedError(`could not take the lock ${path}`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
