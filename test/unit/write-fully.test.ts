/**
 * writeFully: a write that stops short (the disk filled, a file size limit) is written on, and
 * the write that cannot make progress fails; a short count is never taken for success (the
 * journal once acknowledged a group of which only a prefix reached the disk).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeFully } from '../../src/streams/embedded/write-fully.js';

/** A file that takes at most `room` more bytes and at most `perCall` per write, like a filling disk. */
function fillingFile(room: number, perCall = Infinity) {
  const bytes: number[] = [];
  const calls: Array<{ position: number; offered: number; written: number }> = [];
  return {
    bytes,
    calls,
    async writev(buffers: readonly NodeJS.ArrayBufferView[], position?: number | null) {
      const offered = buffers.reduce((n, b) => n + b.byteLength, 0);
      if (room === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const written = Math.min(offered, room, perCall);
      assert.equal(position, bytes.length, 'each write continues where the last one stopped');
      const all = Buffer.concat(buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
      bytes.push(...all.subarray(0, written));
      room -= written;
      calls.push({ position: position ?? -1, offered, written });
      return { bytesWritten: written, buffers: [...buffers] };
    },
  };
}

test('short writes are continued until every byte is on the file', async () => {
  const file = fillingFile(Infinity, 7);
  const data = [Buffer.from('hello, '), Buffer.from('journal'), Buffer.alloc(0), Buffer.from(' frames')];
  await writeFully(file as never, data, 0);
  assert.equal(Buffer.from(file.bytes).toString(), 'hello, journal frames');
  assert.deepEqual(file.calls.map((c) => c.written), [7, 7, 7]);
});

test('a disk that fills part-way: the prefix is written, then the ENOSPC of the next write is thrown', async () => {
  const file = fillingFile(10);
  await assert.rejects(writeFully(file as never, [Buffer.alloc(6000, 1), Buffer.alloc(6000, 2)], 0), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
  assert.equal(file.bytes.length, 10, 'what fitted (the caller truncates it away)');
});

test('a write that makes no progress without an error fails as out of space', async () => {
  const file = { writev: async () => ({ bytesWritten: 0, buffers: [] }) };
  await assert.rejects(writeFully(file as never, [Buffer.from('x')], 0), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
});
