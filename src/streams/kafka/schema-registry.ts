import { TransportError } from '../../errors.js';
import type { SchemaRegistry } from '../../codec/index.js';

export interface RegistrySettings {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/** A Confluent-compatible schema registry over its REST API (Confluent, Karapace, Apicurio's ccompat). */
export class HttpSchemaRegistry implements SchemaRegistry {
  private readonly base: string;
  private readonly headers: Record<string, string>;

  constructor(settings: RegistrySettings) {
    this.base = settings.url.replace(/\/$/, '');
    this.headers = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
    if (settings.username) {
      this.headers['authorization'] = `Basic ${Buffer.from(`${settings.username}:${settings.password ?? ''}`).toString('base64')}`;
    }
  }

  async schemaById(id: number): Promise<string | undefined> {
    const response = await this.request('GET', `/schemas/ids/${id}`);
    if (response.status === 404) return undefined;
    const body = (await this.json(response, `schema id ${id}`)) as { schema?: string };
    return body.schema;
  }

  async register(subject: string, schema: string): Promise<number> {
    const response = await this.request('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema });
    const body = (await this.json(response, `registering subject "${subject}"`)) as { id?: number };
    if (typeof body.id !== 'number') throw new TransportError(`schema registry answered no id for subject "${subject}"`);
    return body.id;
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        headers: body ? { ...this.headers, 'content-type': 'application/vnd.schemaregistry.v1+json' } : this.headers,
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new TransportError(`schema registry ${this.base} unreachable: ${(err as Error).message}; check schemaRegistry.url (FARAD_SCHEMA_REGISTRY_URL)`, {}, { cause: err });
    }
  }

  private async json(response: Response, what: string): Promise<unknown> {
    const text = await response.text();
    if (!response.ok) throw new TransportError(`schema registry ${what}: HTTP ${response.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as unknown;
  }
}
