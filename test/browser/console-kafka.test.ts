/**
 * The console on Kafka, in Chromium: two farad instances (replicas 1) of a fresh Voter copy; the
 * page on one of them shows both instances and every partition active on one and standby on the
 * other; after kill -9 of the other instance, the page follows the failover until every partition
 * is active on the survivor.
 *
 * Needs KAFKA_BROKERS (`npm test` sets it); without it the test fails, saying so.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { brokers } from '../integration/helpers.js';
import { ALL_PARTITIONS, kill9, outputs, replicationFixture, settledWithStandbys, spawnInstance, waitWithLogs } from '../integration/replication-helpers.js';
import { waitFor } from '../support/wait.js';
import { launchBrowser, partitionRoles, watchPage } from './helpers.js';

const TOKEN = 'browser-kafka-token';
const SESSION_TIMEOUT_MS = 6000;
/** The page must show the failover within this long after the kill. */
const FOLLOW_MS = 60_000;

test('the console follows a failover on Kafka: two instances, replicas 1, kill -9 of one', { timeout: 240_000 }, async (t) => {
  brokers(); // fails at once, naming KAFKA_BROKERS, when it is not set
  const cluster = await replicationFixture(t, SESSION_TIMEOUT_MS);
  const env = { ...cluster.env, FARAD_HTTP_TOKEN: TOKEN };
  // The page is served by `served`; `other` is the one killed.
  const served = await spawnInstance(`a-${cluster.suffix}`, env);
  const other = await spawnInstance(`b-${cluster.suffix}`, env);
  cluster.instances.push(served, other);
  await waitWithLogs('both instances, every partition active once, a standby for each', cluster.instances, () => settledWithStandbys(cluster.instances), { timeoutMs: 90_000, intervalMs: 250 });

  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  const watch = watchPage(page, served.base);
  await page.authenticate({ username: 'operator', password: TOKEN });
  await page.goto(`${served.base}/console`, { waitUntil: 'load' });

  // Both instances; each partition active on one and a standby on the other.
  const ids = [served.id, other.id].sort();
  await waitFor('both instances listed, ready', async () => {
    const rows = await page.$$eval('#instance-rows tr', (trs) => trs.map((tr) => `${tr.getAttribute('data-instance')}:${tr.getAttribute('data-state')}`));
    return rows.join() === ids.map((id) => `${id}:ready`).join();
  }, { timeoutMs: 30_000, intervalMs: 250 });
  const before = await waitFor('every partition active on one instance, standby on the other', async () => {
    const rows = await partitionRoles(page);
    const ok = rows.length === ALL_PARTITIONS.length && rows.every((r) => r.role === 'active' && ids.includes(r.owner) && r.standbys === ids.find((id) => id !== r.owner));
    return ok ? rows : undefined;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  const orphaned = before.filter((r) => r.owner === other.id).map((r) => r.partition);
  t.diagnostic(`before: ${before.map((r) => `${r.partition}@${r.owner === served.id ? 'a' : 'b'}`).join(' ')}`);
  assert.ok(orphaned.length > 0, `${other.id} owns partitions before the kill`);

  const killedAt = await kill9(other);
  t.diagnostic(`kill -9 ${other.id} (active [${orphaned.join(',')}])`);
  try {
    await waitFor('every partition active on the survivor, on the page', async () => {
      const rows = await partitionRoles(page);
      return rows.length === ALL_PARTITIONS.length && rows.every((r) => r.role === 'active' && r.owner === served.id);
    }, { timeoutMs: FOLLOW_MS, intervalMs: 250 });
  } catch (err) {
    throw new Error(`${(err as Error).message}\npage: ${JSON.stringify(await partitionRoles(page))}\n${outputs(cluster.instances)}`);
  }
  t.diagnostic(`MEASURED console: kill -9 -> every partition shown active on the survivor after ${Date.now() - killedAt} ms (session timeout ${SESSION_TIMEOUT_MS} ms, polls every 2 s)`);
  assert.equal(await page.$eval('#connection', (e) => e.textContent), 'live', 'the page kept its connection to the survivor');
  assert.deepEqual(watch.problems, [], `the page had problems:\n${watch.problems.join('\n')}`);
});
