export type { EventLog, PartitionLease, TopicSpec } from './event-log.js';
export { DLQ_HEADERS, type CommitPlan, type DeadLetterReason, type LogRecord, type OffsetCommit, type OutRecord } from './records.js';
export { BatchProcessor, type ProcessorObserver, type ProcessorOptions } from './batch-processor.js';
export { Executor, type ExecutorObserver, type ExecutorOptions, type HostedPartition, type BatchOutcome, type PartitionSeeds, type Snapshotter } from './executor.js';
export { EmbeddedLog, type EmbeddedLogOptions } from './embedded/index.js';

export { KafkaLog, HttpSchemaRegistry, type KafkaLogOptions } from './kafka/index.js';
