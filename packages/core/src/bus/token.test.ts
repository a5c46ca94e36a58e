import { describe, expect, it } from 'vitest';
import { compositeKeyBytes, compositeToken, halvesToString, MINIMUM_TOKEN, token, tokenHalves, tokenString } from './token.ts';

// An independent, deliberately plain BigInt port of Cassandra's MurmurHash.hash3_x64_128 +
// Murmur3Partitioner.getToken, written straight from the Java, to check the fast version against.
const MASK = (1n << 64n) - 1n;
const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & MASK;
const fmix = (k: bigint): bigint => {
  k ^= k >> 33n;
  k = (k * 0xff51afd7ed558ccdn) & MASK;
  k ^= k >> 33n;
  k = (k * 0xc4ceb9fe1a85ec53n) & MASK;
  k ^= k >> 33n;
  return k;
};
function referenceToken(key: Uint8Array): bigint {
  if (key.length === 0) return -(2n ** 63n);
  const c1 = 0x87c37b91114253d5n;
  const c2 = 0x4cf5ad432745937fn;
  const getLong = (offset: number): bigint => {
    let value = 0n;
    for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(key[offset + i]!);
    return value;
  };
  const signedByteAsLong = (byte: number): bigint => BigInt.asUintN(64, BigInt(byte >= 128 ? byte - 256 : byte));
  let h1 = 0n;
  let h2 = 0n;
  const blocks = key.length >> 4;
  for (let i = 0; i < blocks; i++) {
    let k1 = getLong(i * 16);
    let k2 = getLong(i * 16 + 8);
    k1 = (k1 * c1) & MASK;
    k1 = rotl(k1, 31n);
    k1 = (k1 * c2) & MASK;
    h1 ^= k1;
    h1 = rotl(h1, 27n);
    h1 = (h1 + h2) & MASK;
    h1 = (h1 * 5n + 0x52dce729n) & MASK;
    k2 = (k2 * c2) & MASK;
    k2 = rotl(k2, 33n);
    k2 = (k2 * c1) & MASK;
    h2 ^= k2;
    h2 = rotl(h2, 31n);
    h2 = (h2 + h1) & MASK;
    h2 = (h2 * 5n + 0x38495ab5n) & MASK;
  }
  const offset = blocks * 16;
  const tail = key.length & 15;
  let k1 = 0n;
  let k2 = 0n;
  for (let position = tail - 1; position >= 8; position--) {
    k2 ^= (signedByteAsLong(key[offset + position]!) << BigInt((position - 8) * 8)) & MASK;
  }
  for (let position = Math.min(tail, 8) - 1; position >= 0; position--) {
    k1 ^= (signedByteAsLong(key[offset + position]!) << BigInt(position * 8)) & MASK;
  }
  if (tail > 8) {
    k2 = (k2 * c2) & MASK;
    k2 = rotl(k2, 33n);
    k2 = (k2 * c1) & MASK;
    h2 ^= k2;
  }
  if (tail > 0) {
    k1 = (k1 * c1) & MASK;
    k1 = rotl(k1, 31n);
    k1 = (k1 * c2) & MASK;
    h1 ^= k1;
  }
  h1 ^= BigInt(key.length);
  h2 ^= BigInt(key.length);
  h1 = (h1 + h2) & MASK;
  h2 = (h2 + h1) & MASK;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = (h1 + h2) & MASK;
  const signed = BigInt.asIntN(64, h1);
  return signed === -(2n ** 63n) ? 2n ** 63n - 1n : signed;
}

/** A seeded generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const int32 = (n: number): Uint8Array => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, n);
  return out;
};
const int64 = (n: bigint): Uint8Array => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, n);
  return out;
};

describe('token', () => {
  it('matches the DataStax driver test vectors, tail sign-extension included', () => {
    expect(token(bytes(...Array.from({ length: 16 }, (_, i) => i + 1)))).toBe(-5563837382979743776n);
    expect(token(new Uint8Array(17).fill(254))).toBe(-1672437813826982685n);
    expect(token(bytes(254, 254, 254, 254))).toBe(4566408979886474012n);
    expect(token(bytes(0, 0, 0, 0))).toBe(-3485513579396041028n);
    expect(token(bytes(226, 231, 226, 231, 226, 231, 1))).toBe(2222373981930033306n);
    expect(token(bytes(0, 0, 0, 0, 0, 0, 0, 0x80))).toBe(78142285821850151n);
  });

  it('gives the known tokens of int 1, bigint 1, hello and héllo', () => {
    expect(token(int32(1))).toBe(-4069959284402364209n);
    expect(token(int64(1n))).toBe(6292367497774912474n);
    expect(token('hello')).toBe(-3758069500696749310n);
    // A multi-byte character in the tail: where the reference C++ MurmurHash3 disagrees.
    expect(token('héllo')).toBe(4427587122518744475n);
  });

  it('gives the empty key the minimum token, as Murmur3Partitioner does', () => {
    expect(token('')).toBe(-(2n ** 63n));
    expect(token(new Uint8Array(0))).toBe(MINIMUM_TOKEN);
    expect(tokenString('')).toBe('-9223372036854775808');
  });

  it('agrees with a plain BigInt port on 20,000 random byte strings of 0 to 40 bytes', () => {
    const next = random(20_000);
    let highTailBytes = 0;
    for (let n = 0; n < 20_000; n++) {
      const key = new Uint8Array(Math.floor(next() * 41));
      for (let i = 0; i < key.length; i++) key[i] = Math.floor(next() * 256);
      if (key.some((b, i) => b >= 0x80 && i >= key.length - (key.length & 15))) highTailBytes++;
      const expected = referenceToken(key);
      if (token(key) !== expected) expect({ key: [...key], token: token(key) }).toEqual({ key: [...key], token: expected });
      if (tokenString(key) !== expected.toString()) expect(tokenString(key)).toBe(expected.toString());
    }
    // The quirk is only exercised if many keys have a byte >= 0x80 in their tail.
    expect(highTailBytes).toBeGreaterThan(10_000);
  });

  it('hashes a string as its UTF-8 bytes, ASCII or not, short or long', () => {
    const next = random(7);
    const alphabet = ['a', 'Z', '0', '@', '.', 'é', 'ß', '€', '中', '😀', '\u0000', '\u007f', '\u0080', '\ud800'];
    for (let n = 0; n < 2_000; n++) {
      let key = '';
      const length = n % 10 === 0 ? 200 + Math.floor(next() * 900) : Math.floor(next() * 40);
      const asciiOnly = n % 3 === 0;
      for (let i = 0; i < length; i++) key += alphabet[Math.floor(next() * (asciiOnly ? 5 : alphabet.length))]!;
      const utf8 = Buffer.from(key, 'utf8'); // a lone surrogate becomes U+FFFD, as the driver sends it
      expect(token(key)).toBe(referenceToken(utf8));
      expect(tokenString(key)).toBe(referenceToken(utf8).toString());
    }
  });

  it('hands out the token as int32 halves', () => {
    const halves = new Int32Array(2);
    tokenHalves('hello', halves);
    expect((BigInt(halves[0]!) << 32n) + BigInt(halves[1]! >>> 0)).toBe(-3758069500696749310n);
  });

  it('writes any signed 64-bit value as its exact decimal string', () => {
    const edges = [0n, 1n, -1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n), 999_999n, 1_000_000n];
    const next = random(99);
    const values = [...edges];
    for (let n = 0; n < 20_000; n++) {
      values.push(BigInt.asIntN(64, (BigInt(Math.floor(next() * 2 ** 32)) << 32n) | BigInt(Math.floor(next() * 2 ** 32))));
    }
    for (const value of values) {
      const text = halvesToString(Number(BigInt.asIntN(32, value >> 32n)), Number(BigInt.asUintN(32, value)));
      if (text !== value.toString()) expect(text).toBe(value.toString());
    }
  });
});

describe('compositeToken', () => {
  it('frames each component as [u16 length][bytes][0x00]', () => {
    expect([...compositeKeyBytes([bytes(0x61), int32(1)])]).toEqual([0, 1, 0x61, 0, 0, 4, 0, 0, 0, 1, 0]);
    expect([...compositeKeyBytes([new Uint8Array(0)])]).toEqual([0, 0, 0]);
    const long = new Uint8Array(300);
    expect([...compositeKeyBytes([long]).subarray(0, 2)]).toEqual([1, 44]);
  });

  it('hashes the framed bytes', () => {
    const parts = [new TextEncoder().encode('alice'), int32(42)];
    expect(compositeToken(parts)).toBe(referenceToken(compositeKeyBytes(parts)));
    // Framing matters: the plain concatenation hashes differently.
    expect(compositeToken(parts)).not.toBe(referenceToken(Buffer.concat(parts)));
  });

  it('rejects a component longer than 65535 bytes', () => {
    expect(() => compositeToken([new Uint8Array(65_536)])).toThrow(/65535/);
    expect(() => compositeToken([new Uint8Array(65_535)])).not.toThrow();
  });
});
