/**
 * ScyllaDB CDC stream ids (vnode keyspaces). A stream id is 128 bits stored as 16 bytes,
 * high qword first:
 *
 *   <token:64> <random:38> <index:22> <version:4>
 *
 * `token` is where the stream lives on the ring (the log table's CDCPartitioner uses these
 * first 8 bytes as the partition token), `index` is the vnode the stream belongs to, and
 * `version` is 1 for every id ScyllaDB generates today.
 */

export const STREAM_ID_BYTES = 16;
export const STREAM_ID_VERSION = 1;
const INDEX_MASK = 0x3fffffn;

export interface StreamIdParts {
  /** The ring token of the stream (signed 64-bit). */
  token: bigint;
  /** The vnode index, or -1 when the id's version is not one whose layout is known. */
  vnodeIndex: number;
  version: number;
}

export function decodeStreamId(id: Uint8Array): StreamIdParts {
  if (id.length !== STREAM_ID_BYTES) throw new Error(`a CDC stream id has ${STREAM_ID_BYTES} bytes; got ${id.length}`);
  const view = new DataView(id.buffer, id.byteOffset, id.byteLength);
  const token = view.getBigInt64(0);
  const low = view.getBigUint64(8);
  const version = Number(low & 0xfn);
  // scylla-cdc-go refuses to read an index out of a layout it does not know; so do we.
  const vnodeIndex = version === STREAM_ID_VERSION ? Number((low >> 4n) & INDEX_MASK) : -1;
  return { token, vnodeIndex, version };
}

/** Builds a stream id from its parts (ScyllaDB's layout); `random` keeps its low 38 bits. */
export function encodeStreamId(parts: { token: bigint; vnodeIndex: number; random: bigint; version?: number }): Buffer {
  if (!Number.isInteger(parts.vnodeIndex) || parts.vnodeIndex < 0 || parts.vnodeIndex > Number(INDEX_MASK)) {
    throw new Error(`vnode index must be an integer from 0 to ${INDEX_MASK}; got ${parts.vnodeIndex}`);
  }
  const version = BigInt(parts.version ?? STREAM_ID_VERSION) & 0xfn;
  const low = ((parts.random & ((1n << 38n) - 1n)) << 26n) | (BigInt(parts.vnodeIndex) << 4n) | version;
  const out = Buffer.alloc(STREAM_ID_BYTES);
  out.writeBigInt64BE(BigInt.asIntN(64, parts.token), 0);
  out.writeBigUInt64BE(low, 8);
  return out;
}

/** The `0x…` hex form the Kafka connector writes into its offsets (`change_id_stream_id`). */
export function streamIdHex(id: Uint8Array): string {
  return `0x${Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')}`;
}

export function streamIdFromHex(hex: string): Buffer {
  const digits = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (!/^[0-9a-fA-F]{32}$/.test(digits)) throw new Error(`not a 16-byte hex stream id: ${hex}`);
  return Buffer.from(digits, 'hex');
}

/** Byte order of stream ids: how ScyllaDB sorts them (unsigned, high qword first). */
export function compareStreamIds(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * Streams grouped by vnode, as scylla-cdc-go's `splitStreamsByVnode` does. Ids whose layout is
 * unknown (index -1) keep the ordinal of the token range that listed them, so that they are
 * still read, one group per range.
 */
export function groupStreamsByVnode(ranges: ReadonlyArray<readonly Uint8Array[]>): Map<number, Buffer[]> {
  const groups = new Map<number, Buffer[]>();
  const rangeOffset = 1 << 22;
  ranges.forEach((streams, rangeOrdinal) => {
    for (const stream of streams) {
      const { vnodeIndex } = decodeStreamId(stream);
      const group = vnodeIndex >= 0 ? vnodeIndex : rangeOffset + rangeOrdinal;
      const list = groups.get(group) ?? [];
      list.push(Buffer.from(stream));
      groups.set(group, list);
    }
  });
  for (const list of groups.values()) list.sort(compareStreamIds);
  return new Map([...groups.entries()].sort(([a], [b]) => a - b));
}
