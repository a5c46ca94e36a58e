import { validate, version } from 'uuid';
import { describe, expect, it } from 'vitest';
import { UuidV7Generator } from './ids.ts';

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
