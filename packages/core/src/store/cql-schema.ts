/**
 * The CQL store's schema and its migrations. Every statement is idempotent (IF NOT EXISTS); a
 * migration's row in schema_migrations says who is applying it and whether it is done.
 */
import type cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import { groupTableStatements } from './cql-groups.ts';
import { toNumber } from './cql-rows.ts';
import { suppressionsTable } from './cql-suppressions.ts';
import { scheduledSchema } from './cql-scheduled.ts';
import { priorityLaneTable } from './cql-priorities.ts';
import { coreError } from '../errors.ts';

type Client = cassandra.Client;
type QueryOptions = cassandra.QueryOptions;

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
  {
    version: 5,
    description: 'message templates and their versions',
    statements: (ks) => [
      `CREATE TABLE IF NOT EXISTS ${ks}.templates (name text PRIMARY KEY, live_version int, latest_version int, created_at bigint, updated_at bigint)`,
      // `body`: the version as JSON ({channel, defaultLocale, locales, createdAt}); written once, never changed.
      `CREATE TABLE IF NOT EXISTS ${ks}.template_versions (name text, version int, body text, PRIMARY KEY ((name), version))
         WITH CLUSTERING ORDER BY (version ASC)`,
    ],
  },
  {
    version: 6,
    description: 'group tallies (exact counts by state per connector) and cancellations',
    statements: groupTableStatements,
  },
  {
    version: 7,
    description: "each member's worker groups in the cluster view; topics' earlier shard counts",
    statements: (ks) => [
      // `reshards`: the topic's earlier shard counts and their switch times as JSON
      // ([{at, from, to}], see bus/reshard.ts); null for a topic never resharded.
      `ALTER TABLE ${ks}.topics ADD reshards text`,
      // `worker_groups`: the member's groups as a JSON array ('[]' for none; null in the rows of
      // workers older than this version, which then run ungrouped connectors only).
      `ALTER TABLE ${ks}.cluster_view ADD worker_groups text`,
    ],
  },
  {
    version: 8,
    description: 'the suppression list',
    statements: (ks) => [suppressionsTable(ks)],
  },
  {
    version: 9,
    description: 'messages held until due (send_at, quiet hours), by due minute; quiet hours of a topic',
    statements: (ks) => [...scheduledSchema(ks), `ALTER TABLE ${ks}.topics ADD quiet_hours text`],
  },
  {
    version: 10,
    description: 'priority lanes: the positions of high and low priority messages, per (topic, shard)',
    statements: (ks) => [priorityLaneTable(ks, twcs(1))],
  },
];

/** What a node answers to adding a column that is there already (a migration run again after its worker died half-way). */
const COLUMN_EXISTS = /conflicts with an existing column|already exists/i;

/** A claim on a migration older than this is presumed dead (its worker crashed) and taken over. */
const STALE_MIGRATION_CLAIM_MS = 120_000;
const MIGRATION_WAIT_MS = 300_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a migration run needs from the store that runs it. */
export interface MigrationContext {
  keyspace: string;
  /** Who claims a migration: unique to this process and store. */
  owner: string;
  plain: QueryOptions;
  linearizable: QueryOptions;
  lwt: QueryOptions;
  logger: Logger;
  /** The store, as logs name it. */
  description: string;
}

/**
 * Applies every migration not yet applied. Workers starting together race for each one with
 * an LWT claim; the winner runs its DDL while the others wait for "applied", so no two
 * workers issue the same schema change at once (concurrent CREATE TABLE on different nodes
 * can leave two table ids behind).
 */
export async function migrateSchema(client: Client, { keyspace, owner: me, plain, linearizable, lwt, logger, description }: MigrationContext): Promise<void> {
  const table = `${keyspace}.schema_migrations`;
  const latest = MIGRATIONS.at(-1)!.version;
  const applied = await client.execute(`SELECT version, state FROM ${table}`, [], plain);
  const newer = applied.rows.find((row) => row.get('version') > latest && row.get('state') === 'applied');
  if (newer) {
    throw coreError('OMNI_ERR_STORE_SCHEMA_NEWER', { store: `keyspace ${keyspace}`, found: newer.get('version') as number, supported: latest });
  }
  for (const migration of MIGRATIONS) {
    const deadline = Date.now() + MIGRATION_WAIT_MS;
    for (;;) {
      const row = (await client.execute(`SELECT state, owner, claimed_at FROM ${table} WHERE version = ?`, [migration.version], linearizable)).first();
      if (row?.get('state') === 'applied') break;
      let claimed = false;
      if (!row) {
        claimed = (
          await client.execute(
            `INSERT INTO ${table} (version, description, state, owner, claimed_at) VALUES (?, ?, 'applying', ?, ?) IF NOT EXISTS`,
            [migration.version, migration.description, me, Date.now()],
            lwt,
          )
        ).wasApplied();
      } else if (Date.now() - toNumber(row.get('claimed_at')) > STALE_MIGRATION_CLAIM_MS) {
        claimed = (
          await client.execute(
            `UPDATE ${table} SET owner = ?, claimed_at = ? WHERE version = ? IF owner = ? AND state = 'applying'`,
            [me, Date.now(), migration.version, row.get('owner')],
            lwt,
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
          lwt,
        );
        logger.info({ store: description, version: migration.version }, `schema migration ${migration.version} applied`);
        continue; // re-read: "applied" now, or another worker took the claim over and will finish
      }
      if (Date.now() > deadline) {
        throw coreError('OMNI_ERR_STORE_MIGRATION_TIMEOUT', { version: migration.version, keyspace, seconds: MIGRATION_WAIT_MS / 1000 });
      }
      await sleep(250);
    }
  }
}
