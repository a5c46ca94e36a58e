/**
 * Prometheus metrics (prom-client), one registry per worker so that tests running several
 * workers in one process do not mix their figures. Names follow Kafka Connect's metric groups
 * where one exists (connector/task status, sink-record-*), in Prometheus style.
 */
import type { ProviderStatus } from '@omnibus/sdk';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

const BREAKER_STATE_VALUES = { closed: 0, 'half-open': 1, open: 2 } as const;

/**
 * What lmdb-js counts about this process's write transactions (its `trackMetrics`), all
 * cumulative since the store was opened but `usedBytes`. Pages written per transaction and
 * seconds in transactions per put show an operator the write amplification of small commits.
 */
export interface LmdbWriteStats {
  transactions: number;
  puts: number;
  deletes: number;
  pagesWritten: number;
  /** Time the write thread spent inside write transactions. */
  transactionSeconds: number;
  /** Time spent flushing commits to disk (after they are visible: see overlappingSync). */
  syncSeconds: number;
  /** The environment's used size: its last page number times the page size. */
  usedBytes: number;
}

/** What one shard of a sink task has waiting, as its consumer knows it (bus/shard-backlog.ts). */
export interface ShardBacklogReport {
  connector: string;
  task: number;
  topic: string;
  shard: number;
  /** Messages not finished: read and waiting, or not read yet. */
  waiting: number;
  /** Time (ms since the epoch) of the oldest of them; undefined when none waits. */
  oldestTs: number | undefined;
}

/** The seconds since `ts`, 0 when nothing waits. */
const ageSeconds = (ts: number | undefined, now: number) => (ts === undefined ? 0 : Math.max(0, now - ts) / 1000);

export class Metrics {
  readonly registry = new Registry();

  /** 1 for the connector's current state, 0 for the others. */
  readonly connectorState = new Gauge({
    name: 'omnibus_connector_status',
    help: 'Connector state (1 = current state)',
    labelNames: ['connector', 'state'] as const,
    registers: [this.registry],
  });
  readonly taskState = new Gauge({
    name: 'omnibus_task_status',
    help: 'Task state (1 = current state)',
    labelNames: ['connector', 'task', 'state'] as const,
    registers: [this.registry],
  });
  readonly recordsRead = new Counter({
    name: 'omnibus_sink_records_read_total',
    help: 'Records fetched from the bus and handed to a sink task',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly recordsSent = new Counter({
    name: 'omnibus_sink_records_sent_total',
    help: 'Records a sink task reported sent',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly recordsFailed = new Counter({
    name: 'omnibus_sink_records_failed_total',
    help: 'Records that failed permanently or exhausted their retries',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly recordsRetried = new Counter({
    name: 'omnibus_sink_records_retried_total',
    help: 'Retriable failures scheduled for another attempt',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly sourceRecordsPolled = new Counter({
    name: 'omnibus_source_records_polled_total',
    help: 'Records polled from a source task and published to the bus',
    labelNames: ['connector'] as const,
    registers: [this.registry],
  });
  readonly lateEntries = new Counter({
    name: 'omnibus_bus_late_entries_total',
    help: 'Messages a consumer found only by re-reading, after its first read had passed their time: by the first re-read (recheck, within moments: produces landing out of order) or only by the last one (sweep, at the overlap: writes as late as the overlap allows for)',
    labelNames: ['connector', 'by'] as const,
    registers: [this.registry],
  });
  readonly messagesProduced = new Counter({
    name: 'omnibus_bus_messages_produced_total',
    help: 'Messages accepted into the bus',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  /** Age of the oldest unhandled entry behind a consumer's watermark, per owned shard. */
  readonly busLag = new Gauge({
    name: 'omnibus_bus_lag_ms',
    help: 'How far a consumer watermark is behind now, per topic and shard (ms)',
    labelNames: ['consumer', 'topic', 'shard'] as const,
    registers: [this.registry],
  });
  readonly storeLatency = new Histogram({
    name: 'omnibus_store_operation_seconds',
    help: 'Store operation latency',
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly wakeHints = new Counter({
    name: 'omnibus_wake_hints_total',
    help: 'Wake hints sent to other workers, by outcome (sent, failed: their consumers fall back to polling)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
    name: 'omnibus_store_errors_total',
    help: 'Store operations that threw',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  // Delivery policies: suppression and channel fallback. Labels name connectors, channels,
  // scopes and reasons, never an address: who is suppressed stays in the store.
  readonly messagesSuppressed = new Counter({
    name: 'omnibus_messages_suppressed_total',
    help: 'Messages that ended suppressed (kept back by the suppression list: no provider called), by the scope (all or a category) and reason of the entry that held them',
    labelNames: ['connector', 'channel', 'scope', 'reason'] as const,
    registers: [this.registry],
  });
  readonly fallbacks = new Counter({
    name: 'omnibus_fallbacks_total',
    help: "Channel fallbacks decided by this worker's scheduler, by the fallback's topic: produced (the original was not delivered in time, or failed), cancelled (it was), dropped (its original was never stored)",
    labelNames: ['topic', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly providerBreakerState = new Gauge({
    name: 'omnibus_provider_breaker_state',
    help: "A sink task's circuit breaker per provider: 0 closed, 1 half-open (probing), 2 open",
    labelNames: ['connector', 'task', 'provider'] as const,
    registers: [this.registry],
  });
  readonly providerRecords = new Counter({
    name: 'omnibus_provider_records_total',
    help: 'Records a provider took (sent, or refused for good: failed) or failed to take (failover, in doubt), by provider',
    labelNames: ['connector', 'provider', 'outcome'] as const,
    registers: [this.registry],
  });
  /** Time from a message's produce to its first hand-off to a sink task (Kafka's end-to-end latency), observed per message. */
  readonly handoffLatency = new HotHistogram(
    'omnibus_sink_handoff_seconds',
    'Time from a message being accepted into the bus to its first hand-off to a sink task (produce → put), by connector',
    'connector',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    this.registry,
  );
  /** The running sink tasks' shards, each giving its backlog on demand (at scrape, or for the REST view). */
  private readonly backlogSources = new Set<() => Iterable<ShardBacklogReport>>();
  /** What each running sink task last reported about its providers: connector → task → statuses. */
  private readonly providers = new Map<string, Map<number, ProviderStatus[]>>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'omnibus_process_' });
    this.registerBacklogGauges();
  }

  /** Adds a task's shards to the backlog figures; the returned function removes them (the task stopped). */
  watchBacklog(source: () => Iterable<ShardBacklogReport>): () => void {
    this.backlogSources.add(source);
    return () => void this.backlogSources.delete(source);
  }

  /** The backlog of every shard held by a sink task of this worker, as its consumer knows it now. */
  backlog(): ShardBacklogReport[] {
    return [...this.backlogSources].flatMap((source) => [...source()]);
  }

  /**
   * The lag an autoscaler scales on, per (connector, topic, shard) and per connector, from the
   * consumers' own knowledge at each scrape (no store request): messages waiting and the age of
   * the oldest. Per worker: a connector's total over the cluster is the sum of its workers'.
   */
  private registerBacklogGauges(): void {
    const backlog = () => this.backlog();
    /** A gauge whose samples are computed at each scrape; each asks the consumers itself (a walk over what they hold in memory). */
    const computed = <L extends string>(name: string, help: string, labelNames: readonly L[], samples: (reports: ShardBacklogReport[], now: number) => Array<[Record<L, string>, number]>) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect(this: Gauge<L>) {
          this.reset();
          for (const [labels, value] of samples(backlog(), Date.now())) this.set(labels as Partial<Record<L, string | number>>, value);
        },
      });
    const shardLabels = (r: ShardBacklogReport) => ({ connector: r.connector, topic: r.topic, shard: String(r.shard) });
    const shardNames = ['connector', 'topic', 'shard'] as const;
    computed('omnibus_sink_shard_waiting_messages', 'Messages a sink connector has not finished on a shard it holds here: read and waiting, or not read yet', shardNames, (reports) =>
      reports.map((r) => [shardLabels(r), r.waiting]),
    );
    computed('omnibus_sink_shard_oldest_waiting_seconds', 'Age of the oldest message a sink connector has not finished on a shard it holds here (0 when none waits)', shardNames, (reports, now) =>
      reports.map((r) => [shardLabels(r), ageSeconds(r.oldestTs, now)]),
    );
    computed('omnibus_sink_waiting_messages', 'Messages a sink connector has not finished, over the shards its tasks hold on this worker', ['connector'], (reports) =>
      [...totalsByConnector(reports)].map(([connector, { waiting }]) => [{ connector }, waiting]),
    );
    computed(
      'omnibus_sink_oldest_waiting_seconds',
      'Age of the oldest message a sink connector has not finished, over the shards its tasks hold on this worker (0 when none waits)',
      ['connector'],
      (reports, now) => [...totalsByConnector(reports)].map(([connector, { oldestTs }]) => [{ connector }, ageSeconds(oldestTs, now)]),
    );
  }

  /** Keeps a task's provider statuses and exports them (breaker state, records by provider). */
  reportProviders(connector: string, task: number, statuses: ProviderStatus[]): void {
    const tasks = this.providers.get(connector) ?? new Map<number, ProviderStatus[]>();
    this.providers.set(connector, tasks);
    const before = new Map((tasks.get(task) ?? []).map((s) => [s.alias, s]));
    tasks.set(task, statuses);
    for (const status of statuses) {
      this.providerBreakerState.set({ connector, task: String(task), provider: status.alias }, BREAKER_STATE_VALUES[status.state]);
      const previous = before.get(status.alias);
      const sent = status.sent - (previous?.sent ?? 0);
      const failed = status.failed - (previous?.failed ?? 0);
      if (sent > 0) this.providerRecords.inc({ connector, provider: status.alias, outcome: 'sent' }, sent);
      if (failed > 0) this.providerRecords.inc({ connector, provider: status.alias, outcome: 'failed' }, failed);
    }
  }

  /** Forgets a stopped task's providers (its breakers went with it). */
  forgetProviders(connector: string, task: number): void {
    const tasks = this.providers.get(connector);
    for (const status of tasks?.get(task) ?? []) this.providerBreakerState.remove({ connector, task: String(task), provider: status.alias });
    tasks?.delete(task);
    if (tasks?.size === 0) this.providers.delete(connector);
  }

  /** The provider statuses of a connector's tasks running on this worker, by task. */
  providersOf(connector: string): Array<{ task: number; providers: ProviderStatus[] }> {
    return [...(this.providers.get(connector) ?? [])].sort(([a], [b]) => a - b).map(([task, providers]) => ({ task, providers }));
  }

  /**
   * Exports the embedded store's write figures, read from `stats` at each scrape: how many
   * transactions, puts and written pages the worker's traffic costs LMDB, and how long its
   * write thread and disk flushes took.
   */
  observeLmdb(stats: () => LmdbWriteStats | undefined): void {
    const counters: Array<[name: string, help: string, figure: keyof LmdbWriteStats]> = [
      ['omnibus_lmdb_write_transactions_total', 'LMDB write transactions committed by this worker', 'transactions'],
      ['omnibus_lmdb_puts_total', 'Records written to LMDB by this worker', 'puts'],
      ['omnibus_lmdb_deletes_total', 'Records removed from LMDB by this worker', 'deletes'],
      ['omnibus_lmdb_pages_written_total', 'Pages this worker\'s write transactions wrote (a whole page per change: the write amplification of small commits)', 'pagesWritten'],
      ['omnibus_lmdb_write_seconds_total', 'Time the LMDB write thread spent inside write transactions', 'transactionSeconds'],
      ['omnibus_lmdb_sync_seconds_total', 'Time spent flushing committed LMDB transactions to disk', 'syncSeconds'],
    ];
    for (const [name, help, figure] of counters) {
      new Counter({
        name,
        help,
        registers: [this.registry],
        // The figures are kept by lmdb-js, cumulative: each scrape copies the current one.
        collect() {
          const value = stats()?.[figure];
          if (value === undefined) return;
          this.reset();
          this.inc(value);
        },
      });
    }
    new Gauge({
      name: 'omnibus_lmdb_used_bytes',
      help: 'Used size of the LMDB environment (last page number × page size)',
      registers: [this.registry],
      collect() {
        const value = stats()?.usedBytes;
        if (value !== undefined) this.set(value);
      },
    });
  }

  setState(gauge: 'connector', labels: { connector: string }, state: string): void;
  setState(gauge: 'task', labels: { connector: string; task: string }, state: string): void;
  setState(gauge: 'connector' | 'task', labels: Record<string, string>, state: string): void {
    const metric = gauge === 'connector' ? this.connectorState : this.taskState;
    for (const s of ['UNASSIGNED', 'RUNNING', 'PAUSED', 'STOPPED', 'FAILED', 'RESTARTING']) {
      metric.set({ ...labels, state: s }, s === state ? 1 : 0);
    }
  }
}

/** Waiting messages and the oldest of them, per connector, over its shards. */
export function totalsByConnector(reports: readonly ShardBacklogReport[]): Map<string, { waiting: number; oldestTs: number | undefined }> {
  const totals = new Map<string, { waiting: number; oldestTs: number | undefined }>();
  for (const r of reports) {
    const total = totals.get(r.connector) ?? { waiting: 0, oldestTs: undefined };
    total.waiting += r.waiting;
    if (r.oldestTs !== undefined && (total.oldestTs === undefined || r.oldestTs < total.oldestTs)) total.oldestTs = r.oldestTs;
    totals.set(r.connector, total);
  }
  return totals;
}

/** One label value's series of a HotHistogram: bucket counts (not cumulative; the last is +Inf's own), sum and count. */
export class HistogramSeries {
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative count of observations up to each bound. */
  cumulative(): number[] {
    let total = 0;
    return this.bounds.map((_, i) => (total += this.counts[i]!));
  }
}

/**
 * A histogram with one label, observed on a hot path (once per message handed to a sink). An
 * observation is a few comparisons and additions on the series the caller holds: prom-client's
 * `observe` hashes and validates the labels on each call, which cost about half a microsecond per
 * message. It is exposed in prom-client's histogram format through the registry's metric contract.
 */
export class HotHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: L,
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label value, to observe on. */
  labels(labels: Record<L, string>): HistogramSeries {
    const value = labels[this.labelName];
    let series = this.series.get(value);
    if (!series) this.series.set(value, (series = new HistogramSeries(this.bounds)));
    return series;
  }

  reset(): void {
    this.series.clear();
  }

  /** The registry's metric contract: what prom-client's own histogram gives (cumulative buckets, +Inf, sum, count). */
  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: ExportedSample[] }> {
    const values: ExportedSample[] = [];
    for (const [labelValue, series] of this.series) {
      const labels = { [this.labelName]: labelValue };
      const cumulative = series.cumulative();
      this.bounds.forEach((le, i) => values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative[i]! }));
      values.push(
        { metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: series.count },
        { metricName: `${this.name}_sum`, labels, value: series.sum },
        { metricName: `${this.name}_count`, labels, value: series.count },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

interface ExportedSample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}
