/**
 * Where a request with an idempotency key is answered, and how it gets there. The member owning
 * partition `partitionForKey(key, partitions)` keeps the key; a request that reaches another
 * member is forwarded to it once, under the hop rules reads follow: a client's request may go to
 * another instance or to a sibling worker; one another instance forwarded may still go to the
 * sibling worker that owns the key, never to a third instance; one a sibling forwarded is
 * answered there or refused. When the owner cannot be reached the answer is 503 with Retry-After.
 */
import type { FastifyInstance } from 'fastify';
import { PartitionUnavailableError, describeError } from '../errors.js';
import type { PartitionDirectory } from '../partition/index.js';
import { FORWARDED_HEADER, FROM_SIBLING } from '../reads/index.js';
import { workerOfUrl, type WorkerAnswer } from '../workers/index.js';
import { IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER } from './idempotency.js';

/** How a request arrived: from a client, forwarded by another instance, or by a sibling worker. */
export type Hop = 'client' | 'instance' | 'sibling';

/** The hop of a request, from its FORWARDED_HEADER. */
export function hopOf(headers: Readonly<Record<string, string | string[] | undefined>>): Hop {
  const forwarded = headers[FORWARDED_HEADER];
  return forwarded === FROM_SIBLING ? 'sibling' : forwarded === '1' ? 'instance' : 'client';
}

/** Where a keyed request is answered: here, or by the member at `url` (another instance's base URL, or a sibling's workerUrl). */
export type KeyOwner = { readonly kind: 'here' } | { readonly kind: 'forward'; readonly url: string };

/**
 * The member keeping the keys of `partition`: here when the partition is active here, else its
 * owner when the hop rules allow one more hop. Throws PartitionUnavailableError (503, Retry-After)
 * when it cannot be reached now (the partition is moving or restoring).
 */
export function keyOwner(directory: PartitionDirectory, partition: number, hop: Hop): KeyOwner {
  const here = directory.local(partition)?.role;
  if (here === 'active') return { kind: 'here' };
  const url = hop === 'sibling' ? undefined : directory.ownerUrl(partition);
  if (url !== undefined && (hop === 'client' || workerOfUrl(url) !== undefined)) return { kind: 'forward', url };
  const why = here !== undefined ? `is ${here} here` : 'has no reachable owner right now (moving between instances or workers)';
  return unavailable(`the owner of this Idempotency-Key (partition ${partition}) ${why}; nothing was appended, retry shortly with the same key`, partition);
}

/** A keyed request on its way to the key's owner: its path, key and JSON body. */
export interface ForwardedIngest {
  readonly path: string;
  readonly key: string;
  readonly body: string;
}

/** The owner's answer, relayed as it came: status, the headers that matter, JSON body text. */
export interface RelayedIngest {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A worker's link to its siblings (WorkerLink): ask one a question, answer theirs. */
export interface SiblingLink {
  ask(to: number, kind: string, payload: unknown, timeoutMs?: number): Promise<readonly WorkerAnswer[]>;
  serve(kind: string, handler: (payload: unknown) => unknown): void;
}

/** The kind of sibling question that carries a keyed request to the worker owning the key. */
export const INGEST_KIND = 'ingest';

/** What travels to a sibling: the request as HTTP (it is answered by the sibling's own route). */
interface SiblingRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Headers of the owner's answer that the caller must see. */
const RELAYED_HEADERS = ['content-type', 'retry-after', 'www-authenticate', REPLAYED_HEADER];

export interface ForwarderOptions {
  /** Bearer token every instance requires (`http.token`), if any. */
  readonly token?: string | undefined;
  /** This worker's link to its siblings (several workers per instance). */
  readonly link?: SiblingLink | undefined;
  /** How long the owner may take to answer (it appends before it does). */
  readonly timeoutMs?: number | undefined;
  /** The HTTP client (global fetch unless a test gives one). */
  readonly fetch?: typeof fetch | undefined;
}

/**
 * Carries keyed requests to their owner: over HTTP to another instance, over the worker link to
 * a sibling. Either way the owner's own `POST /events` route answers, marked forwarded so it
 * never forwards again beyond what the hop rules allow.
 */
export class IngestForwarder {
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ForwarderOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetch = options.fetch ?? fetch;
  }

  /** The owner's answer; PartitionUnavailableError (503) when it could not be reached or gave no answer. */
  async forward(url: string, request: ForwardedIngest): Promise<RelayedIngest> {
    const sibling = workerOfUrl(url);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      [IDEMPOTENCY_KEY_HEADER]: request.key,
      [FORWARDED_HEADER]: sibling === undefined ? '1' : FROM_SIBLING,
      ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
    };
    return sibling === undefined ? this.overHttp(url, request, headers) : this.toSibling(sibling, request, headers);
  }

  private async overHttp(base: string, request: ForwardedIngest, headers: Record<string, string>): Promise<RelayedIngest> {
    let response: Response;
    let body: string;
    try {
      response = await this.fetch(`${base.replace(/\/$/, '')}${request.path}`, { method: 'POST', headers, body: request.body, signal: AbortSignal.timeout(this.timeoutMs) });
      body = await response.text();
    } catch (err) {
      return unavailable(`instance ${base}, the owner of this Idempotency-Key, did not answer (${describeError(err)}); retry shortly with the same key`, undefined, err);
    }
    return { status: response.status, headers: relayedHeaders((name) => response.headers.get(name) ?? undefined), body };
  }

  private async toSibling(worker: number, request: ForwardedIngest, headers: Record<string, string>): Promise<RelayedIngest> {
    const link = this.options.link;
    if (!link) return unavailable(`worker ${worker} owns this Idempotency-Key but this process has no link to it; retry shortly with the same key`);
    const payload: SiblingRequest = { path: request.path, headers, body: request.body };
    const [answer] = await link.ask(worker, INGEST_KIND, payload, this.timeoutMs);
    if (!answer?.ok) return unavailable(`worker ${worker}, the owner of this Idempotency-Key, did not answer (${answer?.error ?? 'no answer'}); retry shortly with the same key`);
    return answer.payload as RelayedIngest;
  }
}

/** Lets sibling workers send this worker keyed requests: its own `POST /events` route answers them. */
export function serveForwardedIngest(link: SiblingLink, http: FastifyInstance): void {
  link.serve(INGEST_KIND, async (payload): Promise<RelayedIngest> => {
    const { path, headers, body } = payload as SiblingRequest;
    const response = await http.inject({ method: 'POST', url: path, headers, payload: body });
    return { status: response.statusCode, headers: relayedHeaders((name) => stringHeader(response.headers[name])), body: response.body };
  });
}

function relayedHeaders(get: (name: string) => string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of RELAYED_HEADERS) {
    const value = get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function stringHeader(value: string | number | string[] | undefined): string | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value.join(', ') : String(value);
}

function unavailable(message: string, partition?: number, cause?: unknown): never {
  throw new PartitionUnavailableError(message, undefined, partition === undefined ? {} : { partition }, cause === undefined ? undefined : { cause });
}
