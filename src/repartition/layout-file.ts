import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { initialLayout, parseLayout, type LayoutRecord } from './layout.js';

/** The embedded log's layout record: one file in the data directory (docs/repartition.md). */
export const LAYOUT_FILE = 'layout.json';

/** The layout the data directory records, or generation 0 at `partitions` when it records none. */
export function readLayoutFile(dataDir: string, partitions: number): LayoutRecord {
  let text: string;
  try {
    text = readFileSync(join(dataDir, LAYOUT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return initialLayout(partitions);
    throw err;
  }
  return parseLayout(text);
}

/**
 * Replaces the layout record atomically: the new text is written and synced beside it, renamed
 * over it, and the directory synced, so a crash leaves the old record or the new one, whole.
 */
export function writeLayoutFile(dataDir: string, layout: LayoutRecord): void {
  const path = join(dataDir, LAYOUT_FILE);
  const next = `${path}.next`;
  const bytes = Buffer.from(`${JSON.stringify(layout)}\n`);
  const fd = openSync(next, 'w');
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(next, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
