import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { SnapshotStoreUnavailableError, TransportError } from '../errors.js';
import type { SnapshotInfo, SnapshotStore } from './interfaces.js';

export interface RedisSnapshotOptions {
  readonly url: string;
  readonly password?: string | undefined;
  readonly tls: boolean;
  /** Snapshots kept per partition (the current one included). */
  readonly keep: number;
  readonly app: string;
  readonly logger: Logger;
}

// Publish + prune in one step: the pointer moves atomically and old snapshots go with it.
const PUBLISH = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    if id ~= ARGV[1] then
      redis.call('DEL', ARGV[5] .. id)
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
    end
  end
end
return 1`;

/**
 * Snapshots in Redis. Per partition (keys share a hash slot, so this works on Redis Cluster too):
 * `farad:{<app>:<p>}:data:<id>` the bytes, `…:current` the published id, `…:index` ids by time,
 * `…:info` their metadata. Commands fail fast while Redis is down (no offline queue), so a
 * snapshot attempt never stalls processing; the client reconnects by itself.
 */
export class RedisSnapshotStore implements SnapshotStore {
  private readonly redis: Redis;

  constructor(private readonly options: RedisSnapshotOptions) {
    const redisOptions: RedisOptions = {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 5_000,
      retryStrategy: (times) => Math.min(times * 500, 5_000),
      ...(options.password ? { password: options.password } : {}),
      ...(options.tls || options.url.startsWith('rediss://') ? { tls: {} } : {}),
    };
    this.redis = new Redis(options.url, redisOptions);
    let down = false;
    this.redis.on('error', (err: Error) => {
      if (!down) options.logger.warn({ err: err.message }, 'redis unavailable; snapshots are skipped until it returns');
      down = true;
    });
    this.redis.on('ready', () => {
      if (down) options.logger.info('redis is back; snapshots resume');
      down = false;
    });
  }

  private key(partition: number, suffix: string): string {
    return `farad:{${this.options.app}:${partition}}:${suffix}`;
  }

  async save(partition: number, bytes: Buffer, info: Omit<SnapshotInfo, 'id' | 'current' | 'bytes'>): Promise<string> {
    const id = `${String(info.takenAt).padStart(15, '0')}-${randomUUID().slice(0, 8)}`;
    const meta = JSON.stringify({ ...info, bytes: bytes.length });
    await this.call(async () => {
      await this.redis.set(this.key(partition, `data:${id}`), bytes);
      await this.redis.eval(
        PUBLISH,
        3,
        this.key(partition, 'current'),
        this.key(partition, 'index'),
        this.key(partition, 'info'),
        id,
        String(info.takenAt),
        String(this.options.keep),
        meta,
        this.key(partition, 'data:'),
      );
    });
    return id;
  }

  async load(partition: number, id?: string): Promise<Buffer | undefined> {
    return this.call(async () => {
      const chosen = id ?? (await this.redis.get(this.key(partition, 'current')));
      if (!chosen) return undefined;
      return (await this.redis.getBuffer(this.key(partition, `data:${chosen}`))) ?? undefined;
    });
  }

  async list(partition?: number): Promise<SnapshotInfo[]> {
    return this.call(async () => {
      const partitions = partition === undefined ? await this.partitionsWithSnapshots() : [partition];
      const out: SnapshotInfo[] = [];
      for (const p of partitions) {
        const current = await this.redis.get(this.key(p, 'current'));
        const infos = await this.redis.hgetall(this.key(p, 'info'));
        for (const [id, json] of Object.entries(infos)) {
          const info = JSON.parse(json) as Omit<SnapshotInfo, 'id' | 'current'>;
          out.push({ ...info, id, partition: p, current: id === current });
        }
      }
      return out.sort((a, b) => a.partition - b.partition || b.takenAt - a.takenAt);
    });
  }

  async publish(partition: number, id: string): Promise<void> {
    await this.call(async () => {
      const exists = await this.redis.exists(this.key(partition, `data:${id}`));
      if (!exists) throw new TransportError(`no snapshot ${id} of partition ${partition}`, { partition });
      await this.redis.set(this.key(partition, 'current'), id);
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private async partitionsWithSnapshots(): Promise<number[]> {
    const found = new Set<number>();
    let cursor = '0';
    const pattern = `farad:{${this.options.app}:*}:current`;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const match = /:(\d+)\}:current$/.exec(key);
        if (match) found.add(Number(match[1]));
      }
    } while (cursor !== '0');
    return [...found].sort((a, b) => a - b);
  }

  /** Waits briefly for the first connection; while Redis is down (reconnecting) fails at once. */
  private async connected(): Promise<void> {
    const status = this.redis.status;
    if (status === 'ready' || status === 'reconnecting' || status === 'end' || status === 'close') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 3_000);
      this.redis.once('ready', done);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      await this.connected();
      return await work();
    } catch (err) {
      if (err instanceof TransportError) throw err;
      throw new SnapshotStoreUnavailableError(`redis ${this.options.url.replace(/\/\/[^@]*@/, '//***@')}: ${(err as Error).message}`, {}, { cause: err });
    }
  }
}
