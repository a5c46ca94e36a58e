/**
 * The embedded store: one LMDB environment in a directory (`lmdb:<dir>`).
 *
 * Each CQL table is a named LMDB database keyed by that table's primary key as an ordered
 * array key, so a range scan here is a partition/clustering slice there:
 *   buffered_messages [topic, shard, ts, id] → Message     message_positions id → [topic, shard, ts]
 *   delivery_states [topic, shard, ts, id, connector] → Delivery (less the key's fields)
 *   sends [topic, shard, connector, updatedAt, seq, tag] → one batch's `sending` states of a shard
 *   sent_batches [topic, shard, slot, connector, seq, tag] → one batch's plain `sent` states of a shard and 100 ms
 *   receipt_states [topic, shard, ts, id, connector] → a receipt's state, beside the sink's own
 *   events [messageId, at, seq, tag] → MessageEvent        …
 *   priority_lanes [topic, shard, lane, ts, id] → 1 (the positions of high and low messages: lmdb-priorities.ts)
 * Delivery states put the connector last (CQL puts it first, in the partition key): here one
 * range removes every connector's states of expired messages.
 *
 * Several worker processes may open the same directory at once. LMDB itself is
 * multi-process safe; what this adapter adds for that:
 * - No cache of anything mutable: every read method first moves the read snapshot to the
 *   newest commit (lmdb-js otherwise keeps one snapshot for the whole event turn).
 * - Every read-decide-write (leases, topic and connector creation) runs inside one write
 *   transaction, and LMDB's write lock is shared by all processes: a compare-and-set.
 * - Pure writes go through `batch`, which encodes on the calling thread and commits on
 *   lmdb-js's write thread; everything queued in one event turn shares one commit.
 * - Durability: lmdb-js commits with `overlappingSync`, so a commit is visible before it is on
 *   disk, and the flush runs beside the next commits. Messages (a produce is acknowledged when
 *   `appendMessages` resolves) and delivery states (`sending` must be on disk before the task
 *   sends) resolve only once flushed: a power loss then loses neither an acknowledged message
 *   nor the record of a send, which at-most-once depends on. A process crash loses nothing
 *   either way. Watermarks, events and the rest resolve on commit: what they would lose in a
 *   power loss is read again or rebuilt.
 * - Values are msgpack with shared structures (property names stored once per table, not per
 *   record: ~1.5× faster encoding and decoding here). lmdb-js saves new structures in a write
 *   transaction that checks what other processes saved, and reloads them on an unknown id.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { asBinary, open, type Binary, type Database, type Key, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';
import { impliedPosition, positionImplied } from './ids.ts';
import type { LmdbWriteStats } from '../metrics.ts';
import { canonicalJson } from './canonical-json.ts';
import { LmdbSuppressions } from './lmdb-suppressions.ts';
import type { SuppressionBody } from './suppression-codec.ts';
import { coreError } from '../errors.ts';
import { checkMessages, EventSequence, notInitialized, outgrownTopics } from './lmdb-cql-common.ts';
import { deliveryChanges, messageChanges, receiptChanges } from './group-tally.ts';
import { GROUP_TABLE_NAMES, LmdbGroups, type LmdbGroupTables } from './lmdb-groups.ts';
import { LMDB_SCHEDULED_TABLES, LmdbScheduled, type LmdbScheduledTables } from './lmdb-scheduled.ts';
import { LMDB_PRIORITY_TABLE, LmdbPriorityLanes } from './lmdb-priorities.ts';
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
  Lane,
} from './port.ts';
import { withReceipt } from './port.ts';

/** A buffered message's key: its position. */
type BufferKey = [topic: string, shard: number, ts: number, id: string];
/** A receipt state as stored: less what its key holds. */
type StoredReceipt = Omit<ReceiptState, 'connector' | 'messageId' | 'topic' | 'shard' | 'ts'>;
/** A delivery state's key: its message's position, then the connector. */
type DeliveryKey = [topic: string, shard: number, ts: number, id: string, connector: string];

/** A buffered message less what its key holds: encoding and decoding it is the bulk of a produce's and a read's work. */
interface StoredMessage {
  key: string;
  token: string;
  value: unknown;
  headers: Record<string, string>;
  group?: string;
}

function messageAt([topic, shard, createdAt, id]: BufferKey, s: StoredMessage): Message {
  const message: Message = { id, topic, key: s.key, token: s.token, shard, value: s.value, headers: s.headers, createdAt };
  if (s.group !== undefined) message.group = s.group;
  return message;
}

/** What the scratch rows hold between writes: no message's headers. */
const NO_HEADERS: Record<string, string> = Object.freeze({});

/** Sorts after every key component we write: closes a prefix range ([…prefix, AFTER_ALL]). */
const AFTER_ALL = Buffer.from([0xff]);

/**
 * 2: messages kept whole in the buffer, delivery states by buffer position. The tables of
 * version 1 (`messages`, `buffer`, `deliveries`) are left unread.
 * 3: a message whose id implies its position has no `message_positions` row (see
 * `positionImplied`), and `sending` states are kept per batch in `sends` (see `putDeliveries`);
 * a version-2 reader would find neither.
 * 4: receipts write their states into `receipt_states`, beside the sink's own, which a
 * version-3 reader would not see.
 * 5: group tallies and cancellations (lmdb-groups.ts), which a version-4 writer would not keep.
 * 6: plain `sent` states are kept per batch in `sent_batches` (see `putDeliveries`), which a
 * version-5 reader would not see.
 */
const SCHEMA_VERSION = 6;

/**
 * The environments this process has open, by path, shared by every LmdbStore on that path. LMDB
 * must not be opened twice in one process: two roots on one file each have their own write
 * thread, and one's asynchronous transaction (its callback waits for the main thread while its
 * thread holds the write lock) deadlocks the other's synchronous one on the main thread. Two
 * workers in one process on one directory (tests, an embedding application) so share one root.
 */
const openEnvironments = new Map<string, Promise<{ root: RootDatabase; tables: Tables; users: number }>>();
const STRUCTURES_KEY = Symbol.for('structures');
const DEFAULT_SWEEP_INTERVAL_MS = 5 * 60_000;
/** The `meta` entry holding the cluster view's connectors version, a counter. */
const CONNECTORS_VERSION_KEY = 'connectors_version';
/** A member whose heartbeat expired this long ago is forgotten by the sweep. */
const DEAD_MEMBER_KEPT_MS = 10 * 60_000;

interface StoredMember extends Member {
  expiresAt: number;
}

type SendKey = [topic: string, shard: number, connector: string, updatedAt: number, seq: number, tag: string];

/**
 * The `sending` states a sink wrote for one batch's messages of one shard, as one row: what
 * they share once, and per message its id, buffer time and attempt (columns, not objects).
 */
interface SendRecord {
  epoch: number;
  workerId: string;
  updatedAt: number;
  ids: string[];
  ts: number[];
  attempts: number[];
}

/** A send record this process wrote and whose messages do not all have a later state yet. */
interface OpenSend {
  key: SendKey;
  record: SendRecord;
  /** Per entry of the record: whether a later state of its message has been written. */
  settled: boolean[];
  open: number;
  /** Every entry before this one is settled (outcomes mostly come in the record's order). */
  firstOpen: number;
}

type SentBatchKey = [topic: string, shard: number, slot: number, connector: string, seq: number, tag: string];

/**
 * The plain `sent` states a sink wrote for one batch's messages of one shard whose buffer times
 * fall in one slot of time (SENT_SLOT_MS), as one row: a send record's columns, and the provider
 * ids when any message has one (null for those that have none).
 */
interface SentBatch extends SendRecord {
  providerIds?: Array<string | null>;
}

/**
 * Sent batches are filed under their messages' buffer time, in slots of this many ms: a
 * position's state is one prefix read away, and expires with its slot by one range. A lookup
 * decodes every batch of its slot (of one shard and connector): at 6,000 messages a second to a
 * shard, about 600 entries.
 */
const SENT_SLOT_MS = 100;
const slotOf = (ts: number): number => Math.floor(ts / SENT_SLOT_MS);

/**
 * Whether a delivery row is newer than the sent batch entry of its message. A row is an upsert
 * (the later write wins), so the later attempt wins, then the later time (a state set after the
 * send, such as a receipt written as a row), the row on a tie.
 */
const rowSupersedes = (row: Delivery, batchEntry: Delivery): boolean =>
  row.attempts !== batchEntry.attempts ? row.attempts > batchEntry.attempts : row.updatedAt >= batchEntry.updatedAt;

/** Whether the state was written with the record's (same epoch, worker and time): it can be an entry of it. */
const sameWrite = (record: SendRecord, d: Delivery): boolean => record.epoch === d.epoch && record.updatedAt === d.updatedAt && record.workerId === d.workerId;

/** Appends the state's message to the record's columns. */
function pushEntry(record: SendRecord, d: Delivery): void {
  record.ids.push(d.messageId);
  record.ts.push(d.ts);
  record.attempts.push(d.attempts);
}

/** A send record still open after this long was left by a task that stopped or lost its shard. */
const STALE_SEND_MS = 60 * 60_000;

/** A plain `sending` row (nothing but what every row has): it can go into a send record. */
const isPlainSending = (d: Delivery): boolean =>
  d.state === 'sending' && d.providerId === undefined && d.lastError === undefined && d.nextAttemptAt === undefined && d.group === undefined;

/** A plain `sent` row (what every row has, and perhaps a provider id): it can go into a sent batch. */
const isPlainSent = (d: Delivery): boolean => d.state === 'sent' && d.lastError === undefined && d.nextAttemptAt === undefined && d.group === undefined;

interface Tables extends LmdbGroupTables, LmdbScheduledTables {
  meta: Database<unknown, string>;
  topics: Database<Topic, string>;
  /** [topic, shard, createdAt, id] → the rest of the message. */
  bufferedMessages: Database<StoredMessage, Key>;
  /** id → [topic, shard, createdAt], for the messages whose id does not say where they are. */
  messagePositions: Database<[string, number, number], string>;
  groupMessages: Database<number, Key>;
  watermarks: Database<number, Key>;
  sourceOffsets: Database<SourceOffset, Key>;
  /** [topic, shard, ts, messageId, connector] → the delivery without those fields. */
  deliveryStates: Database<Delivery, Key>;
  /** [topic, shard, connector, updatedAt, seq, tag] → the `sending` states of one batch's messages of that shard. */
  sends: Database<SendRecord, Key>;
  /** [topic, shard, slot, connector, seq, tag] → the plain `sent` states of one batch's messages of that shard and slot of time. */
  sentBatches: Database<SentBatch, Key>;
  /** [topic, shard, ts, messageId, connector] → the receipt's state without those fields. */
  receiptStates: Database<StoredReceipt, Key>;
  providerIds: Database<string, Key>;
  events: Database<MessageEvent, Key>;
  leases: Database<Lease, string>;
  members: Database<StoredMember, string>;
  connectors: Database<ConnectorRecord, string>;
  statuses: Database<StatusRecord, Key>;
  templates: Database<TemplateRecord, string>;
  /** [name, version] → the version. */
  templateVersions: Database<TemplateVersion, Key>;
  /** [channel, address, category] → the rest of the entry (lmdb-suppressions.ts). */
  suppressions: Database<SuppressionBody, Key>;
  /** [topic, shard, lane, ts, id] → 1 (lmdb-priorities.ts). */
  priorityLanes: Database<number, Key>;
}

export type { LmdbWriteStats };

export interface LmdbStoreOptions {
  /**
   * How often expired messages (older than their topic's retention) are removed, in ms; 0
   * turns the sweep off. LMDB has no TTL, so this plays the part of CQL's `USING TTL`.
   */
  sweepIntervalMs?: number;
}

export class LmdbStore implements Store {
  readonly description: string;
  private readonly path: string;
  private readonly sweepIntervalMs: number;
  private root: RootDatabase | undefined;
  private tablesOrUndefined: Tables | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sequence = new EventSequence();
  private readonly groups = new LmdbGroups(
    () => this.writer(),
    () => this.tables,
  );
  /** Topics never change once created, so a topic seen once can be remembered. */
  private readonly knownTopics = new Map<string, Topic>();
  /** Per connector, per message id: the open send record listing it (the newest, if several do). */
  private readonly openSends = new Map<string, Map<string, OpenSend>>();
  /** The open send records, oldest first, to forget those left open by a task that stopped or lost its shard. */
  private readonly openSendsByAge = new Set<OpenSend>();
  /**
   * Keys and values filled in for each row written, and reused: lmdb-js encodes them while
   * `put` runs and keeps nothing of them (it would keep keys for its cache, which this store
   * does not open). Fresh arrays and objects per row were about 5 % of what a busy LMDB worker
   * allocated, all of it garbage at once.
   */
  private readonly rowScratch = {
    bufferKey: ['', 0, 0, ''] as BufferKey,
    position: ['', 0, 0] as [string, number, number],
    message: { key: '', token: '', value: undefined as unknown, headers: NO_HEADERS } satisfies StoredMessage,
    groupedMessage: { key: '', token: '', value: undefined as unknown, headers: NO_HEADERS, group: '' } satisfies StoredMessage,
    groupKey: ['', ''] as [string, string],
    deliveryKey: ['', 0, 0, '', ''] as DeliveryKey,
  };

  /** Priority lanes: lmdb-priorities.ts. */
  private readonly lanes = new LmdbPriorityLanes(() => this.tables.priorityLanes);

  /** Held messages: lmdb-scheduled.ts. */
  private readonly scheduled = new LmdbScheduled({
    tables: () => this.tables,
    fresh: () => void this.fresh(),
    writer: () => this.writer(),
    durably: (commit) => this.durably(commit),
    topicOf: (name) => this.topicOf(name),
    tally: (changes) => this.groups.fold(changes),
  });

  constructor(path: string, options: LmdbStoreOptions = {}) {
    this.path = resolve(path);
    this.description = `lmdb:${this.path}`;
    this.sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  }

  async init(): Promise<void> {
    if (this.root) return;
    let opening = openEnvironments.get(this.path);
    if (!opening) {
      opening = this.openEnvironment();
      openEnvironments.set(this.path, opening);
      opening.catch(() => openEnvironments.delete(this.path));
    }
    const environment = await opening;
    environment.users += 1;
    this.root = environment.root;
    this.tablesOrUndefined = environment.tables;
    this.startSweeping();
  }

  private async openEnvironment(): Promise<{ root: RootDatabase; tables: Tables; users: number }> {
    mkdirSync(this.path, { recursive: true });
    // trackMetrics (undeclared in lmdb-js's types) costs a few clock reads per transaction; writeStats() reads what it counts.
    const options: RootDatabaseOptionsWithPath & { trackMetrics: boolean } = { path: this.path, maxDbs: 32, compression: false, trackMetrics: true };
    const root = open(options);
    const table = <V, K extends Key>(name: string) => root.openDB<V, K>({ name, sharedStructuresKey: STRUCTURES_KEY });
    const tables: Tables = {
      meta: table('meta'),
      topics: table('topics'),
      bufferedMessages: table('buffered_messages'),
      messagePositions: table('message_positions'),
      groupMessages: table('group_messages'),
      watermarks: table('watermarks'),
      sourceOffsets: table('source_offsets'),
      deliveryStates: table('delivery_states'),
      sends: table('sends'),
      sentBatches: table('sent_batches'),
      receiptStates: table('receipt_states'),
      providerIds: table('provider_ids'),
      events: table('events'),
      leases: table('leases'),
      members: table('members'),
      connectors: table('connectors'),
      statuses: table('statuses'),
      templates: table('templates'),
      templateVersions: table('template_versions'),
      groupTallies: table(GROUP_TABLE_NAMES.groupTallies),
      groupMarks: table(GROUP_TABLE_NAMES.groupMarks),
      cancelledMessages: table(GROUP_TABLE_NAMES.cancelledMessages),
      cancelledGroups: table(GROUP_TABLE_NAMES.cancelledGroups),
      suppressions: table('suppressions'),
      scheduledMessages: table(LMDB_SCHEDULED_TABLES.scheduledMessages),
      scheduledIds: table(LMDB_SCHEDULED_TABLES.scheduledIds),
      priorityLanes: table(LMDB_PRIORITY_TABLE),
    };
    const found = await root.transaction(() => {
      const version = tables.meta.get('schema_version') as number | undefined;
      if (version === undefined || version < SCHEMA_VERSION) tables.meta.put('schema_version', SCHEMA_VERSION);
      return version ?? SCHEMA_VERSION;
    });
    if (found > SCHEMA_VERSION) {
      await root.close();
      throw coreError('OMNI_ERR_STORE_SCHEMA_NEWER', { store: this.description, found, supported: SCHEMA_VERSION });
    }
    return { root, tables, users: 0 };
  }

  private startSweeping(): void {
    if (this.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => void this.sweepExpired().catch(() => undefined), this.sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    const root = this.root;
    this.root = undefined;
    this.tablesOrUndefined = undefined;
    if (!root) return;
    const environment = await openEnvironments.get(this.path)?.catch(() => undefined);
    if (environment?.root === root) {
      if (--environment.users > 0) return;
      openEnvironments.delete(this.path);
    }
    await root.close();
  }

  /** This process's write figures, or undefined while the store is not open. */
  writeStats(): LmdbWriteStats | undefined {
    if (!this.root) return undefined;
    const stats = this.root.getStats() as Record<string, number | undefined>;
    const figure = (name: string) => stats[name] ?? 0;
    return {
      transactions: figure('txns'),
      puts: figure('puts'),
      deletes: figure('deletes'),
      pagesWritten: figure('pagesWritten'),
      transactionSeconds: figure('timeDuringTxns'),
      syncSeconds: figure('timeSync'),
      usedBytes: figure('lastPageNumber') * figure('pageSize'),
    };
  }

  private get tables(): Tables {
    if (!this.tablesOrUndefined) throw notInitialized(this.description);
    return this.tablesOrUndefined;
  }

  /** The root database, its read snapshot moved to the newest commit of any process. */
  private fresh(): RootDatabase {
    if (!this.root) throw notInitialized(this.description);
    this.root.resetReadTxn();
    return this.root;
  }

  private writer(): RootDatabase {
    if (!this.root) throw notInitialized(this.description);
    return this.root;
  }

  // Topics

  async createTopic(topic: Topic): Promise<boolean> {
    const { topics } = this.tables;
    return this.writer().transaction(() => {
      if (topics.get(topic.name) !== undefined) return false;
      topics.put(topic.name, topic);
      return true;
    });
  }

  async getTopic(name: string): Promise<Topic | undefined> {
    this.fresh();
    return this.tables.topics.get(name);
  }

  async reshardTopic(topic: Topic, expectedShards: number): Promise<boolean> {
    const { topics } = this.tables;
    const changed = await this.writer().transaction(() => {
      if (topics.get(topic.name)?.shards !== expectedShards) return false;
      topics.put(topic.name, topic);
      return true;
    });
    if (changed) this.knownTopics.delete(topic.name);
    return changed;
  }

  async listTopics(): Promise<Topic[]> {
    this.fresh();
    return [...this.tables.topics.getRange().map(({ value }) => value)];
  }

  private topicOf = (name: string): Topic | undefined => {
    let topic = this.knownTopics.get(name);
    if (!topic) {
      topic = this.tables.topics.get(name);
      if (topic) this.knownTopics.set(name, topic);
    }
    return topic;
  };

  // Ingest

  async appendMessages(messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    this.fresh();
    for (const name of outgrownTopics(messages, (n) => this.knownTopics.get(n))) this.knownTopics.delete(name);
    checkMessages(messages, this.topicOf);
    // One transaction: every message of the call is stored, or none.
    await this.durably(this.groups.write(messageChanges(messages), () => this.putMessages(messages)));
  }

  /** Resolves once the write is committed and flushed to disk (see the durability note above). */
  private async durably(commit: Promise<unknown>): Promise<void> {
    await commit;
    // Resolves when every commit so far is flushed: at once when the flush finished with the commit.
    await this.writer().flushed;
  }

  /** Queues the rows of the messages in the current batch. */
  private putMessages(messages: Message[]): void {
    const { bufferedMessages, messagePositions, groupMessages } = this.tables;
    const { bufferKey, position, message: plain, groupedMessage: grouped, groupKey } = this.rowScratch;
    try {
      for (const message of messages) {
        bufferKey[0] = position[0] = message.topic;
        bufferKey[1] = position[1] = message.shard;
        bufferKey[2] = position[2] = message.createdAt;
        bufferKey[3] = message.id;
        const row = message.group === undefined ? plain : grouped;
        row.key = message.key;
        row.token = message.token;
        row.value = message.value;
        row.headers = message.headers;
        if (message.group !== undefined) {
          grouped.group = groupKey[0] = message.group;
          groupKey[1] = message.id;
          groupMessages.put(groupKey, message.createdAt);
        }
        bufferedMessages.put(bufferKey, row);
        if (!positionImplied(message)) messagePositions.put(message.id, position);
        this.lanes.enter(message);
      }
    } finally {
      // The scratch rows must not keep the last message's value and headers alive.
      plain.value = grouped.value = undefined;
      plain.headers = grouped.headers = NO_HEADERS;
    }
  }

  async locateMessages(ids: readonly string[], within?: readonly string[]): Promise<Map<string, MessagePosition>> {
    this.fresh();
    const { messagePositions, bufferedMessages } = this.tables;
    const found = new Map<string, MessagePosition>();
    let topics: Topic[] | undefined;
    // Those `within` first: where a sink's or a produce's messages are.
    const candidateTopics = () => {
      const all = [...this.tables.topics.getRange().map(({ value }) => value)];
      return within ? [...all.filter((t) => within.includes(t.name)), ...all.filter((t) => !within.includes(t.name))] : all;
    };
    for (const messageId of ids) {
      const position = messagePositions.get(messageId);
      if (position) {
        found.set(messageId, { messageId, topic: position[0], shard: position[1], ts: position[2] });
        continue;
      }
      // Not indexed: where its id says it is, in whichever topic has such a shard (topics are few).
      const implied = impliedPosition(messageId);
      if (!implied) continue;
      topics ??= candidateTopics();
      for (const topic of topics) {
        if (implied.shard >= topic.shards || !bufferedMessages.doesExist([topic.name, implied.shard, implied.ts, messageId])) continue;
        found.set(messageId, { messageId, topic: topic.name, shard: implied.shard, ts: implied.ts });
        break;
      }
    }
    return found;
  }

  async getMessages(ids: readonly string[]): Promise<Map<string, Message>> {
    return this.getMessagesAt([...(await this.locateMessages(ids)).values()]);
  }

  async getMessagesAt(positions: readonly MessagePosition[]): Promise<Map<string, Message>> {
    this.fresh();
    const { bufferedMessages } = this.tables;
    const found = new Map<string, Message>();
    for (const { messageId, topic, shard, ts } of positions) {
      const key: BufferKey = [topic, shard, ts, messageId];
      const message = bufferedMessages.get(key);
      if (message) found.set(messageId, messageAt(key, message));
    }
    return found;
  }

  async readBuffer(topic: string, shard: number, fromTs: number, toTs: number, limit: number): Promise<Message[]> {
    if (limit <= 0 || fromTs > toTs) return [];
    this.fresh();
    const range = this.tables.bufferedMessages.getRange({ start: [topic, shard, fromTs], end: [topic, shard, toTs, AFTER_ALL], limit });
    return [...range.map(({ key, value }) => messageAt(key as BufferKey, value))];
  }

  async scanBuffer(topic: string, shard: number, fromTs: number, toTs: number, limit: number): Promise<MessagePosition[]> {
    if (limit <= 0 || fromTs > toTs) return [];
    this.fresh();
    const keys = this.tables.bufferedMessages.getKeys({ start: [topic, shard, fromTs], end: [topic, shard, toTs, AFTER_ALL], limit });
    return [...keys.map((key) => ({ messageId: (key as BufferKey)[3], topic, shard, ts: (key as BufferKey)[2] }))];
  }

  /** Counted in lmdb-js's native code: no key is decoded. */
  async countBuffer(topic: string, shard: number, fromTs: number, toTs: number): Promise<number> {
    if (fromTs > toTs) return 0;
    this.fresh();
    return this.tables.bufferedMessages.getKeysCount({ start: [topic, shard, fromTs], end: [topic, shard, toTs, AFTER_ALL] });
  }

  // Watermarks

  async getWatermark(consumer: string, topic: string, shard: number): Promise<number | undefined> {
    this.fresh();
    return this.tables.watermarks.get([consumer, topic, shard]);
  }

  async setWatermark(consumer: string, topic: string, shard: number, ts: number): Promise<void> {
    await this.tables.watermarks.put([consumer, topic, shard], ts);
  }

  // Source offsets

  async getSourceOffsets(connector: string): Promise<SourceOffset[]> {
    this.fresh();
    return [...this.tables.sourceOffsets.getRange({ start: [connector], end: [connector, AFTER_ALL] }).map(({ value }) => value)];
  }

  async putSourceOffsets(connector: string, offsets: SourceOffset[]): Promise<void> {
    const { sourceOffsets } = this.tables;
    await this.writer().batch(() => {
      for (const offset of offsets) sourceOffsets.put([connector, canonicalJson(offset.partition)], offset);
    });
  }

  async deleteSourceOffsets(connector: string): Promise<void> {
    const { sourceOffsets } = this.tables;
    await this.writer().transaction(() => {
      for (const key of sourceOffsets.getKeys({ start: [connector], end: [connector, AFTER_ALL] })) sourceOffsets.remove(key);
    });
  }

  // Deliveries

  async getDeliveries(connector: string, positions: readonly MessagePosition[]): Promise<Map<string, Delivery>> {
    this.fresh();
    const { deliveryStates, receiptStates } = this.tables;
    const found = new Map<string, Delivery>();
    const sending = this.sendingStates(connector, positions);
    const sent = this.sentStates(connector, positions);
    for (const position of positions) {
      const { messageId, topic, shard, ts } = position;
      const key: DeliveryKey = [topic, shard, ts, messageId, connector];
      const stored = deliveryStates.get(key);
      const row = stored && { ...stored, connector, messageId, topic, shard, ts };
      const batchSent = sent.get(messageId);
      const settled = batchSent && !(row && rowSupersedes(row, batchSent)) ? batchSent : row;
      const send = sending.get(messageId);
      // A send of a later attempt than the settled state is the newer state: its outcome is not written.
      const own = send && !(settled && settled.attempts >= send.attempts) ? send : settled;
      const receipt = receiptStates.get(key);
      const delivery = withReceipt(own, receipt && { ...receipt, connector, messageId, topic, shard, ts });
      if (delivery) found.set(messageId, delivery);
    }
    return found;
  }

  async putReceiptStates(receipts: ReceiptState[]): Promise<void> {
    if (receipts.length === 0) return;
    const table = this.tables.receiptStates;
    await this.groups.write(receiptChanges(receipts), () => {
      for (const { connector, messageId, topic, shard, ts, ...stored } of receipts) table.put([topic, shard, ts, messageId, connector], stored);
    });
  }

  /** The `sending` states the send records of these positions' shards hold for them, by message id. */
  private sendingStates(connector: string, positions: readonly MessagePosition[]): Map<string, Delivery> {
    return this.batchedStates(this.tables.sends, 'sending', connector, positions, (p) => [p.topic, p.shard, connector]);
  }

  /** The plain `sent` states the sent batches of these positions' shards and slots hold for them, by message id. */
  private sentStates(connector: string, positions: readonly MessagePosition[]): Map<string, Delivery> {
    return this.batchedStates(this.tables.sentBatches, 'sent', connector, positions, (p) => [p.topic, p.shard, slotOf(p.ts), connector]);
  }

  /**
   * The states that batch records (send records, sent batches) hold for these positions, by
   * message id: the records under each position's key prefix (topic and shard first) are read
   * once per prefix, and of a message listed more than once the highest attempt wins.
   */
  private batchedStates(
    table: Database<SendRecord, Key> | Database<SentBatch, Key>,
    state: 'sending' | 'sent',
    connector: string,
    positions: readonly MessagePosition[],
    prefixOf: (position: MessagePosition) => [topic: string, shard: number, ...rest: Array<string | number>],
  ): Map<string, Delivery> {
    const wanted = new Map<string, MessagePosition>();
    const prefixes = new Map<string, ReturnType<typeof prefixOf>>();
    for (const p of positions) {
      wanted.set(p.messageId, p);
      const prefix = prefixOf(p);
      prefixes.set(prefix.join('\u0000'), prefix);
    }
    const states = new Map<string, Delivery>();
    for (const prefix of prefixes.values()) {
      const [topic, shard] = prefix;
      for (const { value } of table.getRange({ start: prefix, end: [...prefix, AFTER_ALL] })) {
        const record = value as SentBatch;
        for (let i = 0; i < record.ids.length; i++) {
          const position = wanted.get(record.ids[i]!);
          if (!position || position.topic !== topic || position.shard !== shard || position.ts !== record.ts[i]) continue;
          const earlier = states.get(position.messageId);
          if (earlier && earlier.attempts >= record.attempts[i]!) continue;
          const providerId = record.providerIds?.[i];
          states.set(position.messageId, {
            ...position,
            connector,
            state,
            attempts: record.attempts[i]!,
            epoch: record.epoch,
            workerId: record.workerId,
            ...(providerId != null ? { providerId } : {}),
            updatedAt: record.updatedAt,
          });
        }
      }
    }
    return states;
  }

  /**
   * A sink writes `sending` for every message of a batch, and an outcome for each soon after.
   * Plain `sending` rows are kept as one send record per shard of the batch (in `sends`), not
   * as a row per message; the outcome row of a message settles its entry, and a record all of
   * whose entries are settled is removed in the same transaction. A row per message made
   * `sending` one of the three rows a delivered message cost; a record costs a row per shard.
   * Entries still open after a crash are what the next owner finds in doubt (`getDeliveries`
   * reads them, the newer of a record's attempt and a row's winning).
   *
   * Plain `sent` states (the usual outcome: no error, no retry, no group; a provider id may
   * come with it) are kept the same way, as one sent batch per shard and slot of time of the
   * batch (in `sent_batches`), filed under the messages' buffer time: a position's state is then
   * one prefix read away, and a slot's batches expire with its messages by one range. They are
   * final, so nothing rewrites them. With both, a delivered message costs its buffer entry and
   * a share of two batch rows, not three rows. A row written for the message afterwards (a
   * later attempt's, a state set by hand) is found newer when read (see `getDeliveries`).
   *
   * A delivery row's value leaves out what its key holds (position, connector). The rows a
   * sink writes for one batch then mostly share one value (same state, attempt, epoch, worker,
   * time), which is encoded once and stored as those bytes under every key.
   */
  async putDeliveries(deliveries: Delivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    const { deliveryStates: table, sends, sentBatches } = this.tables;
    const key = this.rowScratch.deliveryKey;
    const encoder = (table as unknown as { encoder: { encode(value: unknown): Uint8Array } }).encoder;
    // The last plain row's value and its bytes: consecutive rows of a batch usually share them.
    let last: Delivery | undefined;
    let bytes: Binary | undefined;
    const commit = this.groups.write(deliveryChanges(deliveries), () => {
      const settledSends = new Set<OpenSend>();
      const newSends: OpenSend[] = [];
      const newSentBatches: Array<{ key: SentBatchKey; batch: SentBatch }> = [];
      for (const d of deliveries) {
        // Whatever is written for a message now supersedes the send record that lists it.
        this.settleSend(d.connector, d.messageId, settledSends);
        if (isPlainSending(d)) {
          this.addToSend(newSends, d);
          continue;
        }
        if (isPlainSent(d)) {
          this.addToSentBatch(newSentBatches, d);
          continue;
        }
        key[0] = d.topic;
        key[1] = d.shard;
        key[2] = d.ts;
        key[3] = d.messageId;
        key[4] = d.connector;
        if (d.providerId !== undefined || d.lastError !== undefined || d.nextAttemptAt !== undefined || d.group !== undefined) {
          const { connector: _connector, messageId: _messageId, topic: _topic, shard: _shard, ts: _ts, ...value } = d;
          table.put(key, value as Delivery);
          continue;
        }
        if (
          !last ||
          !bytes ||
          d.state !== last.state ||
          d.attempts !== last.attempts ||
          d.epoch !== last.epoch ||
          d.updatedAt !== last.updatedAt ||
          d.workerId !== last.workerId
        ) {
          // Copied: the encoder reuses its buffer. Encoding with the table's own encoder keeps its shared structures saved.
          bytes = asBinary(Buffer.from(encoder.encode({ state: d.state, attempts: d.attempts, epoch: d.epoch, workerId: d.workerId, updatedAt: d.updatedAt })));
          last = d;
        }
        table.put(key, bytes as unknown as Delivery);
      }
      for (const send of settledSends) {
        if (send.open === 0) {
          sends.remove(send.key);
          this.openSendsByAge.delete(send);
          continue;
        }
        const { record, settled } = send;
        const keep = (_: unknown, i: number) => !settled[i];
        sends.put(send.key, { ...record, ids: record.ids.filter(keep), ts: record.ts.filter(keep), attempts: record.attempts.filter(keep) });
      }
      this.forgetStaleSends(Date.now() - STALE_SEND_MS);
      for (const { key, batch } of newSentBatches) sentBatches.put(key, batch);
      for (const send of newSends) {
        sends.put(send.key, send.record);
        this.openSendsByAge.add(send);
        let open = this.openSends.get(send.key[2]);
        if (!open) this.openSends.set(send.key[2], (open = new Map()));
        for (const id of send.record.ids) open.set(id, send);
      }
    });
    await this.durably(commit);
  }

  /** Marks the message's entry in an open send record of this process settled; the record is to be rewritten or removed. */
  private settleSend(connector: string, messageId: string, settledSends: Set<OpenSend>): void {
    const open = this.openSends.get(connector);
    const send = open?.get(messageId);
    if (!send) return;
    open!.delete(messageId);
    const { ids } = send.record;
    // Found at the first open entry when outcomes come in the record's order.
    let entry = ids.indexOf(messageId, send.firstOpen);
    while (entry !== -1 && send.settled[entry]) entry = ids.indexOf(messageId, entry + 1);
    if (entry === -1) return;
    send.settled[entry] = true;
    send.open -= 1;
    while (send.firstOpen < ids.length && send.settled[send.firstOpen]) send.firstOpen += 1;
    settledSends.add(send);
  }

  /**
   * Stops tracking send records older than `before`. Their entries stay on disk for whoever owns
   * the shard next (an outcome row of a later or equal attempt supersedes an entry when read);
   * only their clean-up is left to the retention sweep.
   */
  private forgetStaleSends(before: number): void {
    for (const send of this.openSendsByAge) {
      if (send.record.updatedAt >= before) return;
      this.openSendsByAge.delete(send);
      const open = this.openSends.get(send.key[2]);
      send.record.ids.forEach((id, entry) => {
        if (!send.settled[entry] && open?.get(id) === send) open.delete(id);
      });
    }
  }

  /** Adds a `sending` state to the new record of its shard and batch (same epoch, worker and time). */
  private addToSend(newSends: OpenSend[], d: Delivery): void {
    let send = newSends.find(({ key, record }) => key[1] === d.shard && key[0] === d.topic && key[2] === d.connector && sameWrite(record, d));
    if (!send) {
      const record: SendRecord = { epoch: d.epoch, workerId: d.workerId, updatedAt: d.updatedAt, ids: [], ts: [], attempts: [] };
      send = { key: [d.topic, d.shard, d.connector, d.updatedAt, this.sequence.next(), this.sequence.tag], record, settled: [], open: 0, firstOpen: 0 };
      newSends.push(send);
    }
    pushEntry(send.record, d);
    send.settled.push(false);
    send.open += 1;
  }

  /** Adds a plain `sent` state to the new sent batch of its shard and slot (same epoch, worker and time). */
  private addToSentBatch(newBatches: Array<{ key: SentBatchKey; batch: SentBatch }>, d: Delivery): void {
    const slot = slotOf(d.ts);
    let entry = newBatches.find(({ key, batch }) => key[1] === d.shard && key[2] === slot && key[0] === d.topic && key[3] === d.connector && sameWrite(batch, d));
    if (!entry) {
      entry = {
        key: [d.topic, d.shard, slot, d.connector, this.sequence.next(), this.sequence.tag],
        batch: { epoch: d.epoch, workerId: d.workerId, updatedAt: d.updatedAt, ids: [], ts: [], attempts: [] },
      };
      newBatches.push(entry);
    }
    const { batch } = entry;
    // Provider ids are a column only in batches where some message has one.
    if (d.providerId !== undefined && !batch.providerIds) batch.providerIds = batch.ids.map(() => null);
    batch.providerIds?.push(d.providerId ?? null);
    pushEntry(batch, d);
  }

  /** Kept until the retention sweep removes the delivery state naming the provider id (`sweepExpired`). */
  async putProviderIds(entries: ProviderIdEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const { providerIds } = this.tables;
    await this.writer().batch(() => {
      for (const entry of entries) providerIds.put([entry.connector, entry.providerId], entry.messageId);
    });
  }

  async findByProviderId(connector: string, providerId: string): Promise<string | undefined> {
    this.fresh();
    return this.tables.providerIds.get([connector, providerId]);
  }

  // Events and groups

  /** Kept until the retention sweep removes their message (`sweepExpired`), which is why the topic is not stored. */
  async appendEvents(events: NewMessageEvent[]): Promise<void> {
    if (events.length === 0) return;
    const table = this.tables.events;
    const { tag } = this.sequence;
    await this.writer().batch(() => {
      for (const { topic: _, ...event } of events) table.put([event.messageId, event.at, this.sequence.next(), tag], event);
    });
  }

  async listEvents(messageId: string): Promise<MessageEvent[]> {
    this.fresh();
    return [...this.tables.events.getRange({ start: [messageId], end: [messageId, AFTER_ALL] }).map(({ value }) => value)];
  }

  async listGroupMessages(group: string, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    this.fresh();
    return [...this.tables.groupMessages.getKeys({ start: [group], end: [group, AFTER_ALL], limit }).map((key) => (key as [string, string])[1])];
  }

  // Leases: compare-and-set inside a write transaction, which holds LMDB's cross-process write lock.

  async acquireLease(name: string, owner: string, ttlMs: number, now = Date.now()): Promise<Lease | undefined> {
    const { leases } = this.tables;
    return this.writer().transaction(() => {
      const current = leases.get(name);
      let next: Lease;
      if (current === undefined) next = { name, owner, epoch: 1, expiresAt: now + ttlMs };
      else if (current.owner === owner) next = { name, owner, epoch: current.epoch, expiresAt: now + ttlMs };
      else if (current.expiresAt <= now) next = { name, owner, epoch: current.epoch + 1, expiresAt: now + ttlMs };
      else return undefined;
      leases.put(name, next);
      return next;
    });
  }

  async renewLease(name: string, owner: string, epoch: number, ttlMs: number, now = Date.now()): Promise<boolean> {
    const { leases } = this.tables;
    return this.writer().transaction(() => {
      const current = leases.get(name);
      if (current?.owner !== owner || current.epoch !== epoch) return false;
      leases.put(name, { ...current, expiresAt: now + ttlMs });
      return true;
    });
  }

  async releaseLease(name: string, owner: string, epoch: number): Promise<void> {
    const { leases } = this.tables;
    await this.writer().transaction(() => {
      const current = leases.get(name);
      // Released, not deleted: the epoch must keep growing for whoever takes the lease next.
      if (current?.owner === owner && current.epoch === epoch) leases.put(name, { name, owner: '', epoch, expiresAt: 0 });
    });
  }

  async listLeases(prefix: string): Promise<Lease[]> {
    this.fresh();
    const held: Lease[] = [];
    for (const { key, value } of this.tables.leases.getRange({ start: prefix })) {
      if (!key.startsWith(prefix)) break;
      if (value.owner !== '') held.push(value);
    }
    return held;
  }

  async acquireSessionLease(name: string, owner: string, liveMembers: readonly string[], ttlMs: number, now = Date.now()): Promise<Lease | undefined> {
    const { leases } = this.tables;
    return this.writer().transaction(() => {
      const current = leases.get(name);
      const held = current !== undefined && current.owner !== '' && current.owner !== owner && (current.expiresAt > now || liveMembers.includes(current.owner));
      if (held) return undefined;
      const next = { name, owner, epoch: (current?.epoch ?? 0) + 1, expiresAt: now + ttlMs };
      leases.put(name, next);
      return next;
    });
  }

  // Members and the cluster view

  async heartbeat(member: Member, ttlMs: number): Promise<void> {
    await this.tables.members.put(member.id, { ...member, expiresAt: member.heartbeatAt + ttlMs });
  }

  async readCluster(now = Date.now()): Promise<ClusterView> {
    this.fresh();
    const members: Member[] = [];
    for (const { value } of this.tables.members.getRange()) {
      const { expiresAt, ...member } = value;
      if (expiresAt > now) members.push(member);
    }
    const version = this.tables.meta.get(CONNECTORS_VERSION_KEY) as number | undefined;
    return { members, connectorsVersion: version === undefined ? '' : String(version) };
  }

  async removeMember(id: string): Promise<void> {
    await this.tables.members.remove(id);
  }

  // Control plane

  async putConnector(record: ConnectorRecord): Promise<void> {
    await this.tables.connectors.put(record.name, record);
  }

  async createConnector(record: ConnectorRecord): Promise<boolean> {
    const { connectors } = this.tables;
    return this.writer().transaction(() => {
      if (connectors.get(record.name) !== undefined) return false;
      connectors.put(record.name, record);
      return true;
    });
  }

  async getConnector(name: string): Promise<ConnectorRecord | undefined> {
    this.fresh();
    return this.tables.connectors.get(name);
  }

  async listConnectors(): Promise<ConnectorRecord[]> {
    this.fresh();
    return [...this.tables.connectors.getRange().map(({ value }) => value)];
  }

  async deleteConnector(name: string): Promise<void> {
    await this.tables.connectors.remove(name);
  }

  async bumpConnectorsVersion(): Promise<void> {
    const { meta } = this.tables;
    await this.writer().transaction(() => meta.put(CONNECTORS_VERSION_KEY, ((meta.get(CONNECTORS_VERSION_KEY) as number | undefined) ?? 0) + 1));
  }

  async putStatus(status: StatusRecord): Promise<void> {
    await this.tables.statuses.put([status.connector, status.task ?? -1], status);
  }

  async listStatuses(connector: string): Promise<StatusRecord[]> {
    this.fresh();
    return [...this.tables.statuses.getRange({ start: [connector], end: [connector, AFTER_ALL] }).map(({ value }) => value)];
  }

  async deleteStatuses(connector: string): Promise<void> {
    const { statuses } = this.tables;
    await this.writer().transaction(() => {
      for (const key of statuses.getKeys({ start: [connector], end: [connector, AFTER_ALL] })) statuses.remove(key);
    });
  }

  async createTemplate(record: TemplateRecord): Promise<boolean> {
    const { templates } = this.tables;
    return this.writer().transaction(() => {
      if (templates.get(record.name) !== undefined) return false;
      templates.put(record.name, record);
      return true;
    });
  }

  async updateTemplate(record: TemplateRecord, expected: Pick<TemplateRecord, 'latestVersion' | 'liveVersion'>): Promise<boolean> {
    const { templates } = this.tables;
    return this.writer().transaction(() => {
      const current = templates.get(record.name);
      if (!current || current.latestVersion !== expected.latestVersion || current.liveVersion !== expected.liveVersion) return false;
      templates.put(record.name, record);
      return true;
    });
  }

  async getTemplate(name: string): Promise<TemplateRecord | undefined> {
    this.fresh();
    return this.tables.templates.get(name);
  }

  async listTemplates(): Promise<TemplateRecord[]> {
    this.fresh();
    return [...this.tables.templates.getRange().map(({ value }) => value)];
  }

  async deleteTemplate(name: string): Promise<void> {
    const { templates, templateVersions } = this.tables;
    await this.writer().transaction(() => {
      templates.remove(name);
      for (const key of templateVersions.getKeys({ start: [name], end: [name, AFTER_ALL] })) templateVersions.remove(key);
    });
  }

  async createTemplateVersion(version: TemplateVersion): Promise<boolean> {
    const { templateVersions } = this.tables;
    return this.writer().transaction(() => {
      if (templateVersions.get([version.name, version.version]) !== undefined) return false;
      templateVersions.put([version.name, version.version], version);
      return true;
    });
  }

  async getTemplateVersion(name: string, version: number): Promise<TemplateVersion | undefined> {
    this.fresh();
    return this.tables.templateVersions.get([name, version]);
  }

  async listTemplateVersions(name: string): Promise<TemplateVersion[]> {
    this.fresh();
    return [...this.tables.templateVersions.getRange({ start: [name], end: [name, AFTER_ALL] }).map(({ value }) => value)];
  }

  /**
   * Removes messages older than their topic's retention, with their buffer and group entries,
   * delivery and receipt states, send records, events and provider ids, and members long
   * dead: what TTLs do on CQL. Runs on a timer; safe to run in several processes at once.
   * Returns how many messages it removed.
   */
  async sweepExpired(now = Date.now()): Promise<number> {
    const { topics, bufferedMessages, messagePositions, deliveryStates, sends, sentBatches, receiptStates, groupMessages, events, providerIds, members } = this.tables;
    this.fresh();
    const deadMembers = [...members.getRange().filter(({ value }) => value.expiresAt < now - DEAD_MEMBER_KEPT_MS).map(({ key }) => key)];
    if (deadMembers.length > 0) {
      await this.writer().transaction(() => {
        for (const id of deadMembers) {
          const member = members.get(id);
          if (member && member.expiresAt < now - DEAD_MEMBER_KEPT_MS) members.remove(id);
        }
      });
    }
    let removed = 0;
    for (const topic of [...topics.getRange().map(({ value }) => value)]) {
      if (!(topic.retentionMs > 0)) continue;
      const cutoff = now - topic.retentionMs;
      for (let shard = 0; shard < topic.shards; shard++) {
        const expired = [...bufferedMessages.getRange({ start: [topic.name, shard], end: [topic.name, shard, cutoff], limit: 10_000 })];
        // A send record is older than every message it lists (sent after they were produced).
        const expiredSends = [...sends.getRange({ start: [topic.name, shard], end: [topic.name, shard, AFTER_ALL] })]
          .filter(({ value }) => value.updatedAt < cutoff)
          .map(({ key }) => key);
        // Sent batches of the slots wholly before the cutoff (those of its own slot go at the next sweep).
        const expiredSentBatches = [...sentBatches.getRange({ start: [topic.name, shard], end: [topic.name, shard, slotOf(cutoff)], limit: 10_000 })];
        if (expired.length === 0 && expiredSends.length === 0 && expiredSentBatches.length === 0) continue;
        const states = [...deliveryStates.getRange({ start: [topic.name, shard], end: [topic.name, shard, cutoff] })];
        const receipts = [...receiptStates.getKeys({ start: [topic.name, shard], end: [topic.name, shard, cutoff] })];
        // A message's events are keyed by its id; a provider id is found through the state that names it.
        const eventKeys = expired.flatMap(({ key }) => [...events.getKeys({ start: [(key as BufferKey)[3]], end: [(key as BufferKey)[3], AFTER_ALL] })]);
        const providerKeys = states.flatMap(({ key, value }) => (value.providerId === undefined ? [] : [[(key as DeliveryKey)[4], value.providerId]]));
        for (const { key, value } of expiredSentBatches) {
          for (const providerId of value.providerIds ?? []) if (providerId !== null) providerKeys.push([(key as SentBatchKey)[3], providerId]);
        }
        await this.writer().transaction(() => {
          for (const key of expiredSends) sends.remove(key);
          for (const { key } of expiredSentBatches) sentBatches.remove(key);
          for (const { key, value } of expired) {
            const id = (key as BufferKey)[3];
            if (value.group !== undefined) groupMessages.remove([value.group, id]);
            const [, shard, ts] = key as BufferKey;
            if (!positionImplied({ id, shard, createdAt: ts })) messagePositions.remove(id);
            this.lanes.forget(topic.name, shard, ts, id, value.headers);
            bufferedMessages.remove(key);
          }
          this.groups.forgetCancelled(
            topic.name,
            shard,
            expired.map(({ key }) => (key as BufferKey)[3]),
          );
          for (const { key } of states) deliveryStates.remove(key);
          for (const key of receipts) receiptStates.remove(key);
          for (const key of eventKeys) events.remove(key);
          for (const key of providerKeys) providerIds.remove(key);
        });
        removed += expired.length;
      }
    }
    return removed;
  }

  // Group tallies and cancellations (lmdb-groups.ts)

  async readGroupTallies(group: string): Promise<GroupTally[]> {
    this.fresh();
    return this.groups.readTallies(group);
  }

  async cancelMessages(positions: readonly MessagePosition[]): Promise<void> {
    await this.durably(this.groups.cancelMessages(positions));
  }

  async cancelGroup(group: string, at: number): Promise<void> {
    await this.durably(this.groups.cancelGroup(group, at));
  }

  async cancelledAmong(positions: readonly MessagePosition[]): Promise<Set<string>> {
    this.fresh();
    return this.groups.cancelledAmong(positions);
  }

  // Suppression list (lmdb-suppressions.ts)

  private get suppressionList(): LmdbSuppressions {
    return new LmdbSuppressions(this.tables.suppressions, () => this.fresh(), () => this.writer());
  }

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

  // Scheduled messages (lmdb-scheduled.ts)

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

  // Priority lanes (lmdb-priorities.ts)

  async scanPriorityLane(topic: string, shard: number, lane: Lane, fromTs: number, toTs: number, limit: number): Promise<MessagePosition[]> {
    this.fresh();
    return this.lanes.scan(topic, shard, lane, fromTs, toTs, limit);
  }
}
