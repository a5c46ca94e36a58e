import cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { compareTimeuuids, maxTimeuuid, minTimeuuid, timeuuidFromMicros, timeuuidString, timeuuidToMicros, timeuuidToMillis } from './timeuuid.ts';

const { TimeUuid } = cassandra.types;

describe('timeuuid ↔ µs', () => {
  it('reads the write time of a timeuuid to the microsecond', () => {
    const date = new Date('2025-03-04T05:06:07.123Z');
    // ticks are 100 ns units within the millisecond: 4560 → 456 µs
    const uuid = TimeUuid.fromDate(date, 4560, 'node01', 'c1');
    expect(timeuuidToMicros(uuid.toString())).toBe(date.getTime() * 1000 + 456);
    expect(timeuuidToMicros(uuid.getBuffer())).toBe(date.getTime() * 1000 + 456);
    expect(timeuuidToMillis(uuid.toString())).toBe(date.getTime());
  });

  it('makes a timeuuid of a write timestamp as ScyllaDB does: exact µs, v1, RFC 4122 variant', () => {
    const micros = 1_767_225_600_123_456;
    const bytes = timeuuidFromMicros(micros);
    expect(timeuuidToMicros(bytes)).toBe(micros);
    const parsed = TimeUuid.fromString(timeuuidString(bytes));
    expect(parsed.getDatePrecision()).toEqual({ date: new Date(Math.floor(micros / 1000)), ticks: (micros % 1000) * 10 });
    expect(bytes[6]! >> 4).toBe(1);
    expect(bytes[8]! >> 6).toBe(0b10);
    expect(timeuuidFromMicros(micros).equals(bytes)).toBe(false); // random clock sequence and node
  });

  it('min and max timeuuids are CQL’s minTimeuuid/maxTimeuuid (Cassandra’s UUIDGen bytes)', () => {
    const ms = Date.parse('2024-12-31T23:59:59.999Z');
    expect(timeuuidString(minTimeuuid(ms))).toBe(TimeUuid.min(new Date(ms), 0).toString());
    // The driver's max keeps the RFC variant bits (0xbf…); Cassandra's is 0x7f… in every low
    // byte, larger still under signed comparison, so it bounds every timeuuid of that ms.
    const max = maxTimeuuid(ms);
    expect(timeuuidString(max)).toBe(TimeUuid.max(new Date(ms), 9999).toString().replace(/-bf7f-/, '-7f7f-'));
    expect(compareTimeuuids(TimeUuid.max(new Date(ms), 9999).getBuffer(), max)).toBeLessThan(0);
  });

  it('orders by time, then by the low bytes compared as signed bytes', () => {
    const ms = 1_700_000_000_000;
    const inside = timeuuidFromMicros(ms * 1000 + 500);
    expect(compareTimeuuids(minTimeuuid(ms), inside)).toBeLessThan(0);
    expect(compareTimeuuids(inside, maxTimeuuid(ms))).toBeLessThan(0);
    expect(compareTimeuuids(maxTimeuuid(ms), minTimeuuid(ms + 1))).toBeLessThan(0);
    // Same instant: 0x80… (negative) sorts before 0x7f… (positive), unlike plain byte order.
    const a = Buffer.from(timeuuidFromMicros(ms * 1000, Buffer.from('8000000000000000', 'hex')));
    const b = Buffer.from(a);
    a[15] = 0x80;
    b[15] = 0x7f;
    expect(compareTimeuuids(a, b)).toBeLessThan(0);
    expect(compareTimeuuids(a, Buffer.from(a))).toBe(0);
  });

  it('refuses UUIDs that are not time-based', () => {
    expect(() => timeuuidToMicros('5c1b0a7e-3d1c-4c6f-9a7e-1f2e3d4c5b6a')).toThrow(/version 1/);
    expect(() => timeuuidToMicros('not-a-uuid')).toThrow(/not a UUID/);
  });
});
