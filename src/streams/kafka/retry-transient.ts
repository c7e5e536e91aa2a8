import type { Admin } from 'kafkajs';

/**
 * Retries an admin look-up that failed on a transient broker error (those `retry` accepts). kafkajs's
 * `admin.fetchTopicOffsets` gives up at once on NOT_LEADER_FOR_PARTITION, which KRaft answers for
 * a moment for topics just created (e.g. the changelog at first start).
 */
export async function retryTransient<T>(call: () => Promise<T>, retry: (err: unknown) => boolean = () => true): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= 10 || !isTransient(err) || !retry(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** (attempt - 1), 2000)));
    }
  }
}

function isTransient(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause ?? (e as { originalError?: unknown }).originalError) {
    // kafkajs marks each broker error retriable or not (NOT_LEADER_FOR_PARTITION, COORDINATOR_LOAD_IN_PROGRESS, ...).
    if ((e as { retriable?: boolean }).retriable === true) return true;
  }
  return false;
}

/** A partition's first offset still held (`low`) and its end (`high`: the last stable offset), asked of the brokers. */
export async function watermarksOf(admin: Admin, topic: string, partition: number): Promise<{ low: number; high: number }> {
  const mark = (await retryTransient(() => admin.fetchTopicOffsets(topic))).find((w) => w.partition === partition);
  return { low: Number(mark?.low ?? 0), high: Number(mark?.high ?? 0) };
}
