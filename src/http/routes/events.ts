import type { FastifyInstance } from 'fastify';
import { IdempotencyKeyReusedError, SchemaValidationError } from '../../errors.js';
import { fingerprintOf, hopOf, idempotencyKeyOf, REPLAYED_HEADER, type Ingest, type KeyedIngest } from '../../ingest/index.js';
import type { FaradMetrics } from '../../metrics/index.js';
import type { CompiledEvent } from '../../procedures/index.js';
import { formatPosition } from '../../reads/index.js';
import type { OutRecord, TopicPartitionOffset } from '../../streams/index.js';
import type { AuthHook } from '../auth.js';
import { InvalidEventError, RequestRejectedError } from '../problem.js';

const JSON_TYPE = /^application\/(.+\+)?json\b/i;

export interface EventRouteDeps {
  readonly ingest: Ingest;
  /** Requests with an `Idempotency-Key`: which member keeps the key, and the keys kept here. */
  readonly keyed: KeyedIngest;
  readonly metrics: FaradMetrics;
  readonly auth: AuthHook;
}

/** The 202 answer: how many events were appended, where, and the position reads can wait for (`?waitFor=`). */
interface Accepted {
  readonly accepted: number;
  readonly eventType: string;
  readonly topic: string;
  readonly position: string;
}

/**
 * `POST /events/:type`: one event (a JSON object) or several (an array, appended in order, all
 * or none), validated against the event's schema; 202 once durably appended, with the write's
 * `position`. With an `Idempotency-Key` header the member keeping that key answers: a retry with
 * the same key and request gets the first answer again (`Idempotent-Replayed: true`) and appends
 * nothing; the same key with another event type or body is refused (422).
 */
export function eventRoutes(http: FastifyInstance, deps: EventRouteDeps): void {
  const { ingest, keyed, metrics, auth } = deps;

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
    let key;
    try {
      key = idempotencyKeyOf(request.headers);
    } catch (err) {
      metrics.ingestRejected.inc({ reason: 'invalid' });
      throw err;
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
    const append = async (): Promise<Accepted> => accepted(event, records, await ingest.send(event, records));
    if (key === undefined) return reply.code(202).send(await append());

    const owner = keyed.ownerOf(key, hopOf(request.headers));
    if (owner.kind === 'forward') {
      const relayed = await keyed.forward(owner.url, { path: `/events/${encodeURIComponent(event.fullName)}`, key, body: JSON.stringify(body) });
      return reply.code(relayed.status).headers(relayed.headers).send(relayed.body);
    }
    const fingerprint = fingerprintOf(event.fullName, records);
    const { answer, replayed } = await keyed.answer(key, fingerprint, async () => ({ status: 202, body: await append() })).catch((err: unknown) => {
      if (err instanceof IdempotencyKeyReusedError) metrics.ingestRejected.inc({ reason: 'invalid' });
      throw err;
    });
    if (replayed) {
      metrics.idempotentReplays.inc({ event_type: event.fullName });
      void reply.header(REPLAYED_HEADER, 'true');
    }
    return reply.code(answer.status).send(answer.body);
  });
}

function accepted(event: CompiledEvent, records: readonly OutRecord[], written: readonly TopicPartitionOffset[]): Accepted {
  return { accepted: records.length, eventType: event.fullName, topic: event.inputTopic!, position: formatPosition(written) };
}
