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
