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
 *
 * Beside this file: the shards' state (sink-shard.ts), their leases (sink-leases.ts), the reads
 * (sink-reads.ts), the outcomes of a batch (sink-outcomes.ts) and dead letters
 * (sink-dead-letters.ts).
 */
import type { HistogramSeries } from '../metrics.ts';
import { inboundSettingsOf, isFatalConnectorError, type DeliveryUpdate, type SinkRecord, type SinkTask } from '@omnibus/sdk';
import { InboundMessages } from './inbound.ts';
import { ActiveTopicsRecorder } from './active-topics.ts';
import { fullSpec, type CommonConnectorConfig } from './connector-config.ts';
import type { SinkTaskSpec, TaskRunner } from './task-runner.ts';
import type { Delivery, Priority } from '../store/port.ts';
import { pickLanes } from './priority-lanes.ts';
import { TokenBucket } from './pacing.ts';
import { applyDeliveryUpdates } from './receipts.ts';
import { DeadLetters } from './sink-dead-letters.ts';
import { SinkShardReads } from './sink-reads.ts';
import { SuppressionGate } from './suppression-gate.ts';
import type { SinkRunnerDeps } from './sink-leases.ts';
import { expediteFallbacks, PERMANENT_FAILURES } from './fallback.ts';
import { cancelledSettlement, decideOutcomes, deliveryChanges, deliveryRow, expiredSettlement, isExpired, mergeSettlement, outcomeProblem, toRecord, type Settlement } from './sink-outcomes.ts';
import { inBufferOrder, isStale, type Dispatch } from './sink-shard.ts';
import { TransformingSinkTask, type ChainedOutcome } from '../transforms/bus-records.ts';
import { BUILTIN_CATALOG } from '../transforms/catalog.ts';
import { buildChain } from '../transforms/chain.ts';
import { chainServicesOf } from './source-runner.ts';

export type { SinkRunnerDeps } from './sink-leases.ts';

/** A failure of the task itself (not of the store): the runner stops and reports it. */
class TaskFailed extends Error {
  constructor(readonly reason: Error) {
    super(reason.message);
  }
}

export class SinkRunner extends SinkShardReads implements TaskRunner {
  private task!: SinkTask;
  private readonly deadLetters: DeadLetters;
  /** Outcomes of the last batch (all final), written together with the next batch's `sending` rows. */
  private deferred: Settlement | undefined;
  private readonly activeTopics: ActiveTopicsRecorder;
  private unwatchBacklog: (() => void) | undefined;
  private handoff!: HistogramSeries;
  /** Per priority, the records taken from higher lanes in a row while it waited (pickLanes). */
  private readonly lanesSkipped: Record<Priority, number> = { high: 0, normal: 0, low: 0 };

  constructor(spec: SinkTaskSpec, deps: SinkRunnerDeps) {
    super(spec, deps);
    this.activeTopics = new ActiveTopicsRecorder(deps.store, spec.connectorName, spec.taskId, this.logger, deps.trackActiveTopics ?? true);
    this.deadLetters = new DeadLetters(deps.store, deps.producer, spec.connectorName, spec.taskId, this.topics, this.logger);
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
    this.handoff = metrics.handoffLatency.labels(labels);
    const taskConfig = this.spec.connector.config.parse(this.spec.config);
    // Kafka's transforms/predicates keys: a record the chain drops is settled `filtered`.
    const chain = buildChain(this.spec.config, this.spec.transforms ?? BUILTIN_CATALOG, chainServicesOf(this.deps));
    // The suppression check sees records as the connector will (after the chain).
    const task = new SuppressionGate(this.spec.connector.createTask() as SinkTask<unknown>, this.deps.store, this.connector, this.spec.connector.recipients, this.logger);
    this.task = chain.empty ? (task as SinkTask) : (new TransformingSinkTask(task, chain) as SinkTask);
    const report =
      this.deps.reportDeliveries ??
      (async (connector: string, updates: DeliveryUpdate[], topics: readonly string[], eventsTopic?: string) =>
        void (await applyDeliveryUpdates(this.deps.store, connector, updates, this.deps.workerId, {
          within: topics,
          logger: this.logger,
          ...(eventsTopic ? { publish: (changes) => this.deliveryEvents.publish(eventsTopic, changes) } : {}),
        })));
    const inbound = new InboundMessages(this.deps.store, this.deps.producer);
    const inboundSettings = inboundSettingsOf(this.spec.config);
    await this.task.start(taskConfig, {
      connectorName: this.connector,
      taskId: this.spec.taskId,
      logger: this.logger,
      reportDeliveries: (updates) => report(this.connector, updates, this.common.topics, this.common['delivery.events.topic'] || undefined),
      reportProviders: (statuses) => metrics.reportProviders(this.connector, this.spec.taskId, statuses),
      reportInbound: (messages) => inbound.accept(this.connector, inboundSettings, messages, this.logger),
    });
    this.bucket = new TokenBucket(0);
    try {
      await this.resolveTopics();
    } catch (error) {
      await this.shutdown();
      throw error;
    }
    this.unwatchBacklog = metrics.watchBacklog(() => this.shardBacklogs());
    this.scheduleLeases();
    this.loop = this.run();
  }

  // ---- the loop ----
  private async run(): Promise<void> {
    let storeBackoff = 0;
    while (!this.stopping) {
      if (this.paused) {
        await this.countPausedBacklogs();
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

  /** Due retries first, then ready records by priority (pickLanes), round-robin over shards, within the rate limit. */
  private takeBatch(now: number): Dispatch[] {
    const sendable = [...this.shards.values()].filter((s) => s.active && s.lease.safe(now));
    const retries: Dispatch[] = [];
    for (const shard of sendable) for (const pending of shard.dueRetries(now)) retries.push({ shard, pending, fromRetry: true, readBy: shard.consumer });
    retries.sort((a, b) => inBufferOrder(a.pending, b.pending));
    const queued = sendable.reduce((sum, s) => sum + s.queue.length, 0);
    const wanted = Math.min(this.common['batch.size'], retries.length + queued);
    if (wanted === 0) return [];
    const granted = this.bucket.take(wanted, now);
    const batch = retries.slice(0, granted);
    for (const { shard, pending } of batch) shard.retrying.delete(pending.message.id);
    const cursors = sendable.filter((s) => s.queue.length > 0);
    const waiting: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
    for (const shard of cursors) shard.countQueued(waiting);
    const turn: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
    for (const lane of pickLanes(granted - batch.length, waiting, this.lanesSkipped)) {
      for (let tried = 0; tried < cursors.length; tried++) {
        const shard = cursors[turn[lane]++ % cursors.length]!;
        const pending = shard.takeQueued(lane);
        if (!pending) continue;
        batch.push({ shard, pending, fromRetry: false, readBy: shard.consumer });
        break;
      }
    }
    return batch;
  }

  /** Puts records taken for a batch back where they came from (the batch could not start). */
  private giveBack(batch: Dispatch[]): void {
    for (let i = batch.length - 1; i >= 0; i--) {
      if (isStale(batch[i]!)) continue; // its shard's new consumer reads it from the store
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
    const expired = batch.filter(({ pending }) => isExpired(pending.message.headers, sentAt));
    if (expired.length > 0) {
      // Past their expires_at: never handed to the task, recorded `expired` (with the previous batch's outcomes).
      const settlement = mergeSettlement(expiredSettlement(expired, this.connector, this.deps.workerId, sentAt), this.deferred);
      this.deferred = undefined;
      await this.persist(() => this.writeSettlement(settlement, []));
      this.applySettlement(settlement);
      batch = batch.filter((dispatch) => !expired.includes(dispatch));
      if (batch.length === 0) return;
    }
    const sending: Delivery[] = batch.map(({ shard, pending }) =>
      deliveryRow(pending.position, this.connector, 'sending', pending.attempts + 1, shard.lease.epoch, this.deps.workerId, sentAt),
    );
    const deferred = this.deferred;
    this.deferred = undefined;
    try {
      await this.writeSettlement(deferred, sending);
    } catch (error) {
      for (const row of sending) this.neverHandedOff.add(this.connector, row);
      this.giveBack(batch);
      if (deferred) {
        await this.persist(() => this.writeSettlement(deferred, []));
        this.applySettlement(deferred);
      }
      throw error;
    }
    if (deferred) this.applySettlement(deferred);

    // The write may have been slow: a record whose shard is no longer safely ours is not sent,
    // nor undone: the shard may have another owner by now (this worker was frozen, or cut off),
    // which may have settled those rows already, and an undo would overwrite them (a `pending`
    // nobody reads again). Our `sending` stays, and this worker remembers it never handed them
    // off: it sends them if it keeps the shard; another owner settles them. One whose shard was
    // dropped and taken again meanwhile is not given back either: the shard's new consumer
    // rebuilt its state from the store and owns it, where sending it here could make a second
    // send of a record that consumer also took.
    const now = Date.now();
    const unsafe: Dispatch[] = [];
    const safe: Dispatch[] = [];
    // `sending` holds the batch's rows in its order.
    for (const [i, dispatch] of batch.entries()) {
      const stale = isStale(dispatch);
      if (!stale && dispatch.shard.active && dispatch.shard.lease.safe(now)) {
        safe.push(dispatch);
        continue;
      }
      if (!stale) unsafe.push(dispatch);
      this.neverHandedOff.add(this.connector, sending[i]!);
    }
    this.giveBack(unsafe);
    if (safe.length === 0) return;
    batch = await this.dropCancelled(safe);
    if (batch.length === 0) return;

    for (const { pending } of batch) this.neverHandedOff.handedOff(this.connector, pending.message.id);
    const records: SinkRecord[] = batch.map(({ pending }) => toRecord(pending.message, pending.attempts + 1));
    this.counters.read.inc(records.length);
    for (const { pending } of batch) if (pending.attempts === 0) this.handoff.observe((now - pending.message.createdAt) / 1000);
    await this.activeTopics.used(batch.map(({ pending }) => pending.message.topic));
    let outcomes: ChainedOutcome[];
    try {
      outcomes = await this.task.put(records);
    } catch (error) {
      const reason = error instanceof Error ? error : new Error(String(error));
      if (isFatalConnectorError(error)) {
        // The connector promises nothing reached the provider: undo `sending` so a restart sends them.
        await this.persist(() => store.putDeliveries(batch.map((dispatch) => this.undoSending(dispatch))));
        for (const { shard, pending } of batch) shard.consumer?.forget(pending.message.id, pending.priority);
      }
      // Any other exception leaves the batch in `sending`: in doubt, as the contract says.
      throw new TaskFailed(reason);
    }
    const problem = outcomeProblem(outcomes, records.length, this.task instanceof TransformingSinkTask);
    if (problem) throw new TaskFailed(new Error(`${this.spec.connector.className}.put broke its contract: ${problem}`));
    const settlement = await decideOutcomes(batch, outcomes, sentAt, {
      common: this.common,
      connector: this.connector,
      workerId: this.deps.workerId,
      deadLetter: (failures) => this.deadLetters.produce(this.common['errors.deadletterqueue.topic.name'], failures),
    });
    if (settlement.toRetry.length === 0) {
      // Nothing waits on these outcomes in memory: they go out with the next write.
      this.deferred = settlement;
      return;
    }
    await this.persist(() => this.writeSettlement(settlement, []));
    this.applySettlement(settlement);
  }

  /**
   * Settles the batch's cancelled records (`cancelled`, never handed off) and answers the rest.
   * Read after `sending` is written: a cancel stores its cancellation before it reads the
   * states, so either this read sees it, or the cancel sees `sending` and reports the record
   * in flight; never cancelled and sent.
   */
  private async dropCancelled(batch: Dispatch[]): Promise<Dispatch[]> {
    let cancelledIds: Set<string>;
    try {
      cancelledIds = await this.deps.store.cancelledAmong(batch.map(({ pending }) => pending.position));
    } catch (error) {
      await this.persist(() => this.deps.store.putDeliveries(batch.map((dispatch) => this.undoSending(dispatch))));
      this.giveBack(batch);
      throw error;
    }
    if (cancelledIds.size === 0) return batch;
    const cancelled = batch.filter(({ pending }) => cancelledIds.has(pending.message.id));
    const settlement = cancelledSettlement(cancelled, this.connector, this.deps.workerId, Date.now());
    await this.persist(() => this.writeSettlement(settlement, []));
    this.applySettlement(settlement);
    return batch.filter(({ pending }) => !cancelledIds.has(pending.message.id));
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
    const eventsTopic = this.common['delivery.events.topic'];
    if (settlement && eventsTopic && settlement.rows.length > 0) writes.push(this.deliveryEvents.publish(eventsTopic, deliveryChanges(settlement)));
    await Promise.all(writes);
    // A message that failed for good releases its fallback (if it has one) at once.
    const failed = rows.filter((d) => PERMANENT_FAILURES.has(d.state)).map((d) => d.messageId);
    if (failed.length > 0) await expediteFallbacks(store, failed, this.deps.signals);
  }

  /** Outcomes are stored: finish the records (the watermark may pass them now) and schedule retries. */
  private applySettlement(settlement: Settlement): void {
    // A record whose shard was taken again since is the new consumer's: it reads its state from the store.
    for (const dispatch of settlement.finished) if (!isStale(dispatch)) dispatch.shard.finish(dispatch.pending);
    for (const dispatch of settlement.toRetry) if (!isStale(dispatch)) dispatch.shard.retry(dispatch.pending);
    if (settlement.sent > 0) this.counters.sent.inc(settlement.sent);
    if (settlement.toRetry.length > 0) this.counters.retried.inc(settlement.toRetry.length);
    if (settlement.failed > 0) this.counters.failed.inc(settlement.failed);
    for (const { channel, category, reason } of settlement.suppressed) this.deps.metrics.messagesSuppressed.inc({ connector: this.connector, channel, scope: category, reason });
  }

  /** Writes the outcomes left for the next batch, now (no batch follows, or the runner pauses or stops). */
  private async writeDeferred(): Promise<void> {
    const deferred = this.deferred;
    if (!deferred) return;
    this.deferred = undefined;
    await this.persist(() => this.writeSettlement(deferred, []));
    this.applySettlement(deferred);
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
      next = Math.min(next, owned.consumer!.nextReadAt((lane) => share - owned.queuedAhead(lane)));
      if (owned.retrying.size > 0) next = Math.min(next, owned.nextRetryAt(now));
      if (owned.queue.length > 0 && owned.lease.safe(now)) next = Math.min(next, now + this.bucket.waitMs(now));
    }
    return Math.max(0, next - now);
  }

  protected async releaseAll(): Promise<void> {
    this.unwatchBacklog?.();
    this.unwatchBacklog = undefined;
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
    this.deps.metrics.forgetProviders(this.connector, this.spec.taskId);
  }
}

