import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PairRateLimiter, TokenBucket } from './rate-limit.ts';

/** A clock the test moves by hand, so the limiters are checked without waiting. */
const manualClock = (start = 1_000_000) => {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
};

describe('TokenBucket', () => {
  beforeEach(() => void vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => void vi.useRealTimers());

  /** Queues `count` takers and records when each is let go. */
  const queue = (bucket: TokenBucket, count: number) => {
    const releasedAt: number[] = [];
    for (let i = 0; i < count; i++) void bucket.take().then(() => releasedAt.push(Date.now() - 1_000_000));
    return releasedAt;
  };

  it('lets takers go evenly spaced at the rate, in order, so no one-second window holds more than the rate', async () => {
    const releasedAt = queue(new TokenBucket(4), 12);
    await vi.advanceTimersByTimeAsync(5000);
    expect(releasedAt).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250, 2500, 2750]);
  });

  it('does not release a bunch after a stall: spacing is kept from the moment the stall ends', async () => {
    const bucket = new TokenBucket(4);
    const releasedAt = queue(bucket, 4);
    await vi.advanceTimersByTimeAsync(0);
    // The event loop is stuck for a second: the clock moves, no timer runs.
    vi.setSystemTime(1_000_000 + 1000);
    await vi.advanceTimersByTimeAsync(2000);
    expect(releasedAt[0]).toBe(0);
    const afterStall = releasedAt.slice(1);
    expect(afterStall).toHaveLength(3);
    for (let i = 1; i < afterStall.length; i++) expect((afterStall[i] as number) - (afterStall[i - 1] as number)).toBeGreaterThanOrEqual(250);
  });

  it('hands out no token while paused', async () => {
    const bucket = new TokenBucket(10);
    await bucket.take();
    bucket.pause(2000);
    const releasedAt = queue(bucket, 2);
    await vi.advanceTimersByTimeAsync(3000);
    expect(releasedAt).toEqual([2000, 2100]);
  });

  it('lets `burst` takers go at once, and no more', async () => {
    const releasedAt = queue(new TokenBucket(1000, 5), 7);
    await vi.advanceTimersByTimeAsync(0);
    expect(releasedAt).toEqual([0, 0, 0, 0, 0]);
    await vi.advanceTimersByTimeAsync(10);
    expect(releasedAt).toHaveLength(7);
  });

  it('drops a taker whose signal aborts, without holding up the others', async () => {
    const bucket = new TokenBucket(10);
    await bucket.take();
    const abort = new AbortController();
    const aborted = bucket.take(abort.signal);
    const releasedAt = queue(bucket, 1);
    abort.abort(new Error('stopping'));
    await expect(aborted).rejects.toThrow('stopping');
    await vi.advanceTimersByTimeAsync(200);
    expect(releasedAt).toEqual([100]);
  });
});

describe('PairRateLimiter', () => {
  it('admits the first message to a recipient and reserves ordered slots for the next ones', () => {
    const clock = manualClock();
    const limiter = new PairRateLimiter(1, 6000, clock.now);
    expect(limiter.admit('15551230001', 'm1').waitMs).toBe(0);
    expect(limiter.admit('15551230001', 'm2').waitMs).toBe(6000);
    expect(limiter.admit('15551230001', 'm3').waitMs).toBe(12_000);
    // Another recipient is not held back.
    expect(limiter.admit('15551230002', 'x1').waitMs).toBe(0);
  });

  it('lets a reserved message through when it comes back at its slot, without taking a new one', () => {
    const clock = manualClock();
    const limiter = new PairRateLimiter(1, 6000, clock.now);
    limiter.admit('1555', 'm1');
    expect(limiter.admit('1555', 'm2').waitMs).toBe(6000);
    clock.advance(3000);
    expect(limiter.admit('1555', 'm2').waitMs).toBe(3000);
    clock.advance(3000);
    expect(limiter.admit('1555', 'm2').waitMs).toBe(0);
    expect(limiter.admit('1555', 'm3').waitMs).toBe(6000);
  });

  it('counts `limit` messages per window', () => {
    const clock = manualClock();
    const limiter = new PairRateLimiter(3, 1000, clock.now);
    expect(['a', 'b', 'c', 'd'].map((id) => limiter.admit('1555', id).waitMs)).toEqual([0, 0, 0, 1000]);
  });

  it('backs a refused pair off exponentially and starts over after an accepted message', () => {
    const clock = manualClock();
    const limiter = new PairRateLimiter(1, 1000, clock.now);
    limiter.admit('1555', 'm1');
    expect(limiter.backOff('1555', 'm1')).toBe(1000);
    clock.advance(1000);
    expect(limiter.admit('1555', 'm1').waitMs).toBe(0);
    expect(limiter.backOff('1555', 'm1')).toBe(2000);
    clock.advance(2000);
    expect(limiter.admit('1555', 'm1').waitMs).toBe(0);
    limiter.accepted('1555');
    clock.advance(1000);
    expect(limiter.admit('1555', 'm2').waitMs).toBe(0);
    expect(limiter.backOff('1555', 'm2')).toBe(1000);
  });

  it('honours a longer retry hint from the provider', () => {
    const clock = manualClock();
    const limiter = new PairRateLimiter(1, 1000, clock.now);
    limiter.admit('1555', 'm1');
    expect(limiter.backOff('1555', 'm1', 30_000)).toBe(30_000);
  });

  it('gives back the slot of a message that never reached the provider', () => {
    const clock = manualClock();
    const limiter = new PairRateLimiter(1, 6000, clock.now);
    const { slotAt } = limiter.admit('1555', 'm1');
    limiter.release('1555', slotAt);
    expect(limiter.admit('1555', 'm1').waitMs).toBe(0);
  });

  it('forgets recipients once their window has passed', () => {
    const clock = manualClock();
    const limiter = new PairRateLimiter(1, 1000, clock.now);
    for (let i = 0; i < 50; i++) limiter.admit(`1555000${i}`, `m${i}`);
    expect(limiter.size).toBe(50);
    clock.advance(5000);
    limiter.admit('15559999', 'last');
    expect(limiter.size).toBe(1);
  });
});
