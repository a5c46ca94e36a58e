/**
 * Runs one sink task: owns the task's shards (s % taskCount === taskId of every topic) through
 * their leases, reads them with a ShardConsumer each, hands records to the task in batches and
 * records every outcome, so that a message is never sent twice.
 *
 * The delivery protocol per batch: write `sending` (with the shard's lease epoch) for every
 * record → `put` → write `sent` / `retrying` / `failed` / `dead`. A record found in `sending`
 * by a later owner is in doubt: at-most-once (the default) marks it `unknown` and never sends
 * it again; at-least-once sends it again. When nothing waits on a batch's outcomes (no retry),
 * they are written together with the next batch's `sending` rows — one store write per batch —
 * or at once if no batch follows; the records count as finished (and the watermark may pass
 * them) only once their outcome is stored. The next batch's reads run meanwhile.
 *
 * Leases are held only while a shard has work: a shard without a lease is watched with a
 * one-entry probe read, its lease taken when something arrives and given back after
 * `releaseIdleAfterMs` without work. An idle worker so costs only its (budgeted) probes, not
 * one lease renewal per shard per heartbeat. Giving a lease back and taking it again bumps its
 * epoch by exactly one when nobody else held it in between; otherwise the shard's read state
 * is rebuilt from the stored watermark and the deliveries table.
 *
 * One loop per task serves all its shards, so an idle task costs one timer, not one per shard.
 */
import { randomBytes, createHash } from 'node:crypto';
import { isFatalConnectorError, type DeliveryUpdate, type Logger, type SinkRecord, type SinkTask } from '@omnibus/sdk';
import type { Counter, Gauge } from 'prom-client';
import { fullSpec, type CommonConnectorConfig } from '../runtime/connector-config.ts';
import type { SinkTaskSpec, TaskRunner } from '../runtime/types.ts';
import { positionOf, type Delivery, type DeliveryState, type Message, type MessagePosition, type NewMessageEvent, type ProviderIdEntry, type Topic } from '../store/port.ts';
import { DEFAULT_CONSUMER_OPTIONS, PollBudget, ShardConsumer, type ConsumerOptions, type Discovered, type LateBy } from './consumer.ts';
import { HeldLease } from './lease.ts';
import { retryDelay, TokenBucket } from './pacing.ts';
import { RunnerLifecycle } from './runner-lifecycle.ts';
import { applyDeliveryUpdates } from './receipts.ts';
import type { ShardSignals } from './signals.ts';
import type { SourceRunnerDeps } from './source-runner.ts';
import { ensureTopic } from './topics.ts';
import { TransformingSinkTask, type ChainedOutcome } from '../transforms/bus-records.ts';
import { BUILTIN_CATALOG } from '../transforms/catalog.ts';
import { buildChain } from '../transforms/chain.ts';

export interface SinkRunnerDeps extends SourceRunnerDeps {
  signals?: ShardSignals;
  consumer?: Partial<ConsumerOptions>;
  /** Shared by the runners of one worker, so that their idle polls share one budget. */
  pollBudget?: PollBudget;
  /**
   * Applies receipts a task reports on its own connection; defaults to the bus's state machine.
   * `topics` are the connector's: where its messages are.
   */
  reportDeliveries?: (connector: string, updates: DeliveryUpdate[], topics: readonly string[]) => Promise<void>;
}

/** A record read and not finished. */
interface Pending {
  message: Message;
  /** The message's buffer position: where its delivery state is kept. */
  position: MessagePosition;
  /** Attempts made so far, by any owner. */
  attempts: number;
  firstAttemptAt?: number;
  nextAttemptAt?: number;
  /** The row to put back if the task fails without sending. */
  prior?: Delivery;
  /** Holds back later records of its key (it is retrying, or being retried). */
  blocking?: boolean;
}

interface Dispatch {
  shard: OwnedShard;
  pending: Pending;
  fromRetry: boolean;
}

/** What a batch's outcomes mean, to be written and then applied in memory. */
interface Settlement {
  rows: Delivery[];
  providerIds: ProviderIdEntry[];
  events: NewMessageEvent[];
  /** Done for good (sent, failed, dead): finished once the rows are stored. */
  finished: Dispatch[];
  toRetry: Dispatch[];
  sent: number;
  failed: number;
}

/** A failure of the task itself (not of the store): the runner stops and reports it. */
class TaskFailed extends Error {
  constructor(readonly reason: Error) {
    super(reason.message);
  }
}

class OwnedShard {
  /** Reads the shard; valid for sending only under the lease epoch `validEpoch`. */
  consumer: ShardConsumer | undefined;
  validEpoch: number | undefined;
  /** The epoch we gave the lease back at, to recognise taking it back with nobody in between. */
  releasedEpoch: number | undefined;
  nextAcquireAt = 0;
  /** When the shard last had something to do (found entries, sent a batch). */
  lastWorkAt = 0;
  /** Ready to send, in buffer order. */
  queue: Pending[] = [];
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
    return this.queue.length > 0 || this.waiting.size > 0 || this.retrying.size > 0 || !(this.consumer?.idle ?? true);
  }

  enqueue(pending: Pending): void {
    const key = pending.message.key;
    if (this.blockedKeys.has(key)) {
      const list = this.waiting.get(key);
      if (list) list.push(pending);
      else this.waiting.set(key, [pending]);
    } else {
      this.queue.push(pending);
    }
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

  /** The record is finished: if it held its key back, release the records waiting behind it. */
  finish(pending: Pending): void {
    this.retrying.delete(pending.message.id);
    this.consumer?.complete(pending.message.id, pending.position.ts);
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
    this.waiting.clear();
    this.retrying.clear();
    this.blockedKeys.clear();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class SinkRunner extends RunnerLifecycle implements TaskRunner {
  protected readonly logger: Logger;
  private readonly options: ConsumerOptions;
  private readonly owner: string;
  private common!: CommonConnectorConfig;
  private task!: SinkTask;
  private readonly topics = new Map<string, Topic>();
  private readonly shards = new Map<string, OwnedShard>();
  private bucket = new TokenBucket(0);
  private readonly pollBudget: PollBudget;
  private budgeted = 0;
  private readonly dlqTopics = new Map<string, Topic>();

  private leaseWork: Promise<void> = Promise.resolve();
  /** Outcomes of the last batch (all final), written together with the next batch's `sending` rows. */
  private deferred: Settlement | undefined;
  /** The connector's labelled counters, looked up once. */
  private counters!: { read: Counter.Internal; sent: Counter.Internal; retried: Counter.Internal; failed: Counter.Internal; late: Record<LateBy, Counter.Internal> };
  private missingTopicsLogged = new Set<string>();

  constructor(
    private readonly spec: SinkTaskSpec,
    private readonly deps: SinkRunnerDeps,
  ) {
    super('sink task');
    this.logger = deps.logger.child({ connector: spec.connectorName, task: spec.taskId });
    this.options = { ...DEFAULT_CONSUMER_OPTIONS, ...deps.consumer };
    // Unique per runner: two runners of one task in one process must not share a lease.
    this.owner = `${deps.workerId}#${randomBytes(4).toString('hex')}`;
    this.pollBudget = deps.pollBudget ?? new PollBudget();
    this.options.releaseIdleAfterMs = Math.max(
      this.options.releaseIdleAfterMs,
      this.options.overlapMs + this.options.sweepIntervalMs + this.options.confidenceMs,
    );
  }

  private get connector(): string {
    return this.spec.connectorName;
  }

  async start(): Promise<void> {
    this.common = fullSpec(this.spec.connector.config).parse(this.spec.config) as CommonConnectorConfig;
    const { metrics } = this.deps;
    const labels = { connector: this.connector };
    this.counters = {
      read: metrics.recordsRead.labels(labels),
      sent: metrics.recordsSent.labels(labels),
      retried: metrics.recordsRetried.labels(labels),
      failed: metrics.recordsFailed.labels(labels),
      late: { recheck: metrics.lateEntries.labels({ ...labels, by: 'recheck' }), sweep: metrics.lateEntries.labels({ ...labels, by: 'sweep' }) },
    };
    const taskConfig = this.spec.connector.config.parse(this.spec.config);
    // Kafka's transforms/predicates keys: a record the chain drops is settled `filtered`.
    const chain = buildChain(this.spec.config, this.spec.transforms ?? BUILTIN_CATALOG);
    const task = this.spec.connector.createTask();
    this.task = chain.empty ? task : (new TransformingSinkTask(task as SinkTask<unknown>, chain) as SinkTask);
    const report =
      this.deps.reportDeliveries ??
      (async (connector: string, updates: DeliveryUpdate[], topics: readonly string[]) =>
        void (await applyDeliveryUpdates(this.deps.store, connector, updates, this.deps.workerId, { within: topics })));
    await this.task.start(taskConfig, {
      connectorName: this.connector,
      taskId: this.spec.taskId,
      logger: this.logger,
      reportDeliveries: (updates) => report(this.connector, updates, this.common.topics),
    });
    this.bucket = new TokenBucket(0);
    try {
      await this.resolveTopics();
    } catch (error) {
      await this.shutdown();
      throw error;
    }
    this.scheduleLeases();
    this.loop = this.run();
  }

  // ---- leases and shard ownership ----

  private scheduleLeases(): void {
    if (this.stopping) return;
    this.leaseTimer = setTimeout(() => {
      this.leaseWork = this.renewLeases()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'lease maintenance failed'))
        .finally(() => this.scheduleLeases());
    }, this.deps.heartbeatMs);
    this.leaseTimer.unref?.();
  }

  /** Renews the leases of busy shards; a lease lost to another owner drops the shard's state. */
  private async renewLeases(): Promise<void> {
    await this.resolveTopics();
    await Promise.all(
      [...this.shards.values()].map(async (owned) => {
        if (this.stopping || !owned.lease.held) return;
        if ((await owned.lease.renew()) === 'lost') {
          this.logger.warn({ lease: owned.lease.name }, 'lease lost to another owner; shard dropped');
          this.drop(owned);
        }
      }),
    );
  }

  private async resolveTopics(): Promise<void> {
    let added = 0;
    for (const name of this.common.topics) {
      if (this.topics.has(name)) continue;
      const topic = await this.deps.store.getTopic(name);
      if (!topic) {
        if (!this.missingTopicsLogged.has(name)) {
          this.missingTopicsLogged.add(name);
          this.logger.warn({ topic: name }, 'topic does not exist (yet); the task will consume it once it is created');
        }
        continue;
      }
      this.topics.set(name, topic);
      for (let shard = 0; shard < topic.shards; shard++) {
        if (shard % this.spec.taskCount !== this.spec.taskId) continue;
        const leaseName = `sink:${this.connector}/${topic.name}/${shard}`;
        const lease = new HeldLease(this.deps.store, leaseName, this.owner, this.deps.leaseTtlMs, Math.ceil(this.deps.leaseTtlMs / 3));
        const owned = new OwnedShard(topic, shard, lease);
        owned.unsubscribe = (this.deps.signals ?? this.deps.producer.signals)?.subscribe(topic.name, shard, () => {
          owned.consumer?.wake();
          this.sleeper.wake();
        });
        this.shards.set(leaseName, owned);
        added += 1;
      }
    }
    if (added > 0) {
      this.pollBudget.add(added);
      this.budgeted += added;
      this.sleeper.wake();
    }
    this.setRateShare();
  }

  /** A consumer positioned at the stored watermark. */
  private async newConsumer(owned: OwnedShard, freshAfter: number): Promise<ShardConsumer> {
    const consumer = new ShardConsumer(this.deps.store, this.connector, owned.topic, owned.shard, this.options, this.logger, this.pollBudget);
    await consumer.open(freshAfter);
    return consumer;
  }

  /** Takes the lease of a shard that has work; false while another owner holds it. */
  private async activate(owned: OwnedShard, now: number): Promise<boolean> {
    let taken = false;
    try {
      taken = await owned.lease.acquire();
    } catch (error) {
      this.logger.warn({ err: error, lease: owned.lease.name }, 'could not take lease');
    }
    if (!taken) {
      owned.nextAcquireAt = now + this.deps.heartbeatMs;
      if (owned.consumer) owned.consumer.nextPollAt = owned.nextAcquireAt;
      return false;
    }
    const continuous = owned.consumer !== undefined && owned.releasedEpoch !== undefined && owned.lease.epoch === owned.releasedEpoch + 1;
    owned.releasedEpoch = undefined;
    if (!continuous) {
      // Someone else may have held the shard since we last did: rebuild from the store. Entries
      // newer than `freshAfter` cannot have been read by that owner, which stopped before its
      // lease ran out; the overlap allows for clock skew between workers. Epoch 1 means nobody
      // ever held it (leases are never deleted): nothing can have been handled yet.
      owned.clear();
      const freshAfter = owned.lease.epoch === 1 ? -Infinity : owned.lease.acquiredAt + this.options.overlapMs;
      owned.consumer = await this.newConsumer(owned, freshAfter);
    }
    owned.validEpoch = owned.lease.epoch;
    owned.lastWorkAt = now;
    owned.consumer!.wakeNow();
    this.logger.debug({ topic: owned.topic.name, shard: owned.shard, epoch: owned.lease.epoch, continuous }, 'shard lease taken');
    return true;
  }

  /** Gives back the lease of a shard with nothing to do, after saving its watermark. */
  private async release(owned: OwnedShard): Promise<void> {
    await owned.consumer?.flush(Date.now(), true);
    const epoch = owned.lease.epoch;
    owned.validEpoch = undefined;
    await owned.lease.release();
    owned.releasedEpoch = epoch;
    this.removeLag(owned);
  }

  /** The lease is gone: forget what was read under it (the next owner, maybe us, rebuilds it). */
  private drop(owned: OwnedShard): void {
    owned.validEpoch = undefined;
    owned.releasedEpoch = undefined;
    owned.clear();
    this.removeLag(owned);
  }

  /**
   * The cluster-wide rate limit is split by shards: each task gets the share of the shards
   * assigned to it, whichever of them are busy at the moment.
   */
  private setRateShare(): void {
    const total = [...this.topics.values()].reduce((sum, t) => sum + t.shards, 0);
    const limit = this.common['rate.limit.per.second'];
    this.bucket.setRate(limit > 0 && total > 0 ? (limit * this.shards.size) / total : 0);
  }

  // ---- the loop ----

  private async run(): Promise<void> {
    let storeBackoff = 0;
    while (!this.stopping) {
      if (this.paused) {
        await this.sleeper.sleep(1000);
        continue;
      }
      let progressed = false;
      const step = this.step();
      this.stepDone = step.then(
        () => undefined,
        () => undefined,
      );
      try {
        progressed = await step;
        storeBackoff = 0;
      } catch (error) {
        if (error instanceof TaskFailed) {
          await this.fail(error.reason);
          return;
        }
        storeBackoff = Math.min(5000, storeBackoff ? storeBackoff * 2 : 100);
        this.logger.warn({ err: error, retryInMs: storeBackoff }, 'bus step failed; retrying');
        await this.sleeper.sleep(storeBackoff);
        continue;
      }
      if (!progressed && !this.stopping && !this.paused) await this.sleeper.sleep(this.nextDelay());
    }
  }

  /**
   * Probes idle shards, reads busy ones, sends one batch, moves watermarks. True when it sent
   * something. The reads run while the batch taken from what earlier reads queued is being
   * delivered, so that on a remote store fetching overlaps writing and sending.
   */
  private async step(): Promise<boolean> {
    const now = Date.now();
    await this.activateShardsWithWork(now);
    const reading = this.readShards(now);
    let batch = this.takeBatch(Date.now());
    if (batch.length === 0) {
      await reading;
      batch = this.takeBatch(Date.now());
    }
    if (batch.length > 0) {
      const [delivered, read] = await Promise.allSettled([this.deliver(batch), reading]);
      if (delivered.status === 'rejected') throw delivered.reason;
      if (read.status === 'rejected') throw read.reason;
      const at = Date.now();
      for (const { shard } of batch) shard.lastWorkAt = at;
    }
    if (batch.length === 0) await this.writeDeferred();
    await this.flushWatermarks(false);
    await this.releaseIdleShards();
    // Outcomes left for the next batch's write are written now if no batch follows at once
    // (checked last: a pause may have come while this step was waiting).
    if (this.paused || this.stopping) await this.writeDeferred();
    return batch.length > 0;
  }

  /**
   * Reads the shards that are due and short of records for the next batches; queues what is
   * new. A batch takes records round-robin over the active shards, so each shard keeps about
   * its share of two batches queued: records read further ahead would wait in memory for many
   * batches, long enough for the garbage collector to copy them into the old generation.
   */
  private async readShards(now: number): Promise<void> {
    const share = this.batchShare();
    const readAhead = Math.max(this.options.minReadAhead, 2 * share);
    const readable: OwnedShard[] = [];
    for (const s of this.shards.values()) {
      if (s.active && s.consumer!.nextPollAt <= now && s.queue.length < share && s.lease.safe(now)) readable.push(s);
    }
    if (readable.length === 0) return;
    const reads = await Promise.all(
      readable.map(async (owned) => ({ owned, consumer: owned.consumer!, found: await owned.consumer!.read(now, readAhead - owned.queue.length) })),
    );
    const inDoubt: Array<{ owned: OwnedShard; pending: Pending }> = [];
    for (const { owned, consumer, found } of reads) {
      if (owned.consumer !== consumer) continue; // dropped while reading
      for (const discovered of found) {
        if (discovered.late) this.counters.late[discovered.late].inc();
        this.admit(owned, discovered, now, inDoubt);
      }
    }
    if (inDoubt.length > 0) await this.markUnknown(inDoubt);
  }

  /** About how many records a batch takes from each active shard. */
  private batchShare(): number {
    let active = 0;
    for (const s of this.shards.values()) if (s.active) active++;
    return Math.ceil(this.common['batch.size'] / Math.max(1, active));
  }

  /** Probes the shards without a lease that are due, and takes the leases of those with work. */
  private async activateShardsWithWork(now: number): Promise<void> {
    const inactive = [...this.shards.values()].filter((s) => !s.active && now >= s.nextAcquireAt);
    if (inactive.length === 0) return;
    const unopened = inactive.filter((s) => !s.consumer);
    // Positioned at the stored watermark, for probing only: sending waits for the lease.
    await Promise.all(unopened.map(async (s) => (s.consumer = await this.newConsumer(s, Infinity))));
    const due = inactive.filter((s) => s.lease.held || s.consumer!.nextPollAt <= now);
    const withWork = await Promise.all(due.map(async (s) => ((s.lease.held || (await s.consumer!.probe(now))) ? s : undefined)));
    await Promise.all(withWork.filter((s): s is OwnedShard => s !== undefined).map((s) => this.activate(s, now)));
  }

  private async releaseIdleShards(): Promise<void> {
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

  private admit(owned: OwnedShard, { message, prior }: Discovered, now: number, inDoubt: Array<{ owned: OwnedShard; pending: Pending }>): void {
    const pending: Pending = { message, position: positionOf(message), attempts: prior?.attempts ?? 0 };
    if (prior) pending.prior = prior;
    if (!prior || prior.state === 'pending') {
      owned.enqueue(pending);
    } else if (prior.state === 'retrying') {
      // Left by an earlier owner: retry when due. Its first attempt is unknown; its last write bounds it.
      pending.firstAttemptAt = prior.updatedAt;
      pending.nextAttemptAt = prior.nextAttemptAt ?? now;
      owned.retry(pending);
    } else if (prior.state === 'sending') {
      if (this.common['delivery.guarantee'] === 'at-least-once') owned.enqueue(pending);
      else inDoubt.push({ owned, pending });
    }
  }

  /** At-most-once: a send whose outcome nobody recorded may have happened; never send it again. */
  private async markUnknown(inDoubt: Array<{ owned: OwnedShard; pending: Pending }>): Promise<void> {
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
    for (const { owned, pending } of inDoubt) owned.finish(pending);
  }

  /** Due retries first, then ready records, round-robin over shards, within the rate limit. */
  private takeBatch(now: number): Dispatch[] {
    const sendable = [...this.shards.values()].filter((s) => s.active && s.lease.safe(now));
    const retries: Dispatch[] = [];
    for (const shard of sendable) {
      for (const pending of shard.retrying.values()) {
        if ((pending.nextAttemptAt ?? 0) <= now) retries.push({ shard, pending, fromRetry: true });
      }
    }
    retries.sort((a, b) => a.pending.position.ts - b.pending.position.ts);
    const queued = sendable.reduce((sum, s) => sum + s.queue.length, 0);
    const wanted = Math.min(this.common['batch.size'], retries.length + queued);
    if (wanted === 0) return [];
    const granted = this.bucket.take(wanted, now);
    const batch = retries.slice(0, granted);
    for (const { shard, pending } of batch) shard.retrying.delete(pending.message.id);
    const cursors = sendable.filter((s) => s.queue.length > 0);
    while (batch.length < granted && cursors.length > 0) {
      for (let i = 0; i < cursors.length && batch.length < granted; ) {
        const shard = cursors[i]!;
        const pending = shard.queue.shift();
        if (pending) batch.push({ shard, pending, fromRetry: false });
        if (shard.queue.length === 0) cursors.splice(i, 1);
        else i++;
      }
    }
    return batch;
  }

  /** Puts records taken for a batch back where they came from (the batch could not start). */
  private giveBack(batch: Dispatch[]): void {
    for (let i = batch.length - 1; i >= 0; i--) {
      const { shard, pending, fromRetry } = batch[i]!;
      if (fromRetry) shard.retrying.set(pending.message.id, pending);
      else shard.queue.unshift(pending);
    }
  }

  /**
   * Writes `sending` for the batch (together with the previous batch's outcomes, when they were
   * left for it), calls `put`, and records the outcomes — or leaves them, when nothing has to
   * wait for them, for the next batch's write: one store write per batch instead of two.
   */
  private async deliver(batch: Dispatch[]): Promise<void> {
    const sentAt = Date.now();
    const store = this.deps.store;
    const sending: Delivery[] = batch.map(({ shard, pending }) =>
      deliveryRow(pending.position, this.connector, 'sending', pending.attempts + 1, shard.lease.epoch, this.deps.workerId, sentAt),
    );
    const deferred = this.deferred;
    this.deferred = undefined;
    try {
      await this.writeSettlement(deferred, sending);
    } catch (error) {
      this.giveBack(batch);
      if (deferred) {
        await this.persist(() => this.writeSettlement(deferred, []));
        this.applySettlement(deferred);
      }
      throw error;
    }
    if (deferred) this.applySettlement(deferred);

    // The write may have been slow: a record whose shard is no longer safely ours is not sent.
    const now = Date.now();
    const unsafe = batch.filter(({ shard }) => !(shard.active && shard.lease.safe(now)));
    if (unsafe.length > 0) {
      await this.persist(() => store.putDeliveries(unsafe.map((dispatch) => this.undoSending(dispatch))));
      this.giveBack(unsafe);
      if (unsafe.length === batch.length) return;
      batch = batch.filter((dispatch) => !unsafe.includes(dispatch));
    }

    const records: SinkRecord[] = batch.map(({ pending }) => toRecord(pending.message, pending.attempts + 1));
    this.counters.read.inc(records.length);
    let outcomes: ChainedOutcome[];
    try {
      outcomes = await this.task.put(records);
    } catch (error) {
      const reason = error instanceof Error ? error : new Error(String(error));
      if (isFatalConnectorError(error)) {
        // The connector promises nothing reached the provider: undo `sending` so a restart sends them.
        await this.persist(() => store.putDeliveries(batch.map((dispatch) => this.undoSending(dispatch))));
        for (const { shard, pending } of batch) shard.consumer?.forget(pending.message.id);
      }
      // Any other exception leaves the batch in `sending`: in doubt, as the contract says.
      throw new TaskFailed(reason);
    }
    const problem = outcomeProblem(outcomes, records.length, this.task instanceof TransformingSinkTask);
    if (problem) throw new TaskFailed(new Error(`${this.spec.connector.className}.put broke its contract: ${problem}`));
    const settlement = await this.decide(batch, outcomes, sentAt);
    if (settlement.toRetry.length === 0) {
      // Nothing waits on these outcomes in memory: they go out with the next write.
      this.deferred = settlement;
      return;
    }
    await this.persist(() => this.writeSettlement(settlement, []));
    this.applySettlement(settlement);
  }

  /** The row a record had before `sending` was written for it (it was not sent after all). */
  private undoSending({ shard, pending }: Dispatch): Delivery {
    return {
      ...(pending.prior ?? {
        connector: this.connector,
        ...pending.position,
        state: 'pending' as const,
        attempts: pending.attempts,
        epoch: shard.lease.epoch,
        workerId: this.deps.workerId,
      }),
      updatedAt: Date.now(),
    };
  }

  /** Writes a settlement's rows (if any) and `extra` delivery rows in one store write per table. */
  private async writeSettlement(settlement: Settlement | undefined, extra: Delivery[]): Promise<void> {
    const store = this.deps.store;
    const rows = settlement ? (extra.length > 0 ? settlement.rows.concat(extra) : settlement.rows) : extra;
    // A receipt that came first stays: its state is kept beside these (see receipts.ts).
    const writes: Array<Promise<void>> = [];
    if (rows.length > 0) writes.push(store.putDeliveries(rows));
    if (settlement && settlement.providerIds.length > 0) writes.push(store.putProviderIds(settlement.providerIds));
    if (settlement && settlement.events.length > 0) writes.push(store.appendEvents(settlement.events));
    await Promise.all(writes);
  }

  /** Outcomes are stored: finish the records (the watermark may pass them now) and schedule retries. */
  private applySettlement(settlement: Settlement): void {
    for (const { shard, pending } of settlement.finished) shard.finish(pending);
    for (const { shard, pending } of settlement.toRetry) shard.retry(pending);
    if (settlement.sent > 0) this.counters.sent.inc(settlement.sent);
    if (settlement.toRetry.length > 0) this.counters.retried.inc(settlement.toRetry.length);
    if (settlement.failed > 0) this.counters.failed.inc(settlement.failed);
  }

  /** Writes the outcomes left for the next batch, now (no batch follows, or the runner pauses or stops). */
  private async writeDeferred(): Promise<void> {
    const deferred = this.deferred;
    if (!deferred) return;
    this.deferred = undefined;
    await this.persist(() => this.writeSettlement(deferred, []));
    this.applySettlement(deferred);
  }

  /** What the outcomes of a batch mean: the rows and events to write, what is finished, what is retried. */
  private async decide(batch: Dispatch[], outcomes: ChainedOutcome[], sentAt: number): Promise<Settlement> {
    const now = Date.now();
    const settlement: Settlement = { rows: [], providerIds: [], events: [], finished: [], toRetry: [], sent: 0, failed: 0 };
    const { rows, events, providerIds, finished, toRetry } = settlement;
    const failed: Array<{ dispatch: Dispatch; error: { code: string; message: string }; exhausted: boolean }> = [];
    const maxAttempts = this.common['errors.retry.max.attempts'];
    const timeout = this.common['errors.retry.timeout'];
    const connector = this.connector;
    const workerId = this.deps.workerId;

    for (let i = 0; i < batch.length; i++) {
      const dispatch = batch[i]!;
      const { shard, pending } = dispatch;
      const outcome = outcomes[i]!;
      const attempts = pending.attempts + 1;
      const messageId = pending.message.id;
      if (outcome.status === 'filtered') {
        rows.push(deliveryRow(pending.position, connector, 'filtered', pending.attempts, shard.lease.epoch, workerId, now));
        finished.push(dispatch);
        continue;
      }
      if (outcome.status === 'sent') {
        const row = deliveryRow(pending.position, connector, 'sent', attempts, shard.lease.epoch, workerId, now);
        if (outcome.providerId) {
          row.providerId = outcome.providerId;
          providerIds.push({ connector, providerId: outcome.providerId, messageId, topic: pending.position.topic });
        }
        rows.push(row);
        if (outcome.details) {
          events.push({ messageId, topic: pending.position.topic, at: now, type: 'sent', connector, workerId, detail: { providerId: outcome.providerId, ...outcome.details } });
        }
        finished.push(dispatch);
        settlement.sent += 1;
        continue;
      }
      if (outcome.status === 'retry') {
        const firstAttemptAt = pending.firstAttemptAt ?? sentAt;
        const delay = retryDelay(attempts, this.common['errors.retry.delay.initial.ms'], this.common['errors.retry.delay.max.ms'], outcome.retryAfterMs);
        const nextAttemptAt = now + delay;
        const outOfTime = timeout >= 0 && nextAttemptAt - firstAttemptAt > timeout;
        if (attempts >= maxAttempts || outOfTime) {
          failed.push({ dispatch, error: outcome.error, exhausted: true });
          continue;
        }
        rows.push({ ...pending.position, connector, state: 'retrying', attempts, epoch: shard.lease.epoch, workerId, updatedAt: now, nextAttemptAt, lastError: outcome.error });
        events.push({
          messageId,
          topic: pending.position.topic,
          at: now,
          type: 'retrying',
          connector,
          workerId,
          detail: { attempt: attempts, error: outcome.error, nextAttemptAt, ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}) },
        });
        pending.attempts = attempts;
        pending.firstAttemptAt = firstAttemptAt;
        pending.nextAttemptAt = nextAttemptAt;
        toRetry.push(dispatch);
        continue;
      }
      failed.push({ dispatch, error: outcome.error, exhausted: false });
    }

    if (failed.length > 0) {
      const dead = await this.deadLetter(failed.map(({ dispatch, error, exhausted }) => ({ pending: dispatch.pending, error, exhausted })));
      for (const { dispatch, error, exhausted } of failed) {
        const { shard, pending } = dispatch;
        const letter = dead.get(pending.message.id);
        const state = letter && 'id' in letter ? 'dead' : 'failed';
        rows.push({
          connector,
          ...pending.position,
          state,
          attempts: pending.attempts + 1,
          epoch: shard.lease.epoch,
          workerId,
          lastError: error,
          updatedAt: now,
        });
        events.push({
          messageId: pending.message.id,
          topic: pending.position.topic,
          at: now,
          type: state,
          connector,
          workerId,
          detail: {
            error,
            attempts: pending.attempts + 1,
            ...(exhausted ? { reason: 'retries exhausted' } : {}),
            ...(letter && 'id' in letter ? { deadLetterTopic: this.common['errors.deadletterqueue.topic.name'], deadLetterId: letter.id } : {}),
            ...(letter && 'error' in letter ? { deadLetterError: letter.error } : {}),
          },
        });
        finished.push(dispatch);
      }
      settlement.failed = failed.length;
    }
    return settlement;
  }

  /**
   * Produces failed records to the dead-letter topic (created with the source topic's shard
   * count if missing), with headers naming the connector and the error. The letter's id is
   * derived from the message and the connector, so producing it twice keeps one copy.
   */
  private async deadLetter(
    failures: Array<{ pending: Pending; error: { code: string; message: string }; exhausted: boolean }>,
  ): Promise<Map<string, { id: string } | { error: string }>> {
    const out = new Map<string, { id: string } | { error: string }>();
    const dlqName = this.common['errors.deadletterqueue.topic.name'];
    if (!dlqName) return out;
    const bySource = new Map<string, typeof failures>();
    for (const failure of failures) {
      const list = bySource.get(failure.pending.message.topic) ?? [];
      list.push(failure);
      bySource.set(failure.pending.message.topic, list);
    }
    for (const [sourceTopic, list] of bySource) {
      try {
        let topic = this.dlqTopics.get(dlqName);
        if (!topic) {
          const source = this.topics.get(sourceTopic);
          topic = await ensureTopic(this.deps.store, { name: dlqName, shards: source?.shards ?? 16 });
          this.dlqTopics.set(dlqName, topic);
        }
        for (let i = 0; i < list.length; i += this.deps.producer.limits.maxMessages) {
          const chunk = list.slice(i, i + this.deps.producer.limits.maxMessages);
          const items = chunk.map(({ pending, error, exhausted }) => ({
            id: deadLetterId(this.connector, pending.message.id),
            key: pending.message.key,
            value: pending.message.value,
            headers: {
              ...pending.message.headers,
              'omnibus.errors.connector.name': this.connector,
              'omnibus.errors.task.id': String(this.spec.taskId),
              'omnibus.errors.topic': pending.message.topic,
              'omnibus.errors.shard': String(pending.message.shard),
              'omnibus.errors.message.id': pending.message.id,
              'omnibus.errors.code': error.code,
              'omnibus.errors.message': error.message,
              'omnibus.errors.attempts': String(pending.attempts + 1),
              'omnibus.errors.reason': exhausted ? 'retries exhausted' : 'permanent failure',
            },
            ...(pending.message.group ? { group: pending.message.group } : {}),
          }));
          const produced = await this.deps.producer.produce(topic.name, items);
          produced.forEach((p, j) => out.set(chunk[j]!.pending.message.id, { id: p.id }));
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.logger.error({ err: error, topic: dlqName }, 'could not write to the dead-letter topic; records are marked failed');
        for (const { pending } of list) if (!out.has(pending.message.id)) out.set(pending.message.id, { error: message });
      }
    }
    return out;
  }

  /** Retries a store write until it succeeds or the runner stops: an outcome must not be lost. */
  private async persist(write: () => Promise<void>): Promise<void> {
    for (let delay = 100; ; delay = Math.min(5000, delay * 2)) {
      try {
        await write();
        return;
      } catch (error) {
        if (this.stopping) throw error;
        this.logger.warn({ err: error, retryInMs: delay }, 'store write failed; retrying');
        await sleep(delay);
      }
    }
  }

  private removeLag(owned: OwnedShard): void {
    if (!owned.lag) return;
    owned.lag = undefined;
    this.deps.metrics.busLag.remove({ consumer: this.connector, topic: owned.topic.name, shard: String(owned.shard) });
  }

  /** Watermarks are written only under the lease: another owner may be moving them. */
  private async flushWatermarks(force: boolean): Promise<void> {
    const now = Date.now();
    await Promise.all(
      [...this.shards.values()]
        .filter((s) => s.active)
        .map(async (owned) => {
          const lag = await owned.consumer!.flush(now, force);
          (owned.lag ??= this.deps.metrics.busLag.labels({ consumer: this.connector, topic: owned.topic.name, shard: String(owned.shard) })).set(lag);
        }),
    );
  }

  /** How long the loop may sleep: until a shard's poll or a retry is due, or a rate-limit token. */
  private nextDelay(): number {
    const now = Date.now();
    let next = now + 1000;
    const share = this.batchShare();
    for (const owned of this.shards.values()) {
      if (!owned.active) {
        if (owned.consumer) next = Math.min(next, Math.max(owned.consumer.nextPollAt, owned.nextAcquireAt));
        continue;
      }
      if (owned.queue.length < share) next = Math.min(next, owned.consumer!.nextPollAt);
      for (const pending of owned.retrying.values()) next = Math.min(next, pending.nextAttemptAt ?? now);
      if (owned.queue.length > 0 && owned.lease.safe(now)) next = Math.min(next, now + this.bucket.waitMs(now));
    }
    return Math.max(0, next - now);
  }

  protected async releaseAll(): Promise<void> {
    await this.leaseWork;
    try {
      await this.writeDeferred();
    } catch (error) {
      this.logger.warn({ err: error }, 'could not record the outcomes of the last batch on stop; they stay in doubt');
    }
    try {
      await this.flushWatermarks(true);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not save watermarks on stop');
    }
    this.pollBudget.remove(this.budgeted);
    this.budgeted = 0;
    await Promise.all(
      [...this.shards.values()].map(async (owned) => {
        owned.unsubscribe?.();
        owned.unsubscribe = undefined;
        const held = owned.lease.held;
        this.drop(owned);
        if (!held) return;
        try {
          await owned.lease.release();
        } catch (error) {
          this.logger.warn({ err: error, lease: owned.lease.name }, 'could not release lease; it will expire');
        }
      }),
    );
    try {
      await this.task?.stop();
    } catch (error) {
      this.logger.warn({ err: error }, 'task stop failed');
    }
  }
}

function toRecord(message: Message, attempt: number): SinkRecord {
  const record: SinkRecord = {
    id: message.id,
    topic: message.topic,
    key: message.key,
    shard: message.shard,
    value: message.value,
    headers: message.headers,
    timestamp: message.createdAt,
    attempt,
  };
  if (message.group !== undefined) record.group = message.group;
  return record;
}

/** `filtered` comes only from the runner's own chain (TransformingSinkTask), never from a connector. */
function outcomeProblem(outcomes: unknown, expected: number, chained: boolean): string | undefined {
  if (!Array.isArray(outcomes)) return 'it did not return an array';
  if (outcomes.length !== expected) return `it returned ${outcomes.length} outcomes for ${expected} records`;
  for (const [i, o] of outcomes.entries()) {
    const status = (o as { status?: unknown } | null)?.status;
    if (status === 'sent' || (chained && status === 'filtered')) continue;
    if ((status === 'retry' || status === 'failed') && typeof (o as { error?: { code?: unknown } }).error?.code === 'string') continue;
    return `outcome ${i} is not {status: 'sent'|'retry'|'failed'} with an error for retry/failed`;
  }
  return undefined;
}

/** A delivery row without optional fields. Every such row has the same shape: cheaper to build, encode and compare. */
function deliveryRow(
  position: MessagePosition,
  connector: string,
  state: DeliveryState,
  attempts: number,
  epoch: number,
  workerId: string,
  updatedAt: number,
): Delivery {
  return { messageId: position.messageId, topic: position.topic, shard: position.shard, ts: position.ts, connector, state, attempts, epoch, workerId, updatedAt };
}

function deadLetterId(connector: string, messageId: string): string {
  // Hex keeps ids within the produce id alphabet ([A-Za-z0-9._:-]).
  const digest = createHash('sha256').update(connector).digest('hex').slice(0, 12);
  const id = `${messageId}:dlq:${digest}`;
  return id.length <= 128 ? id : `dlq:${createHash('sha256').update(`${connector}\u0000${messageId}`).digest('hex')}`;
}
