import { maxHeaderSize, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { FaradError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FaradMetrics } from '../metrics/index.js';
import { problemOf } from './status.js';

export interface ErrorAnswerDeps {
  readonly bodyLimitBytes: number;
  /** Longest URL (path and query as sent, percent-encoded) answered; longer ones get 414. */
  readonly maxUrlBytes: number;
  readonly metrics: FaradMetrics;
  readonly logger: Logger;
}

/** An error answer of the HTTP layer itself, before or around any route: no typed error, so not in STATUS. */
interface TransportAnswer {
  readonly status: number;
  readonly error: string;
  readonly message: string;
}

/**
 * Codes of the answers the HTTP library or Node give on their own, by status. No route throws
 * them (routes throw typed errors, see status.ts); they are here so that every answer has a code.
 */
const TRANSPORT_CODES: Readonly<Record<number, string>> = {
  400: 'bad_request',
  408: 'request_timeout',
  413: 'body_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  431: 'headers_too_large',
};

/**
 * Every error answer is JSON `{ error, message, ... }`: typed errors by their code (see
 * status.ts), fastify's own (malformed JSON, body too large, unsupported media type) by status,
 * anything else 500 with the details in the log only. Before any route looks at a request, a URL
 * longer than `maxUrlBytes` gets 414 and a query string that is not valid percent-encoding 400.
 */
export function installErrorAnswers(http: FastifyInstance, { bodyLimitBytes, maxUrlBytes, metrics, logger }: ErrorAnswerDeps): void {
  // A callback hook (no promise per request: it runs before every event POST too).
  http.addHook('onRequest', (request, reply, done) => {
    const url = request.raw.url ?? '';
    const query = url.indexOf('?');
    if (url.length > maxUrlBytes) void send(reply, uriTooLong(url.length, maxUrlBytes));
    // The query-string parser keeps a malformed escape as text: a `?key=%E0%A4%A` would read the wrong key.
    else if (query !== -1 && !decodable(url.slice(query + 1))) void send(reply, badUrl(url));
    else done();
  });

  http.setErrorHandler((err: FastifyError | FaradError | Error, request, reply) => {
    if (err instanceof FaradError) {
      const problem = problemOf(err);
      if (problem) {
        void reply.code(problem.status).headers(problem.headers).send(problem.body);
        return;
      }
      logger.error({ err, code: err.code, method: request.method, url: request.url }, 'error code has no HTTP status (add it to src/http/status.ts); answered 500');
      void reply.code(500).send({ error: 'internal', message: 'internal error; see the server log' });
      return;
    }
    const { statusCode, code: fastifyCode } = err as Partial<FastifyError>;
    const status = statusCode ?? 500;
    if (status === 413) metrics.ingestRejected.inc({ reason: 'too_large' });
    if (status === 400 && fastifyCode === 'FST_ERR_CTP_INVALID_JSON_BODY') metrics.ingestRejected.inc({ reason: 'bad_json' });
    if (status >= 500) logger.error({ err, method: request.method, url: request.url }, 'HTTP request failed');
    const code = status < 500 ? (TRANSPORT_CODES[status] ?? 'bad_request') : 'internal';
    const message =
      status === 413
        ? `request body is larger than ${bodyLimitBytes} bytes (http.bodyLimitBytes); send fewer events per request`
        : status < 500
          ? err.message
          : 'internal error; see the server log';
    void reply.code(status).send({ error: code, message });
  });

  http.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` });
  });
}

/**
 * Options of `Fastify(...)` that give farad's `{ error, message }` answer where the HTTP library
 * or Node would answer in their own words: a path that is not valid percent-encoding (400
 * `bad_url`), a path segment over the URL limit (414 `uri_too_long`), and, written straight to
 * the socket with `connection: close`, requests Node cannot parse: header fields too large (431
 * `headers_too_large`), a malformed request line or header (400 `bad_request`), a request that
 * did not arrive in time (408 `request_timeout`).
 */
export function transportErrorAnswers({ maxUrlBytes, logger }: Pick<ErrorAnswerDeps, 'maxUrlBytes' | 'logger'>): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> {
  const frameworkErrors = (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    if (err.code === 'FST_ERR_BAD_URL') {
      void send(reply, badUrl(request.raw.url ?? ''));
      return;
    }
    if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      void send(reply, uriTooLong(request.raw.url?.length ?? 0, maxUrlBytes));
      return;
    }
    logger.error({ err, method: request.method, url: request.url }, 'HTTP request failed before routing');
    void send(reply, { status: 500, error: 'internal', message: 'internal error; see the server log' });
  };

  const clientErrorHandler = (err: ConnectionError, socket: Socket): void => {
    // A connection reset leaves nothing to answer (as fastify's own handler does).
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const answer = clientErrorAnswer(err, maxUrlBytes);
    logger.debug({ code: err.code, status: answer.status }, 'refused a request Node could not read');
    // Answer only when no response of this connection has started (as Node's own handler does).
    const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !current?.headersSent) {
      const body = JSON.stringify({ error: answer.error, message: answer.message });
      socket.write(
        `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n` +
          `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };

  return { frameworkErrors, clientErrorHandler };
}

/** The answer to a request Node's HTTP parser refused (the `clientError` event). */
function clientErrorAnswer(err: ConnectionError, maxUrlBytes: number): TransportAnswer {
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      error: 'headers_too_large',
      message: `the request line and headers are larger than ${maxHeaderSize} bytes (Node's --max-http-header-size); send fewer or shorter headers, and URLs of at most ${maxUrlBytes} bytes`,
    };
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, error: 'request_timeout', message: 'the request did not arrive completely in time; send it again' };
  }
  return {
    status: 400,
    error: 'bad_request',
    message: `not a valid HTTP/1.1 request (${err.code}: ${err.message}); check the request line (METHOD /path HTTP/1.1) and the header lines`,
  };
}

function badUrl(url: string): TransportAnswer {
  const shown = url.length > 200 ? `${url.slice(0, 200)}…` : url;
  return {
    status: 400,
    error: 'bad_url',
    message: `the URL ${shown} is not valid percent-encoding (each "%" starts a UTF-8 byte written as two hex digits); encode keys, names and parameters with encodeURIComponent`,
  };
}

/** True when every percent-escape of `text` is well formed and spells UTF-8. */
function decodable(text: string): boolean {
  if (!text.includes('%')) return true;
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

function uriTooLong(length: number, maxUrlBytes: number): TransportAnswer {
  return {
    status: 414,
    error: 'uri_too_long',
    message: `the URL is ${length} bytes; farad reads URLs of at most ${maxUrlBytes} bytes (path and query, percent-encoded), so a key must fit in that`,
  };
}

function send(reply: FastifyReply, { status, error, message }: TransportAnswer): FastifyReply {
  return reply.code(status).send({ error, message });
}
