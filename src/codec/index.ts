/** Codecs: events (Avro single-object, Confluent, JSON at the HTTP edge), changelog rows and snapshots. */
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
export { jsonSchemasOf, type JsonMapping, type JsonSchema, type JsonSchemaSet } from './json-schema.js';
export { ConfluentCodec, CONFLUENT_MAGIC, CONFLUENT_HEADER_LENGTH, type EventCodec, type SchemaRegistry } from './confluent.js';
export { encodeChangeKey, decodeChangeKey, describeIncompatibility, isMovedRow, RowCodec, rowSchemaOf, type EncodedChange, type RowFate, type TableShape } from './changelog.js';
export { incompatibility, SchemaBook, schemaFingerprint, schemaRecordOf, type Incompatibility, type RegisteredSchema, type SchemaRecord } from './evolution.js';
export { encodeSnapshot, loadSnapshot, readSnapshotHeader, type SnapshotHeader } from './snapshot.js';
