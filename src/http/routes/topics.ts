import type { FastifyInstance } from 'fastify';
import { InvalidParameterError } from '../../errors.js';
import { DEAD_LETTER_REASONS, parsePosition, type DeadLetterReplays, type PageStart, type TopicRecords } from '../../streams/index.js';
import type { AuthHook } from '../auth.js';
import { RequestRejectedError } from '../problem.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** Dead letters one `POST /dlq/replay` replays at most (one journal frame). */
const MAX_REPLAY_STEP = 10_000;
const DEFAULT_REPLAY_STEP = 500;

export interface TopicRouteDeps {
  /** Reads the app's outputs and dead letters. */
  readonly topics: TopicRecords | undefined;
  /** Dead-letter replay inside this instance (the embedded log); undefined on Kafka. */
  readonly replays: DeadLetterReplays | undefined;
  readonly auth: AuthHook;
}

/**
 * `GET /topics/:topic/records?partition=&from=&limit=`: a page of an output topic's or the
 * dead-letter topic's records, decoded (the JSON of `farad tail`); `next` is the `from` of the
 * next page, null once the page reached the end. `POST /dlq/replay`: one step of a dead-letter
 * replay on the embedded log (what `farad dlq replay` sends while this instance holds the log).
 */
export function topicRoutes(http: FastifyInstance, deps: TopicRouteDeps): void {
  const { topics, replays, auth } = deps;

  http.get<{ Params: { topic: string }; Querystring: { partition?: string; from?: string; limit?: string } }>(
    '/topics/:topic/records',
    { onRequest: auth },
    async (request) => {
      if (!topics) throw new RequestRejectedError('bad_request', 'this instance does not serve topic records');
      const { topic } = request.params;
      const partitions = topics.partitionsOf(topic);
      const partition = parsePartition(request.query.partition, partitions, topic);
      const from = parseFrom(request.query.from, partition, partitions);
      const limit = parseLimit(request.query.limit);
      return topics.page(topic, { partition, from, limit });
    },
  );

  http.post<{ Body: unknown }>('/dlq/replay', { onRequest: auth }, async (request) => {
    if (!replays) {
      throw new RequestRejectedError(
        'bad_request',
        'dead letters are replayed through the running instance on the embedded log only; on Kafka run `farad dlq replay`, which replays in a Kafka transaction',
      );
    }
    const body = request.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new RequestRejectedError('bad_request', 'body must be a JSON object: { "reason"?: string, "since"?: ms since the epoch, "limit"?: number, "before"?: the "before" of the run\'s first step }');
    }
    const { app, reason, since, limit, before } = body as Record<string, unknown>;
    // A farad of another app on this port must not replay its own dead letters for this one.
    if (app !== undefined && app !== replays.appName) {
      throw new RequestRejectedError('bad_request', `this farad runs app "${replays.appName}", not ${JSON.stringify(app)}: replay through the instance of that app (--url)`);
    }
    const scope = before === undefined ? undefined : typeof before === 'string' ? parsePosition(before, Number.MAX_SAFE_INTEGER) : undefined;
    if (before !== undefined && !scope) {
      throw new RequestRejectedError('bad_request', `before must be the "before" a first step answered (such as "0:12,1:3"), not ${JSON.stringify(before)}`);
    }
    if (reason !== undefined && (typeof reason !== 'string' || !(DEAD_LETTER_REASONS as readonly string[]).includes(reason))) {
      throw new RequestRejectedError('bad_request', `reason must be one of ${DEAD_LETTER_REASONS.join(', ')}, not ${JSON.stringify(reason)}`);
    }
    if (since !== undefined && (typeof since !== 'number' || !Number.isFinite(since))) {
      throw new RequestRejectedError('bad_request', `since must be a time in ms since the epoch, not ${JSON.stringify(since)}`);
    }
    if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_REPLAY_STEP)) {
      throw new InvalidParameterError('bad_limit', `limit must be an integer from 1 to ${MAX_REPLAY_STEP}, not ${JSON.stringify(limit)}`);
    }
    return replays.step({ reason: reason as string | undefined, since: since as number | undefined, before: scope }, (limit as number | undefined) ?? DEFAULT_REPLAY_STEP);
  });
}

function parsePartition(text: string | undefined, partitions: number, topic: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  const partition = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(partition) || partition >= partitions) {
    throw new RequestRejectedError('bad_request', `partition must be an integer from 0 to ${partitions - 1} (topic "${topic}" has ${partitions}), not ${JSON.stringify(text)}`);
  }
  return partition;
}

function parseFrom(text: string | undefined, partition: number | undefined, partitions: number): PageStart {
  if (text === undefined || text === '' || text === 'beginning') return { kind: 'beginning' };
  if (text === 'end') return { kind: 'end' };
  if (partition !== undefined) {
    const offset = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(offset)) throw new RequestRejectedError('bad_request', `from must be "beginning", "end" or an offset, not ${JSON.stringify(text)}`);
    return { kind: 'offset', offset };
  }
  const position = parsePosition(text, partitions);
  if (!position) {
    throw new RequestRejectedError(
      'bad_request',
      `from must be "beginning", "end" or a position such as "0:12,1:0" (the next of a page; an offset needs partition=), not ${JSON.stringify(text)}`,
    );
  }
  return { kind: 'position', position };
}

function parseLimit(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_LIMIT;
  const limit = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new InvalidParameterError('bad_limit', `limit must be an integer from 1 to ${MAX_LIMIT}, not ${JSON.stringify(text)}`);
  }
  return limit;
}
