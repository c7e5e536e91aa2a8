import type { FileHandle } from 'node:fs/promises';

/**
 * Writes every byte of `buffers` at `position`. A write that reaches a full disk (or a file
 * size limit) returns the bytes that fit instead of failing (write(2) semantics); the rest is
 * written again, so the call that cannot make progress throws its ENOSPC (EFBIG, EDQUOT). A
 * short count is never taken for success.
 */
export async function writeFully(handle: Pick<FileHandle, 'writev'>, buffers: readonly Buffer[], position: number): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    if (bytesWritten === 0) throw Object.assign(new Error('no space left on device: a write made no progress'), { code: 'ENOSPC' });
    at += bytesWritten;
    pending = remainderAfter(pending, bytesWritten);
  }
}

/** `buffers` without their first `written` bytes. */
function remainderAfter(buffers: readonly Buffer[], written: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = written;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
