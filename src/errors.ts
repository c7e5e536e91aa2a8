/**
 * Typed errors. Every farad error carries a stable `code`, the context it happened in, and
 * whether retrying the same operation can help (`retriable`).
 */
export interface ErrorContext {
  readonly eventType?: string | undefined;
  readonly partition?: number | undefined;
  readonly offset?: number | undefined;
  readonly topic?: string | undefined;
  readonly field?: string | undefined;
  readonly table?: string | undefined;
}

export abstract class FaradError extends Error {
  abstract readonly code: string;
  /** True when the same operation may succeed if tried again (I/O, fencing, timeouts). */
  readonly retriable: boolean = false;
  readonly context: ErrorContext;

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.context = context;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.context };
  }
}

/** The app definition is inconsistent; fix the app's `defineApp` call. */
export class AppDefinitionError extends FaradError {
  readonly code = 'app_definition';
}

/** A configuration value is missing or invalid; the message names the field or variable. */
export class ConfigError extends FaradError {
  readonly code = 'config';
}

/** A value does not match its Avro schema; `context.field` names the path (e.g. `a.b[2]`). */
export class SchemaValidationError extends FaradError {
  readonly code = 'schema_validation';
}

/** Bytes on the log could not be decoded (bad framing, truncated or corrupt body). */
export class DecodeError extends FaradError {
  readonly code = 'decode_error';
}

/** A single-object / Confluent record names a schema this app does not know. */
export class UnknownSchemaError extends FaradError {
  readonly code = 'unknown_schema';
}

/** An event type was named that the app does not declare. */
export class UnknownEventTypeError extends FaradError {
  readonly code = 'unknown_event_type';
}

/** A handler wrote a key that hashes to another partition; route work by emitting an event. */
export class WrongPartitionError extends FaradError {
  readonly code = 'wrong_partition';
}

/** A handler broke the determinism contract (returned a Promise, wrote a read-only table, ...). */
export class HandlerContractError extends FaradError {
  readonly code = 'handler_contract';
}

/** A handler threw; its event is dead-lettered and its effects rolled back. */
export class HandlerError extends FaradError {
  readonly code = 'handler_error';
}

/** A transport operation failed; the batch is rolled back and retried. */
export class TransportError extends FaradError {
  readonly code = 'transport';
  override readonly retriable = true;
}

/** Another instance took over the partition's transactional identity; ownership is re-checked. */
export class ProducerFencedError extends FaradError {
  readonly code = 'producer_fenced';
  override readonly retriable = true;
}

/** The transport ended this instance's lease of a partition; its owner stops without fencing. */
export class LeaseRevokedError extends FaradError {
  readonly code = 'lease_revoked';
}

/** A partition owner was asked for a move its current state does not allow (a bug in farad). */
export class IllegalTransitionError extends FaradError {
  readonly code = 'illegal_transition';
}

/** A snapshot store (Redis) could not be reached; snapshots are skipped until it is back. */
export class SnapshotStoreUnavailableError extends FaradError {
  readonly code = 'snapshot_store_unavailable';
  override readonly retriable = true;
}

/** The app's table schemas cannot read the state already stored; refused at start, before any input. */
export class StateSchemaError extends FaradError {
  readonly code = 'state_schema';
}

/** Rows were written with a table schema this app cannot resolve (a newer, incompatible version). */
export class IncompatibleRowSchemaError extends FaradError {
  readonly code = 'incompatible_state_schema';
}

/** Rows name a table schema this instance has not loaded yet: the registry is read again and the read retried. */
export class UnknownRowSchemaError extends FaradError {
  readonly code = 'unknown_state_schema';
  override readonly retriable = true;
}

/** A table's declared migration failed or returned a row of the wrong shape. */
export class MigrationError extends FaradError {
  readonly code = 'migration';
}

/** True when retrying the failed operation may help: typed errors say so; unknown ones are assumed transient. */
export function isRetriable(err: unknown): boolean {
  if (err instanceof FaradError) return err.retriable;
  return true;
}

/** The embedded log's data directory is used by another live process. */
export class LogLockedError extends FaradError {
  readonly code = 'log_locked';
}

/** Stored data failed its checksum or structure check. */
export class CorruptDataError extends FaradError {
  readonly code = 'corrupt_data';
}

/** Message of any thrown value, for logs and dead-letter headers. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

// ---- requests: ingest and reads (src/http/status.ts maps each code to an HTTP status) ----------

/**
 * A request (HTTP, console) that cannot be answered as asked. `code` picks the answer's status;
 * `details` are the fields its JSON body shows beside `error` and `message`.
 */
export abstract class RequestError extends FaradError {
  readonly details: Readonly<Record<string, string | number>> = {};
}

/** The event type is declared but no input topic carries it, so it cannot be sent to farad. */
export class NotAnInputError extends RequestError {
  readonly code = 'not_an_input';
}

/** A read named a table the app does not declare (`context.table`). */
export class UnknownTableError extends RequestError {
  readonly code = 'unknown_table';
}

/** A read named a query the app does not declare. */
export class UnknownQueryError extends RequestError {
  readonly code = 'unknown_query';
}

/** `?consistent=true` for an app that has no multi-partition protocol to run it. */
export class ConsistencyUnavailableError extends RequestError {
  readonly code = 'consistency_unavailable';
}

/** A query's own code threw (on some partition, or in its merge); the message says where and why. */
export class QueryFailedError extends RequestError {
  readonly code = 'query_failed';
}

/** A key read found no committed row. */
export class RowNotFoundError extends RequestError {
  readonly code = 'not_found';
}

/** A read parameter is malformed or out of range: a key or `after` (`bad_key`), a page size (`bad_limit`). */
export class InvalidParameterError extends RequestError {
  constructor(
    readonly code: 'bad_key' | 'bad_limit',
    message: string,
    context: ErrorContext = {},
  ) {
    super(message, context);
  }
}

/** A key read of a partition-local table, which holds a row per key in every partition. */
export class LocalTableReadError extends RequestError {
  readonly code = 'local_table';
}

/**
 * No instance can serve a partition now (it is moving, restoring, a standby or failed). Retrying
 * shortly helps; so may accepting a stale answer. `role` is the partition's role here, if held.
 */
export class PartitionUnavailableError extends RequestError {
  readonly code = 'partition_unavailable';
  override readonly retriable = true;
  override readonly details: Readonly<Record<string, string | number>>;

  constructor(
    message: string,
    readonly role?: string | undefined,
    context: ErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, context, options);
    this.details = {
      ...(context.partition !== undefined ? { partition: context.partition } : {}),
      ...(role !== undefined ? { role } : {}),
    };
  }
}
