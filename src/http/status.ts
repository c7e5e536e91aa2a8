/** The one table from error codes to HTTP answers: routes throw typed errors, the error handler looks here. */
import { RequestError, type FaradError } from '../errors.js';

/** HTTP status of every error code an API answer can carry. */
export const STATUS: Readonly<Record<string, number>> = {
  // ingest
  unknown_event_type: 404,
  not_an_input: 400,
  schema_validation: 422,
  bad_idempotency_key: 400,
  idempotency_key_reused: 422,
  // reads
  unknown_table: 404,
  unknown_query: 404,
  query_failed: 500,
  consistency_unavailable: 400,
  not_found: 404,
  bad_key: 400,
  bad_limit: 400,
  bad_query_params: 400,
  local_table: 400,
  partition_unavailable: 503,
  bad_wait_for: 400,
  write_not_visible_yet: 503,
  // the embedded log's disk (nothing of the request was acknowledged)
  disk_full: 507,
  // the request's form
  bad_json: 400,
  bad_request: 400,
  unsupported_media_type: 415,
  unauthorized: 401,
  login_required: 401,
};

/** Headers that go with a code: when to retry, how to authenticate. */
const HEADERS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  partition_unavailable: { 'retry-after': '1' },
  write_not_visible_yet: { 'retry-after': '1' },
  disk_full: { 'retry-after': '10' },
  unauthorized: { 'www-authenticate': 'Bearer' },
  // The console's pages: a browser asks for the token (any user name, the token as password).
  login_required: { 'www-authenticate': 'Basic realm="farad", charset="UTF-8"' },
};

/** An error answer: status, headers and the JSON body `{ error, message, ...details }`. */
export interface Problem {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { readonly error: string; readonly message: string } & Readonly<Record<string, unknown>>;
}

/** The answer to a typed error; undefined when its code has no status here (the caller answers 500). */
export function problemOf(err: FaradError): Problem | undefined {
  if (!Object.hasOwn(STATUS, err.code)) return undefined;
  const details = err instanceof RequestError ? err.details : {};
  return {
    status: STATUS[err.code]!,
    headers: Object.hasOwn(HEADERS, err.code) ? HEADERS[err.code]! : {},
    body: { error: err.code, message: err.message, ...details },
  };
}
