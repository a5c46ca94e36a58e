/**
 * Version 1 (time) UUIDs as CQL's `timeuuid`: 60 bits of 100 ns ticks since 1582-10-15,
 * then a clock sequence and a node id. ScyllaDB stamps each CDC log row with the timeuuid of
 * its write timestamp (microseconds), so `cdc$time` carries the write time exactly.
 *
 * Ordering follows Cassandra's and ScyllaDB's TimeUUIDType: the timestamp first, then the
 * low 8 bytes compared as SIGNED bytes. That is why the smallest timeuuid of an instant has
 * 0x80 in every low byte and the largest 0x7f, as `minTimeuuid()`/`maxTimeuuid()` do in CQL.
 */
import { randomBytes } from 'node:crypto';

/** 100 ns ticks between 1582-10-15 (the UUID epoch) and 1970-01-01. */
const GREGORIAN_OFFSET_TICKS = 0x01b21dd213814000n;
const MIN_LOW_BYTES = Buffer.from('8080808080808080', 'hex');
const MAX_LOW_BYTES = Buffer.from('7f7f7f7f7f7f7f7f', 'hex');
const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export type TimeuuidInput = string | Uint8Array;

export function timeuuidBytes(value: TimeuuidInput): Buffer {
  if (typeof value === 'string') {
    if (!UUID_PATTERN.test(value)) throw new Error(`not a UUID: ${value}`);
    return Buffer.from(value.replace(/-/g, ''), 'hex');
  }
  if (value.length !== 16) throw new Error(`a UUID has 16 bytes; got ${value.length}`);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function timeuuidString(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The 100 ns ticks since the UUID epoch held by a version 1 UUID. */
function ticksOf(bytes: Buffer): bigint {
  if ((bytes[6]! & 0xf0) !== 0x10) throw new Error(`not a version 1 (time) UUID: ${timeuuidString(bytes)}`);
  const timeLow = BigInt(bytes.readUInt32BE(0));
  const timeMid = BigInt(bytes.readUInt16BE(4));
  const timeHigh = BigInt(bytes.readUInt16BE(6) & 0x0fff);
  return (timeHigh << 48n) | (timeMid << 32n) | timeLow;
}

/** Microseconds since the Unix epoch (the write timestamp of a CDC log row). */
export function timeuuidToMicros(value: TimeuuidInput): number {
  const ticks = ticksOf(timeuuidBytes(value)) - GREGORIAN_OFFSET_TICKS;
  // Floor division: a timeuuid before 1970 still maps to the microsecond that contains it.
  const micros = ticks >= 0n ? ticks / 10n : -((-ticks + 9n) / 10n);
  return Number(micros);
}

export function timeuuidToMillis(value: TimeuuidInput): number {
  return Math.floor(timeuuidToMicros(value) / 1000);
}

function withTicks(ticks: bigint, low: Uint8Array): Buffer {
  const out = Buffer.alloc(16);
  out.writeUInt32BE(Number(ticks & 0xffffffffn), 0);
  out.writeUInt16BE(Number((ticks >> 32n) & 0xffffn), 4);
  out.writeUInt16BE(Number((ticks >> 48n) & 0x0fffn) | 0x1000, 6);
  Buffer.from(low).copy(out, 8);
  return out;
}

const ticksOfMicros = (micros: number): bigint => BigInt(Math.trunc(micros)) * 10n + GREGORIAN_OFFSET_TICKS;

/**
 * A timeuuid for a write at `micros`, as ScyllaDB's `generate_timeuuid` makes one
 * (`UUID_gen::get_random_time_UUID_from_micros`): the exact microsecond, a random clock
 * sequence and node, the RFC 4122 variant.
 */
export function timeuuidFromMicros(micros: number, random: Uint8Array = randomBytes(8)): Buffer {
  const low = Buffer.from(random.subarray(0, 8));
  low[0] = (low[0]! & 0x3f) | 0x80;
  return withTicks(ticksOfMicros(micros), low);
}

/** The smallest timeuuid of millisecond `ms` (CQL's `minTimeuuid`). */
export function minTimeuuid(ms: number): Buffer {
  return withTicks(ticksOfMicros(ms * 1000), MIN_LOW_BYTES);
}

/** The largest timeuuid of millisecond `ms` (CQL's `maxTimeuuid`): every tick of that ms is below it. */
export function maxTimeuuid(ms: number): Buffer {
  return withTicks(ticksOfMicros(ms * 1000) + 9999n, MAX_LOW_BYTES);
}

/** TimeUUIDType order: timestamp, then the low 8 bytes as signed bytes. */
export function compareTimeuuids(a: TimeuuidInput, b: TimeuuidInput): number {
  const x = timeuuidBytes(a);
  const y = timeuuidBytes(b);
  const tx = ticksOf(x);
  const ty = ticksOf(y);
  if (tx !== ty) return tx < ty ? -1 : 1;
  for (let i = 8; i < 16; i++) {
    const sx = (x[i]! << 24) >> 24;
    const sy = (y[i]! << 24) >> 24;
    if (sx !== sy) return sx < sy ? -1 : 1;
  }
  return 0;
}
