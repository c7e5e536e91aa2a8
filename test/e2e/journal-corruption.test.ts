import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CorruptDataError } from '../../src/errors.js';
import { createLogger, EmbeddedLog } from '../../src/index.js';

const options = (dataDir: string) => ({
  dataDir,
  logger: createLogger('silent'),
  group: 'g',
  inputTopics: ['in'],
  changelogTopic: 'g-changelog',
  partitions: 1,
});

test('a damaged frame in the middle of the journal is refused, not cut off with everything after it', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'farad-journal-'));
  try {
    const log = await EmbeddedLog.open(options(dataDir));
    await log.ensureTopics([{ name: 'in', partitions: 1 }]);
    for (let i = 0; i < 3; i++) {
      await log.append([{ topic: 'in', partition: 0, timestamp: i, key: null, value: Buffer.from(`record-${i}`) }]);
    }
    await log.close();

    // Flip a byte inside the second record's frame: the third frame after it is intact.
    const journal = join(dataDir, 'journal.log');
    const bytes = readFileSync(journal);
    const at = bytes.indexOf('record-1');
    assert.ok(at > 0);
    const fd = openSync(journal, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, at);
    closeSync(fd);
    const size = statSync(journal).size;

    await assert.rejects(EmbeddedLog.open(options(dataDir)), (err: unknown) => {
      assert.ok(err instanceof CorruptDataError);
      assert.match((err as Error).message, /corrupt at byte \d+ .*refusing to open/);
      return true;
    });
    assert.equal(statSync(journal).size, size, 'nothing was cut');
    assert.throws(() => statSync(join(dataDir, 'LOCK')), 'the lock was released');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
