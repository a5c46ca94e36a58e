/**
 * Source partitions and offsets, in the shape ScyllaDB's Kafka connector stores them, so that
 * an operator who knows one reads the other:
 *
 *   partition {keyspace_name, table_name, vnode_id, generation_start}   (all strings; generation_start in ms)
 *   offset    {window_start, window_end}                                (timeuuids of the window bounds)
 *             + {change_id_stream_id: "0x…", change_id_time: timeuuid}  once a change of the window was consumed
 *
 * On restart a vnode re-reads its window from `window_start` and skips every write up to and
 * including the change id, so nothing is lost and nothing published twice.
 */
import { streamIdFromHex, streamIdHex } from './stream-id.ts';
import { compareTimeuuids, minTimeuuid, timeuuidBytes, timeuuidString, timeuuidToMillis } from './timeuuid.ts';

export interface PartitionId {
  keyspace: string;
  table: string;
  vnode: number;
  generationStartMs: number;
}

/** The last write consumed in a window: its `cdc$time`, then its stream. */
export interface ChangeId {
  time: Buffer;
  streamId: Buffer;
}

export interface VnodeOffset {
  windowStartMs: number;
  windowEndMs: number;
  changeId?: ChangeId;
}

export function sourcePartition(id: PartitionId): Record<string, string> {
  return {
    keyspace_name: id.keyspace,
    table_name: id.table,
    vnode_id: String(id.vnode),
    generation_start: String(id.generationStartMs),
  };
}

export function sourceOffset(offset: VnodeOffset): Record<string, string> {
  const out: Record<string, string> = {
    window_start: timeuuidString(minTimeuuid(offset.windowStartMs)),
    window_end: timeuuidString(minTimeuuid(offset.windowEndMs)),
  };
  if (offset.changeId) {
    out.change_id_stream_id = streamIdHex(offset.changeId.streamId);
    out.change_id_time = timeuuidString(offset.changeId.time);
  }
  return out;
}

/** Reads a stored offset back; null when it is not one of ours (then the vnode starts afresh). */
export function parseSourceOffset(stored: Record<string, unknown> | null | undefined): VnodeOffset | null {
  if (!stored) return null;
  try {
    const { window_start: start, window_end: end, change_id_stream_id: stream, change_id_time: time } = stored;
    if (typeof start !== 'string' || typeof end !== 'string') return null;
    const offset: VnodeOffset = { windowStartMs: timeuuidToMillis(start), windowEndMs: timeuuidToMillis(end) };
    if (typeof stream === 'string' && typeof time === 'string') {
      offset.changeId = { streamId: streamIdFromHex(stream), time: timeuuidBytes(time) };
    }
    return offset;
  } catch {
    return null;
  }
}

/** Whether a write (`time`, `streamId`) comes after the change id, in read order. */
export function isAfterChange(time: Buffer, streamId: Buffer, changeId: ChangeId | undefined): boolean {
  if (!changeId) return true;
  const byTime = compareTimeuuids(time, changeId.time);
  if (byTime !== 0) return byTime > 0;
  return Buffer.compare(streamId, changeId.streamId) > 0;
}
