/** Errors the HTTP adapter itself finds in a request, before or around farad's own checks. */
import { RequestError, type SchemaValidationError } from '../errors.js';

/** A request refused for its form: unreadable body, wrong content type, missing or wrong token. */
export class RequestRejectedError extends RequestError {
  constructor(
    readonly code: 'bad_json' | 'bad_request' | 'unsupported_media_type' | 'unauthorized' | 'login_required',
    message: string,
  ) {
    super(message);
  }
}

/**
 * An event of a request body does not match its schema. The answer names the event type, the
 * field and, when the body is an array, the event's index (nothing of the array is appended).
 */
export class InvalidEventError extends RequestError {
  readonly code = 'schema_validation';
  override readonly details: Readonly<Record<string, string | number>>;

  constructor(invalid: SchemaValidationError, eventType: string, index: number | undefined) {
    const where = index === undefined ? '' : `event [${index}]: `;
    super(`${where}${invalid.message}`, { ...invalid.context, eventType }, { cause: invalid });
    this.details = { eventType, field: invalid.context.field ?? '', ...(index === undefined ? {} : { index }) };
  }
}
