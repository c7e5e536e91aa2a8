/**
 * Avro single-object encoding of an app's events (`C3 01` + CRC-64-AVRO fingerprint + body), with
 * avsc over the schemas the app declares: the Kafka tests' producers and readers, independent of
 * farad's own codec.
 */
import avsc from 'avsc';
import { fingerprint } from '../../src/codec/index.js';
import type { App } from '../../src/index.js';
import type { ReadRecord } from './helpers.js';

export interface Decoded {
  readonly name: string;
  readonly value: Record<string, unknown>;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  /** The record's timestamp (CreateTime topics: what farad recorded, e.g. a timer's fire time). */
  readonly timestamp: number;
}

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
    if (!type) throw new Error(`no event ${name}`);
    return Buffer.concat([this.headers.get(name)!, type.toBuffer(value)]);
  }

  decodeBytes(bytes: Buffer, where: string): { name: string; value: Record<string, unknown> } {
    if (bytes.length < 10) throw new Error(`not a single object at ${where}`);
    for (const [name, header] of this.headers) {
      if (bytes.subarray(0, 10).equals(header)) return { name, value: this.types.get(name)!.fromBuffer(bytes.subarray(10)) as Record<string, unknown> };
    }
    throw new Error(`unknown fingerprint ${bytes.subarray(2, 10).toString('hex')} at ${where}`);
  }

  decode(record: ReadRecord): Decoded {
    if (!record.value) throw new Error(`null value at ${record.partition}/${record.offset}`);
    const { name, value } = this.decodeBytes(record.value, `${record.partition}/${record.offset}`);
    return { name, value, partition: record.partition, offset: record.offset, key: record.key, timestamp: record.timestamp };
  }
}
