import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import type { PartitionMetadata } from 'kafkajs';
import { murmur2, partitionForKey, toPositive } from '../../src/state/partitioner.js';

/** Vectors of apache/kafka `clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java#testMurmur2`. */
const KAFKA_VECTORS: ReadonlyArray<readonly [string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
];

/** `(hash & 0x7fffffff) % n` for n = 3, 7, 12, 16, 50, 100, computed by hand from the vectors. */
const PARTITION_VECTORS: ReadonlyArray<readonly [string, readonly number[]]> = [
  ['21', [0, 3, 0, 12, 40, 40]],
  ['foobar', [0, 0, 6, 14, 16, 66]],
  ['a-little-bit-long-string', [2, 1, 8, 0, 12, 12]],
  ['a-little-bit-longer-string', [2, 0, 11, 3, 19, 19]],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', [2, 3, 5, 13, 27, 77]],
  ['abc', [0, 4, 3, 11, 7, 7]],
];
const PARTITION_COUNTS = [3, 7, 12, 16, 50, 100];

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('murmur2', () => {
  it("matches Kafka's UtilsTest.testMurmur2 vectors", () => {
    for (const [input, expected] of KAFKA_VECTORS) {
      assert.equal(murmur2(utf8(input)), expected, input);
    }
    assert.equal(murmur2(new Uint8Array([0x61, 0x62, 0x63])), 479470107); // {'a','b','c'}
  });

  it('handles every tail length and the empty array', () => {
    // Tail lengths 0..3 are covered by the vectors above (24, 26, 6/2, 3 bytes). The empty array is
    // not in Kafka's test; this value was cross-checked against kafkajs's murmur2.
    assert.equal(murmur2(new Uint8Array(0)), 275646681);
  });

  it('returns signed 32-bit integers', () => {
    for (let i = 0; i < 200; i++) {
      const h = murmur2(randomBytes(i));
      assert.equal(h, h | 0);
    }
  });
});

describe('toPositive', () => {
  it('clears the sign bit like Kafka (not Math.abs)', () => {
    assert.equal(toPositive(-1), 0x7fffffff);
    assert.equal(toPositive(-2147483648), 0);
    assert.equal(toPositive(5), 5);
    assert.equal(toPositive(-973932308), 1173551340);
  });
});

describe('partitionForKey', () => {
  it('matches partitions derived from the Kafka vectors', () => {
    for (const [key, partitions] of PARTITION_VECTORS) {
      PARTITION_COUNTS.forEach((n, i) => {
        assert.equal(partitionForKey(key, n), partitions[i], `${key} % ${n}`);
        assert.equal(partitionForKey(utf8(key), n), partitions[i], `${key} bytes % ${n}`);
      });
    }
  });

  it('hashes strings as UTF-8 (non-ASCII, surrogate pairs, long keys)', () => {
    const keys = ['é', 'naïve-key', '日本語キー', '🎉🎉', 'a😀b', 'x'.repeat(999) + 'ü', 'ü'.repeat(5000)];
    for (const key of keys) {
      const bytes = Buffer.from(key, 'utf8');
      for (const n of [1, 5, 16, 1000]) {
        assert.equal(partitionForKey(key, n), toPositive(murmur2(bytes)) % n, key);
      }
    }
  });

  it('accepts Buffers and Uint8Array views with an offset', () => {
    const backing = Buffer.from('xxfoobar');
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, 6);
    assert.equal(partitionForKey(view, 50), 16);
    assert.equal(partitionForKey(Buffer.from('foobar'), 50), 16);
  });

  it('rejects invalid partition counts', () => {
    for (const n of [0, -1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => partitionForKey('k', n), RangeError);
    }
  });

  it("agrees with kafkajs's DefaultPartitioner (Java-compatible murmur2)", () => {
    const partitioner = Partitioners.DefaultPartitioner();
    const metadataFor = (n: number): PartitionMetadata[] =>
      Array.from({ length: n }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [0],
        isr: [0],
      }));
    const metadata = Array.from({ length: 17 }, (_, n) => metadataFor(n));
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_:/ éü日🎉';
    const chars = Array.from(alphabet);
    for (let i = 0; i < 1000; i++) {
      const len = Math.floor(Math.random() * 40);
      let key = '';
      for (let j = 0; j < len; j++) key += chars[Math.floor(Math.random() * chars.length)];
      const bytes = randomBytes(Math.floor(Math.random() * 40));
      for (let n = 1; n <= 16; n++) {
        const partitionMetadata = metadata[n]!;
        const expectedString = partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
        assert.equal(partitionForKey(key, n), expectedString, `key ${JSON.stringify(key)} n=${n}`);
        const expectedBytes = partitioner({ topic: 't', partitionMetadata, message: { key: bytes, value: null } });
        assert.equal(partitionForKey(bytes, n), expectedBytes, `bytes ${bytes.toString('hex')} n=${n}`);
      }
    }
  });
});
