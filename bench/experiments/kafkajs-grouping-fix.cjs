// What-if preload for BENCHMARKS.md (not used by `npm run bench` itself):
//   NODE_OPTIONS="--require ./bench/experiments/kafkajs-grouping-fix.cjs" npm run bench -- --only kafka-raw-pipe,kafka-eos-k0
// Replaces kafkajs 2.2.4's groupMessagesPerPartition, which copies the partition's array for every
// message (`[...current, message]`, O(n²) per partition and send), by a linear version with the
// same result — the change proposed upstream in tulios/kafkajs#1576. Must load before kafkajs.
'use strict';
const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js', { paths: [process.cwd(), __dirname] });
require(path);
require.cache[path].exports = ({ topic, partitionMetadata, messages, partitioner }) => {
  if (partitionMetadata.length === 0) return {};
  const result = {};
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] || (result[partition] = [])).push(message);
  }
  return result;
};
