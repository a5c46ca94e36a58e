/**
 * Runs one source task: poll → publish to the bus → commit offsets → `task.commit()`, as
 * Kafka Connect's WorkerSourceTask. Offsets are committed only after the records they cover
 * are accepted by the store, so a crash re-polls (at-least-once); records with deterministic
 * ids make that re-publish idempotent.
 *
 * The task runs only while this runner holds the lease `source:<connector>/<task>`, so that a
 * rebalance never runs one source task on two workers at once.
 */
import { randomBytes } from 'node:crypto';
import type { Logger, SourceRecord, SourceTask } from '@omnibus/sdk';
import { CoreError, coreError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { canonicalJson } from '../store/canonical-json.ts';
import { fullSpec } from './connector-config.ts';
import type { SourceTaskSpec, TaskRunner } from './task-runner.ts';
import type { SourceOffset, Store } from '../store/port.ts';
import { HeldLease } from './lease.ts';
import { RunnerLifecycle } from './runner-lifecycle.ts';
import type { Producer } from './producer.ts';
import { ensureTopic } from './topics.ts';
import { ActiveTopicsRecorder } from './active-topics.ts';
import { sourceRecordsThrough } from '../transforms/bus-records.ts';
import { BUILTIN_CATALOG } from '../transforms/catalog.ts';
import { buildChain, type TransformChain } from '../transforms/chain.ts';
import type { ChainServices } from '../transforms/services.ts';
import { TemplateEngine } from '../transforms/templates/engine.ts';

export interface SourceRunnerDeps {
  store: Store;
  producer: Producer;
  metrics: Metrics;
  logger: Logger;
  workerId: string;
  leaseTtlMs: number;
  heartbeatMs: number;
  /** Kafka's topic.tracking.enable: record the topics each connector uses (default true). */
  trackActiveTopics?: boolean;
  /** Renders for the chain's RenderTemplate stages (one per worker keeps one parse cache); a new one when absent. */
  templateEngine?: TemplateEngine;
}

/** The worker's parts a chain's built-in stages read (templates, from the store). */
export function chainServicesOf(deps: Pick<SourceRunnerDeps, 'store' | 'templateEngine'>): ChainServices {
  return { templates: { store: deps.store, engine: deps.templateEngine ?? new TemplateEngine() } };
}

/** Shards of a topic a source creates on first publish, unless `topic.creation.default.partitions` says otherwise. */
export const DEFAULT_SOURCE_TOPIC_SHARDS = 16;

export class SourceRunner extends RunnerLifecycle implements TaskRunner {
  protected readonly logger: Logger;
  private readonly lease: HeldLease;
  private task!: SourceTask;
  private chain!: TransformChain;
  private taskConfig!: unknown;
  private taskStarted = false;
  private startedEpoch = 0;
  private topicShards = DEFAULT_SOURCE_TOPIC_SHARDS;
  private readonly knownTopics = new Set<string>();
  private readonly activeTopics: ActiveTopicsRecorder;

  private pollAbort: AbortController | undefined;

  constructor(
    private readonly spec: SourceTaskSpec,
    private readonly deps: SourceRunnerDeps,
  ) {
    super('source task');
    this.logger = deps.logger.child({ connector: spec.connectorName, task: spec.taskId });
    const owner = `${deps.workerId}#${randomBytes(4).toString('hex')}`;
    this.activeTopics = new ActiveTopicsRecorder(deps.store, spec.connectorName, spec.taskId, this.logger, deps.trackActiveTopics ?? true);
    this.lease = new HeldLease(deps.store, `source:${spec.connectorName}/${spec.taskId}`, owner, deps.leaseTtlMs, Math.ceil(deps.leaseTtlMs / 3));
  }

  async start(): Promise<void> {
    fullSpec(this.spec.connector.config).parse(this.spec.config);
    this.taskConfig = this.spec.connector.config.parse(this.spec.config);
    const shards = this.spec.config['topic.creation.default.partitions'];
    if (shards !== undefined) {
      const n = Number(shards);
      if (!Number.isInteger(n) || n < 1 || n > 4096) {
        throw coreError('OMNI_ERR_CONFIG_INVALID', { key: 'topic.creation.default.partitions', rule: 'an integer from 1 to 4096', value: shards });
      }
      this.topicShards = n;
    }
    this.chain = buildChain(this.spec.config, this.spec.transforms ?? BUILTIN_CATALOG, chainServicesOf(this.deps));
    this.task = this.spec.connector.createTask();
    this.scheduleLeases();
    this.loop = this.run();
  }

  protected override interrupt(): void {
    this.pollAbort?.abort();
  }

  private scheduleLeases(): void {
    if (this.stopping) return;
    this.leaseTimer = setTimeout(() => {
      const work = this.lease.held ? this.lease.renew() : Promise.resolve('error' as const);
      void work
        .then((result) => {
          if (result === 'lost') this.logger.warn({ lease: this.lease.name }, 'source task lease lost; polling stops');
        })
        .finally(() => this.scheduleLeases());
    }, this.deps.heartbeatMs);
    this.leaseTimer.unref?.();
  }

  private async run(): Promise<void> {
    let emptyPolls = 0;
    let storeBackoff = 0;
    while (!this.stopping) {
      if (this.paused) {
        await this.sleeper.sleep(1000);
        continue;
      }
      if (!this.lease.safe()) {
        try {
          if (!(await this.lease.acquire())) {
            await this.sleeper.sleep(this.deps.heartbeatMs);
            continue;
          }
        } catch (error) {
          this.logger.warn({ err: error }, 'could not take the source task lease');
          await this.sleeper.sleep(this.deps.heartbeatMs);
          continue;
        }
      }
      const step = this.step();
      this.stepDone = step.then(
        () => undefined,
        () => undefined,
      );
      try {
        const published = await step;
        storeBackoff = 0;
        // A poll that returns nothing at once must not spin the loop.
        emptyPolls = published > 0 ? 0 : emptyPolls + 1;
        if (emptyPolls > 0) await this.sleeper.sleep(Math.min(1000, 10 * 2 ** Math.min(emptyPolls, 7)));
      } catch (error) {
        if (error instanceof SourceTaskFailed) {
          await this.fail(error.reason);
          return;
        }
        storeBackoff = Math.min(5000, storeBackoff ? storeBackoff * 2 : 100);
        this.logger.warn({ err: error, retryInMs: storeBackoff }, 'publishing source records failed; retrying');
        await this.sleeper.sleep(storeBackoff);
      }
    }
  }

  private pendingRecords: SourceRecord[] = [];

  /** One poll and its publication; returns how many records were published. */
  private async step(): Promise<number> {
    if (this.taskStarted && this.startedEpoch !== this.lease.epoch) {
      // The lease went to another owner and came back: it may have moved the offsets, so start afresh.
      this.pendingRecords = [];
      this.taskStarted = false;
      try {
        await this.task.stop();
      } catch (error) {
        this.logger.warn({ err: error }, 'task stop failed');
      }
      this.task = this.spec.connector.createTask();
    }
    if (!this.taskStarted) {
      try {
        await this.task.start(this.taskConfig as Record<string, unknown>, {
          connectorName: this.spec.connectorName,
          taskId: this.spec.taskId,
          logger: this.logger,
          offsets: (partitions) => this.offsets(partitions),
        });
      } catch (error) {
        throw new SourceTaskFailed(asError(error));
      }
      this.taskStarted = true;
      this.startedEpoch = this.lease.epoch;
    }
    // Records of a publish that failed on the store are published again before polling more.
    if (this.pendingRecords.length === 0) {
      this.pollAbort = new AbortController();
      try {
        this.pendingRecords = await this.task.poll(this.pollAbort.signal);
      } catch (error) {
        if (this.pollAbort.signal.aborted) return 0;
        throw new SourceTaskFailed(asError(error));
      }
    }
    const records = this.pendingRecords;
    if (!Array.isArray(records) || records.length === 0) {
      this.pendingRecords = [];
      return 0;
    }
    // Kafka's transforms/predicates run before publishing; a dropped record's offset is still committed.
    let publishable = records;
    if (!this.chain.empty) {
      await this.chain.prepare();
      try {
        publishable = sourceRecordsThrough(this.chain, records);
      } catch (error) {
        throw new SourceTaskFailed(asError(error));
      }
    }
    await this.publish(publishable);
    this.pendingRecords = [];
    await this.deps.store.putSourceOffsets(this.spec.connectorName, latestOffsets(records));
    this.deps.metrics.sourceRecordsPolled.inc({ connector: this.spec.connectorName }, records.length);
    try {
      await this.task.commit?.();
    } catch (error) {
      this.logger.warn({ err: error }, 'source task commit failed');
    }
    return records.length;
  }

  private async publish(records: SourceRecord[]): Promise<void> {
    const byTopic = new Map<string, SourceRecord[]>();
    for (const record of records) {
      const list = byTopic.get(record.topic) ?? [];
      list.push(record);
      byTopic.set(record.topic, list);
    }
    const producer = this.deps.producer;
    for (const [topic, list] of byTopic) {
      if (!this.knownTopics.has(topic)) {
        try {
          await ensureTopic(this.deps.store, { name: topic, shards: this.topicShards });
        } catch (error) {
          // A topic the bus refuses (its name) will be refused again; a store failure is retried.
          if (error instanceof CoreError && error.status < 500) throw new SourceTaskFailed(error);
          throw error;
        }
        this.knownTopics.add(topic);
      }
      for (let i = 0; i < list.length; i += producer.limits.maxMessages) {
        const items = list.slice(i, i + producer.limits.maxMessages).map((r) => ({
          key: r.key,
          value: r.value,
          ...(r.headers ? { headers: r.headers } : {}),
          ...(r.id !== undefined ? { id: r.id } : {}),
        }));
        try {
          await producer.produce(topic, items);
        } catch (error) {
          // A record the bus rejects (schema, key) will be rejected again: the task fails, as
          // Kafka Connect fails a task on a conversion error.
          if (error instanceof CoreError && error.status < 500) {
            const detail = error.details ? `: ${JSON.stringify(error.details)}` : '';
            throw new SourceTaskFailed(new Error(`records polled for topic ${topic} were rejected: ${error.message}${detail}`, { cause: error }));
          }
          throw error;
        }
      }
    }
    await this.activeTopics.used(byTopic.keys());
  }

  private async offsets(partitions: Array<Record<string, unknown>>): Promise<Array<Record<string, unknown> | null>> {
    const stored = await this.deps.store.getSourceOffsets(this.spec.connectorName);
    const byPartition = new Map(stored.map((o) => [canonicalJson(o.partition), o.offset]));
    return partitions.map((p) => byPartition.get(canonicalJson(p)) ?? null);
  }

  protected async releaseAll(): Promise<void> {
    if (this.taskStarted) {
      try {
        await this.task.stop();
      } catch (error) {
        this.logger.warn({ err: error }, 'task stop failed');
      }
    }
    try {
      await this.lease.release();
    } catch (error) {
      this.logger.warn({ err: error }, 'could not release the source task lease; it will expire');
    }
  }
}

class SourceTaskFailed extends Error {
  constructor(readonly reason: Error) {
    super(reason.message);
  }
}

/** The last offset of each source partition, in the order partitions first appeared. */
function latestOffsets(records: SourceRecord[]): SourceOffset[] {
  const latest = new Map<string, SourceOffset>();
  for (const record of records) latest.set(canonicalJson(record.sourcePartition), { partition: record.sourcePartition, offset: record.sourceOffset });
  return [...latest.values()];
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
