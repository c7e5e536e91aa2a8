import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptDataError, TransportError } from '../../errors.js';
import { ioError } from './errors.js';
import { writeFully } from './write-fully.js';
import { checkFrame, FRAME_HEADER, KIND_SEGMENT, parseFrame, type SegmentHeader } from './frames.js';
import { fsyncDir } from './fsync-dir.js';
import {
  HEAD_FILE,
  NEXT_HEAD_FILE,
  parseSegmentFileName,
  positionOf,
  segmentFileName,
  segmentOfPosition,
  fileOffsetOf,
  TEMP_SUFFIX,
  MAX_SEGMENT_NUMBER,
} from './segments.js';

interface Pending {
  readonly frame: Buffer;
  readonly onDurable: (position: number) => void;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** A sealed segment: read-only, open for reads. */
export interface SealedSegment {
  readonly number: number;
  readonly path: string;
  readonly fd: number;
  readonly bytes: number;
  /** Its header; undefined for a segment written before segments existed. */
  readonly header: SegmentHeader | undefined;
}

interface Head {
  readonly number: number;
  readonly handle: FileHandle;
  readonly readFd: number;
  size: number;
}

/** What the journal tells its owner (the log index) and asks of it. */
export interface JournalHooks {
  /** A segment begins (replay, roll, open): before its frames; `headerBytes` is its header frame's length (0: none). */
  segment(number: number, header: SegmentHeader | undefined, headerBytes: number): void;
  /** A frame replayed at open. */
  frame(frame: Buffer, position: number): void;
  /** A torn tail of the head was cut off. */
  truncated(validBytes: number, droppedBytes: number): void;
  /** The header of a new head segment numbered `number`: the log's metadata now. */
  header(number: number): Buffer;
  /** A roll failed (the head keeps growing; retried at the next write). */
  rollFailed(err: Error): void;
}

export interface JournalOptions {
  /** The head is sealed and a new one started once it is at least this large. */
  readonly segmentBytes: number;
}

/**
 * The journal: a head segment file of checksummed frames, appended with group commit (frames
 * queued while a write is in flight go out together in one write and one fsync; `onDurable`
 * callbacks run in file order, after the fsync, before the writers' promises resolve), and the
 * sealed segments before it.
 *
 * Roll (between two groups, so a group never spans segments): write the new head with its
 * header to `journal.next` and fsync it; rename `journal.log` to `segment-<n>.log`; rename
 * `journal.next` to `journal.log`; fsync the directory. Recovery at open finishes or undoes
 * a roll cut short: `journal.next` beside a `journal.log` is deleted (the roll is redone
 * later), alone it becomes the head.
 */
export class Journal {
  private queue: Pending[] = [];
  private flushing = false;
  private broken: Error | undefined;
  private readonly sealedSegments = new Map<number, SealedSegment>();
  private nextRollAttempt = 0;

  private constructor(
    readonly dir: string,
    private head: Head,
    private readonly hooks: JournalHooks,
    private readonly options: JournalOptions,
  ) {}

  /**
   * Opens the journal of `dir`: removes what interrupted roll, cleaning and deletion left
   * behind, then replays the sealed segments (any damage refuses the open) and the head (a torn
   * tail, a crash mid-write, is cut off; damage before intact frames refuses the open).
   */
  static async open(dir: string, hooks: JournalHooks, options: JournalOptions): Promise<Journal> {
    const headPath = join(dir, HEAD_FILE);
    const nextPath = join(dir, NEXT_HEAD_FILE);
    const names = readdirSync(dir);
    for (const name of names) if (name.endsWith(TEMP_SUFFIX)) unlinkSync(join(dir, name)); // a cleaning cut short
    if (names.includes(NEXT_HEAD_FILE)) {
      if (existsSync(headPath)) unlinkSync(nextPath);
      else renameSync(nextPath, headPath);
    }
    const numbers = names.map(parseSegmentFileName).filter((n): n is number => n !== undefined).sort((a, b) => a - b);

    // Sealed segments: a cleaned file that covers later numbers wins over them (their deletion was cut short).
    const sealed: SealedSegment[] = [];
    let coveredThrough = -1;
    for (const number of numbers) {
      const path = join(dir, segmentFileName(number));
      if (number <= coveredThrough) {
        unlinkSync(path);
        continue;
      }
      const fd = openSync(path, 'r');
      const first = readHeader(fd);
      sealed.push({ number, path, fd, bytes: fstatSync(fd).size, header: first?.header });
      if (first) coveredThrough = Math.max(coveredThrough, first.header.coversThrough);
    }
    let head: Head | undefined;
    try {
      for (const segment of sealed) {
        const headerBytes = segment.header ? (readHeader(segment.fd)?.bytes ?? 0) : 0;
        hooks.segment(segment.number, segment.header, headerBytes);
        const valid = replay(segment.fd, headerBytes, segment.bytes, segment.path, (frame, at) => hooks.frame(frame, positionOf(segment.number, at)));
        if (valid < segment.bytes) {
          throw new CorruptDataError(
            `sealed journal segment ${segment.path} is damaged at byte ${valid} of ${segment.bytes}; refusing to open rather than drop committed data: ` +
              'restore the data directory from a backup, or move it aside to start empty',
          );
        }
      }
      const lastSealed = sealed.length > 0 ? sealed[sealed.length - 1]!.number : -1;
      head = await openHead(dir, headPath, lastSealed, hooks);
    } catch (err) {
      for (const segment of sealed) closeSync(segment.fd);
      throw err;
    }
    const journal = new Journal(dir, head, hooks, options);
    for (const segment of sealed) journal.sealedSegments.set(segment.number, segment);
    return journal;
  }

  /** Bytes of every segment file. */
  get bytes(): number {
    let total = this.head.size;
    for (const segment of this.sealedSegments.values()) total += segment.bytes;
    return total;
  }

  get headNumber(): number {
    return this.head.number;
  }

  /** Sealed segments, oldest first. */
  sealed(): SealedSegment[] {
    return [...this.sealedSegments.values()].sort((a, b) => a.number - b.number);
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
    const number = segmentOfPosition(position);
    const fd = number === this.head.number ? this.head.readFd : this.sealedSegments.get(number)?.fd;
    if (fd === undefined) throw new TransportError(`journal segment ${number} is gone (position ${position})`);
    const at = fileOffsetOf(position);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, at + done);
      if (n === 0) throw new TransportError(`journal segment ${number} ends before ${at + length}`);
      done += n;
    }
    return buf;
  }

  /**
   * Installs a cleaned file (already written and fsynced at `tempPath`) in place of sealed
   * segments `first..last`: rename over `segment-<first>.log` (atomic), fsync the directory,
   * then — synchronously, so no read sees half of it — swap the files here and run `apply`
   * (the index moves to the new positions), then delete the covered files. A crash after the
   * rename leaves the covered files, which recovery deletes because the header says so.
   */
  async replace(first: number, last: number, tempPath: string, header: SegmentHeader, apply: () => void): Promise<void> {
    const path = join(this.dir, segmentFileName(first));
    await rename(tempPath, path);
    await fsyncDir(this.dir);
    const fd = openSync(path, 'r');
    const removed: SealedSegment[] = [];
    for (const [number, segment] of this.sealedSegments) {
      if (number >= first && number <= last) {
        removed.push(segment);
        this.sealedSegments.delete(number);
      }
    }
    this.sealedSegments.set(first, { number: first, path, fd, bytes: fstatSync(fd).size, header });
    apply();
    for (const segment of removed) {
      closeSync(segment.fd);
      if (segment.number !== first) await unlinkQuietly(segment.path);
    }
    await fsyncDir(this.dir);
  }

  /** Deletes sealed segments that hold nothing live (any order is safe: later headers carry their metadata). */
  async remove(numbers: readonly number[], apply: () => void): Promise<void> {
    const removed = numbers.map((n) => this.sealedSegments.get(n)).filter((s): s is SealedSegment => s !== undefined);
    for (const segment of removed) this.sealedSegments.delete(segment.number);
    apply();
    for (const segment of removed) {
      await unlinkQuietly(segment.path);
      closeSync(segment.fd);
    }
    await fsyncDir(this.dir);
  }

  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.head.handle.close();
    closeSync(this.head.readFd);
    for (const segment of this.sealedSegments.values()) closeSync(segment.fd);
    this.sealedSegments.clear();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        const head = this.head;
        const start = head.size;
        try {
          await writeFully(head.handle, group.map((p) => p.frame), start);
          await head.handle.datasync();
        } catch (err) {
          // Cut off whatever part of the group reached the file, so replay never sees half of it.
          try {
            await head.handle.truncate(start);
          } catch {
            this.broken = new TransportError(`journal ${join(this.dir, HEAD_FILE)} could not be repaired after a failed write`, {}, { cause: err });
          }
          const failure = ioError(err, this.dir, 'journal write failed');
          for (const p of group) p.reject(failure);
          continue;
        }
        let position = positionOf(head.number, start);
        for (const p of group) {
          p.onDurable(position);
          position += p.frame.length;
        }
        head.size = fileOffsetOf(position);
        for (const p of group) p.resolve();
        if (head.size >= this.options.segmentBytes && Date.now() >= this.nextRollAttempt) await this.roll();
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Seals the head and starts the next one (see the class comment for the crash protocol). */
  private async roll(): Promise<void> {
    const old = this.head;
    const number = old.number + 1;
    if (number > MAX_SEGMENT_NUMBER) {
      this.broken = new TransportError(`journal in ${this.dir} ran out of segment numbers; move the data directory aside to start afresh`);
      return;
    }
    const headPath = join(this.dir, HEAD_FILE);
    const nextPath = join(this.dir, NEXT_HEAD_FILE);
    const header = this.hooks.header(number);
    const oldHeader = readHeader(old.readFd)?.header;
    let handle: FileHandle | undefined;
    try {
      handle = await open(nextPath, 'w+');
      await writeFully(handle, [header], 0);
      await handle.datasync();
    } catch (err) {
      await handle?.close().catch(() => undefined);
      await unlinkQuietly(nextPath);
      this.nextRollAttempt = Date.now() + 1000;
      this.hooks.rollFailed(ioError(err, this.dir, 'could not start a new journal segment'));
      return;
    }
    try {
      const sealedPath = join(this.dir, segmentFileName(old.number));
      await rename(headPath, sealedPath);
      await rename(nextPath, headPath);
      await fsyncDir(this.dir);
      this.head = { number, handle, readFd: openSync(headPath, 'r'), size: header.length };
      this.sealedSegments.set(old.number, { number: old.number, path: sealedPath, fd: old.readFd, bytes: old.size, header: oldHeader });
      this.hooks.segment(number, parseFrame(header) as SegmentHeader, header.length);
      await old.handle.close();
    } catch (err) {
      // Half a roll: recovery at the next open completes it; refuse writes until then.
      this.broken = ioError(err, this.dir, 'journal roll failed; restart farad to recover the journal');
    }
  }

}

/** Opens (or creates) the head after the sealed segments were replayed. */
async function openHead(dir: string, path: string, lastSealed: number, hooks: JournalHooks): Promise<Head> {
  if (existsSync(path)) {
    const readFd = openSync(path, 'r');
    try {
      const fileSize = fstatSync(readFd).size;
      const first = readHeader(readFd);
      if (first || fileSize > 0) {
        // A head without a header was written before segments existed: it continues the sealed ones.
        const number = first ? first.header.number : lastSealed + 1;
        hooks.segment(number, first?.header, first?.bytes ?? 0);
        const valid = replay(readFd, first?.bytes ?? 0, fileSize, path, (frame, at) => hooks.frame(frame, positionOf(number, at)));
        if (valid > 0) {
          const handle = await open(path, 'r+');
          if (valid < fileSize) {
            await handle.truncate(valid);
            await handle.datasync();
            hooks.truncated(valid, fileSize - valid);
          }
          return { number, handle, readFd, size: valid };
        }
        hooks.truncated(0, fileSize); // nothing intact: started again below, with a header
      }
    } catch (err) {
      closeSync(readFd);
      throw err;
    }
    closeSync(readFd);
  }
  // No head (a fresh directory) or one with nothing intact in it: start one with a header.
  const number = lastSealed + 1;
  const header = hooks.header(number);
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'w+');
    await writeFully(handle, [header], 0);
    await handle.datasync();
    await fsyncDir(dir);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    throw ioError(err, dir, 'could not create the journal');
  }
  hooks.segment(number, parseFrame(header) as SegmentHeader, header.length);
  return { number, handle, readFd: openSync(path, 'r'), size: header.length };
}

/** The segment header at the start of a file, if it has one. */
export function readHeader(fd: number): { header: SegmentHeader; bytes: number } | undefined {
  const prefix = Buffer.allocUnsafe(FRAME_HEADER + 1);
  if (readSync(fd, prefix, 0, prefix.length, 0) < prefix.length) return undefined;
  if (prefix.readUInt8(FRAME_HEADER) !== KIND_SEGMENT) return undefined;
  const length = FRAME_HEADER + prefix.readUInt32LE(0);
  const frame = Buffer.allocUnsafe(length);
  if (readSync(fd, frame, 0, length, 0) < length || checkFrame(frame, 0) === undefined) return undefined;
  return { header: parseFrame(frame) as SegmentHeader, bytes: length };
}

async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // already gone
  }
}

/** Reads frames from `from`; returns the end of the intact prefix. */
function replay(fd: number, from: number, fileSize: number, path: string, onFrame: (frame: Buffer, position: number) => void): number {
  const chunkSize = 8 * 1024 * 1024;
  let pending = Buffer.alloc(0);
  let pendingAt = from; // file position of pending[0]
  let readAt = from;
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
        `journal ${path} is corrupt at byte ${pendingAt} (frame checksum mismatch) with ${fileSize - pendingAt} bytes after it; ` +
          'refusing to open rather than drop committed data: restore the data directory from a backup, or move it aside to start empty',
      );
    }
    if (n === 0 || corrupt) return pendingAt;
  }
}
