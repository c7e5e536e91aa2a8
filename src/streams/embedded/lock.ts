import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { LogLockedError } from '../../errors.js';

/** One process per data directory: a lock file holding the owner's pid; stale locks are taken over. */
export class DataDirLock {
  private constructor(private readonly path: string) {}

  static acquire(path: string): DataDirLock {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return new DataDirLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const owner = Number(readFileSync(path, 'utf8').trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
          throw new LogLockedError(
            `data directory is in use by process ${owner} (${path}); stop it, or point FARAD_DATA_DIR elsewhere`,
          );
        }
        unlinkSync(path); // left behind by a process that died
      }
    }
    throw new LogLockedError(`could not take the lock ${path}`);
  }

  release(): void {
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
