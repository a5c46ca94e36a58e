import { describe, expect, it } from 'vitest';
import { routeKey, shardOf } from './shard.ts';
import { token, tokenString } from './token.ts';

/** ScyllaDB's formula with plain 128-bit BigInt arithmetic, as protocol-extensions.md states it. */
function referenceShard(tokenValue: bigint, nrShards: number, ignoreMsb: number): number {
  const biased = BigInt.asUintN(64, tokenValue - -(2n ** 63n));
  const shifted = BigInt.asUintN(64, biased << BigInt(ignoreMsb));
  const product = shifted * BigInt(nrShards); // up to 128 bits
  return Number(product >> 64n);
}

function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('shardOf', () => {
  it('passes the published vectors (nr_shards 4, ignore_msb 12)', () => {
    expect(shardOf(-9219783007514621794n, 4, 12)).toBe(3);
    expect(shardOf(9222582454147032830n, 4, 12)).toBe(3);
  });

  it('maps the token range onto shards in order when no bits are ignored', () => {
    expect(shardOf(-(2n ** 63n), 8)).toBe(0);
    expect(shardOf(2n ** 63n - 1n, 8)).toBe(7);
    expect(shardOf(-1n, 2)).toBe(0);
    expect(shardOf(0n, 2)).toBe(1);
    expect(shardOf(123n, 1)).toBe(0);
  });

  it('agrees with 128-bit BigInt arithmetic on 100,000 random tokens', () => {
    const next = random(42);
    const shardCounts = [1, 2, 3, 4, 7, 8, 12, 16, 64, 100, 256, 1000, 4096, 65_535, (1 << 21) - 1, 1 << 21, 2 ** 31 - 1];
    for (let n = 0; n < 100_000; n++) {
      const value = BigInt.asIntN(64, (BigInt(Math.floor(next() * 2 ** 32)) << 32n) | BigInt(Math.floor(next() * 2 ** 32)));
      const nrShards = shardCounts[Math.floor(next() * shardCounts.length)]!;
      const ignoreMsb = n % 3 === 0 ? 0 : n % 3 === 1 ? 12 : Math.floor(next() * 64);
      const actual = shardOf(value, nrShards, ignoreMsb);
      const expected = referenceShard(value, nrShards, ignoreMsb);
      if (actual !== expected || actual >= nrShards) {
        expect({ value, nrShards, ignoreMsb, actual }).toEqual({ value, nrShards, ignoreMsb, actual: expected });
      }
    }
  });

  it('spreads keys evenly', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[shardOf(token(`user${i}@example.com`), 16)]! += 1;
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });

  it('rejects a shard count or an ignore_msb out of range', () => {
    expect(() => shardOf(1n, 0)).toThrow(RangeError);
    expect(() => shardOf(1n, 1.5)).toThrow(RangeError);
    expect(() => shardOf(1n, 4, 64)).toThrow(RangeError);
    expect(() => shardOf(2n ** 63n, 4)).toThrow(RangeError);
  });
});

describe('routeKey', () => {
  it('gives the same token and shard as token() and shardOf()', () => {
    const next = random(3);
    for (let i = 0; i < 5_000; i++) {
      const key = i % 2 ? `+3361234${i}` : `destinataire-${i}-${'é'.repeat(Math.floor(next() * 4))}@exemple.fr`;
      const nrShards = 1 + Math.floor(next() * 64);
      const ignoreMsb = i % 2 ? 0 : 12;
      expect(routeKey(key, nrShards, ignoreMsb)).toEqual({ token: tokenString(key), shard: shardOf(token(key), nrShards, ignoreMsb) });
    }
  });
});
