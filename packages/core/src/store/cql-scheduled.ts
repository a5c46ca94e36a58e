/**
 * Held messages on CQL (see `Store.putScheduled`): partitioned by due minute and a small
 * bucket of the id, clustered by (due_at, id), so the scheduler reads only the partitions of
 * the minutes that are due, a few requests per minute whatever is held for later; and an id
 * index to find a held message by its id. An entry is written before its id row (an id found
 * is an entry stored) and removed before it (a removal half done leaves nothing found). A held
 * message of a group is counted in its tally (`scheduled`) after both.
 */
import type cassandra from 'cassandra-driver';
import { toNumber, type BatchQuery } from './cql-rows.ts';
import { chunks, inPool } from './cql-layout.ts';
import { heldChanges, type TallyChange } from './group-tally.ts';
import { checkMessages } from './lmdb-cql-common.ts';
import type { FallbackCondition, Message, ScheduledMessage, ScheduledReason, ScheduledRef, Topic } from './port.ts';

/** One partition per due minute (and bucket). */
export const SCHEDULED_MINUTE_MS = 60_000;
/** Partitions per due minute: a campaign due at one minute is spread over this many. */
export const SCHEDULED_BUCKETS = 4;
const READ_CHUNK = 25;
const CONCURRENCY = 16;
const PARTITION_ROWS = 100;

export function scheduledSchema(ks: string): string[] {
  return [
    // `entry`: {"m": the message less its id, "r": why it is held, "f"?: a fallback's condition}. Rows are removed when released.
    `CREATE TABLE IF NOT EXISTS ${ks}.scheduled_messages (due_minute bigint, bucket int, due_at bigint, id text, entry text,
       PRIMARY KEY ((due_minute, bucket), due_at, id)) WITH CLUSTERING ORDER BY (due_at ASC, id ASC) AND gc_grace_seconds = 10800`,
    `CREATE TABLE IF NOT EXISTS ${ks}.scheduled_ids (id text PRIMARY KEY, due_at bigint) WITH gc_grace_seconds = 10800`,
  ];
}

const statements = (ks: string) => ({
  insertEntry: `INSERT INTO ${ks}.scheduled_messages (due_minute, bucket, due_at, id, entry) VALUES (?, ?, ?, ?, ?)`,
  insertId: `INSERT INTO ${ks}.scheduled_ids (id, due_at) VALUES (?, ?)`,
  selectIds: `SELECT id, due_at FROM ${ks}.scheduled_ids WHERE id IN ?`,
  selectEntry: `SELECT due_at, id, entry FROM ${ks}.scheduled_messages WHERE due_minute = ? AND bucket = ? AND due_at = ? AND id = ?`,
  selectDue: `SELECT due_at, id, entry FROM ${ks}.scheduled_messages WHERE due_minute = ? AND bucket = ? AND due_at >= ? AND due_at <= ? LIMIT ?`,
  deleteEntry: `DELETE FROM ${ks}.scheduled_messages WHERE due_minute = ? AND bucket = ? AND due_at = ? AND id = ?`,
  deleteId: `DELETE FROM ${ks}.scheduled_ids WHERE id = ?`,
});

/** What the scheduled tables need of the store that holds them. */
export interface CqlScheduledAccess {
  keyspace: string;
  /** Runs a statement at the store's consistency, `options` added. */
  execute(query: string, params: unknown[], options?: cassandra.QueryOptions): Promise<cassandra.types.ResultSet>;
  /** Writes rows grouped by partition, each group in unlogged single-partition batches of at most `maxRows`. */
  writePartitions(groups: Iterable<BatchQuery[]>, maxRows: number): Promise<void>;
  topicsNamed(names: Iterable<string>): Promise<Map<string, Topic>>;
  /** Moves the group tallies by these changes (cql-groups.ts). */
  tally(changes: readonly TallyChange[]): Promise<void>;
}

interface StoredEntry {
  m: Omit<Message, 'id'>;
  r: ScheduledReason;
  f?: FallbackCondition;
}

/** FNV-1a of the id, modulo the buckets: any process finds the same partition. */
export function scheduledBucket(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % SCHEDULED_BUCKETS;
}

const minuteOf = (dueAt: number) => Math.floor(dueAt / SCHEDULED_MINUTE_MS);

export class CqlScheduled {
  private readonly q: ReturnType<typeof statements>;

  constructor(private readonly access: CqlScheduledAccess) {
    this.q = statements(access.keyspace);
  }

  async put(entries: ScheduledMessage[]): Promise<void> {
    if (entries.length === 0) return;
    const topics = await this.access.topicsNamed(entries.map((e) => e.message.topic));
    checkMessages(
      entries.map((e) => e.message),
      (name) => topics.get(name),
    );
    // A message held again at another time (an idempotent produce never does this) leaves its old entry behind, found by no id: remove it.
    const previous = await this.dueTimes(entries.map((e) => e.message.id));
    const stale = entries.flatMap(({ message, dueAt }) => {
      const before = previous.get(message.id);
      return before !== undefined && before !== dueAt ? [{ id: message.id, dueAt: before }] : [];
    });
    if (stale.length > 0) await this.removeEntries(stale);
    const partitions = new Map<string, BatchQuery[]>();
    for (const { message, dueAt, reason, fallback } of entries) {
      const { id, ...rest } = message;
      const minute = minuteOf(dueAt);
      const bucket = scheduledBucket(id);
      const name = `${minute}/${bucket}`;
      let rows = partitions.get(name);
      if (!rows) partitions.set(name, (rows = []));
      rows.push({ query: this.q.insertEntry, params: [minute, bucket, dueAt, id, JSON.stringify({ m: rest, r: reason, f: fallback } satisfies StoredEntry)] });
    }
    await this.access.writePartitions(partitions.values(), PARTITION_ROWS);
    await this.access.writePartitions([entries.map(({ message, dueAt }) => ({ query: this.q.insertId, params: [message.id, dueAt] }))], PARTITION_ROWS);
    // After the held rows, as a produce's tally after its buffer rows: a group counts only messages stored.
    await this.access.tally(heldChanges(entries));
  }

  async get(ids: readonly string[]): Promise<Map<string, ScheduledMessage>> {
    const found = new Map<string, ScheduledMessage>();
    const dueTimes = await this.dueTimes(ids);
    await inPool([...dueTimes], CONCURRENCY, async ([id, dueAt]) => {
      const row = (await this.access.execute(this.q.selectEntry, [minuteOf(dueAt), scheduledBucket(id), dueAt, id])).first();
      if (row) found.set(id, entryOf(row));
    });
    return found;
  }

  async readDue(fromDueAt: number, toDueAt: number, limit: number): Promise<ScheduledMessage[]> {
    const out: ScheduledMessage[] = [];
    for (let minute = minuteOf(fromDueAt); minute <= minuteOf(toDueAt) && out.length < limit; minute++) {
      const want = limit - out.length;
      const ofMinute: ScheduledMessage[] = [];
      await Promise.all(
        Array.from({ length: SCHEDULED_BUCKETS }, async (_, bucket) => {
          const result = await this.access.execute(this.q.selectDue, [minute, bucket, fromDueAt, toDueAt, want], { fetchSize: want + 1 });
          for (const row of result.rows) ofMinute.push(entryOf(row));
        }),
      );
      ofMinute.sort((a, b) => a.dueAt - b.dueAt || (a.message.id < b.message.id ? -1 : a.message.id > b.message.id ? 1 : 0));
      out.push(...ofMinute.slice(0, want));
    }
    return out;
  }

  async remove(entries: ReadonlyArray<ScheduledRef>): Promise<void> {
    if (entries.length === 0) return;
    await this.removeEntries(entries);
    await this.access.writePartitions([entries.map(({ id }) => ({ query: this.q.deleteId, params: [id] }))], PARTITION_ROWS);
  }

  private async removeEntries(entries: ReadonlyArray<ScheduledRef>): Promise<void> {
    const partitions = new Map<string, BatchQuery[]>();
    for (const { id, dueAt } of entries) {
      const minute = minuteOf(dueAt);
      const bucket = scheduledBucket(id);
      const name = `${minute}/${bucket}`;
      let rows = partitions.get(name);
      if (!rows) partitions.set(name, (rows = []));
      rows.push({ query: this.q.deleteEntry, params: [minute, bucket, dueAt, id] });
    }
    await this.access.writePartitions(partitions.values(), PARTITION_ROWS);
  }

  private async dueTimes(ids: readonly string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    await inPool(chunks([...new Set(ids)], READ_CHUNK), CONCURRENCY, async (chunk) => {
      const result = await this.access.execute(this.q.selectIds, [chunk], { fetchSize: chunk.length + 1 });
      for (const row of result.rows) found.set(row.get('id') as string, toNumber(row.get('due_at')));
    });
    return found;
  }
}

function entryOf(row: cassandra.types.Row): ScheduledMessage {
  const { m, r, f } = JSON.parse(row.get('entry') as string) as StoredEntry;
  return { message: { id: row.get('id') as string, ...m }, dueAt: toNumber(row.get('due_at')), reason: r, ...(f ? { fallback: f } : {}) };
}
