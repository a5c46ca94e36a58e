/**
 * How the CQL store lays rows out and groups its requests: buffer buckets, the id index's
 * slots, range reads over a partition, TTLs, and the sizing and pooling of batches.
 */
import type { MessagePosition, Topic } from './port.ts';

/** Width of a buffer partition. Fixed for the life of a keyspace: readers compute the same buckets. */
export const BUCKET_MS = 60_000;
/**
 * Positions further apart than this (ms) in one partition are read by separate range reads. A
 * range read returns every row between its ends, so a sparse set (receipts of messages sent
 * seconds apart, a campaign's messages among a busy topic's) read as one range could fetch a
 * whole busy minute of the partition for a few rows: 37,500 rows at 10,000 msg/s over 16
 * shards. Split here, a gap costs at most about 160 rows at that rate, or one more request
 * (which costs a node about as much as 25 rows). A dense set (a consumer's window on a busy
 * shard) stays one read; a window on a shard with fewer than 4 entries a second may become
 * several, when the requests are few anyway.
 */
export const MAX_READ_GAP_MS = 250;
/** Cassandra's maximum TTL (20 years). */
export const MAX_TTL_SECONDS = 630_720_000;
/** Cassandra's estimate of a row beyond its values (keys, timestamps, TTLs), for sizing batches. */
const PER_ROW_OVERHEAD_BYTES = 100;

export const ttlSeconds = (retentionMs: number): number =>
  retentionMs > 0 ? Math.min(MAX_TTL_SECONDS, Math.max(1, Math.ceil(retentionMs / 1000))) : 0;
/** A topic deleted meanwhile (or never known) keeps what is written for its messages for a day. */
const UNKNOWN_TOPIC_RETENTION_MS = 86_400_000;
/** The TTL of what is written for a message of this topic (delivery states, events, provider ids): the topic's retention. */
export const keptFor = (topics: ReadonlyMap<string, Topic>, topic: string): number => ttlSeconds(topics.get(topic)?.retentionMs ?? UNKNOWN_TOPIC_RETENTION_MS);

/**
 * About what a row weighs in a batch, for keeping batches under the node's limits: its values
 * as UTF-8 (a string's length would undercount any text beyond ASCII up to 3×), numbers as 8.
 */
export function estimatedBytes(params: readonly unknown[]): number {
  let bytes = PER_ROW_OVERHEAD_BYTES;
  for (const value of params) bytes += typeof value === 'string' ? Buffer.byteLength(value) : 8;
  return bytes;
}

/** Runs `work` on every item with at most `concurrency` in flight. */
export async function inPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/**
 * The range reads that fetch these positions of a table partitioned like the buffer: grouped
 * by partition (topic, shard, bucket), each in ts order, and split wherever two consecutive
 * positions lie more than `maxGapMs` apart. Each read runs from its first position's ts to its
 * last's.
 */
export function rangeReads(positions: readonly MessagePosition[], maxGapMs = MAX_READ_GAP_MS): MessagePosition[][] {
  const partitions = new Map<string, MessagePosition[]>();
  for (const p of positions) {
    const key = `${p.shard}/${Math.floor(p.ts / BUCKET_MS)}/${p.topic}`;
    const group = partitions.get(key);
    if (group) group.push(p);
    else partitions.set(key, [p]);
  }
  const reads: MessagePosition[][] = [];
  for (const group of partitions.values()) {
    group.sort((a, b) => a.ts - b.ts);
    let run: MessagePosition[] = [group[0]!];
    for (let i = 1; i < group.length; i++) {
      const p = group[i]!;
      if (p.ts - run[run.length - 1]!.ts > maxGapMs) {
        reads.push(run);
        run = [];
      }
      run.push(p);
    }
    reads.push(run);
  }
  return reads;
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
/** Width of a time slot of the id index, and how many partitions share one slot. */
const POSITION_SLOT_MS = 10_000;
const POSITION_SLOT_SPREAD = 8;

/**
 * The partition of an id in the id index. A UUIDv7 (the ids the bus gives) carries its time:
 * ids of the same 10 s share one of 8 partitions, chosen by their last byte, so a produce
 * writes its index as a few single-partition batches and no partition grows without bound,
 * while a busy slot still spreads over up to 8 replica sets. An id the bus generates ends with
 * its message's shard (ids.ts), so its index spreads as the topic's buffer does (a one-shard
 * topic writes one index partition per slot, beside its one buffer partition per minute); a
 * producer's own UUIDv7 ends with random bits. Any other id has a partition of its own.
 */
export function positionSlot(id: string): string {
  if (!UUID_V7.test(id)) return `=${id}`;
  const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return `${Math.floor(ms / POSITION_SLOT_MS)}/${parseInt(id.slice(-2), 16) % POSITION_SLOT_SPREAD}`;
}
