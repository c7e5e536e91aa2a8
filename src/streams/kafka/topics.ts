import type { Admin } from 'kafkajs';
import type { Logger } from 'pino';
import { AppDefinitionError } from '../../errors.js';
import type { TopicSpec } from '../event-log.js';

/**
 * Makes the app's topics ready: checks that input and changelog topics have exactly the app's
 * partition count (co-partitioning depends on it), and creates missing topics (changelog compacted).
 * Returns every topic's partition count.
 */
export async function ensureKafkaTopics(
  admin: Admin,
  specs: readonly TopicSpec[],
  replicationFactor: number,
  logger: Logger,
): Promise<Map<string, number>> {
  const existing = new Set(await admin.listTopics());
  // Check existing topics first, so a refused start creates nothing.
  const present = specs.filter((s) => existing.has(s.name));
  if (present.length > 0) checkCounts(present, await partitionCounts(admin, present));
  const missing = specs.filter((s) => !existing.has(s.name));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.name,
        numPartitions: s.partitions,
        replicationFactor,
        configEntries: s.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
      })),
    });
    logger.info({ topics: missing.map((s) => s.name) }, 'created topics');
  }
  const counts = await partitionCounts(admin, specs);
  checkCounts(specs, counts);
  return counts;
}

async function partitionCounts(admin: Admin, specs: readonly TopicSpec[]): Promise<Map<string, number>> {
  const metadata = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
  return new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
}

function checkCounts(specs: readonly TopicSpec[], counts: ReadonlyMap<string, number>): void {
  for (const spec of specs) {
    const count = counts.get(spec.name) ?? 0;
    if (spec.exactPartitions && count !== spec.partitions) {
      throw new AppDefinitionError(
        `topic "${spec.name}" has ${count} partitions but the app has ${spec.partitions}; ` +
          `its ${spec.exactPartitions} topics must have exactly the app's partition count (change the app's partitions or recreate the topic)`,
        { topic: spec.name },
      );
    }
  }
}
