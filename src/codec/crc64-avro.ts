/**
 * CRC-64-AVRO: the 64-bit Rabin fingerprint from the Avro specification ("Schema Fingerprints"),
 * used by single-object encoding to identify a writer schema by its Parsing Canonical Form.
 */

/** The fingerprint of the empty byte string, and the polynomial the table is built from. */
export const CRC64_AVRO_EMPTY = 0xc15d213aa4d7a795n;

// The 64-bit state is kept as two uint32 halves so the per-byte loop never touches BigInt;
// only the final result is converted.
const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
const EMPTY_HI = Number(CRC64_AVRO_EMPTY >> 32n) >>> 0;
const EMPTY_LO = Number(CRC64_AVRO_EMPTY & 0xffffffffn) >>> 0;

// Spec: for (j < 8) fp = (fp >>> 1) ^ (EMPTY & -(fp & 1))
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let j = 0; j < 8; j++) {
    const mask = -(lo & 1); // all ones when the low bit is set
    lo = ((lo >>> 1) | (hi << 31)) >>> 0;
    hi = hi >>> 1;
    hi = (hi ^ (EMPTY_HI & mask)) >>> 0;
    lo = (lo ^ (EMPTY_LO & mask)) >>> 0;
  }
  TABLE_HI[i] = hi;
  TABLE_LO[i] = lo;
}

/** CRC-64-AVRO fingerprint of `bytes`, as an unsigned 64-bit bigint. */
export function crc64Avro(bytes: Uint8Array): bigint {
  let hi = EMPTY_HI;
  let lo = EMPTY_LO;
  for (let i = 0; i < bytes.length; i++) {
    // Spec: fp = (fp >>> 8) ^ FP_TABLE[(int)(fp ^ b) & 0xff]
    const idx = (lo ^ bytes[i]!) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ TABLE_LO[idx]!) >>> 0;
    hi = ((hi >>> 8) ^ TABLE_HI[idx]!) >>> 0;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}
