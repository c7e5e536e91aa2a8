import type { FastifyInstance } from 'fastify';
import { SchemaValidationError } from '../../errors.js';
import type { Ingest } from '../../ingest/index.js';
import type { FaradMetrics } from '../../metrics/index.js';
import type { AuthHook } from '../auth.js';
import { InvalidEventError, RequestRejectedError } from '../problem.js';

const JSON_TYPE = /^application\/(.+\+)?json\b/i;

/**
 * `POST /events/:type`: one event (a JSON object) or several (an array, appended in order, all
 * or none), validated against the event's schema; 202 once durably appended.
 */
export function eventRoutes(http: FastifyInstance, deps: { readonly ingest: Ingest; readonly metrics: FaradMetrics; readonly auth: AuthHook }): void {
  const { ingest, metrics, auth } = deps;

  http.post<{ Params: { type: string } }>('/events/:type', { onRequest: auth }, async (request, reply) => {
    let event;
    try {
      event = ingest.inputEvent(request.params.type);
    } catch (err) {
      metrics.ingestRejected.inc({ reason: 'unknown_type' });
      throw err;
    }
    const contentType = request.headers['content-type'] ?? '';
    if (!JSON_TYPE.test(contentType)) {
      metrics.ingestRejected.inc({ reason: 'invalid' });
      throw new RequestRejectedError(
        'unsupported_media_type',
        `send events as JSON (content-type: application/json), not ${JSON.stringify(contentType || 'no content type')}`,
      );
    }
    const body: unknown = request.body;
    if (body === undefined || body === null || typeof body !== 'object') {
      metrics.ingestRejected.inc({ reason: 'invalid' });
      throw new RequestRejectedError('bad_request', 'body must be a JSON object (one event) or an array of objects (applied in order)');
    }
    const batch = Array.isArray(body);
    const items: unknown[] = batch ? body : [body];
    if (items.length === 0) throw new RequestRejectedError('bad_request', 'the array holds no events');
    const now = Date.now();
    // Every event is checked before any is appended: an array goes in whole or not at all.
    const records = items.map((item, i) => {
      try {
        return ingest.fromJson(event, item, now);
      } catch (err) {
        if (!(err instanceof SchemaValidationError)) throw err;
        metrics.ingestRejected.inc({ reason: 'invalid' });
        throw new InvalidEventError(err, event.fullName, batch ? i : undefined);
      }
    });
    await ingest.send(event, records);
    return reply.code(202).send({ accepted: records.length, eventType: event.fullName, topic: event.inputTopic });
  });
}
