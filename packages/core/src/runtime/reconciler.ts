/**
 * The worker's side of the herder: it makes the tasks running here match what the store says
 * should run here. It computes the rendezvous plan over the live members, and starts, stops,
 * pauses, resumes and restarts task runners accordingly, when something may have changed:
 * - at once after a config change made through this worker (the herder kicks it);
 * - at a heartbeat whose cluster view shows other members, or a new connectors version (a
 *   change made through any worker): only then does it re-read the connectors;
 * - every RESYNC_EVERY_BEATS heartbeats, re-reading the connectors and checking its task
 *   leases, in case a change went unannounced (a writer that died between its write and its
 *   bump of the version).
 * An idle worker thus costs its store nothing beyond its heartbeat and cluster read.
 *
 * A task runs only under its lease `task:<connector>/<task>`, a session lease (an LWT in the
 * store) that its owner keeps by staying a live member, with no renewal of its own: a new
 * owner waits until the old one released it or dropped out of the cluster, and a worker
 * whose heartbeats stop going through stops its tasks before its membership can expire, so
 * two workers never run the same task.
 */
import type { ConfigSpec, Connector } from '@omnibus/sdk';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.ts';
import type { ConnectorRecord, ConnectorState, Store } from '../store/port.ts';
import { assignTasks, connectorOwner, eligibleMembers, taskKey, type MemberGroups } from './assignment.ts';
import { Scrubber, type ConfigProviders } from './config-providers.ts';
import { fullSpec, isSecretKey } from './connector-config.ts';
import { memberKey, type Membership } from './membership.ts';
import type { PluginRegistry, TaskRunner, TaskRunnerFactory } from './types.ts';
import { BUILTIN_CATALOG } from '../transforms/catalog.ts';
import { chainSpec } from '../transforms/chain.ts';

export interface ReconcilerOptions {
  store: Store;
  plugins: PluginRegistry;
  runners: TaskRunnerFactory;
  providers: ConfigProviders;
  membership: Membership;
  logger: Logger;
  metrics?: Metrics;
  /** How long a fresh task lease stands even if its owner is not seen as a member yet (the lease TTL). */
  leaseTtlMs: number;
  /** The heartbeat interval in effect. */
  intervalMs: number;
  /** Kept up to date with every read of the connectors. */
  catalog?: ConnectorCatalog;
}

/**
 * The connectors as the reconcile loop last read them, for the parts that need them without
 * a store query: ingest checks each message against the value schemas of the sinks that
 * consume its topic.
 */
export class ConnectorCatalog {
  private records: readonly ConnectorRecord[] = [];

  constructor(private readonly plugins: PluginRegistry) {}

  update(records: readonly ConnectorRecord[]): void {
    this.records = records;
  }

  /** Value schemas of the sinks that consume `topic` (whatever their state: a paused sink will read the message later). */
  sinkSchemas(topic: string): Array<{ connector: string; schema: Record<string, unknown> }> {
    const out: Array<{ connector: string; schema: Record<string, unknown> }> = [];
    for (const record of this.records) {
      const connector = this.plugins.find(record.config['connector.class'] ?? '');
      if (connector?.type !== 'sink' || !connector.valueSchema) continue;
      // A sink's schema is of the values its task takes: those its chain gives (a CDC event
      // unwrapped, a record rendered from a template), not those on the topic.
      if (String(record.config.transforms ?? '').trim() !== '') continue;
      const topics = (record.config.topics ?? '').split(',').map((t) => t.trim());
      if (topics.includes(topic)) out.push({ connector: record.name, schema: connector.valueSchema });
    }
    return out;
  }
}

interface LocalTask {
  key: string;
  connector: string;
  task: number;
  leaseName: string;
  epoch: number;
  /** The task config it runs with, as stored (placeholders unresolved). */
  rawConfig: Record<string, string>;
  taskCount: number;
  generation: number;
  runner: TaskRunner | undefined;
  /** The state this worker last reported. */
  state: ConnectorState;
  /** Set once this worker lets go of the task; late callbacks of its runner are ignored. */
  gone: boolean;
  /**
   * Takes the task's secrets and resolved values out of its errors before they become a trace
   * or a log line: connectors and their libraries quote what they were given.
   */
  scrubber?: Scrubber;
}

interface OwnedConnector {
  generation: number;
  targetState: string;
  state: ConnectorState;
  trace: string | undefined;
  /** Why its tasks could be placed on no worker, as last written to their statuses ('' when they could). */
  unplaced: string;
}

const TASK_LEASE_PREFIX = 'task:';
export const taskLeaseName = (connector: string, task: number): string => `${TASK_LEASE_PREFIX}${connector}/${task}`;

/** Heartbeats between two unprompted re-reads of the connectors and checks of the task leases. */
const RESYNC_EVERY_BEATS = 20;

export class Reconciler {
  private readonly store: Store;
  private readonly logger: Logger;
  private readonly tasks = new Map<string, LocalTask>();
  private readonly owned = new Map<string, OwnedConnector>();
  /** Generation and target state per connector as last applied. */
  private seen = new Map<string, { generation: number; targetState: string }>();
  /** Tasks planned here whose lease another worker still holds. */
  private waiting = new Set<string>();
  /** Task leases (name → epoch) still ours although their task stopped here: released at the next reconcile. */
  private readonly dropped = new Map<string, number>();
  private fingerprint = '';
  /** The connectors as last read, and the connectors version seen just before. */
  private connectors: ConnectorRecord[] | undefined;
  private listedVersion: string | undefined;
  /** When the connectors were last re-read and the task leases checked unprompted. */
  private resyncedAt = Date.now();
  private resyncDue = false;
  /** The members the last reconcile planned over. */
  private plannedMembers: string | undefined;
  /** The next reconcile re-reads the connectors. */
  private relist = true;
  /** Something went wrong (a failed reconcile, a lapse, a lost lease): the next heartbeat reconciles with a fresh read. */
  private unsettled = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;
  private readonly resyncMs: number;
  private readonly unsubscribe: Array<() => void> = [];
  private markReady!: () => void;
  /** Settles after the first complete reconcile (the worker reports healthy from then on). */
  readonly ready: Promise<void> = new Promise((resolve) => (this.markReady = resolve));

  constructor(private readonly options: ReconcilerOptions) {
    this.store = options.store;
    this.logger = options.logger.child({ component: 'reconciler' });
    this.resyncMs = RESYNC_EVERY_BEATS * options.intervalMs;
  }

  private get self(): string {
    return this.options.membership.id;
  }

  start(): void {
    const membership = this.options.membership;
    this.unsubscribe.push(
      membership.onBeat(() => this.afterBeat()),
      membership.onLapse(() => this.lapsed()),
    );
    this.kick();
  }

  /** Reconcile as soon as possible, with a fresh read of the connectors (after a write through this worker). */
  kick(): void {
    this.request(true);
  }

  private request(relist: boolean): void {
    if (this.stopped) return;
    this.relist ||= relist;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.schedule(0);
  }

  /** At every heartbeat: reconcile only if the cluster view says something may have changed. */
  private afterBeat(): void {
    const membership = this.options.membership;
    if (Date.now() - this.resyncedAt >= this.resyncMs) this.resyncDue = true;
    if (this.unsettled || this.resyncDue || membership.connectorsVersion !== this.listedVersion) this.request(true);
    else if (memberKey(membership.members) !== this.plannedMembers || this.waiting.size > 0 || this.dropped.size > 0) this.request(false);
  }

  /** No heartbeat went through in time: stop every task before the membership, and so the task leases, can expire. */
  private lapsed(): void {
    this.unsettled = true;
    this.fingerprint = '';
    if (this.tasks.size === 0) return;
    this.logger.error({ tasks: [...this.tasks.keys()] }, 'membership could not be renewed in time: every local task stopped before its lease can expire');
    for (const t of [...this.tasks.values()]) void this.letGo(t, { status: undefined, release: 'later' });
  }

  /** The tasks running on this worker, for tests and diagnostics. */
  localTasks(): Array<{ connector: string; task: number; state: ConnectorState }> {
    return [...this.tasks.values()].map((t) => ({ connector: t.connector, task: t.task, state: t.state }));
  }

  /** Stops every local task, writes them UNASSIGNED and releases their leases, so others take them at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const unsubscribe of this.unsubscribe) unsubscribe();
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await Promise.all([...this.tasks.values()].map((t) => this.letGo(t, { status: 'UNASSIGNED', release: 'now' })));
    this.logger.info('all local tasks stopped');
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.stopped || this.running) return;
    const ticking = this.tick();
    // What stop() waits for; the outcome is handled below.
    this.running = ticking.then(
      () => undefined,
      () => undefined,
    );
    try {
      if (await ticking) this.markReady();
    } catch (error) {
      this.fingerprint = '';
      this.unsettled = true;
      this.logger.warn({ err: error }, 'reconcile failed; retrying at the next beat');
    } finally {
      this.running = undefined;
      if (!this.stopped && this.rerun) {
        this.rerun = false;
        this.schedule(0);
      }
    }
  }

  /** One reconcile; false if it could not run, for want of a membership that holds. */
  private async tick(): Promise<boolean> {
    const membership = this.options.membership;
    if (!membership.holds) {
      // Nothing may start until a heartbeat goes through again; that heartbeat reconciles.
      this.unsettled = true;
      return false;
    }
    this.unsettled = false;
    const resync = this.resyncDue;
    if (resync) {
      this.resyncDue = false;
      this.resyncedAt = Date.now();
      this.relist = true;
    }
    if (this.relist || !this.connectors) {
      this.relist = false;
      // The version first: a change bumped after this read is seen at the next heartbeat.
      const version = membership.connectorsVersion;
      try {
        this.connectors = await this.store.listConnectors();
      } catch (error) {
        this.relist = true;
        throw error;
      }
      this.listedVersion = version;
      this.options.catalog?.update(this.connectors);
      // A topic's shard count raised through any worker bumps the version too: sink tasks read their topics again.
      for (const t of this.tasks.values()) t.runner?.topicsChanged?.();
    }
    if (this.dropped.size > 0) await this.releaseDropped();
    if (resync && this.tasks.size > 0) await this.checkLeases();
    const members = membership.memberIds;
    const groups = membership.memberGroups;
    const connectors = this.connectors;
    this.plannedMembers = memberKey(membership.members);
    const fingerprint = `${this.plannedMembers}|${connectors
      .map((c) => `${c.name}:${c.generation}:${c.targetState}`)
      .sort()
      .join(',')}`;
    if (fingerprint === this.fingerprint && this.waiting.size === 0) return true;
    this.fingerprint = fingerprint;
    await this.apply(members, groups, connectors);
    return true;
  }

  private async apply(members: string[], groups: MemberGroups, connectors: ConnectorRecord[]): Promise<void> {
    const byName = new Map(connectors.map((c) => [c.name, c]));
    const previous = this.seen;

    const active = connectors.filter((c) => c.targetState !== 'STOPPED' && c.taskConfigs.length > 0);
    const plan = assignTasks(
      active.map((c) => ({ name: c.name, tasks: c.taskConfigs.length, groups: workerGroupsOf(c) })),
      members,
      groups,
    );
    const mine = new Map((plan.get(this.self) ?? []).map((u) => [taskKey(u.connector, u.task), u]));

    // A new generation may carry restart requests: they are RESTARTING statuses.
    const restarting = new Map<string, Set<number | null>>();
    for (const c of connectors) {
      const before = previous.get(c.name);
      if (!before || before.generation === c.generation) continue;
      const involved = [...this.tasks.values()].some((t) => t.connector === c.name) || connectorOwner(c.name, members) === this.self;
      if (!involved) continue;
      const statuses = await this.store.listStatuses(c.name);
      restarting.set(c.name, new Set(statuses.filter((s) => s.state === 'RESTARTING').map((s) => s.task)));
    }

    // What no longer runs here: deleted, stopped, shrunk away, or planned elsewhere.
    await Promise.all(
      [...this.tasks.values()]
        .filter((t) => !mine.has(t.key) || !byName.has(t.connector))
        .map((t) => {
          const c = byName.get(t.connector);
          const reassigned = c !== undefined && c.targetState !== 'STOPPED' && t.task < c.taskConfigs.length;
          this.logger.info({ connector: t.connector, task: t.task, reason: reassigned ? 'reassigned' : 'removed' }, 'stopping task');
          return this.letGo(t, { status: reassigned ? 'UNASSIGNED' : undefined, release: 'now' });
        }),
    );

    // What runs here and stays: reconfigure, restart, pause or resume it.
    await Promise.all(
      [...mine.keys()]
        .map((key) => this.tasks.get(key))
        .filter((t): t is LocalTask => t !== undefined)
        .map(async (t) => {
          const c = byName.get(t.connector)!;
          const config = c.taskConfigs[t.task]!;
          const reconfigured = t.generation !== c.generation && (t.taskCount !== c.taskConfigs.length || !sameConfig(t.rawConfig, config));
          const restartAsked = restarting.get(c.name)?.has(t.task) ?? false;
          if (reconfigured || restartAsked) {
            this.logger.info({ connector: t.connector, task: t.task, reconfigured, restartAsked }, 'restarting task');
            await this.stopRunner(t);
            t.rawConfig = config;
            t.taskCount = c.taskConfigs.length;
            t.generation = c.generation;
            await this.startRunner(t, c);
          } else {
            t.generation = c.generation;
            await this.applyTargetState(t, c);
          }
        }),
    );

    // What is newly planned here: take its lease, then start it.
    const waiting = new Set<string>();
    await Promise.all(
      [...mine.entries()]
        .filter(([key]) => !this.tasks.has(key))
        .map(async ([key, unit]) => {
          const c = byName.get(unit.connector)!;
          const leaseName = taskLeaseName(unit.connector, unit.task);
          const lease = await this.store.acquireSessionLease(leaseName, this.self, members, this.options.leaseTtlMs);
          if (!lease || this.stopped || !this.options.membership.holds) {
            // Taken just as the membership lapsed, or as the worker stops: given back at once.
            if (lease) this.dropped.set(leaseName, lease.epoch);
            waiting.add(key);
            return;
          }
          const t: LocalTask = {
            key,
            connector: unit.connector,
            task: unit.task,
            leaseName,
            epoch: lease.epoch,
            rawConfig: c.taskConfigs[unit.task]!,
            taskCount: c.taskConfigs.length,
            generation: c.generation,
            runner: undefined,
            state: 'UNASSIGNED',
            gone: false,
          };
          this.tasks.set(key, t);
          this.logger.info({ connector: t.connector, task: t.task, epoch: t.epoch }, 'starting task');
          await this.startRunner(t, c);
        }),
    );
    if (waiting.size > 0 && waiting.size !== this.waiting.size) this.logger.debug({ tasks: [...waiting] }, 'waiting for task leases held elsewhere');
    this.waiting = waiting;

    await this.reportConnectors(members, groups, connectors, restarting);
    // Only once everything is applied: a reconcile that failed half-way sees the same changes again.
    this.seen = new Map(connectors.map((c) => [c.name, { generation: c.generation, targetState: c.targetState }]));
  }

  /** The connector's own status, written by the member the connector name hashes to. */
  private async reportConnectors(members: string[], groups: MemberGroups, connectors: ConnectorRecord[], restarting: Map<string, Set<number | null>>): Promise<void> {
    const names = new Set(connectors.map((c) => c.name));
    for (const name of this.owned.keys()) if (!names.has(name)) this.owned.delete(name);
    for (const c of connectors) {
      if (connectorOwner(c.name, members) !== this.self) {
        this.owned.delete(c.name);
        continue;
      }
      const before = this.owned.get(c.name);
      const unplaced = unplacedReason(c, members, groups);
      if (before && before.unplaced !== unplaced) await this.reportUnplaced(c, unplaced);
      const restartAsked = restarting.get(c.name)?.has(null) ?? false;
      if (before && before.generation === c.generation && before.targetState === c.targetState && !restartAsked) {
        before.unplaced = unplaced;
        continue;
      }
      const { state, trace } = await this.connectorState(c);
      this.owned.set(c.name, { generation: c.generation, targetState: c.targetState, state, trace, unplaced });
      if (!before) await this.reportUnplaced(c, unplaced);
      if (before && before.state === state && before.trace === trace && !restartAsked) continue;
      if (state === 'FAILED') this.logger.warn({ connector: c.name, trace }, 'connector failed');
      await this.writeStatus(c.name, null, state, c.generation, trace);
    }
  }

  /**
   * Tasks no live worker may run (none is in the connector's worker groups) have no worker to
   * report them: the connector's owner writes them UNASSIGNED, with the reason as their trace.
   */
  private async reportUnplaced(c: ConnectorRecord, reason: string): Promise<void> {
    if (!reason) return;
    this.logger.warn({ connector: c.name, groups: workerGroupsOf(c) }, 'no live worker in the connector\'s worker groups: its tasks stay unassigned');
    for (let task = 0; task < c.taskConfigs.length; task++) await this.writeStatus(c.name, task, 'UNASSIGNED', c.generation, reason);
  }

  private async connectorState(c: ConnectorRecord): Promise<{ state: ConnectorState; trace?: string }> {
    if (c.targetState === 'STOPPED') return { state: 'STOPPED' };
    if (c.targetState === 'PAUSED') return { state: 'PAUSED' };
    const className = c.config['connector.class'] ?? '';
    const connector = this.options.plugins.find(className);
    if (!connector) return { state: 'FAILED', trace: new Error(`Connector class ${className} is not installed on worker ${this.self}`).stack };
    const spec = fullSpec(connector.config as ConfigSpec<unknown>);
    const isSecret = (key: string) => isSecretKey(key, spec);
    let scrubber = Scrubber.of(c.config, c.config, new Map(), isSecret);
    try {
      // The connector "starts" here: its config must resolve and parse on this worker.
      const resolved = await this.options.providers.resolveScrubbed(c.config, isSecret);
      scrubber = resolved.scrubber;
      spec.parse(resolved.config);
      return { state: 'RUNNING' };
    } catch (error) {
      return { state: 'FAILED', trace: traceOf(error, scrubber) };
    }
  }

  /** The task's secrets (literal ones; resolved ones are added once resolved), by its class's spec and by name. */
  private literalScrubber(config: Record<string, string>, connector: { config: unknown } | undefined): Scrubber {
    const spec = connector ? fullSpec(connector.config as ConfigSpec<unknown>) : undefined;
    return Scrubber.of(config, config, new Map(), (key) => isSecretKey(key, spec));
  }

  private async applyTargetState(t: LocalTask, c: ConnectorRecord): Promise<void> {
    if (t.state === 'FAILED') return; // as Kafka: a failed task stays failed until restarted
    if (c.targetState === 'PAUSED' && t.state === 'RUNNING') {
      try {
        await t.runner?.pause();
        await this.setTaskState(t, 'PAUSED');
      } catch (error) {
        await this.failTask(t, error);
      }
    } else if (c.targetState === 'STARTED' && t.state === 'PAUSED') {
      if (!t.runner) return this.startRunner(t, c);
      try {
        await t.runner.resume();
        await this.setTaskState(t, 'RUNNING');
      } catch (error) {
        await this.failTask(t, error);
      }
    }
  }

  /**
   * Resolves the task's config (secrets exist in clear only from here on) and starts its
   * runner. A task of a paused connector is not started until it is resumed: a paused task
   * costs nothing.
   */
  private async startRunner(t: LocalTask, c: ConnectorRecord): Promise<void> {
    if (c.targetState === 'PAUSED') return this.setTaskState(t, 'PAUSED');
    try {
      const className = t.rawConfig['connector.class'] ?? c.config['connector.class'] ?? '';
      const connector = this.options.plugins.find(className);
      t.scrubber = this.literalScrubber(t.rawConfig, connector);
      if (!connector) throw new Error(`Connector class ${className} is not installed on worker ${this.self}`);
      const transforms = this.options.plugins.transformCatalog?.();
      // A secret a transformation or predicate declares is scrubbed like the connector's own.
      const spec = fullSpec(connector.config as ConfigSpec<unknown>).merge(chainSpec(t.rawConfig, transforms ?? BUILTIN_CATALOG));
      const resolved = await this.options.providers.resolveScrubbed(t.rawConfig, (key) => isSecretKey(key, spec));
      t.scrubber = resolved.scrubber;
      const config = resolved.config;
      if (t.gone) return; // let go meanwhile (a lapse): no runner may outlive it
      const base = { connectorName: t.connector, taskId: t.task, config, taskCount: t.taskCount, ...(transforms ? { transforms } : {}) };
      const scrubbing = scrubbingConnector(connector, resolved.scrubber);
      const runner = scrubbing.type === 'sink' ? this.options.runners.sink({ ...base, connector: scrubbing }) : this.options.runners.source({ ...base, connector: scrubbing });
      t.runner = runner;
      const onFailure = (error: unknown) => {
        if (t.gone || t.runner !== runner || this.tasks.get(t.key) !== t) return;
        void this.failTask(t, error);
      };
      runner.failure.then(onFailure, onFailure);
      await runner.start();
      if (t.runner !== runner) return; // failed while starting, or let go (which stopped it)
      await this.setTaskState(t, 'RUNNING');
    } catch (error) {
      await this.failTask(t, error);
    }
  }

  private async failTask(t: LocalTask, error: unknown): Promise<void> {
    const runner = t.runner;
    t.runner = undefined;
    const scrubber = t.scrubber ?? Scrubber.NONE;
    this.logger.error({ connector: t.connector, task: t.task, err: scrubber.error(error) }, 'task failed');
    await runner?.stop().catch((stopError: unknown) => this.logger.warn({ err: scrubber.error(stopError) }, 'stopping a failed task threw'));
    if (t.gone) return;
    await this.setTaskState(t, 'FAILED', traceOf(error, scrubber));
  }

  private async stopRunner(t: LocalTask): Promise<void> {
    const runner = t.runner;
    t.runner = undefined;
    if (!runner) return;
    try {
      await runner.stop();
    } catch (error) {
      this.logger.warn({ connector: t.connector, task: t.task, err: (t.scrubber ?? Scrubber.NONE).error(error) }, 'task did not stop cleanly');
    }
  }

  /**
   * Lets a task go: stops its runner, optionally reports a status, releases its lease — or,
   * when the lease may be held by another worker by now, leaves it to a later release.
   */
  private async letGo(t: LocalTask, options: { status: ConnectorState | undefined; release: 'now' | 'later' | 'never' }): Promise<void> {
    if (this.tasks.get(t.key) === t) this.tasks.delete(t.key);
    t.gone = true;
    if (options.release === 'later') this.dropped.set(t.leaseName, t.epoch);
    await this.stopRunner(t);
    for (const state of STATES) this.options.metrics?.taskState.remove({ connector: t.connector, task: String(t.task), state });
    // The status goes before the lease: once released, the next owner's RUNNING must not be overwritten.
    if (options.status) await this.writeStatus(t.connector, t.task, options.status, t.generation);
    if (options.release === 'now') {
      await this.store.releaseLease(t.leaseName, this.self, t.epoch).catch((error: unknown) => {
        // A live member keeps its session leases: one not given back would hold its task up for good.
        this.dropped.set(t.leaseName, t.epoch);
        this.logger.warn({ err: error, lease: t.leaseName }, 'could not release a task lease; retrying at the next reconcile');
      });
    }
  }

  /**
   * Gives back the leases of tasks let go without a release (a lapse, a failed release): as
   * long as this worker is a live member, nobody else can take them. A release is a
   * compare-and-set on our epoch, so one taken over in the meantime is left alone.
   */
  private async releaseDropped(): Promise<void> {
    for (const [name, epoch] of [...this.dropped]) {
      await this.store.releaseLease(name, this.self, epoch);
      if (this.dropped.get(name) === epoch) this.dropped.delete(name);
    }
  }

  /**
   * Checks that every local task's lease is still ours. Nobody takes the lease of a live
   * member, so a lost one means clocks or reads disagreed: the task stops, and the next
   * reconcile waits for the lease like any other.
   */
  private async checkLeases(): Promise<void> {
    const leases = new Map((await this.store.listLeases(TASK_LEASE_PREFIX)).map((l) => [l.name, l]));
    for (const t of [...this.tasks.values()]) {
      const lease = leases.get(t.leaseName);
      if (t.gone || (lease?.owner === this.self && lease.epoch === t.epoch)) continue;
      this.logger.warn({ connector: t.connector, task: t.task, holder: lease?.owner ?? '' }, 'task lease taken by another worker; stopping the task');
      this.fingerprint = '';
      await this.letGo(t, { status: undefined, release: 'never' });
    }
  }

  private async setTaskState(t: LocalTask, state: ConnectorState, trace?: string): Promise<void> {
    t.state = state;
    await this.writeStatus(t.connector, t.task, state, t.generation, trace);
  }

  private async writeStatus(connector: string, task: number | null, state: ConnectorState, generation: number, trace?: string): Promise<void> {
    if (task === null) this.options.metrics?.setState('connector', { connector }, state);
    else this.options.metrics?.setState('task', { connector, task: String(task) }, state);
    try {
      await this.store.putStatus({ connector, task, state, workerId: this.self, generation, updatedAt: Date.now(), ...(trace ? { trace } : {}) });
    } catch (error) {
      this.logger.warn({ err: error, connector, task, state }, 'could not write a status');
    }
  }
}

const STATES: ConnectorState[] = ['UNASSIGNED', 'RUNNING', 'PAUSED', 'STOPPED', 'FAILED', 'RESTARTING'];

/**
 * The connector as its task runner sees it: what its tasks report (thrown errors, the error
 * texts and details of put outcomes) is scrubbed of the task's secrets and resolved values
 * before the runtime stores it as a delivery event, a trace or a log line. A provider's error
 * often quotes what it was sent to (`getaddrinfo ENOTFOUND <host>`, a URL with a token).
 */
function scrubbingConnector<C extends Connector>(connector: C, scrubber: Scrubber): C {
  if (scrubber.empty) return connector;
  const rethrow = (error: unknown): never => {
    throw scrubber.error(error);
  };
  const scrubOutcomes = (outcomes: unknown): unknown =>
    Array.isArray(outcomes)
      ? outcomes.map((outcome: unknown) => {
          if (typeof outcome !== 'object' || outcome === null) return outcome;
          const o = outcome as { error?: { code?: unknown; message?: unknown }; details?: unknown };
          return {
            ...o,
            ...(o.error ? { error: { ...o.error, ...(typeof o.error.message === 'string' ? { message: scrubber.scrub(o.error.message) } : {}) } } : {}),
            ...(o.details !== undefined ? { details: scrubber.value(o.details, 6) } : {}),
          };
        })
      : outcomes;
  const wrapTask = (task: object): object =>
    // Calls go to the task itself (its `this` unchanged); only what comes back is rewritten.
    new Proxy(task, {
      get(target, property) {
        const member = Reflect.get(target, property, target) as unknown;
        if (typeof member !== 'function') return member;
        return (...args: unknown[]) => {
          let result: unknown;
          try {
            result = (member as (...a: unknown[]) => unknown).apply(target, args);
          } catch (error) {
            return rethrow(error);
          }
          if (!(result instanceof Promise)) return result;
          return result.then((value: unknown) => (property === 'put' ? scrubOutcomes(value) : value), rethrow);
        };
      },
    });
  const wrapped = Object.create(connector) as C & { createTask(): unknown };
  Object.defineProperty(wrapped, 'createTask', { value: () => wrapTask((connector as { createTask(): object }).createTask()) });
  return wrapped;
}

function traceOf(error: unknown, scrubber: Scrubber): string {
  if (error instanceof Error) return scrubber.scrub(error.stack ?? `${error.name}: ${error.message}`);
  return scrubber.scrub(String(error));
}

/** The worker groups a connector's tasks may run in (its `worker.groups`). */
function workerGroupsOf(c: ConnectorRecord): string[] {
  return (c.config['worker.groups'] ?? '')
    .split(',')
    .map((group) => group.trim())
    .filter((group) => group !== '');
}

/** Why none of the connector's tasks can be placed, or '' when they can (or it has none to place). */
function unplacedReason(c: ConnectorRecord, members: readonly string[], groups: MemberGroups): string {
  if (c.targetState === 'STOPPED' || c.taskConfigs.length === 0) return '';
  const wanted = workerGroupsOf(c);
  if (eligibleMembers({ groups: wanted }, members, groups).length > 0) return '';
  const live = members.map((m) => `${m} (${groups.get(m)?.join(', ') || 'no group'})`).join(', ');
  return (
    `No live worker is in the worker groups ${wanted.join(', ')} named by worker.groups; live workers: ${live || 'none'}. ` +
    'Start a worker with one of these groups in its worker.groups, or change the connector\'s worker.groups.'
  );
}

function sameConfig(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
