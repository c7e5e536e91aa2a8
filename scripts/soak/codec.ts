/**
 * Avro single-object encoding of the soak app's events (`C3 01` + CRC-64-AVRO fingerprint + body),
 * with avsc over the schemas the app declares: the driver's producer and the checks' readers,
 * independent of farad's own codec (only the fingerprint function is shared).
 */
import avsc from 'avsc';
import { fingerprint } from '../../src/codec/index.js';
import type { App } from '../../src/index.js';

export class SingleObjects {
  private readonly types = new Map<string, avsc.Type>();
  private readonly headers = new Map<string, Buffer>();

  constructor(app: App) {
    for (const [name, typed] of Object.entries(app.spec.events)) {
      const type = avsc.Type.forSchema(typed.schema as avsc.Schema);
      this.types.set(name, type);
      this.headers.set(name, Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint(type)]));
    }
  }

  encode(name: string, value: unknown): Buffer {
    const type = this.types.get(name);
    const header = this.headers.get(name);
    if (!type || !header) throw new Error(`the soak app has no event ${name}`);
    return Buffer.concat([header, type.toBuffer(value)]);
  }

  decode(bytes: Buffer | null, where: string): { type: string; value: Record<string, unknown> } {
    if (!bytes || bytes.length < 10) throw new Error(`not a single object at ${where}`);
    for (const [name, header] of this.headers) {
      if (bytes.subarray(0, 10).equals(header)) return { type: name, value: this.types.get(name)!.fromBuffer(bytes.subarray(10)) as Record<string, unknown> };
    }
    throw new Error(`unknown fingerprint ${bytes.subarray(2, 10).toString('hex')} at ${where}`);
  }
}
