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

/**
 * The same input gave different results (a replay, a restore from the changelog): a handler
 * depends on something outside (state, event, ctx), such as `Date.now()` or `Math.random()`.
 */
export class DeterminismError extends FaradError {
  readonly code = 'determinism';
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

/** A partition count change (`farad repartition`) cannot go on as asked; the message says why and what to do. */
export class RepartitionError extends FaradError {
  readonly code = 'repartition';
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

/**
 * A read parameter is malformed or out of range: a key or `after` (`bad_key`), a page size
 * (`bad_limit`), or a parameter a query's own code refused (`bad_query_params`, see QueryParamsError).
 */
export class InvalidParameterError extends RequestError {
  constructor(
    readonly code: 'bad_key' | 'bad_limit' | 'bad_query_params',
    message: string,
    context: ErrorContext = {},
  ) {
    super(message, context);
  }
}

/** Marks a QueryParamsError of any copy of farad: `Symbol.for` is one registry per process. */
const QUERY_PARAMS_BRAND = Symbol.for('farad.QueryParamsError');

/**
 * Thrown by a query's `partition` or `merge` to refuse the parameters it was asked with: the
 * caller gets 400 `{ error: 'bad_query_params', message, field? }` with this message, also when
 * the partition ran on another instance. Say what is wrong and what to send instead:
 * `throw new QueryParamsError('n must be an integer from 1 to 100, not "abc"', 'n')`.
 */
export class QueryParamsError extends InvalidParameterError {
  override readonly details: Readonly<Record<string, string | number>>;

  constructor(message: string, field?: string) {
    super('bad_query_params', message, field === undefined ? {} : { field });
    this.details = field === undefined ? {} : { field };
    Object.defineProperty(this, QUERY_PARAMS_BRAND, { value: true });
  }

  /**
   * `err` as this copy's QueryParamsError when it is one, thrown by any copy of farad (an app
   * may import `farad` from its own node_modules); undefined for anything else.
   */
  static of(err: unknown): QueryParamsError | undefined {
    if (err instanceof QueryParamsError) return err;
    if (typeof err !== 'object' || err === null || (err as Record<symbol, unknown>)[QUERY_PARAMS_BRAND] !== true) return undefined;
    const { message, context } = err as { message?: unknown; context?: { field?: unknown } };
    const copy = new QueryParamsError(String(message), typeof context?.field === 'string' ? context.field : undefined);
    return Object.assign(copy, { cause: err });
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

/**
 * A topic was named that the app does not have, or that this request may not read (`GET
 * /topics/:topic/records` serves outputs and dead letters only). The message lists the ones it
 * may. Answered 404 like any other missing resource (`not_found`).
 */
export class UnknownTopicError extends RequestError {
  readonly code = 'not_found';
}

/** An `Idempotency-Key` header that is empty, longer than 255 characters or not printable ASCII. */
export class InvalidIdempotencyKeyError extends RequestError {
  readonly code = 'bad_idempotency_key';
}

/**
 * An `Idempotency-Key` already used, within its window, by a request with another event type or
 * body. Nothing was appended; send the new request under a new key.
 */
export class IdempotencyKeyReusedError extends RequestError {
  readonly code = 'idempotency_key_reused';
}

/** A `waitFor` position that is not one farad answered (malformed, or naming a topic or partition this app does not read). */
export class InvalidPositionError extends RequestError {
  readonly code = 'bad_wait_for';
}

/**
 * A read asked to wait for a write (`waitFor`) that its partition had not processed within the
 * wait's bound (the partition is behind, or moving). Retrying shortly helps.
 */
export class WriteNotVisibleError extends RequestError {
  readonly code = 'write_not_visible_yet';
  override readonly retriable = true;
  override readonly details: Readonly<Record<string, string | number>>;

  constructor(message: string, context: ErrorContext & { readonly partition: number; readonly topic: string; readonly offset: number }) {
    super(message, context);
    this.details = { partition: context.partition, topic: context.topic, offset: context.offset };
  }
}
