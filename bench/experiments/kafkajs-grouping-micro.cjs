// Micro-benchmark behind BENCHMARKS.md's kafkajs finding (not part of `npm run bench`):
//   node bench/experiments/kafkajs-grouping-micro.cjs
// Times kafkajs 2.2.4's groupMessagesPerPartition — called once per topic for every send — with all
// messages going to one partition, as farad's outputs and changelog records of a Voter batch do.
'use strict';
const group = require('kafkajs/src/producer/groupMessagesPerPartition.js');
const partitionMetadata = Array.from({ length: 8 }, (_, partitionId) => ({ partitionId }));
const partitioner = ({ message }) => message.partition;
for (const n of [1_000, 5_000, 10_000, 20_000, 25_000]) {
  const messages = Array.from({ length: n }, (_, i) => ({ partition: 0, key: Buffer.from(`k${i}`), value: Buffer.alloc(30) }));
  const started = process.hrtime.bigint();
  group({ topic: 't', partitionMetadata, messages, partitioner });
  console.log(`${String(n).padStart(6)} messages to one partition: ${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)} ms`);
}
