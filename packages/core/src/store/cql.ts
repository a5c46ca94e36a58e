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
 */
import { randomUUID } from 'node:crypto';
import cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import { createLogger } from '../logging.ts';
import { impliedPosition, positionImplied, type ImpliedPosition } from '../bus/ids.ts';
import { fetchSupportedOptions, shardingFromSupported, type ClusterSharding } from './cql-sharding.ts';
import { canonicalJson, checkMessages, EventSequence, notInitialized, StoreError } from './lmdb-cql-common.ts';
import type {
  ClusterView,
  ConnectorRecord,
  Delivery,
  Lease,
  Member,
  Message,
  MessageEvent,
  MessagePosition,
  NewMessageEvent,
  ProviderIdEntry,
  ReceiptState,
  SourceOffset,
  StatusRecord,
  Store,
  Topic,
} from './port.ts';
import { withReceipt } from './port.ts';

/** A receipt state as its cell holds it: less what the row's key holds. */
type StoredReceipt = Omit<ReceiptState, 'connector' | 'messageId' | 'topic' | 'shard' | 'ts'>;

const { Client, types } = cassandra;
type Client = cassandra.Client;
type Row = cassandra.types.Row;
type QueryOptions = cassandra.QueryOptions;
type BatchQuery = { query: string; params: unknown[] };

/** How long the list of every topic is reused by `locateMessages` before it is read again. */
const TOPIC_LIST_MS = 5_000;
/** Width of a buffer partition. Fixed for the life of a keyspace: readers compute the same buckets. */
export const BUCKET_MS = 60_000;
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
const MAX_TTL_SECONDS = 630_720_000;
/** Members' rows outlive their logical expiry by this much, then Cassandra drops them. */
const MEMBER_ROW_GRACE_SECONDS = 600;
/** The cluster view is one partition. */
const CLUSTER_PARTITION = 0;
const LWT_ATTEMPTS = 8;
/** Cassandra's estimate of a row beyond its values (keys, timestamps, TTLs), for sizing batches. */
const PER_ROW_OVERHEAD_BYTES = 100;

const CONSISTENCIES: Record<string, number> = {
  ANY: types.consistencies.any,
  ONE: types.consistencies.one,
  TWO: types.consistencies.two,
  THREE: types.consistencies.three,
  QUORUM: types.consistencies.quorum,
  ALL: types.consistencies.all,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  LOCAL_ONE: types.consistencies.localOne,
};
const SERIAL_CONSISTENCIES: Record<string, number> = {
  SERIAL: types.consistencies.serial,
  LOCAL_SERIAL: types.consistencies.localSerial,
};

export interface CqlStoreOptions {
  /** `host` or `host:port`, as cassandra-driver takes them. */
  contactPoints: string[];
  /** Port of the contact points that name none. */
  port: number;
  keyspace: string;
  localDataCenter: string;
  credentials?: { username: string; password: string };
  /** Consistency of plain reads and writes, by name (LOCAL_QUORUM, QUORUM, ONE…). */
  consistency: string;
  /** Consistency of the Paxos phase of lightweight transactions: SERIAL or LOCAL_SERIAL. */
  serialConsistency: string;
  /** The keyspace's replication map, as a CQL literal; used only when the keyspace is created. */
  replication: string;
  logger?: Logger;
}

const urlError = (url: string, problem: string): StoreError =>
  new StoreError(
    'OMNI_ERR_STORE_URL_INVALID',
    `invalid CQL store URL "${url.replace(/\/\/[^@/]*@/, '//***@')}": ${problem} ` +
      '(expected cql://host1,host2:9042/keyspace?dc=datacenter1[&user=…&password=…&consistency=LOCAL_QUORUM&serial=SERIAL&replication=3])',
  );

/** Parses `cql://[user:password@]host1,host2[:port]/keyspace?dc=…&…` into store options. */
export function parseCqlUrl(url: string): CqlStoreOptions {
  const match = /^cql:\/\/(?:([^@/?#]*)@)?([^/?#]+)(?:\/([^/?#]*))?(?:\?([^#]*))?$/i.exec(url);
  if (!match) throw urlError(url, 'it does not have the form cql://hosts/keyspace?dc=…');
  const [, userInfo, hostList, keyspacePart, query] = match;
  const params = new URLSearchParams(query ?? '');
  const known = new Set(['dc', 'user', 'password', 'consistency', 'serial', 'replication']);
  for (const key of params.keys()) if (!known.has(key)) throw urlError(url, `unknown parameter "${key}"`);

  let port = 9042;
  const contactPoints: string[] = [];
  for (const host of hostList!.split(',')) {
    const hostMatch = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(host.trim());
    if (!hostMatch) throw urlError(url, `"${host}" is not a host or host:port`);
    if (hostMatch[2] !== undefined) {
      port = Number(hostMatch[2]);
      if (!(port >= 1 && port <= 65_535)) throw urlError(url, `port ${hostMatch[2]} is out of range`);
    }
    contactPoints.push(host.trim());
  }

  const keyspace = decodeURIComponent(keyspacePart ?? '');
  if (!/^[A-Za-z][A-Za-z0-9_]{0,47}$/.test(keyspace)) {
    throw urlError(url, keyspace ? `"${keyspace}" is not a keyspace name (a letter, then letters, digits or _, at most 48)` : 'the keyspace is missing');
  }
  const localDataCenter = params.get('dc');
  if (!localDataCenter) throw urlError(url, 'the local data center is missing: add ?dc=<datacenter>');

  const consistency = (params.get('consistency') ?? 'LOCAL_QUORUM').toUpperCase();
  if (CONSISTENCIES[consistency] === undefined) throw urlError(url, `consistency must be one of ${Object.keys(CONSISTENCIES).join(', ')}`);
  const serialConsistency = (params.get('serial') ?? 'SERIAL').toUpperCase();
  if (SERIAL_CONSISTENCIES[serialConsistency] === undefined) throw urlError(url, 'serial must be SERIAL or LOCAL_SERIAL');

  let username = params.get('user') ?? undefined;
  let password = params.get('password') ?? undefined;
  if (userInfo) {
    const colon = userInfo.indexOf(':');
    username ??= decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
    password ??= colon < 0 ? undefined : decodeURIComponent(userInfo.slice(colon + 1));
  }
  if ((username === undefined) !== (password === undefined)) throw urlError(url, 'give both user and password, or neither');

  return {
    contactPoints,
    port,
    keyspace: keyspace.toLowerCase(),
    localDataCenter,
    credentials: username !== undefined && password !== undefined ? { username, password } : undefined,
    consistency,
    serialConsistency,
    replication: parseReplication(url, params.get('replication')),
  };
}

function parseReplication(url: string, value: string | null): string {
  if (value === null) return "{'class': 'SimpleStrategy', 'replication_factor': 1}";
  if (/^\d+$/.test(value)) return `{'class': 'SimpleStrategy', 'replication_factor': ${Number(value)}}`;
  // dc1:3,dc2:2 → NetworkTopologyStrategy
  const perDc = value.split(',').map((part) => /^([A-Za-z0-9_.-]+):(\d+)$/.exec(part.trim()));
  if (perDc.some((part) => !part)) throw urlError(url, 'replication must be a number (SimpleStrategy) or dc1:3,dc2:3 (NetworkTopologyStrategy)');
  return `{'class': 'NetworkTopologyStrategy', ${perDc.map((part) => `'${part![1]}': ${Number(part![2])}`).join(', ')}}`;
}

// Schema. Every statement is idempotent (IF NOT EXISTS); a migration's row in
// schema_migrations says who is applying it and whether it is done.

interface Migration {
  version: number;
  description: string;
  statements: (keyspace: string) => string[];
}

const twcs = (hours: number) =>
  `compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'HOURS', 'compaction_window_size': '${hours}'}`;

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'bus, deliveries, events, leases, members and control plane',
    statements: (ks) => [
      `CREATE TABLE IF NOT EXISTS ${ks}.topics (name text PRIMARY KEY, shards int, value_schema text, retention_ms bigint, created_at bigint)`,
      // Version 1 also created the tables `messages`, `buffer` and `deliveries`, which version 2
      // replaced; keyspaces created before keep them, unread.
      `CREATE TABLE IF NOT EXISTS ${ks}.buffer_buckets (topic text, shard int, bucket bigint, PRIMARY KEY ((topic, shard), bucket))
         WITH gc_grace_seconds = 10800`,
      `CREATE TABLE IF NOT EXISTS ${ks}.group_messages (grp text, message_id text, PRIMARY KEY ((grp), message_id))`,
      `CREATE TABLE IF NOT EXISTS ${ks}.watermarks (consumer text, topic text, shard int, ts bigint, PRIMARY KEY ((consumer, topic, shard)))`,
      `CREATE TABLE IF NOT EXISTS ${ks}.source_offsets (connector text, partition_json text, offset_json text,
         PRIMARY KEY ((connector), partition_json))`,
      `CREATE TABLE IF NOT EXISTS ${ks}.provider_ids (connector text, provider_id text, message_id text, PRIMARY KEY ((connector, provider_id)))`,
      `CREATE TABLE IF NOT EXISTS ${ks}.events (message_id text, event_at bigint, seq bigint, tag text, event_type text,
         connector text, worker_id text, detail text, PRIMARY KEY ((message_id), event_at, seq, tag))`,
      `CREATE TABLE IF NOT EXISTS ${ks}.leases (name text PRIMARY KEY, owner text, epoch bigint, expires_at bigint)`,
      `CREATE TABLE IF NOT EXISTS ${ks}.members (id text PRIMARY KEY, url text, started_at bigint, heartbeat_at bigint, expires_at bigint)`,
      `CREATE TABLE IF NOT EXISTS ${ks}.connectors (name text PRIMARY KEY, config text, target_state text, task_configs text,
         generation bigint, created_at bigint, updated_at bigint)`,
      `CREATE TABLE IF NOT EXISTS ${ks}.statuses (connector text, task int, state text, worker_id text, trace text, generation bigint,
         updated_at bigint, PRIMARY KEY ((connector), task))`,
    ],
  },
  {
    version: 2,
    description: 'messages kept whole in the buffer, found by id through an index; delivery states kept by buffer position',
    statements: (ks) => [
      // Hot tables keep what is not a key in one JSON text column: a row costs Cassandra (and the
      // client, which encodes every value of every row) about as much per column as per row.
      // `message`: {"k": routing key, "t": token, "h": headers, "g"?: group, "v"?: value}.
      `CREATE TABLE IF NOT EXISTS ${ks}.buffered_messages (topic text, shard int, bucket bigint, ts bigint, id text, message text,
         PRIMARY KEY ((topic, shard, bucket), ts, id)) WITH CLUSTERING ORDER BY (ts ASC, id ASC)
         AND ${twcs(1)} AND gc_grace_seconds = 10800`,
      // Written once after the message's buffer row, read by id (in its slot: see positionSlot);
      // expires with the topic's retention.
      // `position`: [topic, shard, ts].
      `CREATE TABLE IF NOT EXISTS ${ks}.message_positions (slot text, id text, position text,
         PRIMARY KEY ((slot), id)) WITH ${twcs(1)} AND gc_grace_seconds = 10800`,
      // `detail`: the delivery's other fields as JSON (attempts, epoch, workerId, updatedAt and the
      // optional ones), so that replacing a delivery never writes null cells (tombstones). Rows
      // live as long as their topic's messages.
      `CREATE TABLE IF NOT EXISTS ${ks}.delivery_states (connector text, topic text, shard int, bucket bigint, ts bigint,
         message_id text, state text, detail text,
         PRIMARY KEY ((connector, topic, shard, bucket), ts, message_id)) WITH CLUSTERING ORDER BY (ts ASC, message_id ASC)
         AND ${twcs(1)} AND gc_grace_seconds = 10800`,
    ],
  },
  {
    version: 3,
    description: 'the cluster view: live members and the connectors version in one partition',
    statements: (ks) => [
      // Read whole at every heartbeat by every worker: one partition (part = 0), so one query on
      // one replica set, where the `members` table of version 1 needed a scan of every range.
      // Member rows expire (TTL) and are filtered by expires_at, so a tombstone purged early can
      // only bring back a row long expired: a short gc_grace keeps reads clear of old tombstones.
      `CREATE TABLE IF NOT EXISTS ${ks}.cluster_view (part int, kind text, id text, url text, started_at bigint, heartbeat_at bigint,
         expires_at bigint, version text, PRIMARY KEY ((part), kind, id)) WITH gc_grace_seconds = 3600`,
    ],
  },
  {
    version: 4,
    // Also marks what older workers could not read: generated ids have no id index row since
    // this version (they are found where they say: see locateMessages).
    description: "receipt states kept beside the sink's own delivery states; generated ids without id index rows",
    statements: (ks) => [
      // `receipt`: the state a provider's receipts gave the message, as JSON ({state, workerId,
      // updatedAt, providerId?, lastError?}). Its own cell: a receipt never writes the sink's
      // `state` and `detail`, nor they it, so neither replaces the other whatever the order the
      // writes land in (a receipt can beat the sink's `sent`, on another worker).
      `ALTER TABLE ${ks}.delivery_states ADD receipt text`,
    ],
  },
];

/** What a node answers to adding a column that is there already (a migration run again after its worker died half-way). */
const COLUMN_EXISTS = /conflicts with an existing column|already exists/i;

/** A claim on a migration older than this is presumed dead (its worker crashed) and taken over. */
const STALE_MIGRATION_CLAIM_MS = 120_000;
const MIGRATION_WAIT_MS = 300_000;

/** Delivery fields kept in their own columns; the others go into `detail`. */
const KEY_COLUMNS = new Set(['connector', 'messageId', 'topic', 'shard', 'ts', 'state']);

/** Whether two deliveries have the same `detail` (checked field by field; optional fields make any row unique). */
const sameDetail = (a: Delivery, b: Delivery): boolean =>
  a.attempts === b.attempts &&
  a.epoch === b.epoch &&
  a.workerId === b.workerId &&
  a.updatedAt === b.updatedAt &&
  a.providerId === undefined &&
  b.providerId === undefined &&
  a.lastError === undefined &&
  b.lastError === undefined &&
  a.nextAttemptAt === undefined &&
  b.nextAttemptAt === undefined;

const toNumber = (value: unknown): number => (value instanceof types.Long ? value.toNumber() : Number(value));
const ttlSeconds = (retentionMs: number): number =>
  retentionMs > 0 ? Math.min(MAX_TTL_SECONDS, Math.max(1, Math.ceil(retentionMs / 1000))) : 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A topic deleted meanwhile (or never known) keeps what is written for its messages for a day. */
const UNKNOWN_TOPIC_RETENTION_MS = 86_400_000;
/** The TTL of what is written for a message of this topic (delivery states, events, provider ids): the topic's retention. */
const keptFor = (topics: ReadonlyMap<string, Topic>, topic: string): number => ttlSeconds(topics.get(topic)?.retentionMs ?? UNKNOWN_TOPIC_RETENTION_MS);

/**
 * About what a row weighs in a batch, for keeping batches under the node's limits: its values
 * as UTF-8 (a string's length would undercount any text beyond ASCII up to 3×), numbers as 8.
 */
function estimatedBytes(params: readonly unknown[]): number {
  let bytes = PER_ROW_OVERHEAD_BYTES;
  for (const value of params) bytes += typeof value === 'string' ? Buffer.byteLength(value) : 8;
  return bytes;
}

/** Runs `work` on every item with at most `concurrency` in flight. */
async function inPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
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

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

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
  private readonly q: ReturnType<typeof statements>;

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
    await this.migrate(client);
    await this.learnSharding();
  }

  /**
   * Applies every migration not yet applied. Workers starting together race for each one with
   * an LWT claim; the winner runs its DDL while the others wait for "applied", so no two
   * workers issue the same schema change at once (concurrent CREATE TABLE on different nodes
   * can leave two table ids behind).
   */
  private async migrate(client: Client): Promise<void> {
    const { keyspace } = this.options;
    const me = `${process.pid}-${this.sequence.tag}`;
    const table = `${keyspace}.schema_migrations`;
    const latest = MIGRATIONS.at(-1)!.version;
    const applied = await client.execute(`SELECT version, state FROM ${table}`, [], this.plain);
    const newer = applied.rows.find((row) => row.get('version') > latest && row.get('state') === 'applied');
    if (newer) {
      throw new StoreError(
        'OMNI_ERR_STORE_SCHEMA_NEWER',
        `keyspace ${keyspace} has schema version ${newer.get('version')}, newer than this Omnibus understands (${latest}); upgrade Omnibus`,
      );
    }
    for (const migration of MIGRATIONS) {
      const deadline = Date.now() + MIGRATION_WAIT_MS;
      for (;;) {
        const row = (await client.execute(`SELECT state, owner, claimed_at FROM ${table} WHERE version = ?`, [migration.version], this.linearizable)).first();
        if (row?.get('state') === 'applied') break;
        let claimed = false;
        if (!row) {
          claimed = (
            await client.execute(
              `INSERT INTO ${table} (version, description, state, owner, claimed_at) VALUES (?, ?, 'applying', ?, ?) IF NOT EXISTS`,
              [migration.version, migration.description, me, Date.now()],
              this.lwt,
            )
          ).wasApplied();
        } else if (Date.now() - toNumber(row.get('claimed_at')) > STALE_MIGRATION_CLAIM_MS) {
          claimed = (
            await client.execute(
              `UPDATE ${table} SET owner = ?, claimed_at = ? WHERE version = ? IF owner = ? AND state = 'applying'`,
              [me, Date.now(), migration.version, row.get('owner')],
              this.lwt,
            )
          ).wasApplied();
        }
        if (claimed) {
          for (const statement of migration.statements(keyspace)) {
            await client.execute(statement).catch((error: Error) => {
              if (!(statement.startsWith('ALTER TABLE') && COLUMN_EXISTS.test(error.message))) throw error;
            });
          }
          await client.execute(
            `UPDATE ${table} SET state = 'applied', applied_at = ? WHERE version = ? IF owner = ?`,
            [Date.now(), migration.version, me],
            this.lwt,
          );
          this.logger.info({ store: this.description, version: migration.version }, `schema migration ${migration.version} applied`);
          continue; // re-read: "applied" now, or another worker took the claim over and will finish
        }
        if (Date.now() > deadline) {
          throw new StoreError('OMNI_ERR_STORE_MIGRATION_TIMEOUT', `schema migration ${migration.version} of ${keyspace} did not finish within ${MIGRATION_WAIT_MS / 1000} s`);
        }
        await sleep(250);
      }
    }
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
      [topic.name, topic.shards, topic.schema === undefined ? types.unset : JSON.stringify(topic.schema), topic.retentionMs, topic.createdAt],
      this.lwt,
    );
    return result.wasApplied();
  }

  async getTopic(name: string): Promise<Topic | undefined> {
    const row = (await this.execute(this.q.selectTopic, [name])).first();
    return row ? topicFromRow(row) : undefined;
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
    const topics = await this.topicsNamed(messages.map((m) => m.topic));
    checkMessages(messages, (name) => topics.get(name));
    const partitions = new Map<string, BatchQuery[]>();
    const positions = new Map<string, BatchQuery[]>();
    const groups = new Map<string, BatchQuery[]>();
    const newBuckets: unknown[][] = [];
    for (const m of messages) {
      const ttl = ttlSeconds(topics.get(m.topic)!.retentionMs);
      const bucket = Math.floor(m.createdAt / BUCKET_MS);
      const payload = JSON.stringify({ k: m.key, t: m.token, h: m.headers, g: m.group, v: m.value });
      const partition = `${m.shard}/${bucket}/${m.topic}`;
      let rows = partitions.get(partition);
      if (!rows) {
        partitions.set(partition, (rows = []));
        if (!this.writtenBuckets.has(partition)) newBuckets.push([m.topic, m.shard, bucket, ttl === 0 ? 0 : ttl + BUCKET_MS / 1000, partition]);
      }
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
    await this.writePartitions([...partitions.values(), ...groups.values()], PARTITION_BATCH_ROWS);
    // The id index last: an id it finds is a message stored, so an idempotent produce retried
    // after a failure half-way writes again what may be missing, never skips it.
    await this.writePartitions(positions.values(), PARTITION_BATCH_ROWS);
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
      const named = await this.topicsNamed(within);
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
    return current?.owner === owner && current.epoch === epoch && current.expiresAt === now + ttlMs;
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
      [CLUSTER_PARTITION, member.id, member.url, member.startedAt, member.heartbeatAt, expiresAt, Math.min(rowTtl, MAX_TTL_SECONDS)],
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
        view.members.push({ id: row.get('id'), url: row.get('url'), startedAt: toNumber(row.get('started_at')), heartbeatAt: toNumber(row.get('heartbeat_at')) });
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
    throw new StoreError('OMNI_ERR_STORE_CONTENDED', `connector ${record.name} kept changing under us; its config was not written`);
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
}

function statements(ks: string) {
  return {
    insertTopic: `INSERT INTO ${ks}.topics (name, shards, value_schema, retention_ms, created_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectTopic: `SELECT name, shards, value_schema, retention_ms, created_at FROM ${ks}.topics WHERE name = ?`,
    selectTopics: `SELECT name, shards, value_schema, retention_ms, created_at FROM ${ks}.topics`,
    insertBufferedMessage: `INSERT INTO ${ks}.buffered_messages (topic, shard, bucket, ts, id, message) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?`,
    insertMessagePosition: `INSERT INTO ${ks}.message_positions (slot, id, position) VALUES (?, ?, ?) USING TTL ?`,
    insertBufferBucket: `INSERT INTO ${ks}.buffer_buckets (topic, shard, bucket) VALUES (?, ?, ?) USING TTL ?`,
    insertGroupMessage: `INSERT INTO ${ks}.group_messages (grp, message_id) VALUES (?, ?) USING TTL ?`,
    selectMessagePositions: `SELECT id, position FROM ${ks}.message_positions WHERE slot = ? AND id IN ?`,
    selectBufferSlice:
      `SELECT ts, id, message FROM ${ks}.buffered_messages ` +
      'WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ?',
    scanBuffer: `SELECT ts, id FROM ${ks}.buffered_messages WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ? LIMIT ?`,
    scanBufferSlice: `SELECT ts, id FROM ${ks}.buffered_messages WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ?`,
    selectBuffer:
      `SELECT ts, id, message FROM ${ks}.buffered_messages ` +
      'WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ? LIMIT ?',
    selectBufferBuckets: `SELECT bucket FROM ${ks}.buffer_buckets WHERE topic = ? AND shard = ? AND bucket >= ? AND bucket <= ?`,
    selectGroupMessages: `SELECT message_id FROM ${ks}.group_messages WHERE grp = ? LIMIT ?`,
    selectWatermark: `SELECT ts FROM ${ks}.watermarks WHERE consumer = ? AND topic = ? AND shard = ?`,
    insertWatermark: `INSERT INTO ${ks}.watermarks (consumer, topic, shard, ts) VALUES (?, ?, ?, ?)`,
    selectSourceOffsets: `SELECT partition_json, offset_json FROM ${ks}.source_offsets WHERE connector = ?`,
    insertSourceOffset: `INSERT INTO ${ks}.source_offsets (connector, partition_json, offset_json) VALUES (?, ?, ?)`,
    deleteSourceOffsets: `DELETE FROM ${ks}.source_offsets WHERE connector = ?`,
    selectDeliveryRange:
      `SELECT ts, message_id, state, detail, receipt FROM ${ks}.delivery_states ` +
      'WHERE connector = ? AND topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ?',
    insertDeliveryState:
      `INSERT INTO ${ks}.delivery_states (connector, topic, shard, bucket, ts, message_id, state, detail) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?',
    updateReceiptState:
      `UPDATE ${ks}.delivery_states USING TTL ? SET receipt = ? ` +
      'WHERE connector = ? AND topic = ? AND shard = ? AND bucket = ? AND ts = ? AND message_id = ?',
    insertProviderId: `INSERT INTO ${ks}.provider_ids (connector, provider_id, message_id) VALUES (?, ?, ?) USING TTL ?`,
    selectProviderId: `SELECT message_id FROM ${ks}.provider_ids WHERE connector = ? AND provider_id = ?`,
    insertEvent:
      `INSERT INTO ${ks}.events (message_id, event_at, seq, tag, event_type, connector, worker_id, detail) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?',
    selectEvents: `SELECT event_at, event_type, connector, worker_id, detail FROM ${ks}.events WHERE message_id = ?`,
    selectLease: `SELECT name, owner, epoch, expires_at FROM ${ks}.leases WHERE name = ?`,
    selectLeases: `SELECT name, owner, epoch, expires_at FROM ${ks}.leases`,
    insertLease: `INSERT INTO ${ks}.leases (name, owner, epoch, expires_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
    takeLease: `UPDATE ${ks}.leases SET owner = ?, epoch = ?, expires_at = ? WHERE name = ? IF owner = ? AND epoch = ?`,
    renewLease: `UPDATE ${ks}.leases SET expires_at = ? WHERE name = ? IF owner = ? AND epoch = ?`,
    releaseLease: `UPDATE ${ks}.leases SET owner = '', expires_at = 0 WHERE name = ? IF owner = ? AND epoch = ?`,
    insertMember:
      `INSERT INTO ${ks}.cluster_view (part, kind, id, url, started_at, heartbeat_at, expires_at) VALUES (?, 'member', ?, ?, ?, ?, ?) ` +
      'USING TTL ?',
    selectClusterView: `SELECT kind, id, url, started_at, heartbeat_at, expires_at, version FROM ${ks}.cluster_view WHERE part = ?`,
    deleteMember: `DELETE FROM ${ks}.cluster_view WHERE part = ? AND kind = 'member' AND id = ?`,
    // Always true for a fresh version, and applied on a missing row too: an LWT only for its ordering.
    bumpConnectorsVersion: `UPDATE ${ks}.cluster_view SET version = ? WHERE part = ? AND kind = 'connectors' AND id = '' IF version != ?`,
    insertConnector:
      `INSERT INTO ${ks}.connectors (name, config, target_state, task_configs, generation, created_at, updated_at) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS',
    updateConnector:
      `UPDATE ${ks}.connectors SET config = ?, target_state = ?, task_configs = ?, generation = ?, created_at = ?, updated_at = ? ` +
      'WHERE name = ? IF EXISTS',
    selectConnector: `SELECT name, config, target_state, task_configs, generation, created_at, updated_at FROM ${ks}.connectors WHERE name = ?`,
    selectConnectors: `SELECT name, config, target_state, task_configs, generation, created_at, updated_at FROM ${ks}.connectors`,
    deleteConnector: `DELETE FROM ${ks}.connectors WHERE name = ? IF EXISTS`,
    insertStatus:
      `INSERT INTO ${ks}.statuses (connector, task, state, worker_id, trace, generation, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    selectStatuses: `SELECT task, state, worker_id, trace, generation, updated_at FROM ${ks}.statuses WHERE connector = ?`,
    deleteStatuses: `DELETE FROM ${ks}.statuses WHERE connector = ?`,
  };
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

function topicFromRow(row: Row): Topic {
  const schema = row.get('value_schema') as string | null;
  const topic: Topic = {
    name: row.get('name'),
    shards: row.get('shards'),
    retentionMs: toNumber(row.get('retention_ms')),
    createdAt: toNumber(row.get('created_at')),
  };
  if (schema !== null) topic.schema = JSON.parse(schema) as Record<string, unknown>;
  return topic;
}

/** The rows already batched for the `delivery_states` partition of this connector and position (created empty), and its bucket. */
function deliveryPartition(
  partitions: Map<string, BatchQuery[]>,
  connector: string,
  { topic, shard, ts }: Pick<MessagePosition, 'topic' | 'shard' | 'ts'>,
): { rows: BatchQuery[]; bucket: number } {
  const bucket = Math.floor(ts / BUCKET_MS);
  const key = `${connector}\u0000${shard}/${bucket}/${topic}`;
  let rows = partitions.get(key);
  if (!rows) partitions.set(key, (rows = []));
  return { rows, bucket };
}

function deliveryFromRow(row: Row, connector: string, topic: string, shard: number): Delivery {
  return {
    connector,
    messageId: row.get('message_id'),
    topic,
    shard,
    ts: toNumber(row.get('ts')),
    state: row.get('state'),
    ...(JSON.parse(row.get('detail') as string) as Pick<Delivery, 'attempts' | 'epoch' | 'workerId' | 'updatedAt'>),
  };
}

function messageFromRow(row: Row, topic: string, shard: number): Message {
  const { k, t, h, g, v } = JSON.parse(row.get('message') as string) as { k: string; t: string; h: Record<string, string>; g?: string; v?: unknown };
  const message: Message = { id: row.get('id'), topic, key: k, token: t, shard, value: v, headers: h, createdAt: toNumber(row.get('ts')) };
  if (g !== undefined) message.group = g;
  return message;
}

function leaseFromRow(row: Row): Lease {
  return { name: row.get('name'), owner: row.get('owner'), epoch: toNumber(row.get('epoch')), expiresAt: toNumber(row.get('expires_at')) };
}

function connectorValues(record: ConnectorRecord): unknown[] {
  return [
    record.name,
    JSON.stringify(record.config),
    record.targetState,
    JSON.stringify(record.taskConfigs),
    record.generation,
    record.createdAt,
    record.updatedAt,
  ];
}

function connectorFromRow(row: Row): ConnectorRecord {
  return {
    name: row.get('name'),
    config: JSON.parse(row.get('config') as string) as Record<string, string>,
    targetState: row.get('target_state'),
    taskConfigs: JSON.parse(row.get('task_configs') as string) as Array<Record<string, string>>,
    generation: toNumber(row.get('generation')),
    createdAt: toNumber(row.get('created_at')),
    updatedAt: toNumber(row.get('updated_at')),
  };
}
