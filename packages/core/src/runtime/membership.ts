/**
 * Cluster membership through the store: each worker writes a heartbeat that expires, and the
 * live members are those whose heartbeat has not. No group coordinator: every worker reads
 * the same list and computes the same assignment from it.
 */
import type { Logger } from 'pino';
import type { Member, Store } from '../store/port.ts';

/** Who this worker is; filled in once its listener is bound (the port may be chosen then). */
export interface WorkerIdentity {
  /** Kafka's worker_id: the advertised host:port. */
  id: string;
  /** The advertised REST URL. */
  url: string;
}

export interface MembershipOptions {
  identity: Readonly<WorkerIdentity>;
  heartbeatIntervalMs: number;
  /** How long a heartbeat keeps a member alive (the lease TTL: a dead worker's work moves after it). */
  ttlMs: number;
}

export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private current: Member[] = [];
  private key = '';
  private readonly startedAt = Date.now();
  private readonly listeners = new Set<(members: readonly Member[]) => void>();
  private beating: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly options: MembershipOptions,
    private readonly logger: Logger,
  ) {}

  get id(): string {
    return this.options.identity.id;
  }

  /** The live members as last read, sorted by id. */
  get members(): readonly Member[] {
    return this.current;
  }

  get memberIds(): string[] {
    return this.current.map((m) => m.id);
  }

  /** Called whenever the set of live members changes (not on mere heartbeats). */
  onChange(listener: (members: readonly Member[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Joins the cluster: one heartbeat now (so the first plan includes this worker), then periodically. */
  async start(): Promise<void> {
    await this.beat();
    this.schedule();
  }

  /** Writes a heartbeat and reads the live members. */
  async beat(): Promise<void> {
    this.beating = (async () => {
      const now = Date.now();
      const { id, url } = this.options.identity;
      if (!id) throw new Error('the worker has no identity yet: start its listener first');
      await this.store.heartbeat({ id, url, startedAt: this.startedAt, heartbeatAt: now }, this.options.ttlMs);
      const members = [...(await this.store.listMembers())].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const key = members.map((m) => m.id).join(',');
      this.current = members;
      if (key !== this.key) {
        const before = new Set(this.key ? this.key.split(',') : []);
        const after = new Set(members.map((m) => m.id));
        this.logger.info(
          { members: [...after], joined: [...after].filter((id) => !before.has(id)), left: [...before].filter((id) => !after.has(id)) },
          'cluster membership changed',
        );
        this.key = key;
        for (const listener of this.listeners) listener(members);
      }
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
}
