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
  /** Earlier shard counts and when each gave way to the next, oldest first (see bus/reshard.ts); absent if never changed. */
  reshards?: Reshard[];
  /** Quiet hours for every message of the topic that does not name its own (bus/quiet-hours.ts). */
  quietHours?: QuietHours;
}

/** A change of a topic's shard count: messages produced from `at` on are routed over `to` shards, earlier ones over `from`. */
export interface Reshard {
  at: number;
  from: number;
  to: number;
}

/** A daily window in a time zone during which messages are held (bus/quiet-hours.ts). */
export interface QuietHours {
  /** `HH:MM`, 24-hour, inclusive. */
  start: string;
  /** `HH:MM`, 24-hour, exclusive; before `start` when the window wraps midnight. */
  end: string;
  /** An IANA zone name, e.g. Europe/Paris. */
  timeZone: string;
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

/**
 * Where a message sits in the buffer: its (topic, shard) and its ingestion time (`createdAt`).
 * Deliveries are kept by this position, beside the buffer, so that a consumer reads and writes
 * the delivery states of a window with the same few range reads and partition writes as the
 * buffer itself.
 */
export interface MessagePosition {
  messageId: string;
  topic: string;
  shard: number;
  /** The message's `createdAt`: its buffer time. */
  ts: number;
  /**
   * The message's group, when it has one: a delivery or receipt row carrying it moves the
   * group's tally (see store/group-tally.ts).
   */
  group?: string;
}

export const positionOf = (m: Message): MessagePosition => ({ messageId: m.id, topic: m.topic, shard: m.shard, ts: m.createdAt });

/** The message's position with its group: what a sink builds its delivery rows from, so that they move the group's tally. */
export const groupedPositionOf = (m: Message): MessagePosition => (m.group === undefined ? positionOf(m) : { ...positionOf(m), group: m.group });

/**
 * pending → sending → sent → delivered | read, or → retrying | failed | dead | unknown; or
 * → filtered: the connector's transformation chain dropped the message (not sent, done).
 * → expired: its `expires_at` passed before it was handed to the connector (not sent, done).
 * → cancelled: it (or its group) was cancelled before it was handed to the connector (not sent, done).
 * → suppressed: a recipient is on the suppression list for the message's channel and category (not sent, done).
 */
export type DeliveryState =
  | 'pending'
  | 'sending'
  | 'retrying'
  | 'sent'
  | 'delivered'
  | 'read'
  | 'failed'
  | 'dead'
  | 'unknown'
  | 'filtered'
  | 'expired'
  | 'cancelled'
  | 'suppressed';

/** States after which the consumer never hands the message to the task again. */
export const HANDLED_STATES: ReadonlySet<DeliveryState> = new Set(['sent', 'delivered', 'read', 'failed', 'dead', 'unknown', 'filtered', 'expired', 'cancelled', 'suppressed']);

/** The states a provider's receipt moves a message to. */
export type ReceiptStateName = 'delivered' | 'read' | 'failed';

/**
 * The states each receipt state follows: a receipt never moves a message backwards (`read` is
 * not undone by a late `delivered`) nor over a final outcome of our own (`dead`).
 */
export const RECEIPT_FOLLOWS: Readonly<Record<ReceiptStateName, ReadonlySet<DeliveryState>>> = {
  delivered: new Set(['pending', 'sending', 'retrying', 'unknown', 'sent', 'failed']),
  read: new Set(['pending', 'sending', 'retrying', 'unknown', 'sent', 'delivered', 'failed']),
  failed: new Set(['pending', 'sending', 'retrying', 'unknown', 'sent']),
};

/**
 * The latest state a provider's receipts gave a message, for one connector. It is kept beside
 * the sink's own state, not over it: the sink writes `sent` after the provider answered, and a
 * receipt (an SMSC sends one right after submit_sm_resp) can land first, on any worker. Neither
 * write replaces the other; `getDeliveries` gives the receipt's state where it follows the
 * sink's ({@link withReceipt}).
 */
export interface ReceiptState extends MessagePosition {
  connector: string;
  state: ReceiptStateName;
  /** The worker that applied the receipt (a message no sink state was found for shows it). */
  workerId: string;
  providerId?: string;
  lastError?: { code: string; message: string };
  updatedAt: number;
}

/** A message's delivery as `getDeliveries` gives it: the sink's own state, moved on by the receipt's where it follows it. */
export function withReceipt(own: Delivery | undefined, receipt: ReceiptState | undefined): Delivery | undefined {
  if (!receipt) return own;
  if (own && !RECEIPT_FOLLOWS[receipt.state].has(own.state)) return own;
  const providerId = own?.providerId ?? receipt.providerId;
  const lastError = receipt.lastError ?? own?.lastError;
  const { messageId, topic, shard, ts, connector } = receipt;
  return {
    messageId,
    topic,
    shard,
    ts,
    connector,
    state: receipt.state,
    attempts: own?.attempts ?? 0,
    epoch: own?.epoch ?? 0,
    workerId: own?.workerId ?? receipt.workerId,
    ...(providerId !== undefined ? { providerId } : {}),
    ...(lastError !== undefined ? { lastError } : {}),
    ...((own?.group ?? receipt.group) !== undefined ? { group: own?.group ?? receipt.group } : {}),
    updatedAt: Math.max(own?.updatedAt ?? 0, receipt.updatedAt),
  };
}

export interface Delivery extends MessagePosition {
  connector: string;
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

/**
 * An event as appended: with its message's topic. Events are kept as long as the topic keeps
 * its messages (the topic's retention), not forever: a message has several, and a platform
 * sends millions a day.
 */
export interface NewMessageEvent extends MessageEvent {
  topic: string;
}

/** A provider's id for a message we sent, kept, like events, for the retention of the message's topic. */
export interface ProviderIdEntry {
  connector: string;
  providerId: string;
  messageId: string;
  topic: string;
}

export interface Lease {
  /** e.g. `sink:email/mail/3` — what is owned. */
  name: string;
  owner: string;
  /** Fencing token: grows every time ownership changes hands. */
  epoch: number;
  /** Until when it holds without renewal; a session lease holds beyond while its owner is a live member. */
  expiresAt: number;
}

export interface Member {
  id: string;
  /** The advertised REST URL, e.g. http://127.0.0.1:8083 (Kafka's worker_id is its host:port). */
  url: string;
  startedAt: number;
  heartbeatAt: number;
  /** The worker groups it belongs to (its `worker.groups`): connectors naming one of them may run tasks there. */
  groups?: string[];
}

/** What a worker learns from one read of the cluster at every heartbeat. */
export interface ClusterView {
  /** Members whose heartbeat has not expired. */
  members: Member[];
  /**
   * Changes whenever a writer calls `bumpConnectorsVersion`: a worker re-reads the connectors
   * only when it differs from the one it saw before. Opaque: compare for equality, never order.
   * '' until the first bump.
   */
  connectorsVersion: string;
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

/**
 * A message template: its versions are kept whole and never change once written; the record
 * says which one is live (what a produce naming the template without a version renders).
 */
export interface TemplateRecord {
  name: string;
  /** The version a produce gets when it names no version. */
  liveVersion: number;
  /** The highest version written: the next one is this plus one. */
  latestVersion: number;
  createdAt: number;
  updatedAt: number;
}

/** One version of a template: its channel, default locale and each locale's parts (subject, html, text, body…). */
export interface TemplateVersion {
  name: string;
  version: number;
  channel: string;
  defaultLocale: string;
  locales: Record<string, Record<string, string>>;
  createdAt: number;
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

  // Ingest: messages are kept in the buffer of their (topic, shard), by time; an index finds them by id
  /**
   * Writes the messages into the buffer and the id index. Resolves only once the store has
   * acknowledged every write. Not atomic across messages: after a failure some messages may be
   * stored (and delivered); producing them again with the same ids stores nothing twice.
   */
  appendMessages(messages: Message[]): Promise<void>;
  /**
   * Where the messages with these ids are (those that exist and have not expired). `within`,
   * when given, names the topics they are likely in (a sink's topics, a produce's topic): a
   * message whose id says where it is (ids.ts, `positionImplied`) has no index row, and is
   * looked for in those topics first, then in the others.
   */
  locateMessages(ids: readonly string[], within?: readonly string[]): Promise<Map<string, MessagePosition>>;
  getMessages(ids: readonly string[]): Promise<Map<string, Message>>;
  /** The messages at these positions (those that exist), by id. */
  getMessagesAt(positions: readonly MessagePosition[]): Promise<Map<string, Message>>;
  /** Messages of (topic, shard) with fromTs <= createdAt <= toTs, in (createdAt, id) order, at most `limit`. */
  readBuffer(topic: string, shard: number, fromTs: number, toTs: number, limit: number): Promise<Message[]>;
  /** The positions of what `readBuffer` would return, without reading the messages themselves. */
  scanBuffer(topic: string, shard: number, fromTs: number, toTs: number, limit: number): Promise<MessagePosition[]>;

  // Consumer watermarks
  getWatermark(consumer: string, topic: string, shard: number): Promise<number | undefined>;
  setWatermark(consumer: string, topic: string, shard: number, ts: number): Promise<void>;

  // Source connector offsets (Kafka Connect's partition map → offset map)
  getSourceOffsets(connector: string): Promise<SourceOffset[]>;
  putSourceOffsets(connector: string, offsets: SourceOffset[]): Promise<void>;
  deleteSourceOffsets(connector: string): Promise<void>;

  // Deliveries
  /** The connector's deliveries of the messages at these positions, by message id (absent: none written yet): each the sink's own state, moved on by its receipt state ({@link withReceipt}). */
  getDeliveries(connector: string, positions: readonly MessagePosition[]): Promise<Map<string, Delivery>>;
  putDeliveries(deliveries: Delivery[]): Promise<void>;
  /** Replaces each message's receipt state (see {@link ReceiptState}); the sink's own state is left as it is. */
  putReceiptStates(receipts: ReceiptState[]): Promise<void>;
  /** Maps a provider's id back to our message (SMPP receipts and some webhooks carry only theirs). */
  putProviderIds(entries: ProviderIdEntry[]): Promise<void>;
  findByProviderId(connector: string, providerId: string): Promise<string | undefined>;

  // Events and groups
  appendEvents(events: NewMessageEvent[]): Promise<void>;
  listEvents(messageId: string): Promise<MessageEvent[]>;
  /** Ids of the messages produced with this group (campaign, batch), in no particular order. */
  listGroupMessages(group: string, limit: number): Promise<string[]>;

  // Leases (LWT on CQL)
  /**
   * Takes the lease if it is free, expired or already ours. Taking it from another owner
   * (or for the first time) bumps the epoch; renewing our own keeps it.
   */
  acquireLease(name: string, owner: string, ttlMs: number, now?: number): Promise<Lease | undefined>;
  /**
   * Extends our lease if we still hold it with this epoch; false means we lost it. Throws when
   * it could not tell or could not extend it (the store did not answer, or an LWT's outcome was
   * unknown and not committed): the lease may still be ours until it expires.
   */
  renewLease(name: string, owner: string, epoch: number, ttlMs: number, now?: number): Promise<boolean>;
  releaseLease(name: string, owner: string, epoch: number): Promise<void>;
  listLeases(prefix: string): Promise<Lease[]>;
  /**
   * Takes a session lease: one its owner keeps by staying a live member (its heartbeat renews
   * it; no renewal of its own), as etcd keys attached to a lease. It is taken if free, if ours
   * (a previous life of this worker, or a session of ours that lapsed), or if it has expired
   * and its owner is not in `liveMembers` (the caller's latest cluster view). `ttlMs` protects
   * a fresh claim until every worker has seen its owner join. Taking always bumps the epoch, so
   * that of two workers judging the same holder, only one wins; one compare-and-set, no retry
   * on a view that may be stale: undefined when held or when another taker won.
   */
  acquireSessionLease(name: string, owner: string, liveMembers: readonly string[], ttlMs: number, now?: number): Promise<Lease | undefined>;

  // Members and the cluster view
  heartbeat(member: Member, ttlMs: number): Promise<void>;
  /** The live members and the connectors' version, in one read of one partition. */
  readCluster(now?: number): Promise<ClusterView>;
  removeMember(id: string): Promise<void>;

  // Control plane
  putConnector(record: ConnectorRecord): Promise<void>;
  /** Creates the connector only if no connector has this name (LWT on CQL); false if it exists. */
  createConnector(record: ConnectorRecord): Promise<boolean>;
  getConnector(name: string): Promise<ConnectorRecord | undefined>;
  listConnectors(): Promise<ConnectorRecord[]>;
  deleteConnector(name: string): Promise<void>;
  /**
   * Gives the cluster view a new `connectorsVersion`, so that every worker re-reads the
   * connectors at its next heartbeat. Writers call it after every connector write (create,
   * update, target state, restart request, delete). A call of its own, not part of those
   * writes: a connector and the cluster view live in different partitions, and a conditional
   * write cannot span two.
   */
  bumpConnectorsVersion(): Promise<void>;
  putStatus(status: StatusRecord): Promise<void>;
  listStatuses(connector: string): Promise<StatusRecord[]>;
  deleteStatuses(connector: string): Promise<void>;

  // Templates
  /** Creates the template only if no template has this name (LWT on CQL); false if it exists. */
  createTemplate(record: TemplateRecord): Promise<boolean>;
  /** Replaces the template's record if it is still at `expectedLatest`/`expectedLive`'s state (LWT on CQL); false otherwise. */
  updateTemplate(record: TemplateRecord, expected: Pick<TemplateRecord, 'latestVersion' | 'liveVersion'>): Promise<boolean>;
  getTemplate(name: string): Promise<TemplateRecord | undefined>;
  listTemplates(): Promise<TemplateRecord[]>;
  /** Removes the template and every version of it. */
  deleteTemplate(name: string): Promise<void>;
  /** Writes a version unless one with this number exists (LWT on CQL); false if it does. */
  createTemplateVersion(version: TemplateVersion): Promise<boolean>;
  getTemplateVersion(name: string, version: number): Promise<TemplateVersion | undefined>;
  /** Every version of the template, in version order. */
  listTemplateVersions(name: string): Promise<TemplateVersion[]>;

  // ---- Group tallies and cancellations (store/group-tally.ts) ----
  // A message, delivery row or receipt state that carries a `group` moves that group's tally in
  // the same write (appendMessages, putDeliveries, putReceiptStates; putScheduled for a message
  // held for later, counted `scheduled` until its release appends it): exact counts by state per
  // connector, kept per (group, topic, shard), never by scanning the group.
  /** The group's tallies, one per (topic, shard) its messages went to; empty for an unknown group. */
  readGroupTallies(group: string): Promise<GroupTally[]>;
  /** Records that these messages are cancelled (idempotent): a sink never hands them off afterwards. */
  cancelMessages(positions: readonly MessagePosition[]): Promise<void>;
  /** Records that the group is cancelled (idempotent): a sink never hands off its messages afterwards. */
  cancelGroup(group: string, at: number): Promise<void>;
  /** The ids of those of these messages that are cancelled, themselves or through their group. */
  cancelledAmong(positions: readonly MessagePosition[]): Promise<Set<string>>;

  // Resharding (bus/reshard.ts): a topic's shard count raised while it is in use
  /**
   * Replaces the topic's record with `topic` (a higher shard count and its `reshards`) only if
   * the stored one still has `expectedShards` shards (LWT on CQL); false otherwise (changed
   * meanwhile, or gone).
   */
  reshardTopic(topic: Topic, expectedShards: number): Promise<boolean>;

  // ---------------------------------------------------------------------------------------------
  // Suppression list (consent): per (channel, address), one entry per category
  // ---------------------------------------------------------------------------------------------
  /** Adds the entries, or replaces those with the same channel, address and category. */
  putSuppressions(entries: Suppression[]): Promise<void>;
  /** The entries of these addresses on the channel (every category), in no particular order. */
  findSuppressions(channel: string, addresses: readonly string[]): Promise<Suppression[]>;
  /** Removes the address's entry of that category on the channel, or all its entries when `category` is undefined; returns how many were removed. */
  deleteSuppressions(channel: string, address: string, category?: string): Promise<number>;
  /** A page of the whole list, in the store's order; `cursor` continues after the previous page, absent at the end. */
  listSuppressions(limit: number, cursor?: string): Promise<SuppressionPage>;

  // ---- Scheduled messages (send_at, quiet hours) ---------------------------------------------
  // A message produced for later is held here, by due time, not in the buffer: a scheduler on
  // one worker at a time reads only what is due and moves it into the buffer (bus/scheduler.ts).
  /**
   * Holds the messages until they are due. Resolves once durable (as `appendMessages`); writing an
   * entry again replaces it. A held message with a group (not a fallback) is counted in its
   * group's tally as `scheduled` with its hold, once.
   */
  putScheduled(entries: ScheduledMessage[]): Promise<void>;
  /** The held messages with these ids (those still held), by id. */
  getScheduled(ids: readonly string[]): Promise<Map<string, ScheduledMessage>>;
  /** Held messages with fromDueAt <= dueAt <= toDueAt, in (dueAt, id) order, at most `limit`. Reads only the partitions of that span. */
  readDueScheduled(fromDueAt: number, toDueAt: number, limit: number): Promise<ScheduledMessage[]>;
  /** Stops holding these messages (released into the buffer, or dropped). Removing one no longer held does nothing. */
  removeScheduled(entries: ReadonlyArray<ScheduledRef>): Promise<void>;

  // ---- Priority lanes (bus/priority-lanes.ts) ---------------------------------------------------
  // A message produced `high` or `low` is kept in the buffer like any other, and its position is
  // also entered in its (topic, shard)'s lane, written with it by `appendMessages` (before its
  // buffer row on CQL, in the same transaction on LMDB) and expiring with it. A sink reads a lane
  // ahead of the normal backlog; the normal read skips what a lane carries.
  /** Positions entered in the lane of (topic, shard) with fromTs <= ts <= toTs, in (ts, id) order, at most `limit`. */
  scanPriorityLane(topic: string, shard: number, lane: Lane, fromTs: number, toTs: number, limit: number): Promise<MessagePosition[]>;

  // ---- Counting buffer entries (the lag metrics, bus/shard-backlog.ts) ------------------------
  /**
   * How many entries the buffer of (topic, shard) holds with fromTs <= ts <= toTs, counted
   * without reading them. Only a store that can count a range natively has it (LMDB counts keys
   * in its own code); without it, a consumer counts the positions `scanBuffer` gives, page by page.
   */
  countBuffer?(topic: string, shard: number, fromTs: number, toTs: number): Promise<number>;
}

/** How urgently a message goes out when it shares a connector's capacity with others (bus/priority-lanes.ts). */
export type Priority = 'high' | 'normal' | 'low';
/** The priorities with a lane of their own: normal messages are read from the buffer itself. */
export type Lane = Exclude<Priority, 'normal'>;
export const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low'];
/** The header that carries a message's priority when it is not `normal`, stored with it on every store. */
export const PRIORITY_HEADER = 'omnibus.priority';

/**
 * The name of a topic's lane where a key needs a topic name: `#` is in no topic name, so it
 * names nothing else. A lane's CQL partitions and its consumers' watermarks are keyed by it.
 */
export const laneName = (topic: string, lane: Lane): string => `${topic}#${lane}`;

/** The lane a message's headers put it in, if any (`normal`, or an unknown value, has none). */
export function laneOf(headers: Readonly<Record<string, string>>): Lane | undefined {
  const priority = headers[PRIORITY_HEADER];
  return priority === 'high' || priority === 'low' ? priority : undefined;
}

/**
 * A group's counts in one (topic, shard): how many of its messages were produced there, how many
 * of those are still held for later, and per connector how many are in each state (a message
 * with no state for a connector is pending, or scheduled while held).
 */
export interface GroupTally {
  topic: string;
  shard: number;
  messages: number;
  /** Of `messages`, those held for later (send_at, quiet hours), not in the buffer yet; absent when none. */
  scheduled?: number;
  connectors: Record<string, Partial<Record<DeliveryState, number>>>;
}

/** One entry of the suppression list: `address` gets no message of `category` (or of any, for `all`) on `channel`. */
export interface Suppression {
  channel: string;
  /** Normalised: E.164 for phones, lower-case for e-mail. */
  address: string;
  /** A message category, or `all`. */
  category: string;
  /** stop, opted-out, hard-bounce, blocked, manual. */
  reason: string;
  /** The provider's code or the keyword that set it (`21610`, `550 5.1.1`, `STOP`). */
  code?: string;
  /** The connector that reported it, when one did. */
  connector?: string;
  note?: string;
  createdAt: number;
}

export interface SuppressionPage {
  entries: Suppression[];
  cursor?: string;
}


/** Why a message is held: its `send_at`, or its recipient's quiet hours (which may move it past its `send_at`). */
export type ScheduledReason = 'send_at' | 'quiet_hours' | 'fallback';

/** A message held until `dueAt`, then appended to its topic's buffer with a fresh `createdAt`. */
export interface ScheduledMessage {
  /** The message whole; its `createdAt` is the produce time (the buffer time is given at release). */
  message: Message;
  /** When it is due (ms since the epoch). */
  dueAt: number;
  reason: ScheduledReason;
  /** For a fallback (reason `fallback`): the message it stands in for, and what cancels it. */
  fallback?: FallbackCondition;
}

/** When a held fallback is dropped instead of sent (bus/fallback.ts). */
export interface FallbackCondition {
  /** The original message's id and topic. */
  of: string;
  topic: string;
  /** States of the original, at any of its connectors (or `connector` only), that cancel the fallback. */
  unless: DeliveryState[];
  connector?: string;
}

/** What finds a held message: its id and due time. */
export interface ScheduledRef {
  id: string;
  dueAt: number;
}
