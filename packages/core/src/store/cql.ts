/**
 * The store on ScyllaDB or Cassandra (`cql://host1,host2:9042/keyspace?dc=datacenter1`),
 * through cassandra-driver: prepared statements everywhere, token-aware routing (the
 * driver's default policy routes each statement to a replica of its partition).
 *
 * Consistency: plain reads and writes at `consistency` (LOCAL_QUORUM unless the URL says
 * otherwise); leases, topic and connector creation, connector updates and the connectors
 * version of the cluster view are lightweight transactions at `serial` (SERIAL). A connector
 * row is only ever written through LWT, so its writes are ordered by Paxos ballots rather
 * than by client clocks.
 *
 * The buffer. Messages are kept, bodies and all, in one table for every topic, partitioned
 * by (topic, shard, bucket) with bucket = floor(ts / BUCKET_MS), clustered by (ts, id): a
 * partition holds one minute of one shard, so no partition grows without bound and a
 * consumer's usual window (a few seconds behind now) is one or two partitions. Rows are
 * written once, never updated or deleted, each `USING TTL` = its topic's retention, under
 * TimeWindowCompactionStrategy: a whole SSTable drops once its newest row has expired. One
 * table with a per-write TTL rather than a table per topic with default_time_to_live, because
 * creating tables at run time is a schema change that every node must agree on, racy when
 * several workers create topics at once, and slow; the price is that a time window's SSTable
 * lives as long as the longest retention among the topics written in that window.
 *
 * Every hot write is a single-partition batch. A produce writes one batch per buffer
 * partition it touches (a partition's rows are applied atomically and cost about one
 * mutation), then the id index `message_positions` (id → topic, shard, ts) for the ids a
 * producer chose: an id the bus generates says where its message is, and needs none. A
 * consumer reads a window of its partition and gets the messages whole, and keeps delivery
 * states in `delivery_states`, partitioned like the buffer (per connector): the `sending` and
 * `sent` rows of a batch are again one partition write per shard. Measured on one Cassandra
 * node, a row costs the server 25–40 µs in a single-partition batch against 55–80 µs in a
 * multi-partition one and 100–200 µs as a single-row INSERT.
 *
 * A long window (a consumer catching up after downtime) would walk many empty minutes; the
 * `buffer_buckets` index lists the non-empty ones.
 *
 * Beside this file: the URL (cql-url.ts), the schema and its migrations (cql-schema.ts), the
 * statements (cql-statements.ts), row mapping (cql-rows.ts), the layout of partitions and
 * batches (cql-layout.ts), and the priority lanes (cql-priorities.ts).
 */
import { randomUUID } from 'node:crypto';
import cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import { createLogger } from '../logging.ts';
import { impliedPosition, positionImplied, type ImpliedPosition } from './ids.ts';
import { BUCKET_MS, chunks, estimatedBytes, inPool, keptFor, MAX_TTL_SECONDS, positionSlot, rangeReads, ttlSeconds } from './cql-layout.ts';
import { connectorFromRow, connectorValues, deliveryFromRow, templateFromRow, templateVersionBody, templateVersionFromRow, deliveryPartition, KEY_COLUMNS, leaseFromRow, messageFromRow, sameDetail, toNumber, topicFromRow, type BatchQuery } from './cql-rows.ts';
import { migrateSchema } from './cql-schema.ts';
import { CqlGroups } from './cql-groups.ts';
import { deliveryChanges, messageChanges, receiptChanges } from './group-tally.ts';
import { CqlSuppressions } from './cql-suppressions.ts';
import { CqlScheduled } from './cql-scheduled.ts';
import { addLaneRow } from './cql-priorities.ts';
import { fetchSupportedOptions, shardingFromSupported, type ClusterSharding } from './cql-sharding.ts';
import { statements, type CqlStatements } from './cql-statements.ts';
import { CONSISTENCIES, parseCqlUrl, SERIAL_CONSISTENCIES, type CqlStoreOptions } from './cql-url.ts';
import { canonicalJson } from './canonical-json.ts';
import { coreError } from '../errors.ts';
import { checkMessages, EventSequence, notInitialized, outgrownTopics } from './lmdb-cql-common.ts';
import type {
  ClusterView,
  ConnectorRecord,
  Delivery,
  GroupTally,
  Lease,
  Member,
  Message,
  MessageEvent,
  MessagePosition,
  NewMessageEvent,
  ProviderIdEntry,
  ReceiptState,
  ScheduledMessage,
  ScheduledRef,
  SourceOffset,
  StatusRecord,
  Store,
  TemplateRecord,
  TemplateVersion,
  Suppression,
  SuppressionPage,
  Topic,
} from './port.ts';
import { laneName, withReceipt, type Lane } from './port.ts';

/** A receipt state as its cell holds it: less what the row's key holds. */
type StoredReceipt = Omit<ReceiptState, 'connector' | 'messageId' | 'topic' | 'shard' | 'ts'>;

const { Client, types } = cassandra;
type Client = cassandra.Client;
type Row = cassandra.types.Row;
type QueryOptions = cassandra.QueryOptions;

export { BUCKET_MS, MAX_READ_GAP_MS, positionSlot, rangeReads } from './cql-layout.ts';
export { parseCqlUrl, type CqlStoreOptions } from './cql-url.ts';

/** How long the list of every topic is reused by `locateMessages` before it is read again. */
const TOPIC_LIST_MS = 5_000;
/** Windows up to this many buckets are read directly; longer ones go through the bucket index. */
const DIRECT_BUCKETS = 4;
/** Ids per `IN ?` read: small chunks in parallel beat one large IN (measured: 25 ≈ 3× 100). */
const READ_CHUNK = 25;
/** Requests in flight at once for multi-row writes and chunked reads. */
const CONCURRENCY = 32;
/**
 * Rows per unlogged batch in multi-row upserts: one request carries many rows, which the
 * coordinator forwards to their replicas. Measured on one node: ~7× the rate of single-row
 * writes at 50 rows; no gain beyond.
 */
const UPSERT_BATCH_ROWS = 50;
/**
 * Estimated bytes per batch: below Cassandra's default batch_size_fail_threshold (50 KiB; it
 * warns above 5 KiB, and ScyllaDB fails above 1 MiB) and far below max_mutation_size. A
 * message larger than this goes alone.
 */
const PARTITION_BATCH_BYTES = 40 * 1024;
/** Rows per batch of small rows (delivery states, the id index). */
const PARTITION_BATCH_ROWS = 500;
/** Rows per page of range reads that are not limited. */
const RANGE_PAGE_ROWS = 5_000;
/** Members' rows outlive their logical expiry by this much, then Cassandra drops them. */
const MEMBER_ROW_GRACE_SECONDS = 600;
/** The cluster view is one partition. */
const CLUSTER_PARTITION = 0;
const LWT_ATTEMPTS = 8;

export class CqlStore implements Store {
  readonly description: string;
  /** The cluster's sharding when it is ScyllaDB (learned by init), else undefined. */
  sharding: ClusterSharding | undefined;
  private readonly options: CqlStoreOptions;
  private readonly logger: Logger;
  private readonly plain: QueryOptions;
  private readonly idempotent: QueryOptions;
  private readonly lwt: QueryOptions;
  private readonly linearizable: QueryOptions;
  private readonly sequence = new EventSequence();
  /** Topics never change once created, so one seen once can be remembered (for its retention). */
  private readonly knownTopics = new Map<string, Topic>();
  private topicListRead: { at: number; topics: Topic[] } | undefined;
  /** Buffer partitions this store has entered in the bucket index: each is entered once. */
  private readonly writtenBuckets = new Set<string>();
  private clientOrUndefined: Client | undefined;
  private initializing: Promise<void> | undefined;
  private readonly q: CqlStatements;
  private readonly groups: CqlGroups;
  private readonly suppressionList: CqlSuppressions;
  /** Held messages: cql-scheduled.ts. */
  private readonly scheduled: CqlScheduled;

  constructor(options: CqlStoreOptions | string) {
    this.options = typeof options === 'string' ? parseCqlUrl(options) : options;
    const { contactPoints, keyspace, consistency, serialConsistency } = this.options;
    this.description = `cql://${contactPoints.join(',')}/${keyspace}`;
    this.logger = this.options.logger ?? createLogger({ name: 'omnibus-store' });
    const serial = SERIAL_CONSISTENCIES[serialConsistency]!;
    this.plain = { prepare: true, consistency: CONSISTENCIES[consistency]! };
    this.idempotent = { ...this.plain, isIdempotent: true };
    this.lwt = { ...this.plain, serialConsistency: serial };
    this.linearizable = { prepare: true, consistency: serial };
    this.q = statements(keyspace);
    this.groups = new CqlGroups({ client: () => this.client, keyspace, plain: this.plain, lwt: this.lwt });
    this.suppressionList = new CqlSuppressions(keyspace, (query, params, options) => this.execute(query, params, options), this.plain, this.idempotent);
    this.scheduled = new CqlScheduled({
      keyspace,
      execute: (query, params, extra) => this.execute(query, params, { ...this.plain, ...extra }),
      writePartitions: (groups, maxRows) => this.writePartitions(groups, maxRows),
      topicsNamed: (names) => this.topicsNamed(names),
      tally: async (changes) => {
        if (changes.length === 0) return;
        const topics = await this.topicsNamed(changes.map((c) => c.topic));
        await this.groups.apply(changes, (topic) => keptFor(topics, topic));
      },
    });
  }

  async init(): Promise<void> {
    this.initializing ??= this.open().catch(async (error: unknown) => {
      this.initializing = undefined;
      await this.clientOrUndefined?.shutdown();
      this.clientOrUndefined = undefined;
      throw error;
    });
    return this.initializing;
  }

  private async open(): Promise<void> {
    const { contactPoints, port, localDataCenter, credentials, keyspace, replication } = this.options;
    const client = new Client({
      contactPoints,
      localDataCenter,
      protocolOptions: { port },
      credentials,
      queryOptions: { prepare: true, consistency: this.plain.consistency, serialConsistency: this.lwt.serialConsistency },
    });
    this.clientOrUndefined = client;
    await client.connect();
    await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = ${replication}`);
    await client.execute(
      `CREATE TABLE IF NOT EXISTS ${keyspace}.schema_migrations (version int PRIMARY KEY, description text, state text, owner text,
         claimed_at bigint, applied_at bigint)`,
    );
    await migrateSchema(client, {
      keyspace,
      owner: `${process.pid}-${this.sequence.tag}`,
      plain: this.plain,
      linearizable: this.linearizable,
      lwt: this.lwt,
      logger: this.logger,
      description: this.description,
    });
    await this.learnSharding();
  }

  /** ScyllaDB says how many shards each node has; the bus may align topic shard counts with it. */
  private async learnSharding(): Promise<void> {
    const first = this.options.contactPoints[0]!;
    const [, host = first, port = String(this.options.port)] = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(first) ?? [];
    try {
      this.sharding = shardingFromSupported(await fetchSupportedOptions(host, Number(port)));
    } catch (error) {
      this.logger.warn({ store: this.description, err: error }, 'could not ask the cluster how it shards; assuming Cassandra');
    }
    if (this.sharding) {
      this.logger.info(
        { store: this.description, nrShards: this.sharding.nrShards, ignoreMsb: this.sharding.ignoreMsb },
        // shardOf(t, k·N, msb) = s implies shardOf(t, N, msb) = floor(s / k): each topic shard within one core.
        `ScyllaDB with ${this.sharding.nrShards} shards per node (ignore_msb ${this.sharding.ignoreMsb}): a topic whose shard count is a ` +
          `multiple of ${this.sharding.nrShards}, routed with ignore_msb ${this.sharding.ignoreMsb}, keeps each of its shards on one core`,
      );
    } else {
      this.logger.info(
        { store: this.description },
        'Cassandra (no shard-per-core): topic shard counts are independent of the cluster; they only spread work across workers',
      );
    }
  }

  async close(): Promise<void> {
    const client = this.clientOrUndefined;
    this.clientOrUndefined = undefined;
    this.initializing = undefined;
    await client?.shutdown();
  }

  private get client(): Client {
    if (!this.clientOrUndefined) throw notInitialized(this.description);
    return this.clientOrUndefined;
  }

  private execute(query: string, params: unknown[], options: QueryOptions = this.plain) {
    return this.client.execute(query, params, options);
  }

  /** Upserts many rows: unlogged batches of a few rows, several batches in flight. */
  private async upsertRows(query: string, rows: unknown[][]): Promise<void> {
    await this.writePartitions([rows.map((params) => ({ query, params }))], UPSERT_BATCH_ROWS);
  }

  /** Reads rows `WHERE <key> IN ?`, a chunk of ids per request, chunks in parallel. */
  private async readIn(query: string, ids: readonly string[], extra: unknown[] = []): Promise<Row[]> {
    const unique = [...new Set(ids)];
    const rows: Row[] = [];
    await inPool(chunks(unique, READ_CHUNK), CONCURRENCY, async (chunk) => {
      const result = await this.execute(query, [chunk, ...extra], { ...this.plain, fetchSize: chunk.length * 8 + 100 });
      rows.push(...result.rows);
    });
    return rows;
  }

  // Topics

  async createTopic(topic: Topic): Promise<boolean> {
    const result = await this.execute(
      this.q.insertTopic,
      [
        topic.name,
        topic.shards,
        topic.schema === undefined ? types.unset : JSON.stringify(topic.schema),
        topic.retentionMs,
        topic.createdAt,
        topic.quietHours === undefined ? types.unset : JSON.stringify(topic.quietHours),
      ],
      this.lwt,
    );
    return result.wasApplied();
  }

  async getTopic(name: string): Promise<Topic | undefined> {
    const row = (await this.execute(this.q.selectTopic, [name])).first();
    return row ? topicFromRow(row) : undefined;
  }

  async reshardTopic(topic: Topic, expectedShards: number): Promise<boolean> {
    const result = await this.execute(this.q.reshardTopic, [topic.shards, JSON.stringify(topic.reshards ?? []), topic.name, expectedShards], this.lwt);
    if (result.wasApplied()) {
      this.knownTopics.delete(topic.name);
      this.topicListRead = undefined;
    }
    return result.wasApplied();
  }

  async listTopics(): Promise<Topic[]> {
    return (await this.execute(this.q.selectTopics, [], { ...this.plain, fetchSize: 10_000 })).rows.map(topicFromRow);
  }

  /**
   * Every topic, read again once the list is older than TOPIC_LIST_MS: ids that say where their
   * message is are looked for in each topic (a topic created since may be missed for that long).
   */
  private async topicList(now = Date.now(), fresh = false): Promise<Topic[]> {
    if (fresh || !this.topicListRead || now - this.topicListRead.at > TOPIC_LIST_MS) this.topicListRead = { at: now, topics: await this.listTopics() };
    return this.topicListRead.topics;
  }

  /** The topics of these names that exist, remembered once seen (for their retention). */
  private async topicsNamed(names: Iterable<string>): Promise<Map<string, Topic>> {
    for (const name of new Set(names)) {
      if (this.knownTopics.has(name)) continue;
      const topic = await this.getTopic(name);
      if (topic) this.knownTopics.set(name, topic);
    }
    return this.knownTopics;
  }

  /**
   * Writes rows grouped by partition in unlogged batches of at most PARTITION_BATCH_BYTES (or
   * `maxRows`), several in flight. A partition's rows stay together (one mutation each), and
   * small partitions share a batch: a request costs the node far more than a row (measured
   * on one node: ~0.5 ms per request against ~20 µs per row), so a produce spread over 16
   * shards is a few requests, not 16.
   */
  private async writePartitions(groups: Iterable<BatchQuery[]>, maxRows: number): Promise<void> {
    const batches: BatchQuery[][] = [];
    let batch: BatchQuery[] = [];
    let bytes = 0;
    for (const rows of groups) {
      for (const row of rows) {
        const rowBytes = estimatedBytes(row.params);
        if (batch.length > 0 && (bytes + rowBytes > PARTITION_BATCH_BYTES || batch.length >= maxRows)) {
          batches.push(batch);
          batch = [];
          bytes = 0;
        }
        batch.push(row);
        bytes += rowBytes;
      }
    }
    if (batch.length > 0) batches.push(batch);
    await inPool(batches, CONCURRENCY, async (batch) => {
      if (batch.length === 1) await this.execute(batch[0]!.query, batch[0]!.params, this.idempotent);
      else await this.client.batch(batch, { ...this.idempotent, logged: false });
    });
  }

  // Ingest

  async appendMessages(messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    let topics = await this.topicsNamed(messages.map((m) => m.topic));
    const outgrown = outgrownTopics(messages, (name) => topics.get(name));
    if (outgrown.size > 0) {
      for (const name of outgrown) this.knownTopics.delete(name);
      topics = await this.topicsNamed(messages.map((m) => m.topic));
    }
    checkMessages(messages, (name) => topics.get(name));
    const partitions = new Map<string, BatchQuery[]>();
    const positions = new Map<string, BatchQuery[]>();
    const groups = new Map<string, BatchQuery[]>();
    const lanes = new Map<string, BatchQuery[]>();
    const newBuckets: unknown[][] = [];
    for (const m of messages) {
      const ttl = ttlSeconds(topics.get(m.topic)!.retentionMs);
      const bucket = Math.floor(m.createdAt / BUCKET_MS);
      const payload = JSON.stringify({ k: m.key, t: m.token, h: m.headers, g: m.group, v: m.value });
      const partition = `${m.shard}/${bucket}/${m.topic}`;
      const bucketTtl = ttl === 0 ? 0 : ttl + BUCKET_MS / 1000;
      let rows = partitions.get(partition);
      if (!rows) {
        partitions.set(partition, (rows = []));
        if (!this.writtenBuckets.has(partition)) newBuckets.push([m.topic, m.shard, bucket, bucketTtl, partition]);
      }
      // Priority lanes: cql-priorities.ts.
      const laneBucket = addLaneRow(m, bucket, ttl, bucketTtl, this.q.insertLaneEntry, lanes);
      if (laneBucket && !this.writtenBuckets.has(laneBucket[4] as string)) newBuckets.push(laneBucket);
      rows.push({
        query: this.q.insertBufferedMessage,
        params: [m.topic, m.shard, bucket, m.createdAt, m.id, payload, ttl],
      });
      if (!positionImplied(m)) {
        const slot = positionSlot(m.id);
        let slotted = positions.get(slot);
        if (!slotted) positions.set(slot, (slotted = []));
        const position = JSON.stringify([m.topic, m.shard, m.createdAt]);
        slotted.push({ query: this.q.insertMessagePosition, params: [slot, m.id, position, ttl] });
      }
      if (m.group !== undefined) {
        let members = groups.get(m.group);
        if (!members) groups.set(m.group, (members = []));
        members.push({ query: this.q.insertGroupMessage, params: [m.group, m.id, ttl] });
      }
    }
    // The bucket index first: a reader walking a long window must not miss a bucket that has rows.
    if (newBuckets.length > 0) {
      await this.upsertRows(this.q.insertBufferBucket, newBuckets.map((row) => row.slice(0, 4)));
      for (const row of newBuckets) this.writtenBuckets.add(row[4] as string);
      if (this.writtenBuckets.size > 100_000) this.writtenBuckets.clear();
    }
    // Lane rows before the buffer's: the normal read skips a message its lane carries.
    if (lanes.size > 0) await this.writePartitions(lanes.values(), PARTITION_BATCH_ROWS);
    await this.writePartitions([...partitions.values(), ...groups.values()], PARTITION_BATCH_ROWS);
    // The id index last: an id it finds is a message stored, so an idempotent produce retried
    // after a failure half-way writes again what may be missing, never skips it.
    await this.writePartitions(positions.values(), PARTITION_BATCH_ROWS);
    // After the buffer: a group counts only messages that are stored (a produce retried with its ids counts once).
    await this.groups.apply(messageChanges(messages), (topic) => keptFor(topics, topic));
  }

  /**
   * An id the bus generated says where its message is (ids.ts): it is read there with the
   * key-only buffer query, in the topics `within` first, then in the others. The other ids, and
   * any not found so, are looked up in the id index.
   */
  async locateMessages(ids: readonly string[], within?: readonly string[]): Promise<Map<string, MessagePosition>> {
    const found = new Map<string, MessagePosition>();
    const implied = [...new Set(ids)].flatMap((id) => {
      const position = impliedPosition(id);
      return position ? [{ id, ...position }] : [];
    });
    if (implied.length > 0 && within && within.length > 0) {
      let named = await this.topicsNamed(within);
      // An id naming a shard no cached topic has: a count may have been raised since.
      if (implied.some(({ shard }) => within.every((name) => (named.get(name)?.shards ?? 0) <= shard))) {
        for (const name of within) this.knownTopics.delete(name);
        named = await this.topicsNamed(within);
      }
      await this.readImplied(implied, within.flatMap((name) => named.get(name) ?? []), found);
    }
    const notWithin = (topics: readonly Topic[]) => topics.filter((topic) => !within?.includes(topic.name));
    const elsewhere = implied.filter(({ id }) => !found.has(id));
    if (elsewhere.length > 0) {
      const cached = this.topicListRead;
      const listed = await this.topicList();
      await this.readImplied(elsewhere, notWithin(listed), found);
      // Not found with a list read earlier, by a caller that could not say where to look
      // (a REST lookup): perhaps in a topic created since. (A produce's own ids and a sink's
      // receipts name their topics, which are read by name.)
      const unfound = elsewhere.filter(({ id }) => !found.has(id));
      if (unfound.length > 0 && this.topicListRead === cached && !within) {
        const known = new Set(listed.map((topic) => topic.name));
        await this.readImplied(unfound, notWithin(await this.topicList(Date.now(), true)).filter((topic) => !known.has(topic.name)), found);
      }
    }
    const bySlot = new Map<string, string[]>();
    for (const id of new Set(ids)) {
      if (found.has(id)) continue;
      const slot = positionSlot(id);
      const group = bySlot.get(slot);
      if (group) group.push(id);
      else bySlot.set(slot, [id]);
    }
    const requests = [...bySlot].flatMap(([slot, group]) => chunks(group, READ_CHUNK).map((chunk) => [slot, chunk] as const));
    await inPool(requests, CONCURRENCY, async ([slot, chunk]) => {
      const result = await this.execute(this.q.selectMessagePositions, [slot, chunk], { ...this.plain, fetchSize: chunk.length + 1 });
      for (const row of result.rows) {
        const messageId = row.get('id') as string;
        const [topic, shard, ts] = JSON.parse(row.get('position') as string) as [string, number, number];
        found.set(messageId, { messageId, topic, shard, ts });
      }
    });
    return found;
  }

  /** Finds the messages at the positions their ids imply, in these topics (those with such a shard). */
  private async readImplied(implied: ReadonlyArray<{ id: string } & ImpliedPosition>, topics: readonly Topic[], found: Map<string, MessagePosition>): Promise<void> {
    const candidates = implied.flatMap(({ id, shard, ts }) => topics.filter((topic) => shard < topic.shards).map((topic) => ({ messageId: id, topic: topic.name, shard, ts })));
    await this.readAtPositions(candidates, this.q.scanBufferSlice, [], (row, { topic, shard }) => {
      const messageId = row.get('id') as string;
      found.set(messageId, { messageId, topic, shard, ts: toNumber(row.get('ts')) });
    });
  }

  async getMessages(ids: readonly string[]): Promise<Map<string, Message>> {
    return this.getMessagesAt([...(await this.locateMessages(ids)).values()]);
  }

  async getMessagesAt(positions: readonly MessagePosition[]): Promise<Map<string, Message>> {
    const found = new Map<string, Message>();
    await this.readAtPositions(positions, this.q.selectBufferSlice, [], (row, { topic, shard }) => {
      const message = messageFromRow(row, topic, shard);
      found.set(message.id, message);
    });
    return found;
  }

  /**
   * Reads the rows at these positions of a table partitioned like the buffer (`partitionPrefix`,
   * then topic, shard, bucket; clustered by ts, id): one range read per run of nearby positions
   * of a partition (see rangeReads), keeping the rows asked for.
   */
  private async readAtPositions(
    positions: readonly MessagePosition[],
    query: string,
    partitionPrefix: unknown[],
    take: (row: Row, partition: { topic: string; shard: number }) => void,
    idColumn = 'id',
  ): Promise<void> {
    await inPool(rangeReads(positions), CONCURRENCY, async (run) => {
      const { topic, shard } = run[0]!;
      const bucket = Math.floor(run[0]!.ts / BUCKET_MS);
      const wanted = new Map(run.map((p) => [p.messageId, p.ts]));
      const from = run[0]!.ts;
      const to = run[run.length - 1]!.ts;
      let pageState: string | undefined;
      do {
        const page = await this.execute(query, [...partitionPrefix, topic, shard, bucket, from, to], { ...this.plain, fetchSize: RANGE_PAGE_ROWS, pageState });
        for (const row of page.rows) {
          if (wanted.get(row.get(idColumn) as string) === toNumber(row.get('ts'))) take(row, { topic, shard });
        }
        pageState = page.pageState ?? undefined;
      } while (pageState);
    });
  }

  async readBuffer(topic: string, shard: number, fromTs: number, toTs: number, limit: number): Promise<Message[]> {
    return this.rangeOfBuffer(this.q.selectBuffer, (row) => messageFromRow(row, topic, shard), topic, shard, fromTs, toTs, limit);
  }

  async scanBuffer(topic: string, shard: number, fromTs: number, toTs: number, limit: number): Promise<MessagePosition[]> {
    const positionOfRow = (row: Row): MessagePosition => ({ messageId: row.get('id'), topic, shard, ts: toNumber(row.get('ts')) });
    return this.rangeOfBuffer(this.q.scanBuffer, positionOfRow, topic, shard, fromTs, toTs, limit);
  }

  /** The rows of (topic, shard) with fromTs <= ts <= toTs in order, at most `limit`, through `query` (one bucket per request). */
  private async rangeOfBuffer<T>(
    query: string,
    fromRow: (row: Row) => T,
    topic: string,
    shard: number,
    fromTs: number,
    toTs: number,
    limit: number,
  ): Promise<T[]> {
    if (limit <= 0 || fromTs > toTs) return [];
    const from = Math.ceil(fromTs);
    const to = Math.floor(toTs);
    const firstBucket = Math.floor(from / BUCKET_MS);
    const lastBucket = Math.floor(to / BUCKET_MS);
    const entries: T[] = [];
    const readBuckets = async (buckets: number[]) => {
      // In parallel, each with the full remaining limit; kept in bucket order, then cut.
      const remaining = limit - entries.length;
      const results = await Promise.all(
        buckets.map((bucket) =>
          this.execute(query, [topic, shard, bucket, from, to, remaining], { ...this.plain, fetchSize: remaining }),
        ),
      );
      for (const result of results) {
        for (const row of result.rows) {
          if (entries.length >= limit) return;
          entries.push(fromRow(row));
        }
      }
    };

    if (lastBucket - firstBucket < DIRECT_BUCKETS) {
      const buckets: number[] = [];
      for (let bucket = firstBucket; bucket <= lastBucket; bucket++) buckets.push(bucket);
      await readBuckets(buckets);
      return entries;
    }
    let pageState: string | undefined;
    do {
      const page = await this.execute(this.q.selectBufferBuckets, [topic, shard, firstBucket, lastBucket], {
        ...this.plain,
        fetchSize: 64,
        pageState,
      });
      const buckets = page.rows.map((row) => toNumber(row.get('bucket')));
      for (const group of chunks(buckets, DIRECT_BUCKETS)) {
        await readBuckets(group);
        if (entries.length >= limit) return entries;
      }
      pageState = page.pageState ?? undefined;
    } while (pageState);
    return entries;
  }

  // Priority lanes (cql-priorities.ts): read like the buffer, under the lane's name

  async scanPriorityLane(topic: string, shard: number, lane: Lane, fromTs: number, toTs: number, limit: number): Promise<MessagePosition[]> {
    const positionOfRow = (row: Row): MessagePosition => ({ messageId: row.get('id'), topic, shard, ts: toNumber(row.get('ts')) });
    return this.rangeOfBuffer(this.q.scanLane, positionOfRow, laneName(topic, lane), shard, fromTs, toTs, limit);
  }

  // Watermarks

  async getWatermark(consumer: string, topic: string, shard: number): Promise<number | undefined> {
    const row = (await this.execute(this.q.selectWatermark, [consumer, topic, shard])).first();
    return row ? toNumber(row.get('ts')) : undefined;
  }

  async setWatermark(consumer: string, topic: string, shard: number, ts: number): Promise<void> {
    await this.execute(this.q.insertWatermark, [consumer, topic, shard, ts], this.idempotent);
  }

  // Source offsets

  async getSourceOffsets(connector: string): Promise<SourceOffset[]> {
    const result = await this.execute(this.q.selectSourceOffsets, [connector], { ...this.plain, fetchSize: 100_000 });
    return result.rows.map((row) => ({
      partition: JSON.parse(row.get('partition_json') as string) as Record<string, unknown>,
      offset: JSON.parse(row.get('offset_json') as string) as Record<string, unknown>,
    }));
  }

  async putSourceOffsets(connector: string, offsets: SourceOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    // One partition (the connector's): a batch on one partition is applied atomically, without a batch log.
    await this.client.batch(
      offsets.map((offset) => ({
        query: this.q.insertSourceOffset,
        params: [connector, canonicalJson(offset.partition), JSON.stringify(offset.offset)],
      })),
      { ...this.idempotent, logged: false },
    );
  }

  async deleteSourceOffsets(connector: string): Promise<void> {
    await this.execute(this.q.deleteSourceOffsets, [connector], this.idempotent);
  }

  // Deliveries

  async getDeliveries(connector: string, positions: readonly MessagePosition[]): Promise<Map<string, Delivery>> {
    const found = new Map<string, Delivery>();
    await this.readAtPositions(
      positions,
      this.q.selectDeliveryRange,
      [connector],
      (row, { topic, shard }) => {
        // A row holds the sink's state, its receipt's, or both (a receipt that came first).
        const own = row.get('state') === null ? undefined : deliveryFromRow(row, connector, topic, shard);
        const receipt = row.get('receipt') as string | null;
        const delivery = withReceipt(
          own,
          receipt === null ? undefined : { ...(JSON.parse(receipt) as StoredReceipt), connector, messageId: row.get('message_id'), topic, shard, ts: toNumber(row.get('ts')) },
        );
        if (delivery) found.set(delivery.messageId, delivery);
      },
      'message_id',
    );
    return found;
  }

  async putDeliveries(deliveries: Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const topics = await this.topicsNamed(deliveries.map((d) => d.topic));
    // The tally first (see group-tally.ts): a delivery not written after it is written again by whoever owns its shard next.
    await this.groups.apply(deliveryChanges(deliveries), (topic) => keptFor(topics, topic));
    const partitions = new Map<string, BatchQuery[]>();
    // Consecutive rows of a batch mostly share their detail (attempt, epoch, worker, time): encoded once.
    let last: Delivery | undefined;
    let detail = '';
    for (const d of deliveries) {
      if (!last || !sameDetail(d, last)) {
        const fields: Record<string, unknown> = {};
        for (const [field, value] of Object.entries(d)) if (!KEY_COLUMNS.has(field) && value !== undefined) fields[field] = value;
        detail = JSON.stringify(fields);
        last = d;
      }
      const { rows, bucket } = deliveryPartition(partitions, d.connector, d);
      rows.push({
        query: this.q.insertDeliveryState,
        params: [
          d.connector,
          d.topic,
          d.shard,
          bucket,
          d.ts,
          d.messageId,
          d.state,
          detail,
          keptFor(topics, d.topic),
        ],
      });
    }
    await this.writePartitions(partitions.values(), PARTITION_BATCH_ROWS);
  }

  async putReceiptStates(receipts: ReceiptState[]): Promise<void> {
    if (receipts.length === 0) return;
    const topics = await this.topicsNamed(receipts.map((r) => r.topic));
    await this.groups.apply(receiptChanges(receipts), (topic) => keptFor(topics, topic));
    const partitions = new Map<string, BatchQuery[]>();
    for (const { connector, messageId, topic, shard, ts, ...stored } of receipts) {
      const { rows, bucket } = deliveryPartition(partitions, connector, { topic, shard, ts });
      rows.push({ query: this.q.updateReceiptState, params: [keptFor(topics, topic), JSON.stringify(stored), connector, topic, shard, bucket, ts, messageId] });
    }
    await this.writePartitions(partitions.values(), PARTITION_BATCH_ROWS);
  }

  async putProviderIds(entries: ProviderIdEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const topics = await this.topicsNamed(entries.map((e) => e.topic));
    await this.upsertRows(
      this.q.insertProviderId,
      entries.map((e) => [e.connector, e.providerId, e.messageId, keptFor(topics, e.topic)]),
    );
  }

  async findByProviderId(connector: string, providerId: string): Promise<string | undefined> {
    const row = (await this.execute(this.q.selectProviderId, [connector, providerId])).first();
    return row ? (row.get('message_id') as string) : undefined;
  }

  // Events and groups

  async appendEvents(events: NewMessageEvent[]): Promise<void> {
    if (events.length === 0) return;
    const topics = await this.topicsNamed(events.map((e) => e.topic));
    const { tag } = this.sequence;
    await this.upsertRows(
      this.q.insertEvent,
      events.map((e) => [
        e.messageId,
        e.at,
        this.sequence.next(),
        tag,
        e.type,
        e.connector ?? types.unset,
        e.workerId ?? types.unset,
        e.detail === undefined ? types.unset : JSON.stringify(e.detail),
        keptFor(topics, e.topic),
      ]),
    );
  }

  async listEvents(messageId: string): Promise<MessageEvent[]> {
    const result = await this.execute(this.q.selectEvents, [messageId], { ...this.plain, fetchSize: 10_000 });
    return result.rows.map((row) => {
      const event: MessageEvent = { messageId, at: toNumber(row.get('event_at')), type: row.get('event_type') };
      const connector = row.get('connector') as string | null;
      const workerId = row.get('worker_id') as string | null;
      const detail = row.get('detail') as string | null;
      if (connector !== null) event.connector = connector;
      if (workerId !== null) event.workerId = workerId;
      if (detail !== null) event.detail = JSON.parse(detail) as Record<string, unknown>;
      return event;
    });
  }

  async listGroupMessages(group: string, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    const result = await this.execute(this.q.selectGroupMessages, [group, limit], { ...this.plain, fetchSize: limit });
    return result.rows.map((row) => row.get('message_id') as string);
  }

  // Leases: every change is a compare-and-set on (owner, epoch).

  async acquireLease(name: string, owner: string, ttlMs: number, now = Date.now()): Promise<Lease | undefined> {
    const expiresAt = now + ttlMs;
    let current = await this.readLease(name, this.plain);
    for (let attempt = 0; attempt < LWT_ATTEMPTS; attempt++) {
      let next: Lease;
      let statement: string;
      let params: unknown[];
      if (!current) {
        next = { name, owner, epoch: 1, expiresAt };
        statement = this.q.insertLease;
        params = [name, owner, 1, expiresAt];
      } else {
        if (current.owner !== owner && current.expiresAt > now) return undefined;
        // Ours already: extend, same epoch. Someone else's but expired (or released): take it, next epoch.
        const epoch = current.owner === owner ? current.epoch : current.epoch + 1;
        next = { name, owner, epoch, expiresAt };
        statement = this.q.takeLease;
        params = [owner, epoch, expiresAt, name, current.owner, current.epoch];
      }
      if (await this.compareAndSet(statement, params)) return next;
      // Lost a race, or the outcome is unknown: look again, through Paxos, at what won.
      current = await this.readLease(name, this.linearizable);
      if (current && current.owner === owner && current.epoch === next.epoch && current.expiresAt === expiresAt) return next;
    }
    return undefined;
  }

  /**
   * Runs an LWT; true if applied. A CAS write timeout leaves the outcome unknown (the proposal
   * may still be committed), so it answers false and the caller re-reads at SERIAL, which
   * finishes any in-progress proposal before answering.
   */
  private async compareAndSet(statement: string, params: unknown[]): Promise<boolean> {
    try {
      return (await this.execute(statement, params, this.lwt)).wasApplied();
    } catch (error) {
      const { code, writeType } = error as { code?: number; writeType?: string };
      if (code === types.responseErrorCodes.writeTimeout && writeType === 'CAS') return false;
      throw error;
    }
  }

  private async readLease(name: string, options: QueryOptions): Promise<Lease | undefined> {
    const row = (await this.execute(this.q.selectLease, [name], options)).first();
    return row ? leaseFromRow(row) : undefined;
  }

  async renewLease(name: string, owner: string, epoch: number, ttlMs: number, now = Date.now()): Promise<boolean> {
    if (await this.compareAndSet(this.q.renewLease, [now + ttlMs, name, owner, epoch])) return true;
    const current = await this.readLease(name, this.linearizable);
    if (current?.owner !== owner || current.epoch !== epoch) return false;
    if (current.expiresAt === now + ttlMs) return true;
    // Still ours, not extended: the LWT's outcome was unknown (a slow replica) and it was not
    // committed. Not lost: the holder keeps it until it is unsafe, and renews again.
    throw new Error(`lease ${name} was not renewed in time (the store's answer was unknown); it is still held until it expires`);
  }

  async releaseLease(name: string, owner: string, epoch: number): Promise<void> {
    // Released, not deleted: the epoch must keep growing for whoever takes the lease next.
    await this.execute(this.q.releaseLease, [name, owner, epoch], this.lwt);
  }

  async listLeases(prefix: string): Promise<Lease[]> {
    // Leases are few (connectors × shards) and each is its own partition, so that LWTs on
    // different leases never contend: listing scans the small table.
    const leases: Lease[] = [];
    let pageState: string | undefined;
    do {
      const page = await this.execute(this.q.selectLeases, [], { ...this.plain, fetchSize: 5_000, pageState });
      for (const row of page.rows) {
        const lease = leaseFromRow(row);
        if (lease.name.startsWith(prefix) && lease.owner !== '') leases.push(lease);
      }
      pageState = page.pageState ?? undefined;
    } while (pageState);
    return leases.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async acquireSessionLease(name: string, owner: string, liveMembers: readonly string[], ttlMs: number, now = Date.now()): Promise<Lease | undefined> {
    const current = await this.readLease(name, this.plain);
    if (current && current.owner !== '' && current.owner !== owner && (current.expiresAt > now || liveMembers.includes(current.owner))) return undefined;
    const next: Lease = { name, owner, epoch: (current?.epoch ?? 0) + 1, expiresAt: now + ttlMs };
    const applied = current
      ? await this.compareAndSet(this.q.takeLease, [owner, next.epoch, next.expiresAt, name, current.owner, current.epoch])
      : await this.compareAndSet(this.q.insertLease, [name, owner, next.epoch, next.expiresAt]);
    if (applied) return next;
    // Lost to another taker, or the outcome is unknown: a read through Paxos tells which.
    const after = await this.readLease(name, this.linearizable);
    return after?.owner === owner && after.epoch === next.epoch && after.expiresAt === next.expiresAt ? next : undefined;
  }

  // Members and the cluster view

  async heartbeat(member: Member, ttlMs: number): Promise<void> {
    const expiresAt = member.heartbeatAt + ttlMs;
    const rowTtl = Math.ceil(Math.max(ttlMs, expiresAt - Date.now()) / 1000) + MEMBER_ROW_GRACE_SECONDS;
    await this.execute(
      this.q.insertMember,
      [
        CLUSTER_PARTITION,
        member.id,
        member.url,
        member.startedAt,
        member.heartbeatAt,
        expiresAt,
        // Always a value ('[]' when none): a null would write a tombstone at every heartbeat.
        JSON.stringify(member.groups ?? []),
        Math.min(rowTtl, MAX_TTL_SECONDS),
      ],
      this.idempotent,
    );
  }

  async readCluster(now = Date.now()): Promise<ClusterView> {
    const result = await this.execute(this.q.selectClusterView, [CLUSTER_PARTITION], { ...this.plain, fetchSize: 10_000 });
    const view: ClusterView = { members: [], connectorsVersion: '' };
    for (const row of result.rows) {
      const kind = row.get('kind') as string;
      if (kind === 'connectors') view.connectorsVersion = (row.get('version') as string | null) ?? '';
      else if (kind === 'member' && toNumber(row.get('expires_at')) > now) {
        const groups = row.get('worker_groups') as string | null;
        view.members.push({
          id: row.get('id'),
          url: row.get('url'),
          startedAt: toNumber(row.get('started_at')),
          heartbeatAt: toNumber(row.get('heartbeat_at')),
          ...(groups && groups !== '[]' ? { groups: JSON.parse(groups) as string[] } : {}),
        });
      }
    }
    return view;
  }

  async removeMember(id: string): Promise<void> {
    await this.execute(this.q.deleteMember, [CLUSTER_PARTITION, id], this.idempotent);
  }

  // Control plane

  async putConnector(record: ConnectorRecord): Promise<void> {
    const values = connectorValues(record);
    for (let attempt = 0; attempt < LWT_ATTEMPTS; attempt++) {
      if ((await this.execute(this.q.updateConnector, [...values.slice(1), record.name], this.lwt)).wasApplied()) return;
      if ((await this.execute(this.q.insertConnector, values, this.lwt)).wasApplied()) return;
    }
    throw coreError('OMNI_ERR_STORE_CONTENDED', { connector: record.name });
  }

  async createConnector(record: ConnectorRecord): Promise<boolean> {
    return (await this.execute(this.q.insertConnector, connectorValues(record), this.lwt)).wasApplied();
  }

  async getConnector(name: string): Promise<ConnectorRecord | undefined> {
    const row = (await this.execute(this.q.selectConnector, [name])).first();
    return row ? connectorFromRow(row) : undefined;
  }

  async listConnectors(): Promise<ConnectorRecord[]> {
    return (await this.execute(this.q.selectConnectors, [], { ...this.plain, fetchSize: 10_000 })).rows.map(connectorFromRow);
  }

  async deleteConnector(name: string): Promise<void> {
    await this.execute(this.q.deleteConnector, [name], this.lwt);
  }

  async bumpConnectorsVersion(): Promise<void> {
    // Through Paxos, whose ballots order the bumps whatever the writers' clocks: a plain write
    // carrying an older client timestamp than the last bump would be lost, and its change unseen.
    const version = randomUUID();
    await this.execute(this.q.bumpConnectorsVersion, [version, CLUSTER_PARTITION, version], this.lwt);
  }

  async putStatus(status: StatusRecord): Promise<void> {
    await this.execute(
      this.q.insertStatus,
      // '' rather than null for "no trace": a null would write a tombstone on every status change.
      [status.connector, status.task ?? -1, status.state, status.workerId, status.trace ?? '', status.generation, status.updatedAt],
      this.idempotent,
    );
  }

  async listStatuses(connector: string): Promise<StatusRecord[]> {
    const result = await this.execute(this.q.selectStatuses, [connector], { ...this.plain, fetchSize: 10_000 });
    return result.rows.map((row) => {
      const task = row.get('task') as number;
      const trace = row.get('trace') as string | null;
      const status: StatusRecord = {
        connector,
        task: task < 0 ? null : task,
        state: row.get('state'),
        workerId: row.get('worker_id'),
        generation: toNumber(row.get('generation')),
        updatedAt: toNumber(row.get('updated_at')),
      };
      if (trace) status.trace = trace;
      return status;
    });
  }

  async deleteStatuses(connector: string): Promise<void> {
    await this.execute(this.q.deleteStatuses, [connector], this.idempotent);
  }

  // Templates

  async createTemplate(record: TemplateRecord): Promise<boolean> {
    const values = [record.name, record.liveVersion, record.latestVersion, record.createdAt, record.updatedAt];
    return (await this.execute(this.q.insertTemplate, values, this.lwt)).wasApplied();
  }

  async updateTemplate(record: TemplateRecord, expected: Pick<TemplateRecord, 'latestVersion' | 'liveVersion'>): Promise<boolean> {
    const values = [record.liveVersion, record.latestVersion, record.updatedAt, record.name, expected.latestVersion, expected.liveVersion];
    return (await this.execute(this.q.updateTemplate, values, this.lwt)).wasApplied();
  }

  async getTemplate(name: string): Promise<TemplateRecord | undefined> {
    const row = (await this.execute(this.q.selectTemplate, [name])).first();
    return row ? templateFromRow(row) : undefined;
  }

  async listTemplates(): Promise<TemplateRecord[]> {
    return (await this.execute(this.q.selectTemplates, [], { ...this.plain, fetchSize: 10_000 })).rows.map(templateFromRow);
  }

  async deleteTemplate(name: string): Promise<void> {
    // The record first: a template half deleted is then unknown, never one without its versions.
    await this.execute(this.q.deleteTemplate, [name], this.lwt);
    await this.execute(this.q.deleteTemplateVersions, [name], this.idempotent);
  }

  async createTemplateVersion(version: TemplateVersion): Promise<boolean> {
    return (await this.execute(this.q.insertTemplateVersion, [version.name, version.version, templateVersionBody(version)], this.lwt)).wasApplied();
  }

  async getTemplateVersion(name: string, version: number): Promise<TemplateVersion | undefined> {
    const row = (await this.execute(this.q.selectTemplateVersion, [name, version])).first();
    return row ? templateVersionFromRow(row) : undefined;
  }

  async listTemplateVersions(name: string): Promise<TemplateVersion[]> {
    return (await this.execute(this.q.selectTemplateVersions, [name], { ...this.plain, fetchSize: 10_000 })).rows.map(templateVersionFromRow);
  }

  // Group tallies and cancellations (cql-groups.ts)

  async readGroupTallies(group: string): Promise<GroupTally[]> {
    return this.groups.readTallies(group);
  }

  async cancelMessages(positions: readonly MessagePosition[]): Promise<void> {
    const topics = await this.topicsNamed(positions.map((p) => p.topic));
    await this.groups.cancelMessages(positions, (topic) => keptFor(topics, topic));
  }

  async cancelGroup(group: string, at: number): Promise<void> {
    await this.groups.cancelGroup(group, at);
  }

  async cancelledAmong(positions: readonly MessagePosition[]): Promise<Set<string>> {
    return this.groups.cancelledAmong(positions);
  }

  // Suppression list (cql-suppressions.ts)

  putSuppressions(entries: Suppression[]): Promise<void> {
    return this.suppressionList.put(entries);
  }

  findSuppressions(channel: string, addresses: readonly string[]): Promise<Suppression[]> {
    return this.suppressionList.find(channel, addresses);
  }

  deleteSuppressions(channel: string, address: string, category?: string): Promise<number> {
    return this.suppressionList.delete(channel, address, category);
  }

  listSuppressions(limit: number, cursor?: string): Promise<SuppressionPage> {
    return this.suppressionList.list(limit, cursor);
  }

  // Scheduled messages (cql-scheduled.ts)

  putScheduled(entries: ScheduledMessage[]): Promise<void> {
    return this.scheduled.put(entries);
  }

  getScheduled(ids: readonly string[]): Promise<Map<string, ScheduledMessage>> {
    return this.scheduled.get(ids);
  }

  readDueScheduled(fromDueAt: number, toDueAt: number, limit: number): Promise<ScheduledMessage[]> {
    return this.scheduled.readDue(fromDueAt, toDueAt, limit);
  }

  removeScheduled(entries: ReadonlyArray<ScheduledRef>): Promise<void> {
    return this.scheduled.remove(entries);
  }
}
