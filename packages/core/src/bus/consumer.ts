/**
 * The read path of one consumer on one (topic, shard): which buffer entries are new, where
 * the watermark stands, and when to look again.
 *
 * Reads come in two kinds. A *hot read* continues from the last entry read up to now, so that
 * a message is handed over as soon as it is visible. A write can land after a hot read has
 * passed its time (concurrent produces whose batches land out of order, clock skew between
 * producers), so *sweeps* read each entry again at two ages: at `recheckAfterMs` (every
 * `recheckIntervalMs`), which finds the usual out-of-order landings within moments, and at
 * `overlapMs` (every `sweepIntervalMs`), which finds any write up to that late. A sweep reads
 * from where the previous one of its kind stopped, so every entry is read three times at most
 * (plus page boundaries), however busy the shard. Every entry read is checked against what
 * this consumer has already handled (in memory) and, when an earlier owner of the shard may
 * have handled it, against its delivery states (kept beside the buffer, so that check is a
 * range read per window too, or a few on a quiet shard). The watermark never passes an entry
 * that is not finished, nor `now − confidence`, so a restart or a new owner re-reads from
 * `watermark − overlap` and loses nothing.
 *
 * A consumer without a stored watermark starts at the topic's creation (bounded by its
 * retention): a new sink delivers everything its topics still buffer, as a Kafka Connect sink
 * starts its new consumer group at the earliest offset.
 */
import type { Logger } from '@omnibus/sdk';
import { DEFAULT_SHARD_BACKLOG_OPTIONS, UnreadCount, type Backlog } from './shard-backlog.ts';
import { HANDLED_STATES, positionOf, type Delivery, type Message, type MessagePosition, type Store, type Topic } from '../store/port.ts';

export interface ConsumerOptions {
  /**
   * How late a write may land and still be found (ms): the last sweep re-reads entries once
   * they are this old, and a restart re-reads this far below the watermark.
   */
  overlapMs: number;
  /** Age at which entries are read again a first time, to find writes that landed out of order soon (ms). */
  recheckAfterMs: number;
  /**
   * Least time between two of those first re-reads of a shard (ms): a write landing out of
   * order is found between recheckAfterMs and recheckAfterMs + this after its time. Each is a
   * store request per busy shard, so not much more often than the age itself.
   */
  recheckIntervalMs: number;
  /** The watermark stays this far behind now: writes younger than this may still be landing (ms). */
  confidenceMs: number;
  /** Least time between two last sweeps of a shard (ms): a write landing up to overlap late is handed over at most overlap + this after its time. */
  sweepIntervalMs: number;
  /** Poll interval of a shard that just had traffic (ms). */
  pollMinMs: number;
  /**
   * A shard woken by a local produce reads no sooner than this after its previous read (ms),
   * so that a burst of produces is read, written and sent in one batch rather than in many.
   */
  wakeCoalesceMs: number;
  /**
   * Poll interval an idle shard backs off to (ms), doubling from `pollMinMs`; past it, an idle
   * shard polls at its share of the worker's idle budget. Produces wake a shard at once
   * whatever its interval (local ones directly, other workers' through wake hints), so idle
   * polls only catch what a lost hint left unsaid.
   */
  pollIdleMs: number;
  /**
   * Store reads per second that the idle shards of one worker may cost in total: a worker
   * owning many shards backs each of them off further than `pollIdleMs` (up to `pollIdleMaxMs`).
   */
  idlePollsPerSecond: number;
  pollIdleMaxMs: number;
  /**
   * For this long after a shard is opened (ms), an idle shard polls no slower than
   * `pollIdleMs`: a worker that just took a task may not be in the other workers' member
   * lists yet (they read it once per heartbeat), so their produces send it no hints.
   */
  hintsSettleMs: number;
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
  /** Entries per buffer read (a hot read may be asked for fewer: see `read`). */
  fetchLimit: number;
  /**
   * Fewest entries a sink task's hot read of a busy shard asks for, however small its share of
   * the next batches: a read costs a request whatever it returns.
   */
  minReadAhead: number;
  /** Finished ids remembered per shard; beyond it the oldest are forgotten and looked up in the store instead. */
  handledCapacity: number;
  /** Least time between two counts of a backlog's unread entries, for the lag metrics (ms; see shard-backlog.ts). */
  backlogCountEveryMs: number;
}

export const DEFAULT_CONSUMER_OPTIONS: ConsumerOptions = {
  overlapMs: 2000,
  confidenceMs: 100,
  sweepIntervalMs: 500,
  recheckAfterMs: 250,
  recheckIntervalMs: 250,
  // A read costs a request whatever it returns: reading a busy shard at most every 40 ms (15
  // after a wake) makes each read a batch, at a p50 latency of 15–30 ms. On LMDB the benchmark
  // varied more from run to run on the 2-core machine (±30 %) than between 10/20 and 15/40 ms;
  // on a networked store see NETWORKED_STORE_CONSUMER_OPTIONS.
  pollMinMs: 40,
  wakeCoalesceMs: 15,
  pollIdleMs: 2000,
  // Idle polls are only the safety net: a produce wakes its shard's consumers at once, on this
  // worker through ShardSignals and on the others through wake hints (peer-wake.ts). They are
  // left to find what a lost hint did not announce (a peer down or unreachable for a moment), so
  // an idle worker spends one store read per 4 s on them, and a shard whose hint was lost waits
  // at most about two minutes (the cap keeps the budget up to 30 idle shards per worker).
  idlePollsPerSecond: 0.25,
  pollIdleMaxMs: 120_000,
  hintsSettleMs: 10_000,
  releaseIdleAfterMs: 10_000,
  watermarkFlushMs: 1000,
  idleWatermarkFlushMs: 60_000,
  fetchLimit: 1000,
  minReadAhead: 64,
  handledCapacity: 200_000,
  backlogCountEveryMs: DEFAULT_SHARD_BACKLOG_OPTIONS.countEveryMs,
};

/**
 * On a networked store (CQL) a read is a request that costs the cluster far more than a row
 * (about 0.5 ms of a Cassandra node's CPU against ~20 µs a row, measured on one node): wakes
 * are coalesced over 30 ms, not 15. In back-to-back benchmark runs against 10/20 ms: end to
 * end 8.3k → 11.7k msg/s and the node's CPU per message 134 → 92 µs. For the same reason a
 * backlog is read in pages of 500 at least, whatever a shard's share of the next batches.
 */
export const NETWORKED_STORE_CONSUMER_OPTIONS: Partial<ConsumerOptions> = { wakeCoalesceMs: 30, minReadAhead: 500 };

/** A new message of the buffer, and the delivery state an earlier owner left for it (if any). */
export interface Discovered {
  message: Message;
  prior?: Delivery;
  /**
   * Found by a re-read, not by the first read of its time: it became visible after that read
   * had passed it. `recheck`: within moments (concurrent produces landing out of order);
   * `sweep`: only by the last re-read, at the overlap's age.
   */
  late?: LateBy;
}

export type LateBy = 'recheck' | 'sweep';

const MAX_FETCH_LIMIT = 100_000;
/** How often a flush that writes nothing recomputes the watermark (it only feeds the lag gauge then). */
const ADVANCE_EVERY_MS = 100;

const NONE_TAKEN: readonly number[] = [];

/** The times of the entries a hot read handed over (not those the sweeps found late), for the backlog count. */
function takenTimes(found: readonly Discovered[]): number[] {
  const times: number[] = [];
  for (const d of found) if (!d.late) times.push(d.message.createdAt);
  return times;
}

interface Page<T> {
  entries: T[];
  full: boolean;
  lastTs: number;
  /** The page size read: more than asked for when one millisecond filled the page. */
  limit: number;
}

interface Sweep {
  from: number;
  lastAt: number;
}

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
  /** When the in-memory watermark was last moved up to the oldest unfinished entry. */
  private advancedAt = 0;
  /** Whether entries were finished since the last watermark write. */
  private finishedSinceFlush = false;
  /** Everything visible with ts below this has been read. */
  private frontier = 0;
  /** Where the next hot read starts (inclusive). */
  private readFrom = 0;
  /** A local produce landed entries from this ts on since the last hot read started: the next one starts no later (see `wake`). */
  private landedFrom = Infinity;
  /** The re-reads at `recheckAfterMs` and at `overlapMs`: where each starts next (entries below were swept), and when it last ran. */
  private readonly recheck: Sweep = { from: 0, lastAt: 0 };
  private readonly sweep: Sweep = { from: 0, lastAt: 0 };
  /** Entries below this ts may have been handled by an earlier owner: check the deliveries table. */
  private lookupBelowTs = 0;
  private limit: number;
  /** Least size of a hot read, once one millisecond of this shard filled a smaller one. */
  private hotMinimum = 0;
  /** Read and not finished: id → ts. */
  private readonly tracked = new Map<string, number>();
  /** Finished: id → ts, in about ts order. */
  private readonly handled = new Map<string, number>();
  /**
   * No id in `handled` has a later ts. A shard's `handled` holds the last few seconds of its
   * messages, more than the CPU caches hold over all shards, so a lookup costs cache misses:
   * an entry newer than every finished one (nearly every entry a hot read finds) needs none.
   */
  private handledUpToTs = -Infinity;
  /** No id in `tracked` has a later ts: the same shortcut for the entries read and not finished. */
  private trackedUpToTs = -Infinity;

  nextPollAt = 0;
  /** When a read last found something new. */
  lastFoundAt = 0;
  private lastReadAt = -Infinity;
  private idleMs: number;
  private openedAt = 0;
  /** The entries past the read position of a consumer behind a backlog, counted for the lag metrics. */
  private readonly unread: UnreadCount;

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
    this.unread = new UnreadCount(
      (from, to, limit) => store.scanBuffer(topic.name, shard, from, to, limit),
      { ...DEFAULT_SHARD_BACKLOG_OPTIONS, countEveryMs: options.backlogCountEveryMs },
      store.countBuffer ? (from, to) => store.countBuffer!(topic.name, shard, from, to) : undefined,
    );
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
    this.recheck.from = this.sweep.from = this.readFrom;
    this.recheck.lastAt = this.sweep.lastAt = 0;
    this.lookupBelowTs = freshAfter;
    this.lastFlushAt = now;
    this.openedAt = now;
  }

  get position(): number {
    return this.watermark;
  }

  /** Nothing read is unfinished. */
  get idle(): boolean {
    return this.tracked.size === 0;
  }

  /**
   * Whether anything was written to the shard at or after the read position: one entry read,
   * nothing decoded, nothing tracked. A shard without a lease is watched this way, and its
   * lease taken only when there is work.
   *
   * A probe has no sweeps behind it, so an empty one moves the read position only to
   * `now − overlap`: a write may land up to that late (a slow CQL write becomes visible well
   * after its timestamp), and the next probe must still see it. Moving it to `now − confidence`,
   * as a hot read does, lost such a write for good on a shard without a lease.
   */
  async probe(now = Date.now()): Promise<boolean> {
    // A produce said it landed behind the read position: that is work, whatever a probe finds.
    if (this.pendingRewind < Infinity) return true;
    const entries = await this.store.scanBuffer(this.topic.name, this.shard, this.readFrom, now, 1);
    if (entries.length > 0) return true;
    this.readFrom = Math.max(this.readFrom, now - this.options.overlapMs);
    this.frontier = Math.max(this.frontier, now - this.options.overlapMs);
    this.scheduleAfterRead(0, false, now);
    return false;
  }

  /**
   * Reads the next entries and returns those that are new to this consumer, now tracked, in
   * buffer order. `hotLimit` caps the hot read below `fetchLimit`: a caller that hands entries
   * on in batches reads about what its next batches take, since entries read far ahead wait in
   * memory long enough to outlive young-generation collections and be copied into the old one.
   */
  async read(now = Date.now(), hotLimit = this.options.fetchLimit): Promise<Discovered[]> {
    this.lastReadAt = now;
    const landedFrom = this.landedFrom;
    const hotFrom = this.rewoundReadFrom();
    try {
      return await this.readEntries(now, hotFrom, hotLimit);
    } catch (error) {
      // A read that fails (a node killed mid-request) changes nothing: the rewind it was to make
      // is still owed, and no position moved past what it would have found.
      this.landedFrom = Math.min(this.landedFrom, landedFrom);
      throw error;
    }
  }

  /**
   * One read: every store request first (the pages, the late entries' bodies, the lookups),
   * then the positions move and the entries are tracked, so that a request that fails leaves
   * the consumer as it was.
   */
  private async readEntries(now: number, hotFrom: number, hotLimit: number): Promise<Discovered[]> {
    const { recheckAfterMs, recheckIntervalMs, overlapMs, sweepIntervalMs } = this.options;
    const hotPage = Math.min(Math.max(hotLimit, this.hotMinimum), this.limit);
    const [hot, rechecked, swept] = await Promise.all([
      this.page(
        hotFrom,
        now,
        (from, to, limit) => this.store.readBuffer(this.topic.name, this.shard, from, to, limit),
        (m) => m.createdAt,
        hotPage,
      ),
      this.sweepPage(this.recheck, Math.min(now - recheckAfterMs, hotFrom) - 1, recheckIntervalMs, now),
      this.sweepPage(this.sweep, Math.min(now - overlapMs, hotFrom) - 1, sweepIntervalMs, now),
    ]);
    let full = hot.full;
    // Sweeps read positions only: what they find is nearly always known, and the few late
    // writes they turn up are read whole afterwards.
    const late: MessagePosition[] = [];
    const lateBy = new Map<string, LateBy>();
    for (const [sweepRead, by] of [
      [rechecked, 'recheck'],
      [swept, 'sweep'],
    ] as const) {
      if (!sweepRead) continue;
      full ||= sweepRead.page.full;
      for (const p of sweepRead.page.entries) {
        if (this.known(p.messageId, p.ts) || lateBy.has(p.messageId)) continue;
        late.push(p);
        lateBy.set(p.messageId, by);
      }
    }
    let entries = hot.entries;
    if (late.length > 0) {
      const bodies = await this.store.getMessagesAt(late);
      // Older first: what the sweeps found landed late, behind entries already handed over.
      const found: Message[] = [];
      for (const p of late) {
        const message = bodies.get(p.messageId);
        if (message) found.push(message);
      }
      entries = found.concat(entries);
    }
    const unknown: Message[] = [];
    const needLookup: Message[] = [];
    for (const m of entries) {
      if (this.known(m.id, m.createdAt)) continue;
      unknown.push(m);
      if (m.createdAt < this.lookupBelowTs) needLookup.push(m);
    }
    const priors = needLookup.length > 0 ? await this.store.getDeliveries(this.consumer, needLookup.map(positionOf)) : undefined;

    // Every request answered: move the positions.
    if (hot.limit > hotPage) this.hotMinimum = hot.limit;
    for (const sweepRead of [rechecked, swept]) if (sweepRead) Object.assign(sweepRead.sweep, sweepRead.next);
    if (hot.entries.length > 0 && hot.full) {
      this.readFrom = hot.lastTs;
      this.frontier = Math.max(this.frontier, hot.lastTs);
    } else {
      this.readFrom = Math.max(hot.entries.length > 0 ? hot.lastTs : hotFrom, now - this.options.confidenceMs);
      this.frontier = Math.max(this.frontier, now - this.options.confidenceMs);
    }
    // What this hot read passed that was already older than a sweep's age needs no sweep: a
    // write landing after it would be later than that sweep looks for. A sweep that has caught
    // up with this read's start so skips it (a consumer catching up on a backlog reads each
    // entry once).
    for (const [sweep, age] of [
      [this.recheck, recheckAfterMs],
      [this.sweep, overlapMs],
    ] as const) {
      if (sweep.from >= hotFrom) sweep.from = Math.max(sweep.from, Math.min(this.readFrom, now - age));
    }
    const found: Discovered[] = [];
    for (const message of unknown) {
      // One entry per id is handed over (a racing idempotent produce may have left two).
      if (this.tracked.has(message.id)) continue;
      const prior = priors?.get(message.id);
      if (prior && HANDLED_STATES.has(prior.state)) {
        this.remember(message.id, message.createdAt);
        continue;
      }
      this.tracked.set(message.id, message.createdAt);
      if (message.createdAt > this.trackedUpToTs) this.trackedUpToTs = message.createdAt;
      const by = lateBy.get(message.id);
      const discovered: Discovered = prior ? { message, prior } : { message };
      if (by) discovered.late = by;
      found.push(discovered);
    }
    this.unread.afterHotRead(hot.full, this.readFrom, hot.full && this.unread.isBehind ? takenTimes(found) : NONE_TAKEN);
    this.scheduleAfterRead(found.length, full, now);
    return found;
  }

  /** The sweep's next page when it is due and has something to cover up to `toTs`, and where the sweep goes on from (applied once the read succeeds). */
  private async sweepPage(sweep: Sweep, toTs: number, everyMs: number, now: number): Promise<{ sweep: Sweep; page: Page<MessagePosition>; next: Sweep } | undefined> {
    if (now - sweep.lastAt < everyMs || toTs < sweep.from) return undefined;
    const page = await this.page(sweep.from, toTs, (from, to, limit) => this.store.scanBuffer(this.topic.name, this.shard, from, to, limit), (p) => p.ts);
    // A full page continues at the next read (its range is not covered yet).
    return { sweep, page, next: { from: page.full ? page.lastTs : toTs + 1, lastAt: page.full ? 0 : now } };
  }

  /**
   * Entries with fromTs <= ts <= toTs, at most a page of `limit`; a page filled by one
   * millisecond is widened (paging is by time), and the consumer's page size with it.
   */
  private async page<T>(
    fromTs: number,
    toTs: number,
    read: (fromTs: number, toTs: number, limit: number) => Promise<T[]>,
    tsOf: (entry: T) => number,
    limit = this.limit,
  ): Promise<Page<T>> {
    let entries = await read(fromTs, toTs, limit);
    while (entries.length >= limit && tsOf(entries[0]!) === tsOf(entries[entries.length - 1]!) && limit < MAX_FETCH_LIMIT) {
      limit = Math.min(MAX_FETCH_LIMIT, limit * 4);
      this.limit = Math.max(this.limit, limit);
      entries = await read(fromTs, toTs, limit);
    }
    return { entries, full: entries.length >= limit, lastTs: entries.length > 0 ? tsOf(entries[entries.length - 1]!) : fromTs, limit };
  }

  /** The entry (read at `ts`) is finished (sent, failed, dead, unknown): never hand it over again. */
  complete(id: string, ts = this.tracked.get(id)): void {
    if (ts === undefined) return;
    this.remember(id, ts);
  }

  /** The entry is not finished but will not be handled by this consumer (the task failed before sending it). */
  forget(id: string): void {
    this.tracked.delete(id);
  }

  /**
   * What waits on this shard: the entries read and not finished, and those past the read
   * position as last counted (see shard-backlog.ts). No store request.
   */
  backlog(): Backlog {
    let oldestTs = this.unread.count > 0 ? this.readFrom : undefined;
    for (const ts of this.tracked.values()) if (oldestTs === undefined || ts < oldestTs) oldestTs = ts;
    return { waiting: this.tracked.size + this.unread.count, oldestTs };
  }

  /**
   * Counts the entries that arrived past the read position of a consumer behind a backlog (or
   * of a paused one, which reads nothing), at most every `backlogCountEveryMs`.
   */
  async countBacklog(now = Date.now(), paused = false): Promise<void> {
    await this.unread.refresh(now, now - this.options.confidenceMs, this.readFrom, paused);
  }

  /** `countBacklog` without waiting for it (the read loop goes on; a failed count is logged and tried again later). */
  countBacklogLater(now = Date.now()): void {
    // Checked first: the sink calls this for every lane of every shard at each step, and a count is rarely due.
    if (!this.unread.due(now)) return;
    this.countBacklog(now).catch((error: unknown) => this.logger.debug({ err: error }, 'could not count the backlog'));
  }

  /**
   * A produce: poll soon (at once, unless the previous read was moments ago). `landedFrom` (a
   * local produce, whose write the store has just acknowledged): its entries are stamped this or
   * later and are all visible now. A write that took longer than `confidenceMs` to become
   * visible (a networked store under load) lands behind where the hot reads have moved on to, so
   * the next hot read starts there, and hands its entries over at once rather than at a re-read's
   * age (250 ms, or the overlap's 2 s).
   */
  wake(landedFrom?: number): void {
    this.nextPollAt = Math.min(this.nextPollAt, this.lastReadAt + this.options.wakeCoalesceMs);
    this.idleMs = this.options.pollMinMs;
    if (landedFrom !== undefined && landedFrom < this.landedFrom) this.landedFrom = landedFrom;
  }

  /**
   * Where the next hot read starts: the read position, or earlier where a produce landed
   * behind it, however far: what lies below the ids this consumer remembers is looked up.
   */
  private rewoundReadFrom(): number {
    const landedFrom = this.landedFrom;
    this.landedFrom = Infinity;
    if (landedFrom >= this.readFrom) return this.readFrom;
    // Below what it remembers, an entry read again is checked against the deliveries table, as
    // after a new owner's first read: a write acknowledged later than that (a node killed or
    // paused mid-write) is still handed over, and what was handled is not handed over twice.
    this.lookupBelowTs = Math.max(this.lookupBelowTs, this.rememberedFrom());
    return landedFrom;
  }

  /**
   * Every id handled at or after this ts is still in `handled`: no read may start below it
   * without a lookup. The lowest of the read positions (the hot read's, which a rewound page
   * leaves behind the others until it catches up, and the sweeps') and `watermark − overlap`.
   */
  private rememberedFrom(): number {
    return Math.min(this.watermark - this.options.overlapMs, this.readFrom, this.sweep.from, this.recheck.from);
  }

  /** Where a produce landed behind the read position with no read gone back for it yet (Infinity: none). */
  get pendingRewind(): number {
    return this.landedFrom < this.readFrom ? this.landedFrom : Infinity;
  }

  /** Polls this shard at once (its lease was just taken). */
  wakeNow(): void {
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
    // Finding the oldest unfinished entry walks every tracked one: not at every step of a busy shard.
    if (force || now - this.advancedAt >= ADVANCE_EVERY_MS) {
      this.advancedAt = now;
      // Not past the hot read's position either: after a rewind (a late write announced by
      // `wake`) it stands behind the frontier until it has read the late entries again, and
      // not past a rewind still to come.
      let candidate = Math.min(this.frontier, this.readFrom, this.landedFrom);
      for (const ts of this.tracked.values()) if (ts < candidate) candidate = ts;
      if (candidate > this.watermark) this.watermark = candidate;
    }
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
      // Backs off quickly while traffic may resume any moment, then straight to the budget.
      const doubled = this.idleMs * 2;
      const settled = now - this.openedAt >= this.options.hintsSettleMs;
      this.idleMs = doubled < this.options.pollIdleMs || !settled ? Math.min(doubled, this.options.pollIdleMs) : this.idleCapMs();
      // Jittered (±20%), so that shards gone idle together do not all poll in the same instant.
      this.nextPollAt = now + Math.round(this.idleMs * (0.8 + 0.4 * Math.random()));
    }
  }

  /** Whether the entry (`ts`: its buffer time) was read before and is not finished, or finished. */
  private known(id: string, ts: number): boolean {
    return (ts <= this.trackedUpToTs && this.tracked.has(id)) || (ts <= this.handledUpToTs && this.handled.has(id));
  }

  private remember(id: string, ts: number): void {
    this.finishedSinceFlush = true;
    this.tracked.delete(id);
    this.handled.set(id, ts);
    if (ts > this.handledUpToTs) this.handledUpToTs = ts;
    if (this.handled.size > this.options.handledCapacity) {
      const oldest = this.handled.entries().next().value;
      if (oldest) {
        this.handled.delete(oldest[0]);
        // A forgotten id may be read again: from now on, entries up to its time are looked up.
        this.lookupBelowTs = Math.max(this.lookupBelowTs, oldest[1] + 1);
      }
    }
  }

  /** Forgets finished ids that no read can return any more without a lookup (see `rememberedFrom`). */
  private prune(): void {
    const floor = this.rememberedFrom();
    for (const [id, ts] of this.handled) {
      if (ts >= floor) break;
      this.handled.delete(id);
    }
  }
}
