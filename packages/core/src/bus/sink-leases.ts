/**
 * A sink task's shards and their leases: which shards of its topics the task owns
 * (s % taskCount === taskId), a lease taken only while a shard has work and given back after
 * `releaseIdleAfterMs` without, renewed every heartbeat, and the shard's read state dropped
 * when its lease is lost. Extended by the reads (sink-reads.ts) and the runner (sink-runner.ts).
 */
import { randomBytes } from 'node:crypto';
import type { DeliveryUpdate, Logger } from '@omnibus/sdk';
import type { CommonConnectorConfig } from './connector-config.ts';
import type { SinkTaskSpec } from './task-runner.ts';
import type { Topic } from '../store/port.ts';
import { DEFAULT_CONSUMER_OPTIONS, PollBudget, type ConsumerOptions } from './consumer.ts';
import { LanedConsumer } from './priority-lanes.ts';
import type { NeverHandedOff } from './sink-reads.ts';
import { DeliveryEventPublisher } from './delivery-events.ts';
import { HeldLease } from './lease.ts';
import { TokenBucket } from './pacing.ts';
import { TOPIC_REFRESH_MS } from './reshard.ts';
import { RunnerLifecycle } from './runner-lifecycle.ts';
import { OwnedShard } from './sink-shard.ts';
import type { ShardSignals } from './signals.ts';
import type { SourceRunnerDeps } from './source-runner.ts';

export interface SinkRunnerDeps extends SourceRunnerDeps {
  signals?: ShardSignals;
  consumer?: Partial<ConsumerOptions>;
  /** Shared by the runners of one worker, so that their idle polls share one budget. */
  pollBudget?: PollBudget;
  /** Shared by the runners of one worker: the `sending` rows they wrote and never handed off (sink-reads.ts). */
  neverHandedOff?: NeverHandedOff;
  /**
   * Applies receipts a task reports on its own connection; defaults to the bus's state machine.
   * `topics` are the connector's: where its messages are.
   */
  reportDeliveries?: (connector: string, updates: DeliveryUpdate[], topics: readonly string[], eventsTopic?: string) => Promise<void>;
}

export abstract class SinkShardLeases extends RunnerLifecycle {
  protected readonly logger: Logger;
  protected readonly options: ConsumerOptions;
  protected readonly owner: string;
  protected common!: CommonConnectorConfig;
  protected readonly topics = new Map<string, Topic>();
  /** When each topic was last read (taken before the read): a read vouches for the layout of messages up to RESHARD_NOTICE_MS later. */
  protected readonly topicsReadAt = new Map<string, number>();
  /** The topics are read again at the next resolve (a shard count may have been raised). */
  protected topicsStale = false;
  protected readonly shards = new Map<string, OwnedShard>();
  protected bucket = new TokenBucket(0);
  protected readonly pollBudget: PollBudget;
  protected budgeted = 0;
  protected leaseWork: Promise<void> = Promise.resolve();
  protected missingTopicsLogged = new Set<string>();
  /** Publishes this connector's state changes when `delivery.events.topic` is set. */
  protected readonly deliveryEvents: DeliveryEventPublisher;

  constructor(
    protected readonly spec: SinkTaskSpec,
    protected readonly deps: SinkRunnerDeps,
  ) {
    super('sink task');
    this.logger = deps.logger.child({ connector: spec.connectorName, task: spec.taskId });
    this.options = { ...DEFAULT_CONSUMER_OPTIONS, ...deps.consumer };
    // Unique per runner: two runners of one task in one process must not share a lease.
    this.owner = `${deps.workerId}#${randomBytes(4).toString('hex')}`;
    this.pollBudget = deps.pollBudget ?? new PollBudget();
    this.deliveryEvents = new DeliveryEventPublisher(deps.store, deps.producer);
    this.options.releaseIdleAfterMs = Math.max(
      this.options.releaseIdleAfterMs,
      this.options.overlapMs + this.options.sweepIntervalMs + this.options.confidenceMs,
    );
  }

  protected get connector(): string {
    return this.spec.connectorName;
  }

  protected scheduleLeases(): void {
    if (this.stopping) return;
    this.leaseTimer = setTimeout(() => {
      this.leaseWork = this.renewLeases()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'lease maintenance failed'))
        .finally(() => this.scheduleLeases());
    }, this.deps.heartbeatMs);
    this.leaseTimer.unref?.();
  }

  /** Renews the leases of busy shards; a lease lost to another owner drops the shard's state. */
  protected async renewLeases(): Promise<void> {
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

  /** A topic may have changed: read them again at the next resolve. */
  topicsChanged(): void {
    this.topicsStale = true;
    this.sleeper.wake();
  }

  protected async resolveTopics(): Promise<void> {
    let added = 0;
    const reread = this.topicsStale;
    this.topicsStale = false;
    for (const name of this.common.topics) {
      const readAt = Date.now();
      // A busy topic is read again well within the resharding notice, so that its records never wait for a read.
      const due = readAt - (this.topicsReadAt.get(name) ?? 0) >= TOPIC_REFRESH_MS && this.hasActiveShard(name);
      if (this.topics.has(name) && !reread && !due) continue;
      let topic: Topic | undefined;
      try {
        topic = await this.deps.store.getTopic(name);
      } catch (error) {
        this.topicsStale ||= reread;
        throw error;
      }
      if (!topic) {
        if (!this.missingTopicsLogged.has(name)) {
          this.missingTopicsLogged.add(name);
          this.logger.warn({ topic: name }, 'topic does not exist (yet); the task will consume it once it is created');
        }
        continue;
      }
      this.topics.set(name, topic);
      this.topicsReadAt.set(name, readAt);
      // Shards added by a raised shard count are owned like the others.
      for (let shard = 0; shard < topic.shards; shard++) {
        if (shard % this.spec.taskCount !== this.spec.taskId) continue;
        const leaseName = `sink:${this.connector}/${topic.name}/${shard}`;
        if (this.shards.has(leaseName)) continue;
        const lease = new HeldLease(this.deps.store, leaseName, this.owner, this.deps.leaseTtlMs, Math.ceil(this.deps.leaseTtlMs / 3));
        const owned = new OwnedShard(topic, shard, lease);
        owned.unsubscribe = (this.deps.signals ?? this.deps.producer.signals)?.subscribe(topic.name, shard, (landedFrom, priorities) => {
          owned.consumer?.wake(landedFrom, priorities);
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

  private hasActiveShard(topic: string): boolean {
    for (const owned of this.shards.values()) if (owned.active && owned.topic.name === topic) return true;
    return false;
  }

  /** A consumer (one per priority lane: priority-lanes.ts) positioned at the stored watermarks. */
  protected async newConsumer(owned: OwnedShard, freshAfter: number): Promise<LanedConsumer> {
    const consumer = new LanedConsumer(this.deps.store, this.connector, owned.topic, owned.shard, this.options, this.logger, this.pollBudget);
    await consumer.open(freshAfter);
    return consumer;
  }

  /** Takes the lease of a shard that has work; false while another owner holds it. */
  protected async activate(owned: OwnedShard, now: number): Promise<boolean> {
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
      // A produce that landed behind the old read position (a slow write, announced while the
      // shard was watched without its lease) is owed a read from there by the new consumer too.
      const rewind = owned.consumer?.pendingRewind ?? Infinity;
      owned.clear();
      const freshAfter = owned.lease.epoch === 1 ? -Infinity : owned.lease.acquiredAt + this.options.overlapMs;
      owned.consumer = await this.newConsumer(owned, freshAfter);
      if (rewind < Infinity) owned.consumer.wake(rewind);
    }
    owned.validEpoch = owned.lease.epoch;
    owned.lastWorkAt = now;
    owned.consumer!.wakeNow();
    this.logger.debug({ topic: owned.topic.name, shard: owned.shard, epoch: owned.lease.epoch, continuous }, 'shard lease taken');
    return true;
  }

  /** Gives back the lease of a shard with nothing to do, after saving its watermark. */
  protected async release(owned: OwnedShard): Promise<void> {
    await owned.consumer?.flush(Date.now(), true);
    const epoch = owned.lease.epoch;
    owned.validEpoch = undefined;
    await owned.lease.release();
    owned.releasedEpoch = epoch;
    this.removeLag(owned);
  }

  /** The lease is gone: forget what was read under it (the next owner, maybe us, rebuilds it). */
  protected drop(owned: OwnedShard): void {
    owned.validEpoch = undefined;
    owned.releasedEpoch = undefined;
    owned.clear();
    this.removeLag(owned);
  }

  /**
   * The cluster-wide rate limit is split by shards: each task gets the share of the shards
   * assigned to it, whichever of them are busy at the moment.
   */
  protected setRateShare(): void {
    const total = [...this.topics.values()].reduce((sum, t) => sum + t.shards, 0);
    const limit = this.common['rate.limit.per.second'];
    this.bucket.setRate(limit > 0 && total > 0 ? (limit * this.shards.size) / total : 0);
  }

  protected removeLag(owned: OwnedShard): void {
    if (!owned.lag) return;
    owned.lag = undefined;
    this.deps.metrics.busLag.remove({ consumer: this.connector, topic: owned.topic.name, shard: String(owned.shard) });
  }
}
