import type { FastifyError, FastifyInstance } from 'fastify';
import { FaradError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FaradMetrics } from '../metrics/index.js';
import { problemOf } from './status.js';

export interface ErrorAnswerDeps {
  readonly bodyLimitBytes: number;
  readonly metrics: FaradMetrics;
  readonly logger: Logger;
}

/**
 * Every error answer is JSON `{ error, message, ... }`: typed errors by their code (see
 * status.ts), fastify's own (malformed JSON, body too large, unsupported media type) by status,
 * anything else 500 with the details in the log only.
 */
export function installErrorAnswers(http: FastifyInstance, { bodyLimitBytes, metrics, logger }: ErrorAnswerDeps): void {
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
    const code = status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : status === 400 ? 'bad_request' : 'internal';
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
