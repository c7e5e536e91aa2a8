import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CRC64_AVRO_EMPTY, crc64Avro } from '../../src/codec/crc64-avro.js';

/**
 * Parsing Canonical Forms and their fingerprints (signed 64-bit, as Java prints them) from
 * apache/avro `share/test/data/schema-tests.txt`.
 */
const AVRO_SCHEMA_TESTS: ReadonlyArray<readonly [string, bigint]> = [
  ['"null"', 7195948357588979594n],
  ['"boolean"', -6970731678124411036n],
  ['"int"', 8247732601305521295n],
  ['"long"', -3434872931120570953n],
  ['"float"', 5583340709985441680n],
  ['"double"', -8181574048448539266n],
  ['"bytes"', 5746618253357095269n],
  ['"string"', -8142146995180207161n],
  ['[]', -1241056759729112623n],
  ['["int"]', -5232228896498058493n],
  ['["int","boolean"]', 5392556393470105090n],
  ['{"name":"foo","type":"record","fields":[]}', -4824392279771201922n],
  ['{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771n],
  ['{"name":"a.b.foo","type":"record","fields":[]}', -4616218487480524110n],
  ['{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}', 7843277075252814651n],
  [
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
    -4860222112080293046n,
  ],
  ['{"name":"foo","type":"enum","symbols":["A1"]}', -6342190197741309591n],
  ['{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245n],
  ['{"name":"foo","type":"fixed","size":15}', 1756455273707447556n],
  ['{"name":"x.y.z.foo","type":"fixed","size":32}', -3064184465700546786n],
  ['{"type":"array","items":"null"}', -589620603366471059n],
  ['{"type":"map","values":"string"}', -8732877298790414990n],
  [
    '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    -1759257747318642341n,
  ],
];

/** The specification's reference algorithm, verbatim, in BigInt. */
function referenceFingerprint(buf: Uint8Array): bigint {
  const mask = (1n << 64n) - 1n;
  const table: bigint[] = [];
  for (let i = 0n; i < 256n; i++) {
    let fp = i;
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (CRC64_AVRO_EMPTY & (-(fp & 1n) & mask));
    table.push(fp);
  }
  let fp = CRC64_AVRO_EMPTY;
  for (const b of buf) fp = (fp >> 8n) ^ table[Number((fp ^ BigInt(b)) & 0xffn)]!;
  return fp;
}

describe('crc64Avro', () => {
  it('is EMPTY for no input', () => {
    assert.equal(crc64Avro(new Uint8Array(0)), 0xc15d213aa4d7a795n);
  });

  it("matches the fingerprints in Avro's schema-tests.txt", () => {
    for (const [canonical, expected] of AVRO_SCHEMA_TESTS) {
      const fp = crc64Avro(Buffer.from(canonical, 'utf8'));
      assert.equal(BigInt.asIntN(64, fp), expected, canonical);
    }
  });

  it('returns an unsigned 64-bit value', () => {
    const fp = crc64Avro(Buffer.from('"null"'));
    assert.ok(fp >= 0n && fp < 1n << 64n);
    assert.equal(fp, BigInt.asUintN(64, 7195948357588979594n));
  });

  it('agrees with the spec reference algorithm on random input', () => {
    for (let i = 0; i < 200; i++) {
      const buf = randomBytes(i);
      assert.equal(crc64Avro(buf), referenceFingerprint(buf), buf.toString('hex'));
    }
  });
});
