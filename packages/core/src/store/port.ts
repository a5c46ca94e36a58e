/**
 * The store port: everything the bus and the control plane keep, behind one interface with
 * two adapters (LMDB embedded, CQL for ScyllaDB/Cassandra) that pass one conformance suite.
 *
 * Shapes mirror the CQL tables (an ordered key-value store is what a CQL table is), so the
 * LMDB adapter keys its entries by the same primary keys. Times are ms since the epoch.
 */

export interface Topic {
  name: string;
  shards: number;
  /** JSON Schema that message values must satisfy, if any. */
  schema?: Record<string, unknown>;
  retentionMs: number;
  createdAt: number;
}

export interface Message {
  id: string;
  topic: string;
  key: string;
  /** Cassandra's Murmur3 token of the key, as a decimal string (it is a signed 64-bit integer). */
  token: string;
  shard: number;
  value: unknown;
  headers: Record<string, string>;
  group?: string;
  /** Ingestion time: the buffer entry's time. */
  createdAt: number;
}

/** A message's place in the buffer of its (topic, shard): ordered by ingestion time, then id. */
export interface BufferEntry {
  topic: string;
  shard: number;
  ts: number;
  id: string;
  key: string;
}

/** pending → sending → sent → delivered | read, or → retrying | failed | dead | unknown. */
export type DeliveryState =
  | 'pending'
  | 'sending'
  | 'retrying'
  | 'sent'
  | 'delivered'
  | 'read'
  | 'failed'
  | 'dead'
  | 'unknown';

/** States after which the consumer never hands the message to the task again. */
export const HANDLED_STATES: ReadonlySet<DeliveryState> = new Set(['sent', 'delivered', 'read', 'failed', 'dead', 'unknown']);

export interface Delivery {
  connector: string;
  messageId: string;
  state: DeliveryState;
  attempts: number;
  /** The lease epoch of the shard owner that wrote this state (fencing evidence). */
  epoch: number;
  workerId: string;
  providerId?: string;
  lastError?: { code: string; message: string };
  /** When a `retrying` message is due again. */
  nextAttemptAt?: number;
  updatedAt: number;
}

export interface MessageEvent {
  messageId: string;
  at: number;
  /** accepted, fetched, sending, sent, retrying, failed, dead, unknown, delivered, read… */
  type: string;
  connector?: string;
  workerId?: string;
  detail?: Record<string, unknown>;
}

export interface Lease {
  /** e.g. `sink:email/mail/3` — what is owned. */
  name: string;
  owner: string;
  /** Fencing token: grows every time ownership changes hands. */
  epoch: number;
  expiresAt: number;
}

export interface Member {
  id: string;
  /** The advertised REST URL, e.g. http://127.0.0.1:8083 (Kafka's worker_id is its host:port). */
  url: string;
  startedAt: number;
  heartbeatAt: number;
}

export type TargetState = 'STARTED' | 'PAUSED' | 'STOPPED';
export type ConnectorState = 'UNASSIGNED' | 'RUNNING' | 'PAUSED' | 'STOPPED' | 'FAILED' | 'RESTARTING';

export interface ConnectorRecord {
  name: string;
  /** As the operator gave it: with `${env:…}`/`${file:…}` placeholders unresolved. */
  config: Record<string, string>;
  targetState: TargetState;
  /** Task configs computed by the connector; replaced whole on reconfiguration. */
  taskConfigs: Array<Record<string, string>>;
  /** Bumped on every config or task-config change, so workers notice and restart tasks. */
  generation: number;
  createdAt: number;
  updatedAt: number;
}

export interface StatusRecord {
  connector: string;
  /** null for the connector itself, else the task number. */
  task: number | null;
  state: ConnectorState;
  workerId: string;
  trace?: string;
  generation: number;
  updatedAt: number;
}

export interface SourceOffset {
  partition: Record<string, unknown>;
  offset: Record<string, unknown>;
}

export interface Store {
  /** Creates or migrates the schema. Idempotent; every worker calls it at start. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** A short description for logs: "lmdb:/path" or "cql://host/keyspace". */
  readonly description: string;

  // Topics
  /** Creates the topic if absent; returns false (and changes nothing) if it exists. */
  createTopic(topic: Topic): Promise<boolean>;
  getTopic(name: string): Promise<Topic | undefined>;
  listTopics(): Promise<Topic[]>;

  // Ingest: message rows and their buffer entries, together
  /**
   * Writes every message and its buffer entry atomically (one transaction on LMDB, one logged
   * batch on CQL). Resolves only once the store has acknowledged the write.
   */
  appendMessages(messages: Message[]): Promise<void>;
  getMessages(ids: readonly string[]): Promise<Map<string, Message>>;
  /** Buffer entries of (topic, shard) with fromTs <= ts <= toTs, oldest first, at most `limit`. */
  readBuffer(topic: string, shard: number, fromTs: number, toTs: number, limit: number): Promise<BufferEntry[]>;

  // Consumer watermarks
  getWatermark(consumer: string, topic: string, shard: number): Promise<number | undefined>;
  setWatermark(consumer: string, topic: string, shard: number, ts: number): Promise<void>;

  // Source connector offsets (Kafka Connect's partition map → offset map)
  getSourceOffsets(connector: string): Promise<SourceOffset[]>;
  putSourceOffsets(connector: string, offsets: SourceOffset[]): Promise<void>;
  deleteSourceOffsets(connector: string): Promise<void>;

  // Deliveries
  getDeliveries(connector: string, messageIds: readonly string[]): Promise<Map<string, Delivery>>;
  putDeliveries(deliveries: Delivery[]): Promise<void>;
  /** Every connector's delivery of one message. */
  listDeliveries(messageId: string): Promise<Delivery[]>;
  /** Maps a provider's id back to our message (SMPP receipts and some webhooks carry only theirs). */
  putProviderIds(entries: Array<{ connector: string; providerId: string; messageId: string }>): Promise<void>;
  findByProviderId(connector: string, providerId: string): Promise<string | undefined>;

  // Events and groups
  appendEvents(events: MessageEvent[]): Promise<void>;
  listEvents(messageId: string): Promise<MessageEvent[]>;
  /** Ids of the messages produced with this group (campaign, batch), in no particular order. */
  listGroupMessages(group: string, limit: number): Promise<string[]>;

  // Leases (LWT on CQL)
  /**
   * Takes the lease if it is free, expired or already ours. Taking it from another owner
   * (or for the first time) bumps the epoch; renewing our own keeps it.
   */
  acquireLease(name: string, owner: string, ttlMs: number, now?: number): Promise<Lease | undefined>;
  /** Extends our lease if we still hold it with this epoch; false means we lost it. */
  renewLease(name: string, owner: string, epoch: number, ttlMs: number, now?: number): Promise<boolean>;
  releaseLease(name: string, owner: string, epoch: number): Promise<void>;
  listLeases(prefix: string): Promise<Lease[]>;

  // Members
  heartbeat(member: Member, ttlMs: number): Promise<void>;
  /** Members whose heartbeat has not expired. */
  listMembers(now?: number): Promise<Member[]>;
  removeMember(id: string): Promise<void>;

  // Control plane
  putConnector(record: ConnectorRecord): Promise<void>;
  /** Creates the connector only if no connector has this name (LWT on CQL); false if it exists. */
  createConnector(record: ConnectorRecord): Promise<boolean>;
  getConnector(name: string): Promise<ConnectorRecord | undefined>;
  listConnectors(): Promise<ConnectorRecord[]>;
  deleteConnector(name: string): Promise<void>;
  putStatus(status: StatusRecord): Promise<void>;
  listStatuses(connector: string): Promise<StatusRecord[]>;
  deleteStatuses(connector: string): Promise<void>;
}
