import { describe, expect, it } from 'vitest';
import { retryDelay, TokenBucket } from './pacing.ts';

describe('retryDelay', () => {
  it('draws from [0, initial × 2^(attempt−1)] capped at max, and honours a longer retry-after', () => {
    expect(retryDelay(1, 100, 10_000, undefined, () => 0.999)).toBe(99);
    expect(retryDelay(4, 100, 10_000, undefined, () => 0.5)).toBe(400);
    expect(retryDelay(20, 100, 10_000, undefined, () => 0.999)).toBe(9990);
    expect(retryDelay(1, 100, 10_000, 5000, () => 0.5)).toBe(5000);
    expect(retryDelay(5, 100, 10_000, 10, () => 0.5)).toBe(800);
  });
});

describe('TokenBucket', () => {
  it('grants a one-second burst, then refills at the rate', () => {
    const bucket = new TokenBucket(10, 0);
    expect(bucket.take(50, 0)).toBe(10);
    expect(bucket.take(1, 0)).toBe(0);
    expect(bucket.waitMs(0)).toBe(100);
    expect(bucket.take(5, 250)).toBe(2);
    bucket.setRate(0);
    expect(bucket.take(1000, 250)).toBe(1000);
  });
});
