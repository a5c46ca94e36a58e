/**
 * The write path: a batch is validated whole, then written in one store call (message rows
 * and buffer entries together), and only then reported accepted. Nothing of a rejected batch
 * is written, and the rejection names every failing item.
 */
import type { ValidateFunction } from 'ajv';
import { coreError, type CoreError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { PRIORITY_HEADER, type Message, type Priority, type MessagePosition, type QuietHours, type ScheduledMessage, type ScheduledReason, type Store, type Topic } from '../store/port.ts';
import { priorityHeaders, priorityOf } from './priority.ts';
import { parseQuietHours, quietHoursEnd } from './quiet-hours.ts';
import { FALLBACK_ID_HEADER, FALLBACK_OF_HEADER, fallbackIdOf, parseFallback, type FallbackSpec } from './fallback.ts';
import { UuidV7Generator } from '../store/ids.ts';
import { CATEGORY_HEADER } from '@omnibus/sdk';
import { consentHeaders } from './consent.ts';
import { compileConnectorSchema, compileSchema, violations } from './schemas.ts';
import { routeKey } from './shard.ts';
import { shardCountAt, TOPIC_REFRESH_MS } from './reshard.ts';
import type { ShardSignals } from './signals.ts';
import { DEFAULT_CONSUMER_OPTIONS } from './consumer.ts';

export interface ProducerLimits {
  /** Most messages in one produce call (413 beyond). */
  maxMessages: number;
  /** Most bytes of keys, values and headers (as JSON) in one call (413 beyond). */
  maxBatchBytes: number;
  /** Longest key, in UTF-8 bytes. */
  maxKeyBytes: number;
  /** Largest single message value, as JSON bytes. */
  maxValueBytes: number;
}

export const DEFAULT_PRODUCER_LIMITS: ProducerLimits = {
  maxMessages: 1000,
  maxBatchBytes: 8 * 1024 * 1024,
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
};

/** What a caller may send; everything is checked, so it is typed loosely. */
export interface ProduceItem {
  key: unknown;
  value?: unknown;
  headers?: unknown;
  id?: unknown;
  group?: unknown;
  expires_at?: unknown;
  /** The message's category (marketing, transactional…), checked against the suppression list: consent.ts. */
  category?: unknown;
  /** Bypasses category suppressions (preferences), never a channel-wide one (a STOP): consent.ts. */
  critical?: unknown;
  send_at?: unknown;
  quiet_hours?: unknown;
  fallback?: unknown;
  /** `high`, `normal` (the default) or `low`: priority-lanes.ts. */
  priority?: unknown;
}

/** The header that carries a message's `expires_at` (ms since the epoch), stored with it on every store. */
export const EXPIRES_AT_HEADER = 'omnibus.expires.at';

/** The header that carries a scheduled message's due time (ms since the epoch): its `send_at`, or the end of its quiet hours. */
export const SEND_AT_HEADER = 'omnibus.send.at';

/**
 * The wake-up channel of the scheduler (bus/scheduler.ts): notified after messages are held,
 * here and, through the peers' wake hints, on the other workers. A wake-up only: a topic of this
 * name, if any, gets a spurious poll at most.
 */
export const SCHEDULED_SIGNAL = { topic: 'omnibus.scheduled', shard: 0 } as const;

/** A produce item's time field (`expires_at`, `send_at`: RFC 3339 time with a zone, or ms since the epoch) in ms, or why not. */
export function parseInstant(raw: unknown): number | string {
  if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= 0 ? raw : 'must be an RFC 3339 time or a non-negative integer of ms since the epoch';
  if (typeof raw === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(raw)) {
    const at = Date.parse(raw);
    if (!Number.isNaN(at)) return at;
  }
  return 'must be an RFC 3339 time with a zone (e.g. 2026-12-07T14:00:00Z) or ms since the epoch';
}

export interface ProduceOptions {
  /** Group (campaign, batch id) for items that do not name their own. */
  group?: string;
  /**
   * Length in bytes of the JSON text the messages were parsed from (a request body), if known.
   * Text this short cannot hold a value or a batch over the size limits, so sizes are not
   * measured again message by message.
   */
  sourceBytes?: number;
}

/**
 * How much longer JSON.stringify of a parsed value can be than its JSON source: a number in
 * exponent notation grows the most ("9e20", 4 bytes, comes back as 21 digits).
 */
const MAX_JSON_GROWTH = 6;

export interface Produced {
  id: string;
  shard: number;
  /** When a held message is due (ms since the epoch); absent when it went to the buffer at once. */
  send_at?: number;
}

export interface ItemError {
  index: number;
  field: string;
  message: string;
}

/** A JSON Schema that a consumer of the topic requires of values (a sink's `valueSchema`). */
export interface ConsumerSchema {
  connector: string;
  schema: Record<string, unknown>;
}

export interface ProducerDeps {
  store: Store;
  signals?: ShardSignals;
  metrics?: Metrics;
  limits?: Partial<ProducerLimits>;
  /** Schemas of the sinks consuming a topic, checked besides the topic's own (optional). */
  consumerSchemas?: (topic: string) => ConsumerSchema[];
  /** The clock that decides whether a message is due (tests inject one); Date.now by default. */
  clock?: () => number;
  /**
   * A write acknowledged more than this after its stamp (ms) is announced to the peers before
   * the produce answers (see ShardSignals.announceSlowWrites): the consumers' confidence delay,
   * past which their hot reads may have passed it.
   */
  slowWriteMs?: number;
}

export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An item that passed every check. */
interface CheckedItem {
  index: number;
  key: string;
  value: unknown;
  headers: Record<string, string>;
  id: string | undefined;
  group: string | undefined;
  /** When it may be handed to a sink at the earliest (ms), if the producer said. */
  sendAt: number | undefined;
  /** The item's own quiet hours; false: none, whatever the topic's; undefined: the topic's. */
  quietHours: QuietHours | false | undefined;
  fallback: FallbackSpec | undefined;
}

/** The headers of every message given none: one frozen object, never written to (a message is stored, then dropped). */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export class Producer {
  readonly limits: ProducerLimits;
  /** Topics never change once created, so a topic found once is kept (misses are not cached). */
  /** Topics as last read, and when: a read routes messages for TOPIC_REFRESH_MS (see reshard.ts). */
  private readonly topics = new Map<string, { topic: Topic; readAt: number }>();
  /** Monotonic ingestion clock of this process: entries of one key never go back in time. */
  private lastTs = 0;
  /** (ts, id) of the latest entry per key at the current clock tick, to keep per-key order under supplied ids. */
  private recentByKey = new Map<string, { ts: number; id: string }>();
  private recentMaxTs = 0;
  /** The latest ingestion time given to messages without that bookkeeping (none had supplied ids). */
  private unrecordedTs = -1;
  private readonly ids = new UuidV7Generator();
  private readonly clock: () => number;
  private readonly slowWriteMs: number;

  constructor(private readonly deps: ProducerDeps) {
    this.limits = { ...DEFAULT_PRODUCER_LIMITS, ...deps.limits };
    this.clock = deps.clock ?? Date.now;
    this.slowWriteMs = deps.slowWriteMs ?? DEFAULT_CONSUMER_OPTIONS.confidenceMs;
  }

  /** Local produce notifications, for consumers in this process. */
  get signals(): ShardSignals | undefined {
    return this.deps.signals;
  }

  async topic(name: string): Promise<Topic | undefined> {
    const cached = this.topics.get(name);
    const readAt = Date.now();
    if (cached && readAt - cached.readAt < TOPIC_REFRESH_MS) return cached.topic;
    const topic = await this.deps.store.getTopic(name);
    if (topic) this.topics.set(name, { topic, readAt });
    return topic;
  }

  /** Forgets the cached topic (its shard count was just changed through this worker). */
  forgetTopic(name: string): void {
    this.topics.delete(name);
  }

  /**
   * Validates and writes a batch; resolves with `{id, shard}` per message, in order, once the
   * store has acknowledged the write. Throws a CoreError (400 malformed, 404 unknown topic,
   * 413 too large, 422 invalid items) without writing anything.
   */
  async produce(topicName: string, messages: unknown, options: ProduceOptions = {}): Promise<Produced[]> {
    if (!Array.isArray(messages) || messages.length === 0) {
      throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'messages must be a non-empty array of {key, value, headers?, id?, group?, expires_at?, send_at?, quiet_hours?, fallback?, category?, critical?, priority?}' });
    }
    if (messages.length > this.limits.maxMessages) {
      throw coreError('OMNI_ERR_BUS_BATCH_TOO_LARGE', { limit: `${this.limits.maxMessages} messages`, actual: messages.length });
    }
    const topic = await this.topic(topicName);
    if (!topic) throw coreError('OMNI_ERR_BUS_TOPIC_NOT_FOUND', { topic: topicName });

    const errors: ItemError[] = [];
    const items = this.checkItems(topic, messages as unknown[], options, errors);
    const fallbackTopics = await this.checkFallbacks(items, errors);
    if (errors.length > 0) throw rejected(errors, messages.length);

    // Idempotent produce: a supplied id that exists already (held or in the buffer) is answered from the stored message.
    const supplied = items.filter((i) => i.id !== undefined).map((i) => i.id as string);
    // Held ones first: the scheduler appends a message to the buffer before it stops holding it, so neither read can miss it.
    const held = supplied.length > 0 ? await this.deps.store.getScheduled(supplied) : new Map<string, ScheduledMessage>();
    const existing = supplied.length > 0 ? await this.deps.store.locateMessages(supplied, [topic.name]) : new Map<string, MessagePosition>();
    for (const item of items) {
      const storedTopic = item.id !== undefined ? (held.get(item.id)?.message.topic ?? existing.get(item.id)?.topic) : undefined;
      if (storedTopic !== undefined && storedTopic !== topic.name) {
        errors.push({ index: item.index, field: 'id', message: `is already the id of a message of topic ${storedTopic}` });
      }
    }
    if (errors.length > 0) throw rejected(errors, messages.length);

    let base = this.tick();
    // Per-key order needs bookkeeping only when supplied ids are about (see orderedTs).
    const record = supplied.length > 0 || this.recentByKey.size > 0;
    if (record && this.unrecordedTs === base) {
      // Messages of this millisecond went unrecorded: start this batch after them.
      base = this.lastTs = base + 1;
      this.recentByKey = new Map();
      this.recentMaxTs = base;
    }
    if (!record) this.unrecordedTs = base;
    const results: Produced[] = [];
    const fresh: Message[] = [];
    const scheduled: ScheduledMessage[] = [];
    const fallbacks: ScheduledMessage[] = [];
    const name = topic.name;
    const now = this.clock();
    for (const item of items) {
      const heldEntry = item.id !== undefined ? held.get(item.id) : undefined;
      if (heldEntry) {
        results.push({ id: heldEntry.message.id, shard: heldEntry.message.shard, send_at: heldEntry.dueAt });
        continue;
      }
      const stored = item.id !== undefined ? existing.get(item.id) : undefined;
      if (stored) {
        results.push({ id: stored.messageId, shard: stored.shard });
        continue;
      }
      // The layout in force at the batch's time: a new shard count applies from its switch on.
      const { token, shard } = routeKey(item.key, shardCountAt(topic, base));
      // A generated id carries the batch's time and the shard: the store needs no index row to find it.
      const id = item.id ?? this.ids.next(base, shard);
      const message: Message = {
        id,
        topic: name,
        key: item.key,
        token,
        shard,
        value: item.value,
        headers: item.headers,
        createdAt: record ? this.orderedTs(item.key, id, base) : base,
      };
      if (item.group !== undefined) message.group = item.group;
      const { dueAt, reason } = this.dueTime(item, topic, now);
      if (item.fallback) {
        const fallback = this.fallbackFor(message, item.fallback, fallbackTopics.get(item.fallback.topic)!, (dueAt !== undefined && dueAt > now ? dueAt : now), base);
        fallbacks.push(fallback);
        message.headers = { ...message.headers, [FALLBACK_ID_HEADER]: fallback.message.id };
      }
      if (dueAt !== undefined && dueAt > now) {
        message.headers = { ...message.headers, [SEND_AT_HEADER]: String(dueAt) };
        scheduled.push({ message, dueAt, reason });
        results.push({ id, shard, send_at: dueAt });
        continue;
      }
      fresh.push(message);
      results.push({ id, shard });
    }
    // Fallbacks before their originals: an original stored is one whose fallback is held (one without a stored original is dropped when due).
    if (fallbacks.length > 0) await this.deps.store.putScheduled(fallbacks);
    if (scheduled.length > 0) {
      // Held by due time, not in the buffer: acknowledged once the store has them (durably).
      await this.deps.store.putScheduled(scheduled);
      this.deps.metrics?.messagesProduced.inc({ topic: topic.name }, scheduled.length);
      this.deps.signals?.notify(SCHEDULED_SIGNAL.topic, SCHEDULED_SIGNAL.shard);
    }
    if (fresh.length > 0) {
      await this.deps.store.appendMessages(fresh);
      this.deps.metrics?.messagesProduced.inc({ topic: topic.name }, fresh.length);
      const signals = this.deps.signals;
      if (signals) {
        // Per shard, the priorities written: only their lanes are read (priority-lanes.ts).
        const woken = new Map<number, Set<Priority>>();
        for (const m of fresh) {
          const priority = priorityOf(m);
          const priorities = woken.get(m.shard);
          if (priorities) priorities.add(priority);
          else woken.set(m.shard, new Set([priority]));
        }
        // Every entry of the batch is stamped `base` or later, and visible now that the write is acknowledged.
        for (const [shard, priorities] of woken) signals.notify(name, shard, 'local', base, priorities);
        // Before the answer: the keys' next messages can only come after it.
        if (Date.now() - base > this.slowWriteMs) {
          await signals.announceSlowWrites([...woken.keys()].map((shard) => ({ topic: name, shard, landedFrom: base })));
        }
      }
    }
    return results;
  }

  /** Checks each item's fallback against its topic (which must exist) and that topic's schemas; returns the topics by name. */
  private async checkFallbacks(items: CheckedItem[], errors: ItemError[]): Promise<Map<string, Topic>> {
    const topics = new Map<string, Topic>();
    for (const item of items) {
      const spec = item.fallback;
      if (!spec) continue;
      const fallbackTopic = topics.get(spec.topic) ?? (await this.topic(spec.topic));
      if (!fallbackTopic) {
        errors.push({ index: item.index, field: 'fallback.topic', message: `names no topic (${spec.topic})` });
        continue;
      }
      topics.set(spec.topic, fallbackTopic);
      for (const { label, validate } of this.validatorsFor(fallbackTopic)) {
        for (const v of violations(validate, spec.value)) {
          errors.push({ index: item.index, field: `fallback.value${v.path}`, message: label ? `${v.message} (required by ${label})` : v.message });
        }
      }
    }
    return topics;
  }

  /** The held fallback of a message: due at its deadline, or `after_ms` after the original is due. */
  private fallbackFor(original: Message, spec: FallbackSpec, topic: Topic, originalDue: number, base: number): ScheduledMessage {
    const key = spec.key ?? original.key;
    const { token, shard } = routeKey(key, topic.shards);
    const message: Message = {
      id: fallbackIdOf(original.id),
      topic: topic.name,
      key,
      token,
      shard,
      value: spec.value,
      headers: { [FALLBACK_OF_HEADER]: original.id },
      createdAt: base,
    };
    if (original.group !== undefined) message.group = original.group;
    return {
      message,
      dueAt: spec.deadline ?? originalDue + spec.afterMs!,
      reason: 'fallback',
      fallback: { of: original.id, topic: original.topic, unless: spec.unless, ...(spec.connector ? { connector: spec.connector } : {}) },
    };
  }

  /** When an item may go out: its send_at, moved to the end of the quiet hours (its own, else its topic's) it falls in. */
  private dueTime(item: CheckedItem, topic: Topic, now: number): { dueAt: number | undefined; reason: ScheduledReason } {
    const quiet = item.quietHours === undefined ? topic.quietHours : item.quietHours || undefined;
    if (quiet) {
      const from = Math.max(now, item.sendAt ?? now);
      const end = quietHoursEnd(quiet, from);
      if (end !== undefined && end > from) return { dueAt: end, reason: 'quiet_hours' };
    }
    return { dueAt: item.sendAt, reason: 'send_at' };
  }

  /**
   * Appends held messages that are due to their topics' buffers, as a produce would, at this
   * worker's ingestion clock (so the consumers, whose watermarks have moved past their produce
   * time, read them), and wakes their consumers. Resolves with the messages as stored.
   */
  async releaseScheduled(entries: readonly ScheduledMessage[]): Promise<Message[]> {
    if (entries.length === 0) return [];
    const base = this.tick();
    // Later produces of this millisecond must not need the per-key bookkeeping to stay after these.
    this.unrecordedTs = base;
    const messages = entries.map(({ message }) => ({ ...message, createdAt: base }));
    await this.deps.store.appendMessages(messages);
    const signals = this.deps.signals;
    if (signals) {
      const woken = new Set<string>();
      for (const m of messages) {
        const shard = `${m.shard}/${m.topic}`;
        if (woken.has(shard)) continue;
        woken.add(shard);
        signals.notify(m.topic, m.shard);
      }
    }
    return messages;
  }

  private checkItems(topic: Topic, messages: unknown[], options: ProduceOptions, errors: ItemError[]): CheckedItem[] {
    const validators = this.validatorsFor(topic);
    const limits = this.limits;
    // Short source text cannot hold an oversized value or batch: skip measuring each value.
    const measure =
      options.sourceBytes === undefined || !(options.sourceBytes * MAX_JSON_GROWTH <= Math.min(limits.maxValueBytes, limits.maxBatchBytes));
    let seenIds: Map<string, number> | undefined;
    const items: CheckedItem[] = [];
    let totalBytes = 0;
    for (let index = 0; index < messages.length; index++) {
      const raw = messages[index];
      if (!isPlainObject(raw)) {
        errors.push({ index, field: '', message: 'must be an object {key, value, headers?, id?, group?, expires_at?, send_at?, quiet_hours?, fallback?, category?, critical?, priority?}' });
        continue;
      }
      const { key, value, headers, id, group, expires_at: expiresAt, send_at: sendAtRaw, quiet_hours: quietRaw, fallback: fallbackRaw, category, critical, priority } = raw as unknown as ProduceItem;
      const before = errors.length;
      if (typeof key !== 'string' || key.length === 0) errors.push({ index, field: 'key', message: 'must be a non-empty string' });
      // UTF-8 takes at most 3 bytes per UTF-16 unit: only long keys need measuring.
      else if (key.length * 3 > limits.maxKeyBytes && Buffer.byteLength(key) > limits.maxKeyBytes) {
        errors.push({ index, field: 'key', message: `must be at most ${limits.maxKeyBytes} bytes` });
      }
      if (value === undefined) errors.push({ index, field: 'value', message: 'is required' });
      let headerMap: Record<string, string> = NO_HEADERS;
      if (headers !== undefined && headers !== null) {
        if (!isPlainObject(headers)) errors.push({ index, field: 'headers', message: 'must be an object of string values' });
        else {
          headerMap = {};
          for (const name in headers) {
            const v = headers[name];
            if (typeof v !== 'string') errors.push({ index, field: `headers.${name}`, message: 'must be a string' });
            else headerMap[name] = v;
          }
        }
      }
      if (id !== undefined && id !== null) {
        seenIds ??= new Map();
        if (typeof id !== 'string' || !ID_PATTERN.test(id)) errors.push({ index, field: 'id', message: 'must be 1 to 128 characters from [A-Za-z0-9._:-]' });
        else if (seenIds.has(id)) errors.push({ index, field: 'id', message: `repeats the id of message ${seenIds.get(id)} in this batch` });
        else seenIds.set(id, index);
      }
      let sendAt: number | undefined;
      if (sendAtRaw !== undefined && sendAtRaw !== null) {
        const at = parseInstant(sendAtRaw);
        if (typeof at === 'string') errors.push({ index, field: 'send_at', message: at });
        else sendAt = at;
      }
      let quietHours: QuietHours | false | undefined;
      if (quietRaw === false) quietHours = false;
      else if (quietRaw !== undefined && quietRaw !== null) {
        const quiet = parseQuietHours(quietRaw, 'quiet_hours');
        if (Array.isArray(quiet)) for (const problem of quiet) errors.push({ index, ...problem });
        else quietHours = quiet;
      }
      let fallback: FallbackSpec | undefined;
      if (fallbackRaw !== undefined && fallbackRaw !== null) {
        const parsed = parseFallback(fallbackRaw, this.clock());
        if (Array.isArray(parsed)) for (const problem of parsed) errors.push({ index, ...problem });
        else fallback = parsed;
      }
      if (expiresAt !== undefined && expiresAt !== null) {
        const at = parseInstant(expiresAt);
        if (typeof at === 'string') errors.push({ index, field: 'expires_at', message: at });
        else if (at <= Date.now()) errors.push({ index, field: 'expires_at', message: 'is in the past' });
        else if (sendAt !== undefined && at <= sendAt) errors.push({ index, field: 'expires_at', message: 'must be after send_at' });
        else headerMap = { ...headerMap, [EXPIRES_AT_HEADER]: String(at) };
      }
      if (category !== undefined || critical !== undefined || headerMap[CATEGORY_HEADER] !== undefined) {
        const consent = consentHeaders(category, critical, headerMap);
        for (const problem of consent.problems) errors.push({ index, ...problem });
        headerMap = consent.headers;
      }
      if (priority !== undefined || headerMap[PRIORITY_HEADER] !== undefined) {
        const prioritised = priorityHeaders(priority, headerMap);
        if (typeof prioritised === 'string') errors.push({ index, field: 'priority', message: prioritised });
        else headerMap = prioritised;
      }
      const groupName = group ?? options.group;
      if (groupName !== undefined && groupName !== null && (typeof groupName !== 'string' || !ID_PATTERN.test(groupName))) {
        errors.push({ index, field: 'group', message: 'must be 1 to 128 characters from [A-Za-z0-9._:-]' });
      }
      if (value !== undefined) {
        let tooLarge = false;
        if (measure) {
          const valueBytes = Buffer.byteLength(JSON.stringify(value) ?? '');
          totalBytes += valueBytes + (typeof key === 'string' ? key.length : 0) + JSON.stringify(headerMap).length;
          tooLarge = valueBytes > limits.maxValueBytes;
          if (tooLarge) errors.push({ index, field: 'value', message: `must be at most ${limits.maxValueBytes} bytes as JSON` });
        }
        if (!tooLarge) {
          for (const { label, validate } of validators) {
            for (const v of violations(validate, value)) {
              errors.push({ index, field: `value${v.path}`, message: label ? `${v.message} (required by ${label})` : v.message });
            }
          }
        }
      }
      if (errors.length === before) {
        items.push({
          index,
          key: key as string,
          value,
          headers: headerMap,
          id: typeof id === 'string' ? id : undefined,
          group: typeof groupName === 'string' ? groupName : undefined,
          sendAt,
          quietHours,
          fallback,
        });
      }
    }
    if (totalBytes > limits.maxBatchBytes) {
      throw coreError('OMNI_ERR_BUS_BATCH_TOO_LARGE', { limit: `${limits.maxBatchBytes} bytes of messages`, actual: totalBytes });
    }
    return items;
  }

  private validatorsFor(topic: Topic): Array<{ label: string; validate: ValidateFunction }> {
    const out: Array<{ label: string; validate: ValidateFunction }> = [];
    if (topic.schema) out.push({ label: '', validate: compileSchema(topic.schema) });
    for (const { connector, schema } of this.deps.consumerSchemas?.(topic.name) ?? []) {
      out.push({ label: `connector ${connector}`, validate: compileConnectorSchema(schema) });
    }
    return out;
  }

  /** This batch's ingestion time: now, but never before the previous batch's. */
  private tick(): number {
    const now = Date.now();
    if (now > this.lastTs) this.lastTs = now;
    if (this.lastTs > this.recentMaxTs) {
      this.recentByKey = new Map();
      this.recentMaxTs = this.lastTs;
    }
    return this.lastTs;
  }

  /**
   * The buffer orders entries by (ts, id). Generated ids grow with time, so that order is the
   * produce order; a supplied id may sort before an earlier message of the same key at the same
   * millisecond, so such a message moves to the next millisecond to keep the key's order. Batches
   * of generated ids only skip this (their order needs nothing), unless a supplied id was seen in
   * the same millisecond.
   */
  private orderedTs(key: string, id: string, base: number): number {
    const previous = this.recentByKey.get(key);
    let ts = base;
    if (previous && (previous.ts > ts || (previous.ts === ts && previous.id >= id))) ts = previous.ts + (previous.id >= id ? 1 : 0);
    this.recentByKey.set(key, { ts, id });
    if (ts > this.recentMaxTs) this.recentMaxTs = ts;
    return ts;
  }
}

function rejected(errors: ItemError[], total: number): CoreError {
  const failing = new Set(errors.map((e) => e.index)).size;
  return coreError('OMNI_ERR_BUS_MESSAGES_INVALID', { failing, total }, { errors: errors.sort((a, b) => a.index - b.index) });
}
