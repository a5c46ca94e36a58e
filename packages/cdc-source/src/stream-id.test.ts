import { describe, expect, it } from 'vitest';
import { compareStreamIds, decodeStreamId, encodeStreamId, groupStreamsByVnode, streamIdFromHex, streamIdHex } from './stream-id.ts';

describe('stream ids', () => {
  it('decode the token, vnode index and version of ScyllaDB’s layout', () => {
    // token 0x8000000000000001 (the smallest token + 1), random bits 0x2aaaaaaaaa, index 5, version 1
    const id = Buffer.from('8000000000000001' + 'aaaaaaa8' + '00000051', 'hex');
    expect(decodeStreamId(id)).toEqual({ token: -(2n ** 63n) + 1n, vnodeIndex: 5, version: 1 });
  });

  it('read the index as scylla-cdc-java does: (lower dword & 0x3FFFFF0) >> 4', () => {
    for (const index of [0, 1, 255, 4096, 0x3fffff]) {
      const id = encodeStreamId({ token: 123n, vnodeIndex: index, random: 0x3fffffffffn });
      const lowerDword = id.readUInt32BE(12);
      expect((lowerDword & 0x3fffff0) >> 4).toBe(index);
      expect(decodeStreamId(id).vnodeIndex).toBe(index);
    }
  });

  it('round-trip through encode and hex', () => {
    const id = encodeStreamId({ token: -42n, vnodeIndex: 17, random: 0x1234567n });
    expect(decodeStreamId(id)).toEqual({ token: -42n, vnodeIndex: 17, version: 1 });
    const hex = streamIdHex(id);
    expect(hex).toMatch(/^0x[0-9a-f]{32}$/);
    expect(streamIdFromHex(hex).equals(id)).toBe(true);
  });

  it('give no vnode index for a layout version other than 1 (as scylla-cdc-go)', () => {
    const id = encodeStreamId({ token: 1n, vnodeIndex: 3, random: 0n, version: 2 });
    expect(decodeStreamId(id)).toMatchObject({ vnodeIndex: -1, version: 2 });
  });

  it('refuse ids that are not 16 bytes, and bad hex', () => {
    expect(() => decodeStreamId(Buffer.alloc(15))).toThrow(/16 bytes/);
    expect(() => streamIdFromHex('0x1234')).toThrow(/16-byte/);
    expect(() => encodeStreamId({ token: 0n, vnodeIndex: 1 << 22, random: 0n })).toThrow(/vnode index/);
  });

  it('sort as ScyllaDB does: unsigned bytes, token first', () => {
    const low = encodeStreamId({ token: 1n, vnodeIndex: 0, random: 0n });
    const high = encodeStreamId({ token: -1n, vnodeIndex: 0, random: 0n }); // 0xffff… is above 0x0000…01
    expect(compareStreamIds(low, high)).toBeLessThan(0);
  });

  it('group streams by vnode index, each group in byte order; unknown layouts by range', () => {
    const a = encodeStreamId({ token: 100n, vnodeIndex: 1, random: 1n });
    const b = encodeStreamId({ token: 50n, vnodeIndex: 1, random: 2n });
    const c = encodeStreamId({ token: 200n, vnodeIndex: 0, random: 3n });
    const odd = encodeStreamId({ token: 300n, vnodeIndex: 9, random: 4n, version: 3 });
    const groups = groupStreamsByVnode([[c], [a, b], [odd]]);
    expect([...groups.keys()]).toEqual([0, 1, (1 << 22) + 2]);
    expect(groups.get(1)!.map((s) => decodeStreamId(s).token)).toEqual([50n, 100n]);
    expect(groups.get(0)![0]!.equals(c)).toBe(true);
  });
});
