/**
 * The read path of one consumer on one (topic, shard): which buffer entries are new, where
 * the watermark stands, and when to look again.
 *
 * Reads come in two kinds. A *hot read* continues from the last entry read up to now, so that
 * a message is handed over as soon as it is visible and is normally read once. A *sweep*, at
 * most every `sweepIntervalMs`, reads again from `watermark − overlap`: a late write (clock skew
 * between producers, a batch whose statements landed apart) that a hot read passed over is
 * found there. Every entry read is checked against what this consumer has already handled (in
 * memory) and, when an earlier owner of the shard may have handled it, against the deliveries
 * table. The watermark never passes an entry that is not finished, nor `now − confidence`, so a
 * restart or a new owner re-reads from `watermark − overlap` and loses nothing.
 *
 * A consumer without a stored watermark starts at the topic's creation (bounded by its
 * retention): a new sink delivers everything its topics still buffer, as a Kafka Connect sink
 * starts its new consumer group at the earliest offset.
 */
import type { Logger } from '@omnibus/sdk';
import { HANDLED_STATES, type BufferEntry, type Delivery, type Message, type Store, type Topic } from '../store/port.ts';

export interface ConsumerOptions {
  /** How far below the watermark a sweep re-reads, to catch late writes (ms). */
  overlapMs: number;
  /** The watermark stays this far behind now: writes younger than this may still be landing (ms). */
  confidenceMs: number;
  /** Least time between two sweeps of a shard (ms). Late writes up to overlap + confidence − sweep are caught. */
  sweepIntervalMs: number;
  /** Poll interval of a shard that just had traffic (ms). */
  pollMinMs: number;
  /**
   * Poll interval an idle shard backs off to (ms), doubling from `pollMinMs`. Local produces
   * wake a shard at once whatever its interval; produces on other workers wait for a poll.
   */
  pollIdleMs: number;
  /**
   * Store reads per second that the idle shards of one worker may cost in total: a worker
   * owning many shards backs each of them off further than `pollIdleMs` (up to `pollIdleMaxMs`).
   */
  idlePollsPerSecond: number;
  pollIdleMaxMs: number;
  /**
   * A shard's lease is given back once the shard has had nothing to do for this long (ms), so
   * that idle shards cost no lease renewals; the first new entry takes it again. Never less
   * than overlap + sweep interval + confidence, so the last sweeps of a busy period happen
   * under the lease.
   */
  releaseIdleAfterMs: number;
  /** Least time between two watermark writes of a shard that had traffic (ms). */
  watermarkFlushMs: number;
  /**
   * Least time between two watermark writes of an idle shard (ms): its watermark only follows
   * the clock, and writing it just bounds how much empty time a restart reads again.
   */
  idleWatermarkFlushMs: number;
  /** Entries per buffer read. */
  fetchLimit: number;
  /** Finished ids remembered per shard; beyond it the oldest are forgotten and looked up in the store instead. */
  handledCapacity: number;
  /** How long an entry whose message row is not visible yet is retried before it is skipped (ms). */
  missingBodyGraceMs: number;
}

export const DEFAULT_CONSUMER_OPTIONS: ConsumerOptions = {
  overlapMs: 2000,
  confidenceMs: 100,
  sweepIntervalMs: 500,
  pollMinMs: 20,
  pollIdleMs: 2000,
  idlePollsPerSecond: 2,
  pollIdleMaxMs: 30_000,
  releaseIdleAfterMs: 10_000,
  watermarkFlushMs: 1000,
  idleWatermarkFlushMs: 60_000,
  fetchLimit: 1000,
  handledCapacity: 200_000,
  missingBodyGraceMs: 30_000,
};

/** A new entry, with its message, and the delivery row an earlier owner left for it (if any). */
export interface Discovered {
  entry: BufferEntry;
  message: Message;
  prior?: Delivery;
}

const MAX_FETCH_LIMIT = 100_000;

/** The shards polled by one worker, so that their idle polls share one budget. */
export class PollBudget {
  private shards = 0;
  get ownedShards(): number {
    return this.shards;
  }
  add(count: number): void {
    this.shards += count;
  }
  remove(count: number): void {
    this.shards = Math.max(0, this.shards - count);
  }
}

export class ShardConsumer {
  private watermark = 0;
  private persisted: number | undefined;
  private lastFlushAt = 0;
  /** Whether entries were finished since the last watermark write. */
  private finishedSinceFlush = false;
  /** Everything visible with ts below this has been read. */
  private frontier = 0;
  /** Where the next hot read starts (inclusive). */
  private readFrom = 0;
  private lastSweepAt = 0;
  /** Entries below this ts may have been handled by an earlier owner: check the deliveries table. */
  private lookupBelowTs = 0;
  private limit: number;
  /** Read and not finished: id → ts. */
  private readonly tracked = new Map<string, number>();
  /** Finished: id → ts, in about ts order. */
  private readonly handled = new Map<string, number>();
  /** Entries whose message row was not visible yet: id → [ts, first seen]. */
  private readonly missing = new Map<string, [number, number]>();

  nextPollAt = 0;
  /** When a read last found something new. */
  lastFoundAt = 0;
  private idleMs: number;

  constructor(
    private readonly store: Store,
    readonly consumer: string,
    readonly topic: Topic,
    readonly shard: number,
    private readonly options: ConsumerOptions,
    private readonly logger: Logger,
    private readonly budget: PollBudget = new PollBudget(),
  ) {
    this.limit = options.fetchLimit;
    this.idleMs = options.pollMinMs;
  }

  /**
   * Loads the watermark. `freshAfter`: entries newer than this cannot have been seen by an
   * earlier owner (it stopped sending before this runner took the lease), so they need no lookup.
   */
  async open(freshAfter: number, now = Date.now()): Promise<void> {
    const stored = await this.store.getWatermark(this.consumer, this.topic.name, this.shard);
    const start = Math.max(this.topic.createdAt, now - this.topic.retentionMs);
    this.persisted = stored;
    this.watermark = stored ?? start;
    this.frontier = this.watermark;
    this.readFrom = this.watermark - this.options.overlapMs;
    this.lastSweepAt = 0;
    this.lookupBelowTs = freshAfter;
    this.lastFlushAt = now;
  }

  get position(): number {
    return this.watermark;
  }

  /** Nothing read is unfinished. */
  get idle(): boolean {
    return this.tracked.size === 0 && this.missing.size === 0;
  }

  /**
   * Whether anything was written to the shard at or after the read position: one entry read,
   * nothing decoded, nothing tracked. A shard without a lease is watched this way, and its
   * lease taken only when there is work.
   */
  async probe(now = Date.now()): Promise<boolean> {
    const entries = await this.store.readBuffer(this.topic.name, this.shard, this.readFrom, now, 1);
    if (entries.length > 0) return true;
    this.readFrom = Math.max(this.readFrom, now - this.options.confidenceMs);
    this.frontier = Math.max(this.frontier, now - this.options.confidenceMs);
    this.scheduleAfterRead(0, false, now);
    return false;
  }

  /** Reads the next entries and returns those that are new to this consumer, now tracked, in buffer order. */
  async read(now = Date.now()): Promise<Discovered[]> {
    const sweep = now - this.lastSweepAt >= this.options.sweepIntervalMs;
    const from = sweep ? Math.min(this.readFrom, this.watermark - this.options.overlapMs) : this.readFrom;
    let entries = await this.store.readBuffer(this.topic.name, this.shard, from, now, this.limit);
    // Paging is by time: a page filled by one millisecond cannot be paged past, so widen it.
    while (entries.length >= this.limit && entries[0]!.ts === entries[entries.length - 1]!.ts && this.limit < MAX_FETCH_LIMIT) {
      this.limit = Math.min(MAX_FETCH_LIMIT, this.limit * 4);
      entries = await this.store.readBuffer(this.topic.name, this.shard, from, now, this.limit);
    }
    if (sweep) this.lastSweepAt = now;
    const full = entries.length >= this.limit;
    const lastTs = entries.length > 0 ? entries[entries.length - 1]!.ts : from;
    if (full) {
      this.readFrom = lastTs;
      this.frontier = Math.max(this.frontier, lastTs);
    } else {
      this.readFrom = Math.max(lastTs, now - this.options.confidenceMs);
      this.frontier = Math.max(this.frontier, now - this.options.confidenceMs);
    }

    const unknown = entries.filter((e) => !this.tracked.has(e.id) && !this.handled.has(e.id));
    if (unknown.length === 0) {
      this.scheduleAfterRead(0, full, now);
      return [];
    }
    const needLookup = unknown.filter((e) => e.ts < this.lookupBelowTs).map((e) => e.id);
    const priors = needLookup.length > 0 ? await this.store.getDeliveries(this.consumer, needLookup) : new Map<string, Delivery>();
    const candidates = unknown.filter((e) => {
      const prior = priors.get(e.id);
      if (prior && HANDLED_STATES.has(prior.state)) {
        this.remember(e.id, e.ts);
        return false;
      }
      return true;
    });
    const bodies = candidates.length > 0 ? await this.store.getMessages(candidates.map((e) => e.id)) : new Map<string, Message>();
    const found: Discovered[] = [];
    const seen = new Set<string>();
    let held = false;
    for (const entry of candidates) {
      if (seen.has(entry.id)) continue;
      seen.add(entry.id);
      const message = bodies.get(entry.id);
      if (!message) {
        held = this.holdMissing(entry, now) || held;
        continue;
      }
      this.missing.delete(entry.id);
      if (message.topic !== this.topic.name || message.shard !== this.shard) {
        // A second entry of a racing idempotent produce whose message row was overwritten: the
        // message belongs to the entry that matches its row.
        this.logger.warn({ id: entry.id, topic: this.topic.name, shard: this.shard }, 'skipping a stale buffer entry');
        this.remember(entry.id, entry.ts);
        continue;
      }
      this.tracked.set(entry.id, entry.ts);
      const prior = priors.get(entry.id);
      found.push(prior ? { entry, message, prior } : { entry, message });
    }
    this.scheduleAfterRead(found.length, full, now);
    // A message row not visible yet (its batch still landing): look again soon.
    if (held) this.nextPollAt = Math.min(this.nextPollAt, now + this.options.pollMinMs * 5);
    return found;
  }

  /** The entry is finished (sent, failed, dead, unknown): never hand it over again. */
  complete(id: string): void {
    const ts = this.tracked.get(id);
    if (ts === undefined) return;
    this.remember(id, ts);
  }

  /** The entry is not finished but will not be handled by this consumer (the task failed before sending it). */
  forget(id: string): void {
    this.tracked.delete(id);
  }

  /** Polls this shard at once (a local produce, or the task has room again). */
  wake(): void {
    this.nextPollAt = 0;
    this.idleMs = this.options.pollMinMs;
  }

  /** The longest idle interval: the worker's idle poll budget spread over all the shards it polls. */
  private idleCapMs(): number {
    const budgeted = (this.budget.ownedShards * 1000) / Math.max(0.001, this.options.idlePollsPerSecond);
    return Math.min(this.options.pollIdleMaxMs, Math.max(this.options.pollMinMs, this.options.pollIdleMs, budgeted));
  }

  /** Advances the watermark as far as everything is finished; writes it when due or when `force`d. Returns the lag (ms). */
  async flush(now = Date.now(), force = false): Promise<number> {
    let candidate = this.frontier;
    for (const ts of this.tracked.values()) if (ts < candidate) candidate = ts;
    for (const [ts] of this.missing.values()) if (ts < candidate) candidate = ts;
    if (candidate > this.watermark) this.watermark = candidate;
    const due = now - this.lastFlushAt >= (this.finishedSinceFlush ? this.options.watermarkFlushMs : this.options.idleWatermarkFlushMs);
    if ((force || due) && this.watermark !== this.persisted) {
      this.lastFlushAt = now;
      this.finishedSinceFlush = false;
      await this.store.setWatermark(this.consumer, this.topic.name, this.shard, this.watermark);
      this.persisted = this.watermark;
      this.prune();
    }
    return Math.max(0, now - this.watermark);
  }

  private scheduleAfterRead(found: number, full: boolean, now: number): void {
    if (found > 0) this.lastFoundAt = now;
    if (full) {
      this.nextPollAt = now;
    } else if (found > 0) {
      this.idleMs = this.options.pollMinMs;
      this.nextPollAt = now + this.idleMs;
    } else {
      this.idleMs = Math.min(this.idleCapMs(), this.idleMs * 2);
      this.nextPollAt = now + this.idleMs;
    }
  }

  /** Returns true when the entry will be read again, false when it was given up. */
  private holdMissing(entry: BufferEntry, now: number): boolean {
    const seen = this.missing.get(entry.id);
    if (!seen) {
      this.missing.set(entry.id, [entry.ts, now]);
    } else if (now - seen[1] > this.options.missingBodyGraceMs) {
      this.logger.error({ id: entry.id, topic: this.topic.name, shard: this.shard }, 'buffer entry without a message row; skipping it');
      this.missing.delete(entry.id);
      this.remember(entry.id, entry.ts);
      return false;
    }
    // Read it again: keep the read position (and, through `missing`, the watermark) at or below it.
    this.readFrom = Math.min(this.readFrom, entry.ts);
    return true;
  }

  private remember(id: string, ts: number): void {
    this.finishedSinceFlush = true;
    this.tracked.delete(id);
    this.handled.set(id, ts);
    if (this.handled.size > this.options.handledCapacity) {
      const oldest = this.handled.entries().next().value;
      if (oldest) {
        this.handled.delete(oldest[0]);
        // A forgotten id may be read again: from now on, entries up to its time are looked up.
        this.lookupBelowTs = Math.max(this.lookupBelowTs, oldest[1] + 1);
      }
    }
  }

  /** Forgets finished ids that no read can return any more (below watermark − overlap). */
  private prune(): void {
    const floor = this.watermark - this.options.overlapMs;
    for (const [id, ts] of this.handled) {
      if (ts >= floor) break;
      this.handled.delete(id);
    }
  }
}
