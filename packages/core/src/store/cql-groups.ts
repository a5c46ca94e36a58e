/**
 * The CQL store's group tallies and cancellations (see group-tally.ts for the design).
 *
 * `group_tallies` has one partition per (group, topic, shard, connector; '' for produced
 * messages): the tally and its version in static columns, and a row per message holding its
 * mark. A connector's writes so never contend with another connector's, nor with produces. A change is
 * one read and one lightweight transaction on that partition: read the version and the marks
 * in one single-partition query (a sentinel row, message id '', is always there to carry the
 * static columns), then a conditional batch (single partition, so Paxos applies it whole) writes the new marks
 * and the tally `IF version = <read>`. A race lost, or a CAS timeout whose outcome is unknown,
 * reads again: a change already applied finds its marks written and changes nothing.
 * `group_shards` lists a group's partitions, so a report is one read of it and one small read
 * per partition. Everything lives as long as the topic keeps its messages (TTL); a held
 * message's mark that much longer than it is held, and a tally never less long than it already
 * would (its remaining TTL is read with the marks): a write of a message released today must not
 * let the tally expire before the marks of one held for next month.
 */
import cassandra from 'cassandra-driver';
import { addTally, byPartition, emptyTally, foldChanges, markKey, PRODUCED, type GroupMark, type TallyChange, type TallyPartition } from './group-tally.ts';
import { chunks, inPool, MAX_TTL_SECONDS } from './cql-layout.ts';
import { toNumber } from './cql-rows.ts';
import type { GroupTally, MessagePosition } from './port.ts';

const { types } = cassandra;
type Client = cassandra.Client;
type QueryOptions = cassandra.QueryOptions;

/** Marks per conditional batch: keeps it far below the node's batch size limit. */
const MARKS_PER_LWT = 150;
/** Tries of one partition's LWT before the write fails (and its caller retries it). */
const LWT_TRIES = 50;
/** The row every tally partition has once written: it carries the static columns to a read of marks. */
const SENTINEL = '';
/** Partitions tallied at once. */
const CONCURRENCY = 8;

export const groupTableStatements = (ks: string): string[] => [
  // `mark`: {own?, receipt?} as JSON; `tally`: {messages, connectors: {connector: {state: n}}}.
  `CREATE TABLE IF NOT EXISTS ${ks}.group_tallies (grp text, topic text, shard int, connector text, message_id text, mark text,
     tally text static, version bigint static, PRIMARY KEY ((grp, topic, shard, connector), message_id))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.group_shards (grp text, topic text, shard int, connector text, PRIMARY KEY ((grp), topic, shard, connector))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.cancelled_messages (topic text, shard int, message_id text, at bigint, PRIMARY KEY ((topic, shard), message_id))`,
  `CREATE TABLE IF NOT EXISTS ${ks}.cancelled_groups (grp text PRIMARY KEY, at bigint)`,
];

const groupStatements = (ks: string) => ({
  insertGroupShard: `INSERT INTO ${ks}.group_shards (grp, topic, shard, connector) VALUES (?, ?, ?, ?) USING TTL ?`,
  selectGroupShards: `SELECT topic, shard, connector FROM ${ks}.group_shards WHERE grp = ?`,
  selectTally: `SELECT tally, version FROM ${ks}.group_tallies WHERE grp = ? AND topic = ? AND shard = ? AND connector = ? LIMIT 1`,
  selectMarks: `SELECT tally, version, TTL(tally) AS tally_ttl, message_id, mark FROM ${ks}.group_tallies WHERE grp = ? AND topic = ? AND shard = ? AND connector = ? AND message_id IN ?`,
  updateTally: `UPDATE ${ks}.group_tallies USING TTL ? SET tally = ?, version = ? WHERE grp = ? AND topic = ? AND shard = ? AND connector = ? IF version = ?`,
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
}

/**
 * How long a partition's rows written for these changes are kept: the topic's retention
 * (`seconds`; 0 keeps them forever), after the latest due time of the held messages among them.
 */
function keptSeconds(seconds: number, changes: readonly TallyChange[]): number {
  if (seconds === 0) return 0;
  let heldUntil = 0;
  for (const change of changes) if (change.heldUntil !== undefined && change.heldUntil > heldUntil) heldUntil = change.heldUntil;
  const heldFor = Math.ceil((heldUntil - Date.now()) / 1000);
  return heldFor > 0 ? Math.min(MAX_TTL_SECONDS, seconds + heldFor) : seconds;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CqlGroups {
  private readonly q: ReturnType<typeof groupStatements>;
  /** Connector partitions this store has listed in `group_shards` (a produce lists its own each time, refreshing the TTL). */
  private readonly listed = new Set<string>();

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
      const seconds = keptSeconds(ttl(partition.topic), partition.changes);
      const list = (listSeconds: number) =>
        this.execute(this.q.insertGroupShard, [partition.group, partition.topic, partition.shard, partition.connector, listSeconds], { ...this.context.plain, isIdempotent: true });
      // Listed for the report: by the produce, and by each connector's first write (idempotent, cached).
      const listed = `${partition.group}\u0000${partition.topic}\u0000${partition.shard}\u0000${partition.connector}`;
      if (partition.connector === PRODUCED || !this.listed.has(listed)) {
        await list(seconds);
        if (this.listed.size > 100_000) this.listed.clear();
        this.listed.add(listed);
      }
      let tallyKept = seconds;
      for (const part of chunks(partition.changes, MARKS_PER_LWT)) tallyKept = Math.max(tallyKept, await this.applyPart({ ...partition, changes: part }, seconds));
      // The listing as long as the tally it lists (a release must not cut short what a later hold needs).
      if (seconds > 0 && tallyKept > seconds) await list(tallyKept);
    });
  }

  /** Applies one LWT's worth of changes; resolves with the TTL the tally was written with (0: none, or nothing written). */
  private async applyPart(partition: TallyPartition, ttl: number): Promise<number> {
    const { group, topic, shard, connector } = partition;
    const key = [group, topic, shard, connector];
    for (let attempt = 1; ; attempt++) {
      const { version, stored, tallyTtl, marks } = await this.readMarks(partition, key);
      const tally: GroupTally = stored ? { topic, shard, ...(JSON.parse(stored) as Omit<GroupTally, 'topic' | 'shard'>) } : emptyTally(topic, shard);
      const written = foldChanges(tally, marks, partition.changes);
      if (written.size === 0) return 0;
      const next = version === null || version === undefined ? 1 : toNumber(version) + 1;
      // Never shorter than it already lives: marks written earlier (a message held for later) keep their tally.
      const tallyKept = ttl > 0 && tallyTtl !== null ? Math.max(ttl, tallyTtl) : ttl;
      const counts: Omit<GroupTally, 'topic' | 'shard'> = { messages: tally.messages, connectors: tally.connectors, ...(tally.scheduled ? { scheduled: tally.scheduled } : {}) };
      const queries = [
        {
          query: this.q.updateTally,
          params: [tallyKept, JSON.stringify(counts), next, ...key, version ?? null],
        },
        ...[...written].map(([markId, mark]) => {
          const messageId = markId.split('\u0000')[1]!;
          return { query: this.q.insertMark, params: [...key, messageId, JSON.stringify(mark), ttl] };
        }),
        { query: this.q.insertMark, params: [...key, SENTINEL, '{}', tallyKept] },
      ];
      if (await this.conditionalBatch(queries)) return tallyKept;
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

  /**
   * The partition's version, tally and the marks of the changed messages, in one read: a
   * single-partition read sees a conditional batch whole or not at all, so the marks match the
   * version (and the LWT's condition catches a write that landed since).
   */
  private async readMarks(partition: TallyPartition, key: unknown[]) {
    const ids = [...new Set(partition.changes.map((c) => c.messageId)), SENTINEL];
    const marks = new Map<string, GroupMark>();
    const result = await this.execute(this.q.selectMarks, [...key, ids], { ...this.context.plain, fetchSize: ids.length + 10 });
    let version: cassandra.types.Long | null = null;
    let stored: string | null = null;
    let tallyTtl: number | null = null;
    for (const row of result.rows) {
      version = (row.get('version') as cassandra.types.Long | null) ?? version;
      stored = (row.get('tally') as string | null) ?? stored;
      tallyTtl = (row.get('tally_ttl') as number | null) ?? tallyTtl;
      const id = row.get('message_id') as string;
      const mark = row.get('mark') as string | null;
      if (id !== SENTINEL && mark !== null) marks.set(markKey(partition.connector, id), JSON.parse(mark) as GroupMark);
    }
    return { version, stored, tallyTtl, marks };
  }

  async readTallies(group: string): Promise<GroupTally[]> {
    const shards = (await this.execute(this.q.selectGroupShards, [group], { ...this.context.plain, fetchSize: 10_000 })).rows;
    // One tally per (topic, shard): the sum of its connectors' partitions.
    const tallies = new Map<string, GroupTally>();
    await inPool(shards, CONCURRENCY, async (row) => {
      const topic = row.get('topic') as string;
      const shard = row.get('shard') as number;
      const connector = row.get('connector') as string;
      const stored = (await this.execute(this.q.selectTally, [group, topic, shard, connector], this.context.plain)).first()?.get('tally') as string | null | undefined;
      const at = `${shard}/${topic}`;
      let tally = tallies.get(at);
      if (!tally) tallies.set(at, (tally = emptyTally(topic, shard)));
      if (stored) addTally(tally, JSON.parse(stored) as Omit<GroupTally, 'topic' | 'shard'>);
    });
    return [...tallies.values()];
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
