/**
 * Priority lanes on CQL (see `Store.scanPriorityLane`): a table shaped like the buffer's key,
 *   priority_lanes ((topic, shard, bucket), ts, id)
 * where `topic` is the lane's name (`laneName`: `<topic>#high`), so a lane is read with the
 * buffer's own range reads, and a long window finds its non-empty minutes through the buffer's
 * bucket index, where the lane's minutes are entered under the same name. Rows carry their
 * topic's retention as TTL, under TimeWindowCompactionStrategy, like the buffer's. A lane row
 * is written before its message's buffer row: a message a lane should carry is never in the
 * buffer without its lane row (the normal read skips it), and a lane row whose message is not
 * written (yet) is passed over by the lane's reads until it is.
 */
import type { BatchQuery } from './cql-rows.ts';
import { laneName, laneOf, type Message } from './port.ts';

export function priorityLaneTable(ks: string, compaction: string): string {
  return `CREATE TABLE IF NOT EXISTS ${ks}.priority_lanes (topic text, shard int, bucket bigint, ts bigint, id text,
     PRIMARY KEY ((topic, shard, bucket), ts, id)) WITH CLUSTERING ORDER BY (ts ASC, id ASC) AND ${compaction} AND gc_grace_seconds = 10800`;
}

export const priorityLaneStatements = (ks: string) => ({
  insertLaneEntry: `INSERT INTO ${ks}.priority_lanes (topic, shard, bucket, ts, id) VALUES (?, ?, ?, ?, ?) USING TTL ?`,
  scanLane: `SELECT ts, id FROM ${ks}.priority_lanes WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ? LIMIT ?`,
});

/**
 * Adds the message's lane row (if it has a lane) to `partitions`, grouped by partition; returns
 * the partition's bucket index row when the partition is new to `partitions`.
 */
export function addLaneRow(m: Message, bucket: number, ttl: number, bucketTtl: number, insert: string, partitions: Map<string, BatchQuery[]>): unknown[] | undefined {
  const lane = laneOf(m.headers);
  if (!lane) return undefined;
  const name = laneName(m.topic, lane);
  const partition = `${m.shard}/${bucket}/${name}`;
  let rows = partitions.get(partition);
  const created = !rows;
  if (!rows) partitions.set(partition, (rows = []));
  rows.push({ query: insert, params: [name, m.shard, bucket, m.createdAt, m.id, ttl] });
  return created ? [name, m.shard, bucket, bucketTtl, partition] : undefined;
}
