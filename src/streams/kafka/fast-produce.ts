/**
 * Puts farad's Produce request encoder (produce-request.ts) and a linear per-partition grouping
 * in kafkajs 2.2.4's place. kafkajs groups a send's messages by copying the partition's array for
 * every message (quadratic; tulios/kafkajs#1576) and encodes each record through its own Encoder;
 * together with the garbage they make, that was about 60% of farad's CPU per event on Kafka.
 * Compressed batches still go through kafkajs's own encoder. Like read-committed.ts, this must
 * run before kafkajs is loaded; `fastProduceInstalled` says whether it could.
 */
import { createRequire } from 'node:module';
import { replaceModule } from './module-cache.js';
import { encodeProduceRequest, type ProduceTopicData } from './produce-request.js';

const require = createRequire(import.meta.url);

interface KafkaMessage {
  readonly partition?: number;
}
type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: KafkaMessage }) => number;

/** kafkajs's groupMessagesPerPartition, in one pass. */
export function groupMessagesPerPartition({
  topic,
  partitionMetadata,
  messages,
  partitioner,
}: {
  topic: string;
  partitionMetadata: unknown[];
  messages: readonly KafkaMessage[];
  partitioner: Partitioner;
}): Record<number, KafkaMessage[]> {
  const grouped: Record<number, KafkaMessage[]> = {};
  if (partitionMetadata.length === 0) return grouped;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (grouped[partition] ??= []).push(message);
  }
  return grouped;
}

interface KafkajsLong {
  readonly value: bigint;
}
interface RequestArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: KafkajsLong | bigint | number | string;
  producerEpoch?: number;
  compression?: number;
  topicData: ProduceTopicData[];
}
interface EncoderLike {
  buf: Buffer;
  offset: number;
}

function asBigInt(id: RequestArgs['producerId']): bigint {
  if (id === undefined || id === null) return -1n;
  if (typeof id === 'object') return BigInt(id.value);
  return BigInt(id);
}

function install(): boolean {
  const groupPath = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  const sendPath = require.resolve('kafkajs/src/producer/sendMessages.js');
  const requestPath = require.resolve('kafkajs/src/protocol/requests/produce/v3/request.js');
  // sendMessages takes the grouping when it loads: too late once it has.
  if (require.cache[sendPath]) return require.cache[groupPath]?.exports === groupMessagesPerPartition;
  replaceModule(groupPath, groupMessagesPerPartition);

  const kafkajsRequest = require(requestPath) as (args: RequestArgs) => unknown;
  const Encoder = require('kafkajs/src/protocol/encoder.js') as new (size?: number) => EncoderLike;
  const apiKey = (require('kafkajs/src/protocol/requests/apiKeys.js') as { Produce: number }).Produce;
  const request = (args: RequestArgs): unknown => {
    if (args.compression) return kafkajsRequest(args);
    return {
      apiKey,
      apiVersion: 3,
      apiName: 'Produce',
      expectResponse: () => args.acks !== 0,
      encode: async () => {
        const body = encodeProduceRequest({
          transactionalId: args.transactionalId ?? null,
          acks: args.acks,
          timeout: args.timeout,
          producerId: asBigInt(args.producerId),
          producerEpoch: args.producerEpoch ?? 0,
          topicData: args.topicData,
          now: Date.now(),
        });
        // kafkajs frames the request from an Encoder; hand it one over the finished bytes.
        const encoder = new Encoder(0);
        encoder.buf = body;
        encoder.offset = body.length;
        return encoder;
      },
    };
  };
  replaceModule(requestPath, request);
  return true;
}

export const fastProduceInstalled = install();
