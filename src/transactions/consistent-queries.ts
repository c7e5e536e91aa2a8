import { randomUUID } from 'node:crypto';
import { PartitionUnavailableError, QueryFailedError, QueryParamsError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChangelogFollower, EventLog } from '../streams/event-log.js';
import { decodeMessage, encodeMessage } from './messages.js';

interface Waiter {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

/**
 * Asks consistent queries: appends the question to the protocol topic's partition 0 (the
 * coordinator runs it as a read-only multi-partition transaction) and waits for its answer
 * there, read by a follower of that partition started on first use.
 */
export class ConsistentQueries {
  private following: Promise<ChangelogFollower> | undefined;
  private readonly waiting = new Map<string, Waiter>();

  constructor(
    private readonly log: EventLog,
    private readonly topic: string,
    private readonly logger: Logger,
    private readonly timeoutMs = 15_000,
  ) {}

  async ask(name: string, params: Readonly<Record<string, string>>): Promise<unknown> {
    await this.follow();
    const id = randomUUID();
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new PartitionUnavailableError(`consistent query "${name}" got no answer within ${this.timeoutMs} ms (is every partition owned?); retry shortly`));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
    });
    try {
      await this.log.append([{ topic: this.topic, partition: 0, timestamp: Date.now(), key: Buffer.from('query'), value: encodeMessage({ kind: 'query', id, name, params }) }]);
    } catch (err) {
      const waiter = this.waiting.get(id);
      this.waiting.delete(id);
      if (waiter) clearTimeout(waiter.timer);
      throw err;
    }
    return answer;
  }

  async close(): Promise<void> {
    for (const [id, waiter] of this.waiting) {
      clearTimeout(waiter.timer);
      waiter.reject(new PartitionUnavailableError('the instance is stopping; retry on another'));
      this.waiting.delete(id);
    }
    const follower = await this.following?.catch(() => undefined);
    this.following = undefined;
    await follower?.stop();
  }

  private follow(): Promise<ChangelogFollower> {
    this.following ??= (async () => {
      // From the end as of now: answers to questions asked from here on come after it.
      const from = await this.log.endOffset(this.topic, 0);
      const follower = this.log.followerOf(this.topic);
      await follower.follow(new Map([[0, from]]), {
        records: (_partition, records) => {
          for (const record of records) {
            const message = (() => {
              try {
                return decodeMessage(record.value, record);
              } catch {
                return undefined;
              }
            })();
            if (message?.kind !== 'result') continue;
            const waiter = this.waiting.get(message.id);
            if (!waiter) continue;
            this.waiting.delete(message.id);
            clearTimeout(waiter.timer);
            if (message.error) waiter.reject(queryError(message.error));
            else waiter.resolve(message.value);
          }
        },
        position: () => undefined,
      });
      this.logger.debug({ topic: this.topic, from }, 'following consistent query answers');
      return follower;
    })();
    this.following.catch(() => (this.following = undefined));
    return this.following;
  }
}

/** The error a consistent query's result names: its parameters were refused (400), or it failed. */
export function queryError(error: { readonly code: string; readonly message: string }): Error {
  return error.code === 'bad_query_params' ? new QueryParamsError(error.message) : new QueryFailedError(error.message);
}
