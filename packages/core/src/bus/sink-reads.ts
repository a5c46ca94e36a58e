/**
 * A sink task's reads: probing the shards it holds no lease on, reading the busy ones ahead of
 * the batches, admitting what is found by its prior delivery state (a record found `sending`
 * is in doubt), and moving the watermarks.
 */
import type { Counter } from 'prom-client';
import type { ShardBacklogReport } from '../metrics.ts';
import { groupedPositionOf, type Delivery } from '../store/port.ts';
import type { Discovered, LateBy } from './consumer.ts';
import { priorityOf } from './priority.ts';
import { SinkShardLeases } from './sink-leases.ts';
import { ReshardGate } from './sink-reshard.ts';
import type { OwnedShard, Pending } from './sink-shard.ts';
import type { Priority, Reshard } from '../store/port.ts';

/** Least time between two reads of a topic for records newer than its last read vouches for. */
const TOPIC_REREAD_MS = 250;

/** NeverHandedOff's key: one row per connector and message. */
const rowKey = (connector: string, messageId: string): string => `${connector}\u0000${messageId}`;

/**
 * The `sending` rows this worker's sink runners wrote for records they then never handed to
 * their connector: the write threw (a timeout may still have landed it, or a hint replay it
 * later), or the record's shard was dropped or its task stopped before the hand-off. Whoever
 * reads such a row later would take it for a send in doubt (at-most-once: `unknown`, never
 * sent); a runner of this worker knows better and sends the record. One per worker, shared by
 * its runners, so that a task restarted on the same worker (after its membership lapsed while
 * the store had no quorum) still knows. Only this worker's memory says so: another worker, or
 * this one after a restart, treats the row as in doubt.
 */
export class NeverHandedOff {
  private readonly rows = new Map<string, string>();

  constructor(private readonly capacity = 100_000) {}

  /** `sending` was written (or may have been) for the message at this epoch and attempt, and the connector was not called. */
  add(connector: string, row: Pick<Delivery, 'messageId' | 'epoch' | 'attempts'>): void {
    const key = rowKey(connector, row.messageId);
    this.rows.delete(key);
    this.rows.set(key, `${row.epoch}:${row.attempts}`);
    if (this.rows.size > this.capacity) this.rows.delete(this.rows.keys().next().value!);
  }

  /** The connector is being called with the message: from now on its `sending` is in doubt. */
  handedOff(connector: string, messageId: string): void {
    // Called for every record handed off, and nearly always with nothing remembered: no key built then.
    if (this.rows.size === 0) return;
    this.rows.delete(rowKey(connector, messageId));
  }

  /** Whether `prior` is a `sending` row written here and never handed off; forgets it if so. */
  take(connector: string, prior: Delivery): boolean {
    const key = rowKey(connector, prior.messageId);
    if (this.rows.get(key) !== `${prior.epoch}:${prior.attempts}`) return false;
    this.rows.delete(key);
    return true;
  }
}

export abstract class SinkShardReads extends SinkShardLeases {
  protected readonly neverHandedOff = this.deps.neverHandedOff ?? new NeverHandedOff();
  /** The connector's labelled counters, looked up once. */
  protected counters!: { read: Counter.Internal; sent: Counter.Internal; retried: Counter.Internal; failed: Counter.Internal; late: Record<LateBy, Counter.Internal> };

  /**
   * Reads the shards that are due and short of records for the next batches; queues what is
   * new. A batch takes records round-robin over the active shards, so each shard keeps about
   * its share of two batches queued: records read further ahead would wait in memory for many
   * batches, long enough for the garbage collector to copy them into the old generation.
   */
  protected async readShards(now: number): Promise<void> {
    // First: what a raised shard count held back and may go now (before anything newer of its key is admitted).
    await this.releaseReshardHeld(now);
    const share = this.batchShare();
    const readAhead = Math.max(this.options.minReadAhead, 2 * share);
    // Per priority lane (priority-lanes.ts): a lane is read while fewer than a share of records
    // of its priority and above are queued, so a high one is read whatever normal ones wait.
    const readable: Array<{ owned: OwnedShard; lanes: Priority[] }> = [];
    for (const s of this.shards.values()) {
      if (!(s.active && s.reshardHeld.length < readAhead && s.lease.safe(now))) continue;
      const lanes = s.consumer!.dueLanes(now, (lane) => share - s.queuedAhead(lane));
      if (lanes.length > 0) readable.push({ owned: s, lanes });
    }
    if (readable.length === 0) return;
    // A shard whose read fails (a node killed mid-request) must not cost the others what they
    // found: their consumers track it now, and it is queued before the failure is reported.
    const reads = await Promise.all(
      readable.map(async ({ owned, lanes }) => ({
        owned,
        consumer: owned.consumer!,
        ...(await owned.consumer!.read(now, lanes, (lane) => readAhead - owned.queuedAhead(lane))),
      })),
    );
    const inDoubt: Array<{ owned: OwnedShard; pending: Pending }> = [];
    for (const { owned, consumer, found } of reads) {
      if (owned.consumer !== consumer) continue; // dropped while reading
      for (const discovered of found) {
        if (discovered.late) this.counters.late[discovered.late].inc();
        this.admit(owned, discovered, now, inDoubt);
      }
    }
    if (inDoubt.length > 0) await this.settleInDoubt(inDoubt);
    const failed = reads.find((read) => read.failure !== undefined);
    if (failed) throw failed.failure;
  }

  /**
   * Marks what was found in doubt `unknown`, retrying until it is written: those records are
   * tracked by their consumers and queued nowhere, so a failed write must not drop them. Those
   * whose shard is no longer ours are left out of each try: the next owner finds them `sending`
   * again and does the same.
   */
  private async settleInDoubt(inDoubt: Array<{ owned: OwnedShard; pending: Pending }>): Promise<void> {
    await this.persist(async () => {
      const ours = inDoubt.filter(({ owned }) => owned.active && owned.lease.held);
      if (ours.length > 0) await this.markUnknown(ours);
    }, 'could not mark in-doubt records unknown; retrying');
  }

  /** Retries a store write until it succeeds or the runner stops: an outcome must not be lost. */
  protected async persist(write: () => Promise<void>, failure = 'store write failed; retrying'): Promise<void> {
    for (let delay = 100; ; delay = Math.min(5000, delay * 2)) {
      try {
        await write();
        return;
      } catch (error) {
        if (this.stopping) throw error;
        this.logger.warn({ err: error, retryInMs: delay }, failure);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** About how many records a batch takes from each active shard. */
  protected batchShare(): number {
    let active = 0;
    for (const s of this.shards.values()) if (s.active) active++;
    return Math.ceil(this.common['batch.size'] / Math.max(1, active));
  }

  /** Probes the shards without a lease that are due, and takes the leases of those with work. */
  protected async activateShardsWithWork(now: number): Promise<void> {
    const inactive = [...this.shards.values()].filter((s) => !s.active && now >= s.nextAcquireAt);
    if (inactive.length === 0) return;
    const unopened = inactive.filter((s) => !s.consumer);
    // Positioned at the stored watermark, for probing only: sending waits for the lease.
    await Promise.all(unopened.map(async (s) => (s.consumer = await this.newConsumer(s, Infinity))));
    const due = inactive.filter((s) => s.lease.held || s.consumer!.nextPollAt <= now);
    const withWork = await Promise.all(due.map(async (s) => ((s.lease.held || (await s.consumer!.probe(now))) ? s : undefined)));
    await Promise.all(withWork.filter((s): s is OwnedShard => s !== undefined).map((s) => this.activate(s, now)));
  }

  protected async releaseIdleShards(): Promise<void> {
    const now = Date.now();
    const idle = [...this.shards.values()].filter(
      (s) =>
        s.active &&
        !s.busy &&
        now - Math.max(s.lastWorkAt, s.consumer!.lastFoundAt) >= this.options.releaseIdleAfterMs &&
        // Let the last sweep of the busy period run under the lease first.
        s.consumer!.nextPollAt > now,
    );
    await Promise.all(idle.map((s) => this.release(s)));
  }

  protected admit(owned: OwnedShard, { message, prior }: Discovered, now: number, inDoubt: Array<{ owned: OwnedShard; pending: Pending }>): void {
    const pending: Pending = { message, position: groupedPositionOf(message), priority: priorityOf(message), attempts: prior?.attempts ?? 0 };
    if (prior) pending.prior = prior;
    if (!prior || prior.state === 'pending') {
      this.enqueueOrHold(owned, pending);
    } else if (prior.state === 'retrying') {
      // Left by an earlier owner: retry when due. Its first attempt is unknown; its last write bounds it.
      pending.firstAttemptAt = prior.updatedAt;
      pending.nextAttemptAt = prior.nextAttemptAt ?? now;
      owned.retry(pending);
    } else if (prior.state === 'sending') {
      if (prior.workerId === this.deps.workerId && this.neverHandedOff.take(this.connector, prior)) {
        // A runner of this worker wrote that `sending` and then never called the connector (the
        // write seemed to fail, the task stopped first): not in doubt, it goes as if fresh.
        pending.attempts = Math.max(0, prior.attempts - 1);
        delete pending.prior;
        this.enqueueOrHold(owned, pending);
      } else if (this.common['delivery.guarantee'] === 'at-least-once') this.enqueueOrHold(owned, pending);
      else inDoubt.push({ owned, pending });
    }
  }

  private reshardGate: ReshardGate | undefined;

  /** Queues a record, or holds it back while its key's older messages may be unfinished in the shard a raised count moved it from. */
  private enqueueOrHold(owned: OwnedShard, pending: Pending): void {
    const held = owned.reshardHeld;
    const key = pending.message.key;
    if ((held.length > 0 && held.some((p) => p.message.key === key)) || this.reshardWait(owned, pending).kind !== 'none') held.push(pending);
    else owned.enqueue(pending);
  }

  private reshardWait(owned: OwnedShard, pending: Pending) {
    const name = owned.topic.name;
    const topic = this.topics.get(name) ?? owned.topic;
    this.reshardGate ??= new ReshardGate(this.deps.store, this.connector, this.options.overlapMs);
    return this.reshardGate.waitOf(topic, this.topicsReadAt.get(name) ?? 0, pending.message);
  }

  /** Checks what held records wait for, and queues those that may go now, in order. */
  private async releaseReshardHeld(now: number): Promise<void> {
    const holding = [...this.shards.values()].filter((s) => s.active && s.reshardHeld.length > 0);
    if (holding.length === 0) return;
    const shardWaits = new Map<string, Array<{ reshard: Reshard; shard: number }>>();
    let topicWait = false;
    for (const owned of holding) {
      for (const pending of owned.reshardHeld) {
        const wait = this.reshardWait(owned, pending);
        if (wait.kind === 'topic') topicWait = true;
        else if (wait.kind === 'shard') {
          const list = shardWaits.get(owned.topic.name) ?? [];
          list.push(wait);
          shardWaits.set(owned.topic.name, list);
        }
      }
    }
    const readAt = Math.min(...holding.map((s) => this.topicsReadAt.get(s.topic.name) ?? 0));
    if (topicWait && now - readAt >= TOPIC_REREAD_MS) {
      this.topicsStale = true;
      await this.resolveTopics();
    }
    await Promise.all([...shardWaits].map(([name, waits]) => this.reshardGate!.check(this.topics.get(name)!, waits, now)));
    for (const owned of holding) {
      const keep: Pending[] = [];
      const stillHeld = new Set<string>();
      for (const pending of owned.reshardHeld) {
        const key = pending.message.key;
        if (stillHeld.has(key) || this.reshardWait(owned, pending).kind !== 'none') {
          keep.push(pending);
          stillHeld.add(key);
        } else owned.enqueue(pending);
      }
      owned.reshardHeld = keep;
    }
  }

  /** At-most-once: a send whose outcome nobody recorded may have happened; never send it again. */
  protected async markUnknown(inDoubt: Array<{ owned: OwnedShard; pending: Pending }>): Promise<void> {
    const now = Date.now();
    await this.deps.store.putDeliveries(
      inDoubt.map(({ owned, pending }) => ({
        ...pending.prior!,
        state: 'unknown' as const,
        epoch: owned.lease.epoch,
        workerId: this.deps.workerId,
        updatedAt: now,
      })),
    );
    await this.deps.store.appendEvents(
      inDoubt.map(({ pending }) => ({
        messageId: pending.message.id,
        topic: pending.position.topic,
        at: now,
        type: 'unknown',
        connector: this.connector,
        workerId: this.deps.workerId,
        detail: {
          reason: 'found sending without an outcome (the previous owner stopped mid-send); at-most-once: not sent again',
          previousWorker: pending.prior!.workerId,
          previousEpoch: pending.prior!.epoch,
        },
      })),
    );
    const eventsTopic = this.common['delivery.events.topic'];
    if (eventsTopic) {
      await this.deliveryEvents.publish(
        eventsTopic,
        inDoubt.map(({ pending }) => ({
          messageId: pending.message.id,
          topic: pending.position.topic,
          connector: this.connector,
          state: 'unknown',
          at: now,
          ...(pending.message.group !== undefined ? { group: pending.message.group } : {}),
        })),
      );
    }
    for (const { owned, pending } of inDoubt) owned.finish(pending);
  }

  /**
   * A paused task reads nothing, but its shards fill: their backlog is counted all the same,
   * also on the shards whose leases it gave back when they went idle (counting reads positions
   * only, which needs no lease).
   */
  protected async countPausedBacklogs(): Promise<void> {
    const now = Date.now();
    try {
      await Promise.all([...this.shards.values()].map((owned) => owned.consumer?.countBacklog(now, true)));
    } catch (error) {
      this.logger.debug({ err: error }, 'could not count the backlog of a paused task');
    }
  }

  /** The backlog of each shard this task holds, for the lag metrics and the REST view. */
  protected *shardBacklogs(): Iterable<ShardBacklogReport> {
    for (const owned of this.shards.values()) {
      // A shard without its lease has nothing read waiting; paused, what arrived is counted there too.
      if (!owned.consumer || (!owned.active && !this.paused)) continue;
      const { waiting, oldestTs } = owned.consumer.backlog();
      yield { connector: this.connector, task: this.spec.taskId, topic: owned.topic.name, shard: owned.shard, waiting, oldestTs };
    }
  }

  /** Watermarks are written only under the lease: another owner may be moving them. */
  protected async flushWatermarks(force: boolean): Promise<void> {
    const now = Date.now();
    await Promise.all(
      [...this.shards.values()]
        .filter((s) => s.active)
        .map(async (owned) => {
          const lag = await owned.consumer!.flush(now, force);
          owned.consumer!.countBacklogLater(now);
          (owned.lag ??= this.deps.metrics.busLag.labels({ consumer: this.connector, topic: owned.topic.name, shard: String(owned.shard) })).set(lag);
        }),
    );
  }
}
