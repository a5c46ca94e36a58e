/**
 * One lease held by one runner: taken with an LWT, renewed on a timer, and judged unsafe
 * before it can expire, so that a runner that cannot reach the store stops sending while
 * its lease is still valid — the next owner never overlaps with it.
 */
import type { Store } from '../store/port.ts';

export class HeldLease {
  epoch = 0;
  /** When the last successful acquire/renew was sent (not answered): the conservative start of validity. */
  private validFrom = 0;
  private holding = false;
  /** When this owner first took the lease (ms); entries newer than this were never seen by a previous owner. */
  acquiredAt = 0;

  constructor(
    private readonly store: Store,
    readonly name: string,
    private readonly owner: string,
    private readonly ttlMs: number,
    /** Stop sending this long before the lease would expire (covers one send in flight and clock skew). */
    private readonly safetyMarginMs: number,
  ) {}

  get held(): boolean {
    return this.holding;
  }

  /** Takes the lease if free, expired or ours; false while someone else holds it. */
  async acquire(): Promise<boolean> {
    const sentAt = Date.now();
    const lease = await this.store.acquireLease(this.name, this.owner, this.ttlMs, sentAt);
    if (!lease || lease.owner !== this.owner) return false;
    if (!this.holding || lease.epoch !== this.epoch) this.acquiredAt = sentAt;
    this.epoch = lease.epoch;
    this.validFrom = sentAt;
    this.holding = true;
    return true;
  }

  /** 'lost' when another owner has it now; 'error' when the store did not answer (still ours until unsafe). */
  async renew(): Promise<'renewed' | 'lost' | 'error'> {
    if (!this.holding) return 'lost';
    const sentAt = Date.now();
    try {
      const ok = await this.store.renewLease(this.name, this.owner, this.epoch, this.ttlMs, sentAt);
      if (!ok) {
        this.holding = false;
        return 'lost';
      }
      this.validFrom = Math.max(this.validFrom, sentAt);
      return 'renewed';
    } catch {
      return 'error';
    }
  }

  /** True while sends may start: held, and far enough from expiry. */
  safe(now = Date.now()): boolean {
    return this.holding && now < this.validFrom + this.ttlMs - this.safetyMarginMs;
  }

  async release(): Promise<void> {
    if (!this.holding) return;
    this.holding = false;
    await this.store.releaseLease(this.name, this.owner, this.epoch);
  }
}
