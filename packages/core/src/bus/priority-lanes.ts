/**
 * Message priorities on the read path. A connector's capacity (its rate limit, its provider's
 * window, its batch) is shared by all its messages; reordering what a sink has already read
 * does not put a one-time password ahead of a backlog of 100,000 newsletters, because the
 * password is not read until the backlog before it is. So a `high` or `low` message is also
 * entered in a lane of its (topic, shard) (`Store.scanPriorityLane`), and a sink reads each
 * (topic, shard) with three consumers, each with its own read position and watermark:
 *
 * - `high`: its lane, read whenever it is due, however much normal work is queued;
 * - `normal`: the buffer itself, skipping (finishing at once, for itself) what a lane carries;
 * - `low`: its lane, read only while the records queued are fewer than a batch's share.
 *
 * Records are queued by priority (sink-shard.ts) and batches take them by priority
 * (`pickLanes`). A lower priority is not starved: when records of it wait, at least one
 * record in LOWER_LANE_EVERY of a task's batches' records is one of them, so a flood of `high`
 * leaves `normal` a tenth of the rate, not nothing. Order per key holds within a priority, not
 * across priorities: a `high` message may overtake an earlier `normal` one of its key.
 *
 * Each lane consumer is a plain ShardConsumer over a view of the store: its buffer reads are
 * the lane's positions (then the messages, by position), its watermark is kept under the
 * lane's name. Delivery states are the message's, whatever reads it.
 */
import type { Logger } from '@omnibus/sdk';
import { ShardConsumer, type ConsumerOptions, type Discovered, type PollBudget } from './consumer.ts';
import type { Backlog } from './shard-backlog.ts';
import { laneName, laneOf, PRIORITIES, type Lane, type Message, type Priority, type Store, type Topic } from '../store/port.ts';

/**
 * A lower priority with records waiting gets at least one record in this many (see the file
 * comment): enough to keep it moving, little enough that the one-time passwords' p99 holds
 * behind a saturated rate limit.
 */
export const LOWER_LANE_EVERY = 10;

/**
 * The store as a lane's consumer sees it: the lane's entries as its buffer, and its own
 * watermarks. `overlapMs`: how late a write may land (the consumer's overlap).
 */
export function laneView(store: Store, lane: Lane, overlapMs: number): Store {
  const overrides: Partial<Store> = {
    scanBuffer: (topic, shard, fromTs, toTs, limit) => store.scanPriorityLane(topic, shard, lane, fromTs, toTs, limit),
    readBuffer: async (topic, shard, fromTs, toTs, limit) => {
      const positions = await store.scanPriorityLane(topic, shard, lane, fromTs, toTs, limit);
      if (positions.length === 0) return [];
      const messages = await store.getMessagesAt(positions);
      const found: Message[] = [];
      const settled = Date.now() - overlapMs;
      for (const p of positions) {
        const message = messages.get(p.messageId);
        if (message) found.push(message);
        // Not written yet (on CQL a lane row goes first): the page ends before it, and the
        // consumer's sweeps read it once it lands. One still missing after the overlap belongs
        // to a produce that failed half-way, and is passed over.
        else if (p.ts > settled) break;
      }
      return found;
    },
    getWatermark: (consumer, topic, shard) => store.getWatermark(consumer, laneName(topic, lane), shard),
    setWatermark: (consumer, topic, shard, ts) => store.setWatermark(consumer, laneName(topic, lane), shard, ts),
    // The store's native count is of the buffer, not of a lane: a lane's backlog is counted from its scans.
    countBuffer: undefined,
  };
  return new Proxy(store, {
    get(target, property) {
      // An override set to undefined hides the store's method (countBuffer), so it is looked up by key, not by value.
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof Store];
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * One sink's reads of one (topic, shard), lane by lane: what the runner holds for a shard in
 * place of a single ShardConsumer, with the same surface.
 */
export class LanedConsumer {
  private readonly lanes: Record<Priority, ShardConsumer>;

  constructor(store: Store, consumer: string, topic: Topic, shard: number, options: ConsumerOptions, logger: Logger, budget: PollBudget) {
    const reader = (lane: Priority) =>
      new ShardConsumer(lane === 'normal' ? store : laneView(store, lane, options.overlapMs), consumer, topic, shard, options, logger, budget);
    this.lanes = { high: reader('high'), normal: reader('normal'), low: reader('low') };
  }

  private get all(): ShardConsumer[] {
    return [this.lanes.high, this.lanes.normal, this.lanes.low];
  }

  async open(freshAfter: number, now = Date.now()): Promise<void> {
    await Promise.all(this.all.map((lane) => lane.open(freshAfter, now)));
  }

  get idle(): boolean {
    return this.all.every((lane) => lane.idle);
  }

  get nextPollAt(): number {
    return Math.min(...this.all.map((lane) => lane.nextPollAt));
  }

  set nextPollAt(at: number) {
    for (const lane of this.all) lane.nextPollAt = at;
  }

  get lastFoundAt(): number {
    return Math.max(...this.all.map((lane) => lane.lastFoundAt));
  }

  /** Whether any lane that is due has entries at or after its read position. */
  async probe(now = Date.now()): Promise<boolean> {
    const due = this.all.filter((lane) => lane.nextPollAt <= now);
    const found = await Promise.all((due.length > 0 ? due : this.all).map((lane) => lane.probe(now)));
    return found.includes(true);
  }

  /**
   * The lanes to read now: those due with room for more records. `room(lane)`: how many
   * records of that lane the runner would take ahead of what it has queued (records of that
   * priority and above count; those below do not hold a higher lane back).
   */
  dueLanes(now: number, room: (lane: Priority) => number): Priority[] {
    return PRIORITIES.filter((lane) => this.lanes[lane].nextPollAt <= now && room(lane) > 0);
  }

  /** When the first lane with room is due to be read (Infinity when none has room). */
  nextReadAt(room: (lane: Priority) => number): number {
    let next = Infinity;
    for (const lane of PRIORITIES) if (room(lane) > 0) next = Math.min(next, this.lanes[lane].nextPollAt);
    return next;
  }

  /**
   * Reads the lanes, each up to its room; returns what is new, by priority, and the first
   * failure if a lane's read failed. What the other lanes found is theirs to hand over all the
   * same: they track it from now on, and it would wait for ever if it were dropped. A record's
   * lane is its priority (`priorityOf`): a lane holds only messages of its priority, and the
   * buffer's reader hands over none that a lane carries. So the sink finishes a record on the
   * lane its headers name, and nothing is kept per record here.
   */
  async read(now: number, lanes: readonly Priority[], room: (lane: Priority) => number): Promise<{ found: Discovered[]; failure?: unknown }> {
    if (lanes.length === 1 && lanes[0] === 'normal') {
      try {
        return { found: this.readNormal(await this.lanes.normal.read(now, room('normal'))) };
      } catch (failure) {
        return { found: [], failure };
      }
    }
    const settled = await Promise.allSettled(lanes.map(async (lane) => ({ lane, found: await this.lanes[lane].read(now, room(lane)) })));
    const reads = settled.flatMap((read) => (read.status === 'fulfilled' ? [read.value] : []));
    const failed = settled.find((read): read is PromiseRejectedResult => read.status === 'rejected');
    const found: Discovered[] = [];
    for (const lane of PRIORITIES) {
      const read = reads.find((r) => r.lane === lane);
      if (!read) continue;
      if (lane === 'normal') found.push(...this.readNormal(read.found));
      else found.push(...read.found);
    }
    return failed ? { found, failure: failed.reason } : { found };
  }

  /** What the buffer's reader found, less what a lane carries (its lane's consumer hands it over: for the buffer's reader it is done). */
  private readNormal(found: Discovered[]): Discovered[] {
    let kept = 0;
    for (const discovered of found) {
      const { message } = discovered;
      if (laneOf(message.headers)) this.lanes.normal.complete(message.id, message.createdAt);
      else found[kept++] = discovered;
    }
    found.length = kept;
    return found;
  }

  /** The record is finished; `lane`: its priority, the lane that read it (see `read`). */
  complete(id: string, ts: number | undefined, lane: Priority): void {
    this.lanes[lane].complete(id, ts);
  }

  /** The record will not be handled by this consumer; `lane` as for `complete`. */
  forget(id: string, lane: Priority): void {
    this.lanes[lane].forget(id);
  }

  backlog(): Backlog {
    let waiting = 0;
    let oldestTs: number | undefined;
    for (const lane of this.all) {
      const backlog = lane.backlog();
      waiting += backlog.waiting;
      if (backlog.oldestTs !== undefined && (oldestTs === undefined || backlog.oldestTs < oldestTs)) oldestTs = backlog.oldestTs;
    }
    return { waiting, oldestTs };
  }

  async countBacklog(now = Date.now(), paused = false): Promise<void> {
    await Promise.all(this.all.map((lane) => lane.countBacklog(now, paused)));
  }

  /** `countBacklog` without waiting for it (see ShardConsumer.countBacklogLater). */
  countBacklogLater(now = Date.now()): void {
    for (const lane of this.all) lane.countBacklogLater(now);
  }

  /** A produce: wakes the lanes of its `priorities`, or every lane when they are not known (a peer's hint). */
  wake(landedFrom?: number, priorities?: ReadonlySet<Priority>): void {
    for (const lane of PRIORITIES) if (!priorities || priorities.has(lane)) this.lanes[lane].wake(landedFrom);
  }

  wakeNow(): void {
    for (const lane of this.all) lane.wakeNow();
  }

  /** The earliest rewind a lane still owes a produce that landed behind it (Infinity: none). */
  get pendingRewind(): number {
    return Math.min(...this.all.map((lane) => lane.pendingRewind));
  }

  /** Moves every lane's watermark; returns the largest lag (ms). */
  async flush(now = Date.now(), force = false): Promise<number> {
    const lags = await Promise.all(this.all.map((lane) => lane.flush(now, force)));
    return Math.max(...lags);
  }
}

/**
 * Which lane each of a batch's `granted` records comes from, given how many wait in each
 * (`waiting`, by priority): highest first, but a lower lane that waited LOWER_LANE_EVERY − 1
 * records in a row gets the next one. `skipped` carries those runs from batch to batch.
 */
export function pickLanes(granted: number, waiting: Record<Priority, number>, skipped: Record<Priority, number>): Priority[] {
  const left = { ...waiting };
  const picks: Priority[] = [];
  while (picks.length < granted) {
    const ready = PRIORITIES.filter((lane) => left[lane] > 0);
    if (ready.length === 0) break;
    const overdue = ready.slice(1).find((lane) => skipped[lane] >= LOWER_LANE_EVERY - 1);
    const lane = overdue ?? ready[0]!;
    picks.push(lane);
    left[lane] -= 1;
    for (const other of ready) skipped[other] = other === lane ? 0 : skipped[other] + 1;
  }
  return picks;
}
