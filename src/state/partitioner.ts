/**
 * Kafka-compatible key partitioning: the same key lands on the same partition whether it was
 * produced by farad, kafkajs (`Partitioners.DefaultPartitioner`) or the Java client
 * (`DefaultPartitioner` / `BuiltInPartitioner` for keyed records).
 *
 * Hot path: every keyed event and every state write is routed through `partitionForKey`, so
 * ASCII strings are hashed straight from their char codes (no encoding, no allocation) and other
 * strings are UTF-8 encoded into a reusable scratch buffer.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's `org.apache.kafka.common.utils.Utils.murmur2`: 32-bit MurmurHash2 with seed
 * 0x9747b28c, returned as a signed 32-bit integer like Java's `int`.
 */
export function murmur2(bytes: Uint8Array): number {
  return murmur2Range(bytes, bytes.length);
}

/** Kafka's `Utils.toPositive`: clears the sign bit (not `Math.abs`, which differs for negatives). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/**
 * The partition Kafka's Java client and kafkajs choose for a keyed record:
 * `toPositive(murmur2(keyBytes)) % numPartitions`. Strings are hashed as their UTF-8 bytes, as
 * Node encodes them (`Buffer.from(key)`), i.e. the bytes that go on the wire as the record key.
 */
export function partitionForKey(key: string | Uint8Array, numPartitions: number): number {
  if (!(numPartitions > 0 && (numPartitions | 0) === numPartitions)) {
    throw new RangeError(`numPartitions must be a positive integer, got ${numPartitions}`);
  }
  if (typeof key !== 'string') return (murmur2Range(key, key.length) & 0x7fffffff) % numPartitions;
  // A handler's writes and emits usually hash the key its event was routed by, again.
  if (key !== lastKey) {
    lastKey = key;
    lastHash = murmur2String(key) & 0x7fffffff;
  }
  return lastHash % numPartitions;
}
let lastKey: string | undefined;
let lastHash = 0;

/** murmur2 of a string's UTF-8 bytes, without allocating for the common ASCII case. */
function murmur2String(key: string): number {
  const h = murmur2Ascii(key);
  if (h !== undefined) return h;
  // Non-ASCII: a UTF-16 code unit is at most 3 UTF-8 bytes, so 3x length always fits.
  const needed = key.length * 3;
  if (scratch.length < needed) scratch = Buffer.allocUnsafe(Math.max(needed, scratch.length * 2));
  const n = scratch.write(key, 0, 'utf8');
  return murmur2Range(scratch, n);
}

let scratch: Buffer = Buffer.allocUnsafe(256);

/** murmur2 over the first `length` bytes; mirrors the Java code line by line. */
function murmur2Range(data: Uint8Array, length: number): number {
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k =
      (data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24));
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // Java's fall-through switch on length % 4.
  const tail = length & ~3;
  const rest = length & 3;
  if (rest !== 0) {
    if (rest === 3) h ^= data[tail + 2]! << 16;
    if (rest >= 2) h ^= data[tail + 1]! << 8;
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * murmur2 reading bytes straight from the string's char codes; `undefined` as soon as a
 * non-ASCII char shows up (its UTF-8 bytes differ from its char code, and so does the length).
 */
function murmur2Ascii(s: string): number | undefined {
  const length = s.length;
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    const c0 = s.charCodeAt(i4);
    const c1 = s.charCodeAt(i4 + 1);
    const c2 = s.charCodeAt(i4 + 2);
    const c3 = s.charCodeAt(i4 + 3);
    if ((c0 | c1 | c2 | c3) > 0x7f) return undefined;
    let k = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest !== 0) {
    const c0 = s.charCodeAt(tail);
    const c1 = rest > 1 ? s.charCodeAt(tail + 1) : 0;
    const c2 = rest > 2 ? s.charCodeAt(tail + 2) : 0;
    if ((c0 | c1 | c2) > 0x7f) return undefined;
    h ^= c2 << 16;
    h ^= c1 << 8;
    h ^= c0;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}
