/**
 * Cluster membership through the store: each worker writes a heartbeat that expires, then
 * reads the cluster view — the live members and the connectors version — in one query. No
 * group coordinator: every worker reads the same view and computes the same assignment from it.
 * An idle worker costs its store these two queries per heartbeat, nothing more.
 *
 * The membership is also this worker's session: its task leases hold for as long as it stays
 * a live member (see `Store.acquireSessionLease`). A worker whose heartbeats stop going
 * through must therefore stop its tasks before its membership can expire: `onLapse` says when.
 */
import type { Logger } from 'pino';
import type { ClusterView, Member, Store } from '../store/port.ts';

/** Who this worker is; filled in once its listener is bound (the port may be chosen then). */
export interface WorkerIdentity {
  /** Kafka's worker_id: the advertised host:port. */
  id: string;
  /** The advertised REST URL. */
  url: string;
}

export interface MembershipOptions {
  identity: Readonly<WorkerIdentity>;
  /** The heartbeat interval in effect (at most a third of `ttlMs`). */
  heartbeatIntervalMs: number;
  /** How long a heartbeat keeps a member alive (the lease TTL: a dead worker's work moves after it). */
  ttlMs: number;
  /** The worker groups this worker belongs to (`worker.groups`), announced with every heartbeat. */
  groups?: readonly string[];
}

export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private lapseTimer: NodeJS.Timeout | undefined;
  private view: ClusterView = { members: [], connectorsVersion: '' };
  private key = '';
  /** Local time until which this worker's membership certainly holds: send time of the last heartbeat that went through + TTL. */
  private validUntil = 0;
  /**
   * Tasks stop this long before the membership could expire: room for a late timer and for
   * clocks that disagree a little (another worker judges the expiry by its own clock).
   */
  readonly safetyMarginMs: number;
  private readonly startedAt = Date.now();
  private readonly beatListeners = new Set<(view: Readonly<ClusterView>) => void>();
  private readonly lapseListeners = new Set<() => void>();
  private beating: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly options: MembershipOptions,
    private readonly logger: Logger,
  ) {
    this.safetyMarginMs = Math.min(options.heartbeatIntervalMs, Math.floor(options.ttlMs / 4));
  }

  get id(): string {
    return this.options.identity.id;
  }

  /** The live members as last read, sorted by id. */
  get members(): readonly Member[] {
    return this.view.members;
  }

  get memberIds(): string[] {
    return this.view.members.map((m) => m.id);
  }

  /** The worker groups of the live members that have any, as last read. */
  get memberGroups(): Map<string, readonly string[]> {
    return new Map(this.view.members.filter((m) => m.groups?.length).map((m) => [m.id, m.groups!]));
  }

  /** The connectors version as last read (see `ClusterView`). */
  get connectorsVersion(): string {
    return this.view.connectorsVersion;
  }

  /** Whether this worker's membership certainly holds now, with the safety margin: it may run tasks. */
  get holds(): boolean {
    return Date.now() < this.validUntil - this.safetyMarginMs;
  }

  /** Called after every heartbeat that went through, with the cluster view read after it. */
  onBeat(listener: (view: Readonly<ClusterView>) => void): () => void {
    this.beatListeners.add(listener);
    return () => this.beatListeners.delete(listener);
  }

  /** Called when no heartbeat went through in time: the membership may expire, so every task must stop now. */
  onLapse(listener: () => void): () => void {
    this.lapseListeners.add(listener);
    return () => this.lapseListeners.delete(listener);
  }

  /** Joins the cluster: one heartbeat now (so the first plan includes this worker), then periodically. */
  async start(): Promise<void> {
    await this.beat();
    this.schedule();
  }

  /** Writes a heartbeat, then reads the cluster view. */
  async beat(): Promise<void> {
    this.beating = (async () => {
      const { id, url } = this.options.identity;
      if (!id) throw new Error('the worker has no identity yet: start its listener first');
      const sentAt = Date.now();
      const groups = this.options.groups?.length ? { groups: [...this.options.groups] } : {};
      await this.store.heartbeat({ id, url, startedAt: this.startedAt, heartbeatAt: sentAt, ...groups }, this.options.ttlMs);
      if (this.stopped) return;
      this.validUntil = sentAt + this.options.ttlMs;
      this.armLapse();
      const view = await this.store.readCluster();
      view.members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.view = view;
      const key = memberKey(view.members);
      if (key !== this.key) {
        const before = new Set(this.key ? this.key.split(',').map((entry) => entry.split('=')[0]!) : []);
        const after = new Set(view.members.map((m) => m.id));
        this.logger.info(
          { members: view.members.map((m) => (m.groups?.length ? `${m.id} (${m.groups.join(', ')})` : m.id)), joined: [...after].filter((id) => !before.has(id)), left: [...before].filter((id) => !after.has(id)) },
          'cluster membership changed',
        );
        this.key = key;
      }
      for (const listener of this.beatListeners) listener(view);
    })();
    try {
      await this.beating;
    } finally {
      this.beating = undefined;
    }
  }

  /** Leaves the cluster at once, so the others take over without waiting for the heartbeat to expire. */
  async leave(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.lapseTimer);
    await this.beating?.catch(() => undefined);
    if (this.id) await this.store.removeMember(this.id);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.beat()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'heartbeat failed; retrying'))
        .finally(() => this.schedule());
    }, this.options.heartbeatIntervalMs);
    this.timer.unref();
  }

  private armLapse(): void {
    clearTimeout(this.lapseTimer);
    this.lapseTimer = setTimeout(() => {
      if (this.stopped) return;
      if (this.holds) return this.armLapse(); // a timer may fire a millisecond early
      this.logger.error({ validUntil: new Date(this.validUntil).toISOString() }, 'no heartbeat went through in time: this worker may drop out of the cluster');
      for (const listener of this.lapseListeners) listener();
    }, Math.max(0, this.validUntil - this.safetyMarginMs - Date.now()));
    this.lapseTimer.unref();
  }
}

/** The members and their groups, as one comparable string: `id=group+group,id,…`. */
export function memberKey(members: readonly Member[]): string {
  return members.map((m) => (m.groups?.length ? `${m.id}=${m.groups.join('+')}` : m.id)).join(',');
}
