/** Transports and the transaction engine: the EventLog port, its embedded and Kafka implementations, and the pure batch processor. */
export type {
  ChangelogFollower,
  ChangelogSink,
  CommitResult,
  EventLog,
  GroupMember,
  MembershipPolicy,
  PartitionLease,
  TopicSpec,
} from './event-log.js';
export { DLQ_HEADERS, type CommitPlan, type DeadLetterReason, type LogRecord, type OffsetCommit, type OutRecord } from './records.js';
export { BatchProcessor, FIRED_AT_HEADER, type BatchProtocol, type ProcessorObserver, type ProcessorOptions, type ProtocolHost } from './batch-processor.js';
export { EmbeddedLog, DiskFullError, type EmbeddedLogOptions, type RetentionOptions, type TopicRetention } from './embedded/index.js';
export { KafkaLog, HttpSchemaRegistry, type KafkaLogOptions } from './kafka/index.js';
