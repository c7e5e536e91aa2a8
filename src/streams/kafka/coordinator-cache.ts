/**
 * kafkajs 2.2.4 asks a broker for the coordinator (FindCoordinator) before every transactional
 * request: four extra round trips per transaction (AddPartitionsToTxn, AddOffsetsToTxn,
 * TxnOffsetCommit, EndTxn each look theirs up), which made a small transaction cost about as much
 * CPU as ten votes. The Java client keeps the coordinator until a request says it moved; so does
 * this cache. An answer of a coordinator that moved or went away, or a broken connection to it,
 * forgets it, and kafkajs's own retry then finds the new one; a lookup is at most a minute old.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Error types with which a broker says it is not (or no longer) the coordinator. */
const MOVED = new Set(['NOT_COORDINATOR_FOR_GROUP', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR']);
const MAX_AGE_MS = 60_000;

interface BrokerLike {
  readonly nodeId?: number;
}
interface ClusterLike {
  findGroupCoordinator(args: { groupId: string; coordinatorType?: number }): Promise<BrokerLike>;
  findBroker(args: { nodeId: number }): Promise<BrokerLike>;
}
type Method = (this: BrokerLike, ...args: unknown[]) => Promise<unknown>;

type Cache = Map<string, { nodeId: number; at: number }>;
/** Coordinators by lookup (type and group or transactional id), per kafkajs cluster (one per client). */
const caches = new WeakMap<object, Cache>();
/** The cache a broker was handed out from, so its errors can clear it. */
const cacheOfBroker = new WeakMap<object, Cache>();

function forget(cache: Cache, nodeId: number | undefined): void {
  for (const [key, entry] of cache) if (entry.nodeId === nodeId) cache.delete(key);
}

function install(): void {
  const Cluster = require('kafkajs/src/cluster/index.js') as { prototype: ClusterLike };
  const Broker = require('kafkajs/src/broker/index.js') as { prototype: Record<string, Method> };
  const lookup = Cluster.prototype.findGroupCoordinator;
  if ((lookup as { cached?: boolean }).cached) return;
  const cached = async function (this: ClusterLike, args: { groupId: string; coordinatorType?: number }): Promise<BrokerLike> {
    let cache = caches.get(this);
    if (!cache) caches.set(this, (cache = new Map()));
    const key = `${args.coordinatorType ?? 0}\u0000${args.groupId}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < MAX_AGE_MS) {
      try {
        return await this.findBroker({ nodeId: hit.nodeId });
      } catch {
        cache.delete(key); // the broker left the metadata: look it up afresh
      }
    }
    const broker = await lookup.call(this, args);
    if (broker.nodeId !== undefined) {
      cache.set(key, { nodeId: broker.nodeId, at: Date.now() });
      cacheOfBroker.set(broker, cache);
    }
    return broker;
  };
  (cached as { cached?: boolean }).cached = true;
  Cluster.prototype.findGroupCoordinator = cached;

  // Requests that go to a coordinator: their errors say when it moved.
  for (const name of ['addPartitionsToTxn', 'addOffsetsToTxn', 'txnOffsetCommit', 'endTxn', 'initProducerId', 'offsetFetch', 'offsetCommit', 'joinGroup', 'syncGroup', 'heartbeat', 'leaveGroup', 'describeGroups']) {
    const original = Broker.prototype[name];
    if (!original) continue;
    Broker.prototype[name] = async function (this: BrokerLike, ...args: unknown[]) {
      try {
        return await original.apply(this, args);
      } catch (err) {
        const e = err as { type?: string; name?: string };
        const cache = cacheOfBroker.get(this);
        if (cache && ((e.type && MOVED.has(e.type)) || e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSConnectionClosedError')) forget(cache, this.nodeId);
        throw err;
      }
    };
  }
}

install();
