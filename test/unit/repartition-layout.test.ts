// The layout record's steps (src/repartition/layout.ts): a move goes planned → quiescing →
// copying → switched → done, the new generation is current from the switch on, and a move a
// crash interrupted can be rolled back only before the switch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, generationTopic, initialLayout, parseLayout, planMove, recoveryOf, rollBack } from '../../src/repartition/layout.js';
import { RepartitionError } from '../../src/errors.js';

const cut = { votes: [10, 20, 30, 40] };

test('a move runs its steps in order; the new generation is current from the switch on', () => {
  const start = initialLayout(4);
  const planned = planMove(start, 6, 1000);
  assert.deepEqual(planned.move, { state: 'planned', toGeneration: 1, toPartitions: 6, startedAt: 1000 });
  const quiescing = advance(planned, 'quiescing');
  const copying = advance(quiescing, 'copying', cut);
  assert.equal(copying.generation, 0, 'the old layout runs until the switch');
  assert.equal(copying.partitions, 4);
  const switched = advance(copying, 'switched');
  assert.deepEqual([switched.generation, switched.partitions], [1, 6]);
  assert.deepEqual(switched.move?.cut, cut, 'the cut stays: the router starts from it');
  const done = advance(switched, 'done');
  assert.equal(recoveryOf(done), 'nothing');
  assert.deepEqual(parseLayout(JSON.stringify(done)), done);
  const next = planMove(done, 16, 2000);
  assert.deepEqual(next.move, { state: 'planned', toGeneration: 2, toPartitions: 16, startedAt: 2000 });
});

test('steps cannot be skipped or repeated; the copy needs the cut', () => {
  const planned = planMove(initialLayout(8), 16, 0);
  assert.throws(() => advance(planned, 'copying', cut), /cannot go from planned to copying/);
  assert.throws(() => advance(advance(planned, 'quiescing'), 'copying'), /starts from the cut/);
  assert.throws(() => advance(planned, 'planned'), RepartitionError);
  assert.throws(() => advance(initialLayout(8), 'quiescing'), /no move is under way/);
});

test('a crashed move: before the switch it rolls back or finishes, after it only finishes', () => {
  const planned = planMove(initialLayout(4), 6, 0);
  const copying = advance(advance(planned, 'quiescing'), 'copying', cut);
  for (const layout of [planned, advance(planned, 'quiescing'), copying]) {
    assert.equal(recoveryOf(layout), 'roll back or finish');
    assert.deepEqual(rollBack(layout), initialLayout(4));
  }
  const switched = advance(copying, 'switched');
  assert.equal(recoveryOf(switched), 'finish');
  assert.throws(() => rollBack(switched), /past the switch it can only be finished/);
  assert.throws(() => planMove(copying, 8, 0), /is copying; run the command again with --partitions 6 to finish it, or --rollback/);
});

test('only growth: a smaller or equal count is refused with the reason', () => {
  assert.throws(() => planMove(initialLayout(8), 8, 0), /larger than today's 8/);
  assert.throws(() => planMove(initialLayout(8), 4.5, 0), /integer larger/);
});

test('topic generations, and malformed records refused', () => {
  assert.equal(generationTopic('votes', 0), 'votes');
  assert.equal(generationTopic('voter-changelog', 2), 'voter-changelog.g2');
  assert.throws(() => parseLayout('{'), /not JSON/);
  assert.throws(() => parseLayout('{"generation":-1,"partitions":4}'), /needs a generation/);
  assert.throws(() => parseLayout('{"generation":0,"partitions":4,"move":{"state":"flying"}}'), /move is malformed/);
});

test('an app at a later generation: its partitions, and its own input, changelog and protocol topics', async () => {
  const { appAtGeneration } = await import('../../src/repartition/generation.js');
  const { compileApp } = await import('../../src/procedures/index.js');
  const { default: voter } = await import('../../examples/voter/index.js');
  const app = compileApp(voter);
  assert.equal(appAtGeneration(app, initialLayout(app.partitions)), app, 'generation 0 is the app as defined');
  assert.throws(() => appAtGeneration(app, initialLayout(12)), /fixed at its first start/);
  const grown = appAtGeneration(app, advance(advance(advance(planMove(initialLayout(8), 12, 0), 'quiescing'), 'copying', { votes: [] }), 'switched'));
  assert.equal(grown.partitions, 12);
  assert.deepEqual(grown.inputTopics, ['votes.g1']);
  assert.equal(grown.events.get('Vote')?.inputTopic, 'votes.g1');
  assert.equal(grown.eventsByFullName.get('voter.Vote')?.inputTopic, 'votes.g1');
  assert.equal(grown.changelogTopic, 'voter-changelog.g1');
  assert.deepEqual(grown.outputTopics, app.outputTopics, 'outputs grow in place');
  assert.equal(grown.deadLetterTopic, app.deadLetterTopic);
  assert.equal(app.partitions, 8, 'the app itself is unchanged');
});

test('the embedded log keeps the layout record in its data directory, replaced whole', async () => {
  const { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { LAYOUT_FILE, readLayoutFile, writeLayoutFile } = await import('../../src/repartition/layout-file.js');
  const dir = mkdtempSync(join(tmpdir(), 'farad-layout-'));
  try {
    assert.deepEqual(readLayoutFile(dir, 8), initialLayout(8), 'no record: generation 0 as the app defines it');
    const planned = planMove(initialLayout(8), 12, 5);
    writeLayoutFile(dir, planned);
    assert.deepEqual(readLayoutFile(dir, 8), planned);
    const switched = advance(advance(advance(planned, 'quiescing'), 'copying', cut), 'switched');
    writeLayoutFile(dir, switched);
    assert.deepEqual(readLayoutFile(dir, 8), switched, 'the file says the new generation whatever the app declares');
    assert.equal(existsSync(join(dir, `${LAYOUT_FILE}.next`)), false, 'nothing left beside it');
    assert.match(readFileSync(join(dir, LAYOUT_FILE), 'utf8'), /"generation":1/);
    writeFileSync(join(dir, LAYOUT_FILE), '{"generation":');
    assert.throws(() => readLayoutFile(dir, 8), /layout record is not JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
