import { validate, version } from 'uuid';
import { describe, expect, it } from 'vitest';
import { impliedPosition, UuidV7Generator } from './ids.ts';

describe('UuidV7Generator', () => {
  it('makes valid version-7 UUIDs that carry the time and sort in the order they were made', () => {
    const ids = new UuidV7Generator();
    const now = Date.UTC(2025, 4, 17, 12, 30, 0, 123);
    const made = [ids.next(now - 5), ...Array.from({ length: 5000 }, () => ids.next(now)), ids.next(now - 1000), ids.next(now + 1)];
    for (const id of made) {
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
      expect(id[19]).toMatch(/[89ab]/);
    }
    expect(new Set(made).size).toBe(made.length);
    expect([...made].sort()).toEqual(made);
    // The first 48 bits are the Unix time in ms.
    expect(parseInt(made[1]!.replace(/-/g, '').slice(0, 12), 16)).toBe(now);
    expect(parseInt(made[0]!.replace(/-/g, '').slice(0, 12), 16)).toBe(now - 5);
    // 5000 ids in one millisecond spend the 12-bit counter and move on to the next millisecond.
    expect(parseInt(made[5000]!.replace(/-/g, '').slice(0, 12), 16)).toBe(now + 1);
  });
});

describe('impliedPosition', () => {
  it('reads back the time and the shard an id was made for, and nothing from other ids', () => {
    const ids = new UuidV7Generator();
    const now = Date.UTC(2025, 4, 17, 12, 30, 0, 123);
    for (const shard of [0, 1, 15, 255, 256, 4095, 65535]) {
      const id = ids.next(now, shard);
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
      expect(impliedPosition(id)).toEqual({ ts: now, shard });
    }
    // Made for a shard, ids of one millisecond still sort in the order they were made.
    const made = [3, 0, 2, 1].map((shard) => ids.next(now, shard));
    expect([...made].sort()).toEqual(made);
    expect(impliedPosition('a-producer-id')).toBeUndefined();
    expect(impliedPosition('0196de0c-e5bb-4f3a-8c2e-1a2b3c4d5e6f')).toBeUndefined(); // version 4
    expect(impliedPosition(ids.next(now, 7).toUpperCase())).toBeUndefined(); // not as made
  });
});
