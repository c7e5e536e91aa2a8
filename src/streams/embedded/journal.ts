import { closeSync, ftruncateSync, openSync, readSync, fstatSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { CorruptDataError, TransportError } from '../../errors.js';
import { checkFrame, FRAME_HEADER } from './frames.js';

interface Pending {
  readonly frame: Buffer;
  readonly onDurable: (position: number) => void;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * An append-only file of checksummed frames with group commit: frames queued while a write is in
 * flight go out together in one write and one fsync. `onDurable` callbacks run in file order,
 * after the fsync, before the writers' promises resolve.
 */
export class Journal {
  private queue: Pending[] = [];
  private flushing = false;
  private broken: Error | undefined;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly readFd: number,
    private size: number,
  ) {}

  /**
   * Opens the journal, calling `onFrame` for every intact frame in order. A torn or corrupt
   * tail (a crash mid-write) is cut off; `onTruncate` reports how many bytes were dropped.
   */
  static async open(
    path: string,
    onFrame: (frame: Buffer, position: number) => void,
    onTruncate: (validBytes: number, droppedBytes: number) => void,
  ): Promise<Journal> {
    const handle = await open(path, 'a+');
    const readFd = openSync(path, 'r');
    const fileSize = fstatSync(readFd).size;
    const valid = replay(readFd, fileSize, onFrame);
    if (valid < fileSize) {
      ftruncateSync(handle.fd, valid);
      onTruncate(valid, fileSize - valid);
    }
    return new Journal(path, handle, readFd, valid);
  }

  get bytes(): number {
    return this.size;
  }

  /** Appends a frame; resolves once it is on disk and `onDurable` has run. */
  write(frame: Buffer, onDurable: (position: number) => void): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, onDurable, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Reads `length` bytes at `position` (records are read back by their index position). */
  read(position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.readFd, buf, done, length - done, position + done);
      if (n === 0) throw new TransportError(`journal ${this.path} ends before ${position + length}`);
      done += n;
    }
    return buf;
  }

  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.handle.close();
    closeSync(this.readFd);
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        const start = this.size;
        try {
          await this.handle.writev(group.map((p) => p.frame), start);
          await this.handle.datasync();
        } catch (err) {
          // Cut off whatever part of the group reached the file, so replay never sees half of it.
          try {
            await this.handle.truncate(start);
          } catch {
            this.broken = new TransportError(`journal ${this.path} could not be repaired after a failed write`, {}, { cause: err });
          }
          const failure = new TransportError(`journal write failed: ${(err as Error).message}`, {}, { cause: err });
          for (const p of group) p.reject(failure);
          continue;
        }
        let position = start;
        for (const p of group) {
          p.onDurable(position);
          position += p.frame.length;
        }
        this.size = position;
        for (const p of group) p.resolve();
      }
    } finally {
      this.flushing = false;
    }
  }
}

/** Reads frames from the start; returns the length of the intact prefix. */
function replay(fd: number, fileSize: number, onFrame: (frame: Buffer, position: number) => void): number {
  const chunkSize = 8 * 1024 * 1024;
  let pending = Buffer.alloc(0);
  let pendingAt = 0; // file position of pending[0]
  let readAt = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(chunkSize);
    const n = readAt < fileSize ? readSync(fd, chunk, 0, chunkSize, readAt) : 0;
    readAt += n;
    pending = pending.length === 0 ? chunk.subarray(0, n) : Buffer.concat([pending, chunk.subarray(0, n)]);
    let pos = 0;
    for (;;) {
      const length = checkFrame(pending, pos);
      if (length === undefined) break;
      onFrame(pending.subarray(pos, pos + length), pendingAt + pos);
      pos += length;
    }
    pending = pending.subarray(pos);
    pendingAt += pos;
    // A complete frame that fails its checksum: a torn last write if nothing follows it (cut
    // off), corruption if more of the journal follows (refuse: cutting would drop committed data).
    const corrupt = pending.length >= FRAME_HEADER && FRAME_HEADER + pending.readUInt32LE(0) <= pending.length;
    if (corrupt && pendingAt + FRAME_HEADER + pending.readUInt32LE(0) < fileSize) {
      throw new CorruptDataError(
        `journal is corrupt at byte ${pendingAt} (frame checksum mismatch) with ${fileSize - pendingAt} bytes after it; ` +
          'refusing to open rather than drop committed data: restore the data directory from a backup, or move it aside to start empty',
      );
    }
    if (n === 0 || corrupt) return pendingAt;
  }
}
