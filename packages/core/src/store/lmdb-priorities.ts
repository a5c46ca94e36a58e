/**
 * Priority lanes on LMDB (see `Store.scanPriorityLane`): one table,
 *   priority_lanes [topic, shard, lane, ts, id] → 1
 * written in the transaction that writes the message's buffer row, and removed with it by the
 * retention sweep. A lane holds positions only: the message is read from the buffer.
 */
import type { Database, Key } from 'lmdb';
import { laneOf, type Lane, type Message, type MessagePosition } from './port.ts';

export const LMDB_PRIORITY_TABLE = 'priority_lanes';

const AFTER_ALL = Buffer.from([0xff]);

type LaneKey = [topic: string, shard: number, lane: Lane, ts: number, id: string];

export class LmdbPriorityLanes {
  constructor(private readonly table: () => Database<number, Key>) {}

  /** Enters the message in its lane, if it has one; call inside the write that stores it. */
  enter(message: Pick<Message, 'topic' | 'shard' | 'createdAt' | 'id' | 'headers'>): void {
    const lane = laneOf(message.headers);
    if (lane) this.table().put([message.topic, message.shard, lane, message.createdAt, message.id] satisfies LaneKey, 1);
  }

  /** Removes an expired message's lane entry, if it has one; call inside the sweep's write. */
  forget(topic: string, shard: number, ts: number, id: string, headers: Readonly<Record<string, string>>): void {
    const lane = laneOf(headers);
    if (lane) this.table().remove([topic, shard, lane, ts, id] satisfies LaneKey);
  }

  scan(topic: string, shard: number, lane: Lane, fromTs: number, toTs: number, limit: number): MessagePosition[] {
    if (limit <= 0 || fromTs > toTs) return [];
    const keys = this.table().getKeys({ start: [topic, shard, lane, fromTs], end: [topic, shard, lane, toTs, AFTER_ALL], limit });
    return [...keys.map((key) => ({ messageId: (key as LaneKey)[4], topic, shard, ts: (key as LaneKey)[3] }))];
  }
}
