/** Transports and the transaction engine: the EventLog port, its embedded and Kafka implementations, and the pure batch processor. */
export type {
  ChangelogFollower,
  ChangelogSink,
  CommitResult,
  EventLog,
  GroupMember,
  MembershipPolicy,
  PartitionLease,
  TopicPartitionOffset,
  TopicSpec,
} from './event-log.js';
export { DLQ_HEADERS, type CommitPlan, type DeadLetterReason, type LogRecord, type OffsetCommit, type OutRecord } from './records.js';
export { BatchProcessor, FIRED_AT_HEADER, type BatchProtocol, type HandlerFailure, type ProcessorObserver, type ProcessorOptions, type ProtocolHost } from './batch-processor.js';
export { EmbeddedLog, EmbeddedLogReader, DiskFullError, type EmbeddedLogOptions, type RetentionOptions, type TopicRetention } from './embedded/index.js';
export { KafkaLog, KafkaTopicReader, KafkaTransactionalWriter, HttpSchemaRegistry, type KafkaLogOptions } from './kafka/index.js';
export {
  DEAD_LETTER_REASONS,
  REPLAY_HEADERS,
  deadLetterId,
  parseDeadLetter,
  parseReplayEntry,
  parseSince,
  planReplay,
  replayLogTopicOf,
  replayTransactionalId,
  type DeadLetter,
  type DeadLetterFilter,
  type PlannedLetter,
  type ReplayEntry,
  type ReplayVerdict,
} from './dead-letters.js';
export { DeadLetterReplays, readDeadLetters, readReplayLog, replayDeadLetters, type ReplayReport, type ReplaySource, type ReplayStep, type ReplayedLetter } from './dlq-replay.js';
export { appTopicsOf, RecordDescriber, schemaBookOf, schemaTopicName, type AppTopic, type RecordLine, type TopicRole } from './topic-records.js';
export { formatPosition, parsePosition, readAll, readAtMost, TopicRecords, type PageRequest, type PageStart, type RecordsPage, type TopicPosition, type TopicSource } from './topic-reader.js';
