import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The two endpoints of the Confluent Schema Registry REST API that farad uses, for tests:
 * no real registry is installable on this machine's registries. Ids are global, and the same
 * schema text always gets the same id, as in the real registry.
 */
export class RegistryServer {
  readonly schemas = new Map<number, string>();
  readonly subjects = new Map<string, number[]>();
  private readonly server: Server;

  constructor() {
    this.server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        const reply = (status: number, json: unknown): void => {
          response.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
          response.end(JSON.stringify(json));
        };
        const byId = /^\/schemas\/ids\/(\d+)$/.exec(request.url ?? '');
        if (request.method === 'GET' && byId) {
          const schema = this.schemas.get(Number(byId[1]));
          return schema === undefined ? reply(404, { error_code: 40403, message: 'Schema not found' }) : reply(200, { schema });
        }
        const subject = /^\/subjects\/([^/]+)\/versions$/.exec(request.url ?? '');
        if (request.method === 'POST' && subject) {
          const { schema } = JSON.parse(body) as { schema: string };
          return reply(200, { id: this.register(decodeURIComponent(subject[1]!), schema) });
        }
        reply(404, { error_code: 404, message: 'not found' });
      });
    });
  }

  register(subject: string, schema: string): number {
    const canonical = JSON.stringify(JSON.parse(schema));
    let id = [...this.schemas].find(([, s]) => s === canonical)?.[0];
    if (id === undefined) {
      id = this.schemas.size + 1;
      this.schemas.set(id, canonical);
    }
    const versions = this.subjects.get(subject) ?? [];
    if (!versions.includes(id)) versions.push(id);
    this.subjects.set(subject, versions);
    return id;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
