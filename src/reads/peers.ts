import { PartitionUnavailableError } from '../errors.js';
import { workerOfUrl } from '../workers/address.js';
import { FORWARDED_HEADER, FROM_SIBLING, STALE_HEADER } from './wire.js';

/** An answer relayed unchanged from the instance that owns the data. */
export interface Relayed {
  readonly status: number;
  readonly body: unknown;
  readonly stale: boolean;
}

export interface PeersOptions {
  /** Bearer token every instance requires (`http.token`), if any. */
  readonly token?: string | undefined;
  /** How long another instance may take to answer. */
  readonly timeoutMs?: number | undefined;
  /** The HTTP client (global fetch unless a test gives one); with workers it also reaches siblings' `workerUrl`s. */
  readonly fetch?: typeof fetch | undefined;
}

/**
 * HTTP requests to other instances and sibling workers. Each is marked forwarded, so the receiver
 * answers from what its instance (a sibling: itself) holds and never forwards to another
 * instance; failures to reach it become PartitionUnavailableError.
 */
export class Peers {
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: PeersOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetch = options.fetch ?? fetch;
  }

  /** The owner's answer to `path`, status and body as it gave them. */
  async relay(base: string, path: string): Promise<Relayed> {
    const response = await this.request(base, path);
    return { status: response.status, body: await this.json(base, response), stale: response.headers.get(STALE_HEADER) === 'true' };
  }

  /**
   * The body of an internal request. Any answer but 2xx means the partitions cannot be read there
   * now, unless `refusal` finds in its body an error that is the caller's, not the instance's
   * (a query refusing its parameters): that one is thrown as it is.
   */
  async partial<T>(base: string, path: string, refusal: (body: unknown) => Error | undefined = () => undefined): Promise<T> {
    const response = await this.request(base, path);
    const body = await this.json(base, response);
    if (!response.ok) {
      const message = (body as { message?: unknown } | null)?.message;
      throw refusal(body) ?? new PartitionUnavailableError(`${base}: ${typeof message === 'string' ? message : response.statusText}`);
    }
    return body as T;
  }

  private async request(base: string, path: string): Promise<Response> {
    const { token } = this.options;
    try {
      return await this.fetch(`${base.replace(/\/$/, '')}${path}`, {
        headers: { [FORWARDED_HEADER]: workerOfUrl(base) === undefined ? '1' : FROM_SIBLING, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new PartitionUnavailableError(`instance ${base} did not answer (${(err as Error).message}); retry shortly`, undefined, {}, { cause: err });
    }
  }

  private async json(base: string, response: Response): Promise<unknown> {
    try {
      return await response.json();
    } catch (err) {
      throw new PartitionUnavailableError(`instance ${base} answered ${response.status} without a JSON body; retry shortly`, undefined, {}, { cause: err });
    }
  }
}
