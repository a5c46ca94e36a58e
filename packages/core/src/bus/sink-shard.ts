/**
 * A sink task's state per shard it may own: the lease, the consumer reading the shard, and
 * the records read and not finished (queued, retrying, or held back behind a retrying record
 * of their key).
 */
import type { Gauge } from 'prom-client';
import type { Delivery, Message, MessagePosition, Topic } from '../store/port.ts';
import type { HeldLease } from './lease.ts';
import type { LanedConsumer } from './priority-lanes.ts';
import type { Priority } from '../store/port.ts';

/** A priority's place in a shard's queue: higher priorities first. */
const RANK: Readonly<Record<Priority, number>> = { high: 0, normal: 1, low: 2 };
const rankOf = (pending: Pending): number => RANK[pending.priority];

/**
 * Buffer order: by time, then by id (the buffer's own order on both stores). Messages of one
 * produce share a time, so time alone would let a key's later message go first.
 */
export const inBufferOrder = (a: Pending, b: Pending): number =>
  a.position.ts - b.position.ts || (a.message.id < b.message.id ? -1 : a.message.id > b.message.id ? 1 : 0);

/** A record read and not finished. */
export interface Pending {
  message: Message;
  /** The message's buffer position: where its delivery state is kept. */
  position: MessagePosition;
  /**
   * Its priority, from its headers (`priorityOf`), read once: the queue and the batches look at
   * it many times, and a header lookup on decoded headers of many shapes is not cheap.
   */
  priority: Priority;
  /** Attempts made so far, by any owner. */
  attempts: number;
  firstAttemptAt?: number;
  nextAttemptAt?: number;
  /** The row to put back if the task fails without sending. */
  prior?: Delivery;
  /** Holds back later records of its key (it is retrying, or being retried). */
  blocking?: boolean;
}

export interface Dispatch {
  shard: OwnedShard;
  pending: Pending;
  fromRetry: boolean;
  /**
   * The shard's consumer when the record was taken. A shard dropped and taken again meanwhile
   * (its lease seemed lost, then was ours again at the same epoch) has a new one, which
   * rebuilt its state from the store: the record is that consumer's to hand over now.
   */
  readBy: OwnedShard['consumer'];
}

/** Whether the record's shard was dropped and taken again since it was taken for its batch. */
export const isStale = ({ shard, readBy }: Dispatch): boolean => shard.consumer !== readBy;

export class OwnedShard {
  /** Reads the shard; valid for sending only under the lease epoch `validEpoch`. */
  consumer: LanedConsumer | undefined;
  validEpoch: number | undefined;
  /** The epoch we gave the lease back at, to recognise taking it back with nobody in between. */
  releasedEpoch: number | undefined;
  nextAcquireAt = 0;
  /** When the shard last had something to do (found entries, sent a batch). */
  lastWorkAt = 0;
  /** Ready to send: by priority (priority-lanes.ts), then in buffer order. */
  queue: Pending[] = [];
  /** Records of keys a raised shard count moved here, waiting for their old shard (sink-reshard.ts), in buffer order. */
  reshardHeld: Pending[] = [];
  /** Records held back behind a retrying record of the same key, per key, in order. */
  readonly waiting = new Map<string, Pending[]>();
  readonly retrying = new Map<string, Pending>();
  private readonly blockedKeys = new Map<string, number>();
  unsubscribe: (() => void) | undefined;
  /** This shard's lag gauge while the shard is held (removed from the registry when it is not). */
  lag: Gauge.Internal<'consumer' | 'topic' | 'shard'> | undefined;

  constructor(
    readonly topic: Topic,
    readonly shard: number,
    readonly lease: HeldLease,
  ) {}

  /** Held, with read state built under the current lease: it may send. */
  get active(): boolean {
    return this.lease.held && this.consumer !== undefined && this.validEpoch === this.lease.epoch;
  }

  get busy(): boolean {
    return this.queue.length > 0 || this.reshardHeld.length > 0 || this.waiting.size > 0 || this.retrying.size > 0 || !(this.consumer?.idle ?? true);
  }

  enqueue(pending: Pending): void {
    const key = pending.message.key;
    if (this.blockedKeys.has(key)) {
      const list = this.waiting.get(key);
      if (list) list.push(pending);
      else this.waiting.set(key, [pending]);
    } else {
      this.queueByPriority(pending);
    }
  }

  /** Queues the record after those of its priority and above, before those below. */
  private queueByPriority(pending: Pending): void {
    const rank = rankOf(pending);
    let at = this.queue.length;
    while (at > 0 && rankOf(this.queue[at - 1]!) > rank) at--;
    if (at === this.queue.length) this.queue.push(pending);
    else this.queue.splice(at, 0, pending);
  }

  /** How many queued records would go before a newly read one of `lane`: those of its priority and above. */
  queuedAhead(lane: Priority): number {
    const rank = RANK[lane];
    let behind = 0;
    while (behind < this.queue.length && rankOf(this.queue[this.queue.length - 1 - behind]!) > rank) behind++;
    return this.queue.length - behind;
  }

  /** Adds the queued records of each priority to `counts`. */
  countQueued(counts: Record<Priority, number>): void {
    for (const pending of this.queue) counts[pending.priority] += 1;
  }

  /** Takes the first queued record of this priority, if any. */
  takeQueued(lane: Priority): Pending | undefined {
    const at = this.queue.findIndex((pending) => pending.priority === lane);
    if (at < 0) return undefined;
    return at === 0 ? this.queue.shift() : this.queue.splice(at, 1)[0];
  }

  /** Schedules a retry; later records of its key wait until it is finished. */
  retry(pending: Pending): void {
    this.retrying.set(pending.message.id, pending);
    if (pending.blocking) return;
    pending.blocking = true;
    const key = pending.message.key;
    this.blockedKeys.set(key, (this.blockedKeys.get(key) ?? 0) + 1);
    const held = this.queue.filter((p) => p.message.key === key);
    if (held.length > 0) {
      this.queue = this.queue.filter((p) => p.message.key !== key);
      this.waiting.set(key, [...(this.waiting.get(key) ?? []), ...held]);
    }
  }

  /**
   * The retries due at `now`, a key's in order: one whose key has an earlier record still
   * waiting for its own retry waits too (each record's backoff has its own jitter, and a
   * record held behind a retried one is retried itself), so a key's records never overtake.
   */
  dueRetries(now: number): Pending[] {
    const due: Pending[] = [];
    for (const records of this.retriesByKey()) {
      for (const pending of records) {
        if ((pending.nextAttemptAt ?? 0) > now) break;
        due.push(pending);
      }
    }
    return due;
  }

  /** When a retry may next be due: the earliest of each key's first record in order. */
  nextRetryAt(now: number): number {
    let next = Infinity;
    for (const records of this.retriesByKey()) next = Math.min(next, records[0]!.nextAttemptAt ?? now);
    return next;
  }

  /** The retrying records per key, in buffer order (a stable sort keeps batch order on a tie). */
  private retriesByKey(): Pending[][] {
    const byKey = new Map<string, Pending[]>();
    for (const pending of this.retrying.values()) {
      const list = byKey.get(pending.message.key);
      if (list) list.push(pending);
      else byKey.set(pending.message.key, [pending]);
    }
    const lists = [...byKey.values()];
    for (const list of lists) if (list.length > 1) list.sort(inBufferOrder);
    return lists;
  }

  /** The record is finished: if it held its key back, release the records waiting behind it. */
  finish(pending: Pending): void {
    this.retrying.delete(pending.message.id);
    this.consumer?.complete(pending.message.id, pending.position.ts, pending.priority);
    if (!pending.blocking) return;
    pending.blocking = false;
    const key = pending.message.key;
    const left = (this.blockedKeys.get(key) ?? 1) - 1;
    if (left > 0) {
      this.blockedKeys.set(key, left);
      return;
    }
    this.blockedKeys.delete(key);
    const released = this.waiting.get(key);
    if (released) {
      this.waiting.delete(key);
      this.queue.unshift(...released);
    }
  }

  clear(): void {
    this.queue = [];
    this.reshardHeld = [];
    this.waiting.clear();
    this.retrying.clear();
    this.blockedKeys.clear();
  }
}
