import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptDataError, TransportError } from '../../errors.js';
import type { LogRecord } from '../records.js';
import { checkFrame, FRAME_HEADER } from './frames.js';
import { readHeader } from './journal.js';
import { LogIndex, type Topic } from './log-index.js';
import { HEAD_FILE, NEXT_HEAD_FILE, parseSegmentFileName, positionOf, segmentFileName, segmentOfPosition, fileOffsetOf } from './segments.js';

/** How often `open` lists the directory again when a roll, rewrite or deletion raced with it. */
const OPEN_ATTEMPTS = 50;
const RETRY_MS = 20;
const CHUNK = 8 * 1024 * 1024;

/** A file of the journal held open for reading. */
interface HeldFile {
  readonly number: number;
  readonly path: string;
  readonly fd: number;
  readonly ino: number;
}

/** The listing changed while it was being opened: list again. */
class Raced extends Error {}

/**
 * The embedded log's files, read without the lock: while a farad appends, rolls, cleans and
 * rewrites them, or while none runs. Nothing is written, truncated or renamed (a torn tail is
 * just not read yet).
 *
 * Consistency: the directory is listed, every segment and the head are opened, and the listing
 * is checked again (same names, same inodes); a roll, rewrite or deletion in between lists
 * again. From then on the open files are a fixed picture — a file the cleaner unlinks stays
 * readable through its descriptor — and the head is read up to its last intact frame. `refresh`
 * reads what the head gained since, and opens a new picture after a roll.
 */
export class EmbeddedLogReader {
  private index = new LogIndex();
  private files = new Map<number, HeldFile>();
  private head: HeldFile | undefined;
  /** File offset after the head's last intact frame read. */
  private headEnd = 0;
  private closed = false;

  private constructor(private readonly dataDir: string) {}

  /** Opens a picture of `dataDir`'s journal (an empty log when there is no journal yet). */
  static async open(dataDir: string): Promise<EmbeddedLogReader> {
    if (!existsSync(dataDir)) throw new TransportError(`no embedded log at ${dataDir} (dataDir, FARAD_DATA_DIR): nothing was written there yet`);
    const reader = new EmbeddedLogReader(dataDir);
    await reader.load();
    return reader;
  }

  hasTopic(topic: string): boolean {
    return this.index.topics.has(topic);
  }

  partitionsOf(topic: string): number {
    return this.topic(topic).partitions.length;
  }

  /** The lowest offset still held (retention and compaction remove records before it). */
  startOffset(topic: string, partition: number): number {
    return this.partitionLog(topic, partition).start;
  }

  endOffset(topic: string, partition: number): number {
    return this.partitionLog(topic, partition).end;
  }

  /** Up to `max` records from `fromOffset` (or the first held after it). */
  read(topic: string, partition: number, fromOffset: number, max: number): LogRecord[] {
    return this.partitionLog(topic, partition).read(fromOffset, max, this.readBytes);
  }

  async *readRange(topic: string, partition: number, fromOffset: number): AsyncIterable<readonly LogRecord[]> {
    const end = this.endOffset(topic, partition);
    for (let offset = fromOffset; offset < end; ) {
      const chunk = this.read(topic, partition, offset, 10_000).filter((r) => r.offset < end);
      if (chunk.length === 0) break;
      offset = chunk[chunk.length - 1]!.offset + 1;
      yield chunk;
    }
  }

  /**
   * Catches up with the writer: reads the frames the head gained, or, after the head was rolled
   * (or the log created meanwhile), opens a new picture. Offsets stay valid across both.
   */
  async refresh(): Promise<void> {
    if (this.closed) throw new TransportError('embedded log reader is closed');
    const head = this.head;
    let current: number | undefined;
    try {
      current = statSync(join(this.dataDir, HEAD_FILE)).ino;
    } catch {
      current = undefined; // mid-roll: journal.next is about to become the head
    }
    if (head && current === head.ino) {
      this.headEnd = scanFrames(head, this.headEnd, fstatSync(head.fd).size, this.index);
      return;
    }
    if (current === undefined && head) return; // look again at the next refresh
    const old = this.files;
    this.files = new Map();
    this.index = new LogIndex();
    this.head = undefined;
    try {
      await this.load();
    } finally {
      for (const file of old.values()) closeSync(file.fd);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const file of this.files.values()) closeSync(file.fd);
    this.files.clear();
  }

  private readBytes = (position: number, length: number): Buffer => {
    const number = segmentOfPosition(position);
    const file = this.files.get(number);
    if (!file) throw new TransportError(`journal segment ${number} is not in this picture of ${this.dataDir}`);
    const buf = Buffer.allocUnsafe(length);
    const at = fileOffsetOf(position);
    for (let done = 0; done < length; ) {
      const n = readSync(file.fd, buf, done, length - done, at + done);
      if (n === 0) throw new TransportError(`journal segment ${file.path} ends before byte ${at + length}`);
      done += n;
    }
    return buf;
  };

  private topic(name: string): Topic {
    const topic = this.index.topics.get(name);
    if (!topic) throw new TransportError(`topic "${name}" is not in the embedded log at ${this.dataDir} (nothing was written to it yet)`, { topic: name });
    return topic;
  }

  private partitionLog(topic: string, partition: number): NonNullable<Topic['partitions'][number]> {
    const log = this.topic(topic).partitions[partition];
    if (!log) throw new TransportError(`topic "${topic}" has no partition ${partition}`, { topic, partition });
    return log;
  }

  /** Opens a consistent picture, listing again while the writer changes the files under it. */
  private async load(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.openPicture();
        return;
      } catch (err) {
        for (const file of this.files.values()) closeSync(file.fd);
        this.files = new Map();
        this.index = new LogIndex();
        this.head = undefined;
        if (!(err instanceof Raced) || attempt >= OPEN_ATTEMPTS) {
          if (err instanceof Raced) throw new TransportError(`the embedded log at ${this.dataDir} kept changing while it was opened for reading; try again`);
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  private openPicture(): void {
    const listing = this.listing();
    const sealed: Array<{ file: HeldFile; header: ReturnType<typeof readHeader> }> = [];
    let coveredThrough = -1;
    for (const number of listing.segments) {
      if (number <= coveredThrough) continue; // a rewritten segment covers it (its deletion is under way)
      const file = this.hold(() => number, segmentFileName(number));
      const header = readHeader(file.fd);
      sealed.push({ file, header });
      if (header) coveredThrough = Math.max(coveredThrough, header.header.coversThrough);
    }
    const lastSealed = sealed.length > 0 ? sealed[sealed.length - 1]!.file.number : -1;
    let head: HeldFile | undefined;
    if (listing.head) {
      // Numbered by its header; a head without one (written before segments existed) continues the sealed segments.
      head = this.hold((fd) => readHeader(fd)?.header.number ?? lastSealed + 1, listing.head);
      if (head.number <= lastSealed) throw new Raced(); // the listing predates a roll
    }
    // The same files must still be there: otherwise a roll, rewrite or deletion came in between.
    const again = this.listing();
    if (again.head !== listing.head || again.segments.join() !== listing.segments.join()) throw new Raced();
    for (const file of this.files.values()) {
      let ino: number;
      try {
        ino = statSync(file.path).ino;
      } catch {
        throw new Raced();
      }
      if (ino !== file.ino) throw new Raced();
    }
    for (const { file, header } of sealed) {
      this.index.beginSegment(file.number, header?.header, header?.bytes ?? 0);
      const size = fstatSync(file.fd).size;
      const end = scanFrames(file, header?.bytes ?? 0, size, this.index);
      if (end < size) {
        throw new CorruptDataError(`sealed journal segment ${file.path} is damaged at byte ${end} of ${size}; farad refuses to open it too`);
      }
    }
    if (head) {
      const header = readHeader(head.fd);
      this.index.beginSegment(head.number, header?.header, header?.bytes ?? 0);
      this.headEnd = scanFrames(head, header?.bytes ?? 0, fstatSync(head.fd).size, this.index);
    }
    this.head = head;
  }

  /** Segment numbers and the head's file name (journal.next alone: a roll between its renames). */
  private listing(): { segments: number[]; head: string | undefined } {
    const names = readdirSync(this.dataDir);
    const segments = names.map(parseSegmentFileName).filter((n): n is number => n !== undefined).sort((a, b) => a - b);
    const head = names.includes(HEAD_FILE) ? HEAD_FILE : names.includes(NEXT_HEAD_FILE) ? NEXT_HEAD_FILE : undefined;
    return { segments, head };
  }

  /** Opens a file of the listing (gone meanwhile: list again) and keeps it under the number `numberOf` gives it. */
  private hold(numberOf: (fd: number) => number, name: string): HeldFile {
    const path = join(this.dataDir, name);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Raced();
      throw err;
    }
    let file: HeldFile;
    try {
      file = { number: numberOf(fd), path, fd, ino: fstatSync(fd).ino };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (this.files.has(file.number)) {
      closeSync(fd);
      throw new Raced(); // a head numbered like a sealed segment: a roll came in between
    }
    this.files.set(file.number, file);
    return file;
  }
}

/**
 * Indexes the intact frames of `file` from byte `from` up to `size`; returns where they end. A
 * head's last frame may be half written (the writer is at it): reading stops before it.
 */
function scanFrames(file: HeldFile, from: number, size: number, index: LogIndex): number {
  let at = from;
  while (at < size) {
    const want = Math.min(CHUNK, size - at);
    const buf = Buffer.allocUnsafe(want);
    const n = readSync(file.fd, buf, 0, want, at);
    let pos = 0;
    for (;;) {
      const length = checkFrame(buf.subarray(0, n), pos);
      if (length === undefined) break;
      index.applyFrame(buf.subarray(pos, pos + length), positionOf(file.number, at + pos));
      pos += length;
    }
    if (pos === 0) {
      // A frame larger than the chunk: read it whole.
      if (n >= FRAME_HEADER) {
        const total = FRAME_HEADER + buf.readUInt32LE(0);
        if (total > want && at + total <= size) {
          const whole = Buffer.allocUnsafe(total);
          if (readSync(file.fd, whole, 0, total, at) === total && checkFrame(whole, 0) === total) {
            index.applyFrame(whole, positionOf(file.number, at));
            at += total;
            continue;
          }
        }
      }
      return at; // torn (a head being written) or damaged (a sealed segment: the caller refuses it)
    }
    at += pos;
  }
  return at;
}
