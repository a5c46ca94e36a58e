/**
 * Cassandra's Murmur3Partitioner token, bit for bit: MurmurHash3_x64_128 (seed 0) of the
 * partition key's bytes, keeping h1 as a signed 64-bit integer.
 *
 * Two details make it differ from the reference C++ MurmurHash3 (and from npm ports of it):
 * - Cassandra reads the tail bytes (the last `length % 16`) as SIGNED Java bytes and widens
 *   them to long, so a tail byte >= 0x80 sets every bit above it before the shift.
 * - The empty key is Long.MIN_VALUE (the partitioner's minimum token), and a hash equal to
 *   Long.MIN_VALUE is normalized to Long.MAX_VALUE, so no real key gets the minimum token.
 *
 * The hash runs on 32-bit halves (Math.imul and 16-bit partial products) so that the hot
 * path allocates nothing and never touches BigInt; the bigint (or its decimal string) is
 * built once, at the end.
 */

const MIN_TOKEN = -(2n ** 63n);

// Every 64-bit quantity is a pair (high, low) of int32s. Helpers leave their result here,
// rather than in a returned object, so the hash allocates nothing per call.
let resultHigh = 0;
let resultLow = 0;

/** (ah:al) * (bh:bl) mod 2^64. */
function multiply(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const middle = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  resultLow = (middle << 16) | (p00 & 0xffff);
  resultHigh = (p11 + (p01 >>> 16) + (p10 >>> 16) + (middle >>> 16) + Math.imul(ah, bl) + Math.imul(al, bh)) | 0;
}

/** (ah:al) + (bh:bl) mod 2^64. */
function add(ah: number, al: number, bh: number, bl: number): void {
  const low = (al >>> 0) + (bl >>> 0);
  resultLow = low | 0;
  resultHigh = (ah + bh + (low > 0xffffffff ? 1 : 0)) | 0;
}

/** (high:low) * 5 + (0:addend) mod 2^64, as x + (x << 2) + addend. */
function timesFivePlus(high: number, low: number, addend: number): void {
  const shiftedLow = (low << 2) >>> 0;
  const shiftedHigh = (high << 2) | (low >>> 30);
  const sum = (low >>> 0) + shiftedLow + addend; // < 3 * 2^32: exact
  resultLow = sum | 0;
  resultHigh = (high + shiftedHigh + Math.floor(sum / 4294967296)) | 0;
}

/** Rotate left by 0 < bits < 32. */
function rotateLeft(high: number, low: number, bits: number): void {
  resultHigh = (high << bits) | (low >>> (32 - bits));
  resultLow = (low << bits) | (high >>> (32 - bits));
}

/** MurmurHash3's fmix64. */
function finalMix(high: number, low: number): void {
  low ^= high >>> 1; // k ^= k >>> 33
  multiply(high, low, 0xff51afd7 | 0, 0xed558ccd | 0);
  high = resultHigh;
  low = resultLow ^ (resultHigh >>> 1);
  multiply(high, low, 0xc4ceb9fe | 0, 0x1a85ec53 | 0);
  resultLow ^= resultHigh >>> 1;
}

const C1_HIGH = 0x87c37b91 | 0;
const C1_LOW = 0x114253d5;
const C2_HIGH = 0x4cf5ad43;
const C2_LOW = 0x2745937f;

let tokenHigh = 0;
let tokenLow = 0;

/** Hashes bytes[0, length) and leaves the normalized token in tokenHigh:tokenLow. */
function hash(bytes: Uint8Array, length: number): void {
  if (length === 0) {
    tokenHigh = 0x80000000 | 0;
    tokenLow = 0;
    return;
  }
  let h1High = 0;
  let h1Low = 0;
  let h2High = 0;
  let h2Low = 0;
  const bodyEnd = length - (length & 15);
  for (let i = 0; i < bodyEnd; i += 16) {
    const k1Low = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    const k1High = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    const k2Low = bytes[i + 8]! | (bytes[i + 9]! << 8) | (bytes[i + 10]! << 16) | (bytes[i + 11]! << 24);
    const k2High = bytes[i + 12]! | (bytes[i + 13]! << 8) | (bytes[i + 14]! << 16) | (bytes[i + 15]! << 24);

    // k1 *= c1; k1 = rotl(k1, 31); k1 *= c2; h1 ^= k1
    multiply(k1High, k1Low, C1_HIGH, C1_LOW);
    rotateLeft(resultHigh, resultLow, 31);
    multiply(resultHigh, resultLow, C2_HIGH, C2_LOW);
    h1High ^= resultHigh;
    h1Low ^= resultLow;
    // h1 = rotl(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729
    rotateLeft(h1High, h1Low, 27);
    add(resultHigh, resultLow, h2High, h2Low);
    timesFivePlus(resultHigh, resultLow, 0x52dce729);
    h1High = resultHigh;
    h1Low = resultLow;

    // k2 *= c2; k2 = rotl(k2, 33); k2 *= c1; h2 ^= k2
    multiply(k2High, k2Low, C2_HIGH, C2_LOW);
    rotateLeft(resultLow, resultHigh, 1); // rotl 33 = swap halves, then rotl 1
    multiply(resultHigh, resultLow, C1_HIGH, C1_LOW);
    h2High ^= resultHigh;
    h2Low ^= resultLow;
    // h2 = rotl(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5
    rotateLeft(h2High, h2Low, 31);
    add(resultHigh, resultLow, h1High, h1Low);
    timesFivePlus(resultHigh, resultLow, 0x38495ab5);
    h2High = resultHigh;
    h2Low = resultLow;
  }

  const tailLength = length & 15;
  if (tailLength > 0) {
    let k1High = 0;
    let k1Low = 0;
    let k2High = 0;
    let k2Low = 0;
    for (let position = tailLength - 1; position >= 0; position--) {
      const byte = bytes[bodyEnd + position]!;
      // Java widens the signed byte to long: a byte >= 0x80 brings 56 one-bits with it.
      const negative = byte >= 0x80;
      const wideLow = negative ? byte | 0xffffff00 : byte;
      const wideHigh = negative ? -1 : 0;
      const shift = (position & 7) * 8;
      let high: number;
      let low: number;
      if (shift === 0) {
        high = wideHigh;
        low = wideLow;
      } else if (shift < 32) {
        high = (wideHigh << shift) | (wideLow >>> (32 - shift));
        low = wideLow << shift;
      } else {
        high = wideLow << (shift - 32);
        low = 0;
      }
      if (position >= 8) {
        k2High ^= high;
        k2Low ^= low;
      } else {
        k1High ^= high;
        k1Low ^= low;
      }
    }
    if (tailLength > 8) {
      multiply(k2High, k2Low, C2_HIGH, C2_LOW);
      rotateLeft(resultLow, resultHigh, 1);
      multiply(resultHigh, resultLow, C1_HIGH, C1_LOW);
      h2High ^= resultHigh;
      h2Low ^= resultLow;
    }
    multiply(k1High, k1Low, C1_HIGH, C1_LOW);
    rotateLeft(resultHigh, resultLow, 31);
    multiply(resultHigh, resultLow, C2_HIGH, C2_LOW);
    h1High ^= resultHigh;
    h1Low ^= resultLow;
  }

  // h1 ^= len; h2 ^= len; h1 += h2; h2 += h1; fmix both; h1 += h2
  h1Low ^= length;
  h2Low ^= length;
  add(h1High, h1Low, h2High, h2Low);
  h1High = resultHigh;
  h1Low = resultLow;
  add(h2High, h2Low, h1High, h1Low);
  h2High = resultHigh;
  h2Low = resultLow;
  finalMix(h1High, h1Low);
  h1High = resultHigh;
  h1Low = resultLow;
  finalMix(h2High, h2Low);
  add(h1High, h1Low, resultHigh, resultLow);

  if (resultHigh === (0x80000000 | 0) && resultLow === 0) {
    // Long.MIN_VALUE is reserved for the minimum token: Cassandra maps it to Long.MAX_VALUE.
    tokenHigh = 0x7fffffff;
    tokenLow = -1;
  } else {
    tokenHigh = resultHigh;
    tokenLow = resultLow;
  }
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** Hashes a key (a string is hashed as its UTF-8 bytes, as Cassandra hashes a `text` key). */
function hashKey(key: string | Uint8Array): void {
  if (typeof key !== 'string') {
    hash(key, key.length);
    return;
  }
  const length = key.length;
  if (length <= scratch.length) {
    // ASCII fast path: most routing keys (emails, phone numbers, ids) need no real encoder.
    let i = 0;
    for (; i < length; i++) {
      const code = key.charCodeAt(i);
      if (code >= 0x80) break;
      scratch[i] = code;
    }
    if (i === length) {
      hash(scratch, length);
      return;
    }
  }
  if (scratch.length < length * 3) scratch = new Uint8Array(Math.max(length * 3, scratch.length * 2));
  const { written } = encoder.encodeInto(key, scratch);
  hash(scratch, written);
}

function tokenAsBigint(): bigint {
  return (BigInt(tokenHigh) << 32n) + BigInt(tokenLow >>> 0);
}

/** Cassandra's token() of a single-column partition key: `text` (UTF-8) for a string, raw bytes otherwise. */
export function token(key: string | Uint8Array): bigint {
  hashKey(key);
  return tokenAsBigint();
}

/** {@link token} as a decimal string, the form tokens travel in JSON. */
export function tokenString(key: string | Uint8Array): string {
  hashKey(key);
  return tokenAsBigint().toString();
}

/**
 * Writes the token of `key` into `out` as [high 32 bits, low 32 bits] (signed int32s), for
 * callers such as the shard router that want to stay off BigInt entirely.
 */
export function tokenHalves(key: string | Uint8Array, out: Int32Array): void {
  hashKey(key);
  out[0] = tokenHigh;
  out[1] = tokenLow;
}

/** The decimal string of a token given as [high, low] int32 halves. */
export function halvesToString(high: number, low: number): string {
  return ((BigInt(high | 0) << 32n) + BigInt(low >>> 0)).toString();
}

const MAX_COMPONENT_BYTES = 0xffff;

/**
 * The routing bytes of a composite partition key: each component, in partition-key order,
 * framed as [u16 big-endian length][bytes][0x00] (Cassandra's CompositeType encoding).
 */
export function compositeKeyBytes(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) {
    if (part.length > MAX_COMPONENT_BYTES) {
      throw new RangeError(`a partition key component is ${part.length} bytes; the limit is ${MAX_COMPONENT_BYTES}`);
    }
    size += part.length + 3;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    bytes[offset] = part.length >>> 8;
    bytes[offset + 1] = part.length & 0xff;
    bytes.set(part, offset + 2);
    offset += part.length + 3; // the 0x00 end-of-component byte is already zero
  }
  return bytes;
}

/** Cassandra's token() of a composite partition key, each part already serialized as its CQL type. */
export function compositeToken(parts: readonly Uint8Array[]): bigint {
  const bytes = compositeKeyBytes(parts);
  hash(bytes, bytes.length);
  return tokenAsBigint();
}

/** Long.MIN_VALUE: the token of the empty key, which no non-empty key can have. */
export const MINIMUM_TOKEN = MIN_TOKEN;
