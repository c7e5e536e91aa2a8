/** Event encodings: Avro single-object framing on the log, JSON at the HTTP edge. */
export { CRC64_AVRO_EMPTY, crc64Avro } from './crc64-avro.js';
export {
  SINGLE_OBJECT_HEADER_LENGTH,
  SchemaCatalog,
  canonicalForm,
  fingerprint,
  isSingleObject,
  parseEventType,
} from './single-object.js';
export type { DecodedObject } from './single-object.js';
export { fromJson, toJson } from './json.js';
export { ConfluentCodec, CONFLUENT_MAGIC, CONFLUENT_HEADER_LENGTH, type EventCodec, type SchemaRegistry } from './confluent.js';
