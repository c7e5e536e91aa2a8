import { open } from 'node:fs/promises';

/** Makes renames, creations and deletions in `dir` durable (they live in the directory, not the files). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
