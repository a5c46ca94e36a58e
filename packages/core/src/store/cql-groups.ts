/**
 * The CQL store's group tallies and cancellations (see group-tally.ts for the design).
 *
 * `group_tallies` has one partition per (group, topic, shard): the tally and its version in
 * static columns, and a row per (connector, message) holding that message's mark. A change is
 * one lightweight transaction on that partition: read the version and the marks at SERIAL,
 * then a conditional batch (single partition, so Paxos applies it whole) writes the new marks
 * and the tally `IF version = <read>`. A race lost, or a CAS timeout whose outcome is unknown,
 * reads again: a change already applied finds its marks written and changes nothing.
 * `group_shards` lists a group's partitions, so a report is one read of it and one small read
 * per partition. Everything lives as long as the topic keeps its messages (TTL).
 */
import cassandra from 'cassandra-driver';
import { byPartition, emptyTally, foldChanges, markKey, PRODUCED, type GroupMark, type TallyChange, type TallyPartition } from './group-tally.ts';
import { chunks, inPool } from './cql-layout.ts';
import { toNumber } from './cql-rows.ts';
import type { GroupTally, MessagePosition } from './port.ts';

const { types } = cassandra;
type Client = cassandra.Client;
type QueryOptions = cassandra.QueryOptions;

/** Marks per conditional batch: keeps it far below the node's batch size limit. */
const MARKS_PER_LWT = 150;
/** Tries of one partition's LWT before the write fails (and its caller retries it). */
const LWT_TRIES = 50;
/** Partitions tallied at once. */
const CONCURRENCY = 8;

export const groupTableStatements = (ks: string): string[] => [
  // `mark`: {own?, receipt?} as JSON; `tally`: {messages, connectors: {connector: {state: n}}}.
  `CREATE TABLE IF NOT EXISTS ${ks}.group_tallies (grp text, topic text, shard int, connector text, message_id text, mark text,
     tally text static, version bigint static, PRIMARY KEY ((grp, topic, shard), connector, message_id))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.group_shards (grp text, topic text, shard int, PRIMARY KEY ((grp), topic, shard))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.cancelled_messages (topic text, shard int, message_id text, at bigint, PRIMARY KEY ((topic, shard), message_id))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.cancelled_groups (grp text PRIMARY KEY, at bigint)`,
];

const groupStatements = (ks: string) => ({
  insertGroupShard: `INSERT INTO ${ks}.group_shards (grp, topic, shard) VALUES (?, ?, ?) USING TTL ?`,
  selectGroupShards: `SELECT topic, shard FROM ${ks}.group_shards WHERE grp = ?`,
  selectTally: `SELECT tally, version FROM ${ks}.group_tallies WHERE grp = ? AND topic = ? AND shard = ? LIMIT 1`,
  selectMarks: `SELECT message_id, mark FROM ${ks}.group_tallies WHERE grp = ? AND topic = ? AND shard = ? AND connector = ? AND message_id IN ?`,
  updateTally: `UPDATE ${ks}.group_tallies USING TTL ? SET tally = ?, version = ? WHERE grp = ? AND topic = ? AND shard = ? IF version = ?`,
  insertMark: `INSERT INTO ${ks}.group_tallies (grp, topic, shard, connector, message_id, mark) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?`,
  insertCancelledMessage: `INSERT INTO ${ks}.cancelled_messages (topic, shard, message_id, at) VALUES (?, ?, ?, ?) USING TTL ?`,
  selectCancelledMessages: `SELECT message_id FROM ${ks}.cancelled_messages WHERE topic = ? AND shard = ? AND message_id IN ?`,
  insertCancelledGroup: `INSERT INTO ${ks}.cancelled_groups (grp, at) VALUES (?, ?)`,
  selectCancelledGroups: `SELECT grp FROM ${ks}.cancelled_groups WHERE grp IN ?`,
});

export interface CqlGroupsContext {
  client: () => Client;
  keyspace: string;
  /** Plain reads and writes at the store's consistency. */
  plain: QueryOptions;
  /** Conditional writes. */
  lwt: QueryOptions;
  /** Reads at SERIAL: they finish any Paxos round in progress first. */
  linearizable: QueryOptions;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CqlGroups {
  private readonly q: ReturnType<typeof groupStatements>;

  constructor(private readonly context: CqlGroupsContext) {
    this.q = groupStatements(context.keyspace);
  }

  private execute(query: string, params: unknown[], options: QueryOptions) {
    return this.context.client().execute(query, params, options);
  }

  /** Moves the tallies by these changes (`ttl`: seconds, by topic). Resolves once every partition has applied them. */
  async apply(changes: readonly TallyChange[], ttl: (topic: string) => number): Promise<void> {
    if (changes.length === 0) return;
    await inPool(byPartition(changes), CONCURRENCY, async (partition) => {
      const seconds = ttl(partition.topic);
      if (partition.changes.some((c) => c.connector === PRODUCED)) {
        await this.execute(this.q.insertGroupShard, [partition.group, partition.topic, partition.shard, seconds], { ...this.context.plain, isIdempotent: true });
      }
      for (const part of chunks(partition.changes, MARKS_PER_LWT)) await this.applyPart({ ...partition, changes: part }, seconds);
    });
  }

  private async applyPart(partition: TallyPartition, ttl: number): Promise<void> {
    const { group, topic, shard } = partition;
    const key = [group, topic, shard];
    for (let attempt = 1; ; attempt++) {
      const row = (await this.execute(this.q.selectTally, key, this.context.linearizable)).first();
      const version = row?.get('version') as cassandra.types.Long | null | undefined;
      const stored = row?.get('tally') as string | null | undefined;
      const tally: GroupTally = stored ? { topic, shard, ...(JSON.parse(stored) as Omit<GroupTally, 'topic' | 'shard'>) } : emptyTally(topic, shard);
      const marks = await this.readMarks(partition);
      const written = foldChanges(tally, marks, partition.changes);
      if (written.size === 0) return;
      const next = version === null || version === undefined ? 1 : toNumber(version) + 1;
      const queries = [
        {
          query: this.q.updateTally,
          params: [ttl, JSON.stringify({ messages: tally.messages, connectors: tally.connectors }), next, ...key, version ?? null],
        },
        ...[...written].map(([markId, mark]) => {
          const [connector, messageId] = markId.split('\u0000') as [string, string];
          return { query: this.q.insertMark, params: [...key, connector, messageId, JSON.stringify(mark), ttl] };
        }),
      ];
      if (await this.conditionalBatch(queries)) return;
      if (attempt >= LWT_TRIES) throw new Error(`group ${group}: the tally of ${topic}/${shard} kept changing under ${LWT_TRIES} tries`);
      await sleep(Math.random() * Math.min(200, 5 * attempt));
    }
  }

  /** True if applied; false if the condition failed or the outcome is unknown (a CAS timeout): read again. */
  private async conditionalBatch(queries: Array<{ query: string; params: unknown[] }>): Promise<boolean> {
    try {
      return (await this.context.client().batch(queries, { ...this.context.lwt, logged: true })).wasApplied();
    } catch (error) {
      const { code, writeType } = error as { code?: number; writeType?: string };
      if (code === types.responseErrorCodes.writeTimeout && writeType === 'CAS') return false;
      throw error;
    }
  }

  private async readMarks(partition: TallyPartition): Promise<Map<string, GroupMark>> {
    const { group, topic, shard } = partition;
    const byConnector = new Map<string, Set<string>>();
    for (const { connector, messageId } of partition.changes) {
      let ids = byConnector.get(connector);
      if (!ids) byConnector.set(connector, (ids = new Set()));
      ids.add(messageId);
    }
    const marks = new Map<string, GroupMark>();
    for (const [connector, ids] of byConnector) {
      const result = await this.execute(this.q.selectMarks, [group, topic, shard, connector, [...ids]], { ...this.context.linearizable, fetchSize: ids.size + 10 });
      for (const row of result.rows) {
        const mark = row.get('mark') as string | null;
        if (mark !== null) marks.set(markKey(connector, row.get('message_id') as string), JSON.parse(mark) as GroupMark);
      }
    }
    return marks;
  }

  async readTallies(group: string): Promise<GroupTally[]> {
    const shards = (await this.execute(this.q.selectGroupShards, [group], { ...this.context.plain, fetchSize: 10_000 })).rows;
    const tallies: GroupTally[] = [];
    await inPool(shards, CONCURRENCY, async (row) => {
      const topic = row.get('topic') as string;
      const shard = row.get('shard') as number;
      const stored = (await this.execute(this.q.selectTally, [group, topic, shard], this.context.plain)).first()?.get('tally') as string | null | undefined;
      tallies.push(stored ? { topic, shard, ...(JSON.parse(stored) as Omit<GroupTally, 'topic' | 'shard'>) } : emptyTally(topic, shard));
    });
    return tallies;
  }

  async cancelMessages(positions: readonly MessagePosition[], ttl: (topic: string) => number, at = Date.now()): Promise<void> {
    await inPool(positions, CONCURRENCY, async ({ topic, shard, messageId }) => {
      await this.execute(this.q.insertCancelledMessage, [topic, shard, messageId, at, ttl(topic)], { ...this.context.plain, isIdempotent: true });
    });
  }

  async cancelGroup(group: string, at: number): Promise<void> {
    await this.execute(this.q.insertCancelledGroup, [group, at], { ...this.context.plain, isIdempotent: true });
  }

  async cancelledAmong(positions: readonly MessagePosition[]): Promise<Set<string>> {
    const cancelled = new Set<string>();
    const byShard = new Map<string, { topic: string; shard: number; ids: string[] }>();
    const groups = new Set<string>();
    for (const { topic, shard, messageId, group } of positions) {
      const key = `${shard}/${topic}`;
      let entry = byShard.get(key);
      if (!entry) byShard.set(key, (entry = { topic, shard, ids: [] }));
      entry.ids.push(messageId);
      if (group !== undefined) groups.add(group);
    }
    const reads: Array<Promise<void>> = [...byShard.values()].map(async ({ topic, shard, ids }) => {
      for (const chunk of chunks(ids, 100)) {
        const result = await this.execute(this.q.selectCancelledMessages, [topic, shard, chunk], { ...this.context.plain, fetchSize: chunk.length + 10 });
        for (const row of result.rows) cancelled.add(row.get('message_id') as string);
      }
    });
    let cancelledGroups = new Set<string>();
    if (groups.size > 0) {
      reads.push(
        (async () => {
          const result = await this.execute(this.q.selectCancelledGroups, [[...groups]], { ...this.context.plain, fetchSize: groups.size + 10 });
          cancelledGroups = new Set(result.rows.map((row) => row.get('grp') as string));
        })(),
      );
    }
    await Promise.all(reads);
    if (cancelledGroups.size > 0) for (const p of positions) if (p.group !== undefined && cancelledGroups.has(p.group)) cancelled.add(p.messageId);
    return cancelled;
  }
}
