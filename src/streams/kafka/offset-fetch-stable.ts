/**
 * Committed offsets that include every finished transaction: OffsetFetch v7 with
 * `require_stable` (KIP-447), which kafkajs 2.2.4 (v1–v4 only) lacks.
 *
 * A partition's new owner starts its input at the group's committed offsets. A transactional
 * offset commit becomes the group's offset only once the group coordinator has applied the
 * transaction's commit marker, which happens after the old owner's EndTxn returned and can lag
 * further when the coordinator is loading (a broker restart). Without `require_stable` the
 * broker answers the offset from before that commit, and the new owner processed the old
 * owner's last committed batch again (found by the soak: a vote answered twice, a transfer
 * applied twice). With it, the broker answers UNSTABLE_OFFSET_COMMIT while a transactional
 * commit of the partition is pending, a retriable error, and the fetch is asked again until the
 * offset is stable, as the Java consumer does for read_committed.
 *
 * Only fetches made through `stableOffsets` ask for stability, and only for the one partition
 * asked (other partitions' owners commit all the time); kafkajs's own fetches are unchanged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { Admin } from 'kafkajs';
import { retryTransient } from './retry-transient.js';

const require = createRequire(import.meta.url);

interface EncoderLike {
  writeUVarInt(value: number): EncoderLike;
  writeUVarIntString(value: string): EncoderLike;
  writeUVarIntArray(array: EncoderLike[]): EncoderLike;
  writeInt32(value: number): EncoderLike;
  writeBoolean(value: boolean): EncoderLike;
}
interface DecoderLike {
  readTaggedFields(): unknown;
  readInt16(): number;
  readInt32(): number;
  readInt64(): { toString(): string };
  readUVarIntString(): string | null;
  readUVarIntArray<T>(reader: (d: DecoderLike) => T): T[] | null;
}
type Topic = { topic: string; partitions: Array<{ partition: number }> };
interface Protocol {
  request: { apiKey: number; apiVersion: number; apiName: string; encode(): Promise<EncoderLike> };
  response: { decode(raw: Buffer): Promise<unknown>; parse(data: unknown): Promise<unknown> };
}
interface RequestDefinition {
  versions: string[];
  protocol(args: { version: number }): (args: { groupId: string; topics: Topic[] }) => Protocol;
}

const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => EncoderLike;
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (raw: Buffer) => DecoderLike;
const { failure, createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { failure(code: number): boolean; createErrorFromCode(code: number): Error };
const { OffsetFetch: API_KEY } = require('kafkajs/src/protocol/requests/apiKeys.js') as { OffsetFetch: number };
const OffsetFetch = require('kafkajs/src/protocol/requests/offsetFetch/index.js') as RequestDefinition;

const STABLE_VERSION = 7;
/** Set while `stableOffsets` runs: the partition whose stable offsets are asked. */
const stableFetch = new AsyncLocalStorage<{ readonly partition: number }>();

function requestV7({ groupId, topics }: { groupId: string; topics: Topic[] }): Protocol['request'] {
  return {
    apiKey: API_KEY,
    apiVersion: STABLE_VERSION,
    apiName: 'OffsetFetch',
    encode: async () => {
      const topicEncoders = topics.map(({ topic, partitions }) => {
        const encoder = new Encoder().writeUVarIntString(topic).writeUVarInt(partitions.length + 1);
        for (const { partition } of partitions) encoder.writeInt32(partition);
        return encoder.writeUVarInt(0);
      });
      return (
        new Encoder()
          // kafkajs writes request header v1, ending with the client id; a flexible request's
          // header (v2) has its tagged fields after it, so they lead the body.
          .writeUVarInt(0)
          .writeUVarIntString(groupId)
          .writeUVarIntArray(topicEncoders)
          .writeBoolean(true) // require_stable
          .writeUVarInt(0)
      );
    },
  };
}

interface PartitionAnswer {
  partition: number;
  offset: string;
  metadata: string | null;
  errorCode: number;
}

const responseV7: Protocol['response'] = {
  async decode(raw: Buffer) {
    const decoder = new Decoder(raw);
    decoder.readTaggedFields(); // response header v1
    const throttleTime = decoder.readInt32();
    const responses =
      decoder.readUVarIntArray((d) => {
        const topic = d.readUVarIntString() ?? '';
        const partitions =
          d.readUVarIntArray((p): PartitionAnswer => {
            const partition = p.readInt32();
            const offset = p.readInt64().toString();
            p.readInt32(); // committed_leader_epoch
            const metadata = p.readUVarIntString();
            const errorCode = p.readInt16();
            p.readTaggedFields();
            return { partition, offset, metadata, errorCode };
          }) ?? [];
        d.readTaggedFields();
        return { topic, partitions };
      }) ?? [];
    const errorCode = decoder.readInt16();
    decoder.readTaggedFields();
    return { throttleTime: 0, clientSideThrottleTime: throttleTime, responses, errorCode };
  },
  async parse(data) {
    const { responses, errorCode } = data as { responses: Array<{ partitions: PartitionAnswer[] }>; errorCode: number };
    if (failure(errorCode)) throw createErrorFromCode(errorCode);
    const failed = responses.flatMap((r) => r.partitions).find((p) => failure(p.errorCode));
    if (failed) throw createErrorFromCode(failed.errorCode);
    return data;
  },
};

function install(): void {
  if (OffsetFetch.versions.includes(String(STABLE_VERSION))) return;
  const original = OffsetFetch.protocol.bind(OffsetFetch);
  OffsetFetch.versions.push(String(STABLE_VERSION));
  OffsetFetch.protocol = ({ version }) => {
    // kafkajs's own fetches, and brokers below v7 (Kafka < 2.5), get the version kafkajs had (v4).
    const plain = original({ version: Math.min(version, 4) });
    if (version < STABLE_VERSION) return plain;
    return (args) => {
      const asked = stableFetch.getStore();
      if (!asked) return plain(args);
      const topics = args.topics.map(({ topic }) => ({ topic, partitions: [{ partition: asked.partition }] }));
      return { request: requestV7({ groupId: args.groupId, topics }), response: responseV7 };
    };
  };
}

install();

/** How long a new owner waits for a pending transactional offset commit of its partition to settle. */
export const STABLE_WAIT_MS = 5000;

/**
 * The group's committed offset of `partition` of each of `topics` (-1: none), once no
 * transactional commit of it is pending: what a partition's new owner must start from. A commit
 * still pending after `waitMs` (seen after a broker restart: the group coordinator kept an
 * offset commit pending whose transaction had ended) is reported through `onUnstable` and the
 * offsets the group has applied are answered, as before this fix.
 */
export async function stableOffsets(
  admin: Admin,
  groupId: string,
  topics: readonly string[],
  partition: number,
  onUnstable: (waitedMs: number) => void = () => undefined,
  waitMs = STABLE_WAIT_MS,
): Promise<Map<string, number>> {
  const started = Date.now();
  let fetched: Awaited<ReturnType<Admin['fetchOffsets']>> | undefined;
  for (let delay = 50; fetched === undefined; delay = Math.min(delay * 2, 1000)) {
    try {
      fetched = await retryTransient(() => stableFetch.run({ partition }, () => admin.fetchOffsets({ groupId, topics: [...topics] })), (err) => !isUnstable(err));
    } catch (err) {
      if (!isUnstable(err)) throw err;
      if (Date.now() - started >= waitMs) {
        onUnstable(Date.now() - started);
        return appliedOffsets(admin, groupId, topics, partition);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  return offsetsOf(fetched, partition);
}

/**
 * The offsets the group has applied (-1: none), without waiting for a pending commit: they may
 * lag a transaction that committed, never lead one.
 */
export async function appliedOffsets(admin: Admin, groupId: string, topics: readonly string[], partition: number): Promise<Map<string, number>> {
  return offsetsOf(await retryTransient(() => admin.fetchOffsets({ groupId, topics: [...topics] })), partition);
}

function offsetsOf(fetched: Awaited<ReturnType<Admin['fetchOffsets']>>, partition: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const { topic, partitions } of fetched) out.set(topic, Number(partitions.find((p) => p.partition === partition)?.offset ?? -1));
  return out;
}

function isUnstable(err: unknown): boolean {
  return (err as { type?: string }).type === 'UNSTABLE_OFFSET_COMMIT';
}
