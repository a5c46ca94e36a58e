/**
 * The two limits the Cloud API enforces: messages per second per business phone number
 * (130429 beyond it) and messages per window to one recipient (131056 beyond it). Both hand
 * out time slots instead of refusing, so a message over a limit waits for its turn rather
 * than being dropped.
 */

export type Clock = () => number;

/**
 * A token bucket refilled at `ratePerSecond` holding `burst` tokens, kept as the time the
 * next token is due (GCRA). Callers queue for tokens and are let go one by one by a single
 * timer, the bucket being checked at the moment each one is let go: a stalled event loop
 * delays the sends after it instead of releasing them in a bunch, so with the default burst
 * of 1 no one-second window — however the provider aligns it — sees more than the rate.
 */
export class TokenBucket {
  private readonly intervalMs: number;
  private readonly burst: number;
  private theoreticalAt = Number.NEGATIVE_INFINITY;
  private readonly waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(ratePerSecond: number, burst = 1, private readonly now: Clock = Date.now) {
    if (!(ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
    this.intervalMs = 1000 / ratePerSecond;
    this.burst = Math.max(1, Math.floor(burst));
  }

  /** Resolves when the caller may send, in the order callers asked; rejects if `signal` aborts first. */
  take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.waiters.length === 0 && this.tryTake()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      const waiter = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.schedule();
    });
  }

  /** No token is handed out for the next `ms` (the provider said the number is over its limit). */
  pause(ms: number): void {
    this.theoreticalAt = Math.max(this.theoreticalAt, this.now() + ms + (this.burst - 1) * this.intervalMs);
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.schedule();
  }

  private tryTake(): boolean {
    const now = this.now();
    if (now < this.freeAt()) return false;
    this.theoreticalAt = Math.max(this.theoreticalAt, now) + this.intervalMs;
    return true;
  }

  private freeAt(): number {
    return this.theoreticalAt - (this.burst - 1) * this.intervalMs;
  }

  private schedule(): void {
    if (this.timer || this.waiters.length === 0) return;
    const wait = Math.max(1, Math.ceil(this.freeAt() - this.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.waiters.length > 0 && this.tryTake()) this.waiters.shift()?.();
      this.schedule();
    }, wait);
  }
}

interface PairState {
  /** When the messages that went to this recipient were let through, ascending, within the window. */
  sent: number[];
  /** Messages told to come back later, with the time their slot opens. */
  reservations: Map<string, number>;
  blockedUntil: number;
  /** 131056 answers in a row, for exponential backoff. */
  strikes: number;
}

/**
 * At most `limit` messages per `windowMs` to one recipient. A message over the limit gets a
 * reservation for the first free slot (after those already promised) and the wait until it,
 * so that when it comes back on time it goes at once. The limit itself is checked against
 * the actual sends: a message that comes back late cannot drag the next one along with it.
 */
export class PairRateLimiter {
  private readonly pairs = new Map<string, PairState>();
  private lastSweepAt = Number.NEGATIVE_INFINITY;
  /** A timer firing a little early must not cost the message another attempt. */
  private static readonly EARLY_TOLERANCE_MS = 5;
  private static readonly MAX_BACKOFF_MS = 300_000;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: Clock = Date.now,
  ) {
    if (!(limit >= 1) || !(windowMs > 0)) throw new RangeError('limit and windowMs must be positive');
  }

  /**
   * Asks to send `messageId` to `pair` now. `waitMs` is 0 when it may go (the send is
   * counted at `slotAt`, which {@link release} takes back), else the wait until its slot.
   */
  admit(pair: string, messageId: string): { waitMs: number; slotAt: number } {
    const now = this.now();
    if (now - this.lastSweepAt >= this.windowMs) this.sweep(now);
    const state = this.state(pair);
    trimBefore(state.sent, now - this.windowMs);
    const tolerance = PairRateLimiter.EARLY_TOLERANCE_MS;
    const reservedAt = state.reservations.get(messageId);
    if (reservedAt !== undefined && reservedAt - now > tolerance) return { waitMs: Math.ceil(reservedAt - now), slotAt: reservedAt };

    const freeAt = this.freeAt(state);
    const slotAt = reservedAt !== undefined ? freeAt : this.nextSlot(state, now);
    if (slotAt - now <= (reservedAt !== undefined ? tolerance : 0)) {
      state.reservations.delete(messageId);
      state.sent.push(now);
      return { waitMs: 0, slotAt: now };
    }
    state.reservations.set(messageId, slotAt);
    return { waitMs: Math.ceil(slotAt - now), slotAt };
  }

  /** Takes back a send counted at `slotAt` that never reached the provider (refused for another reason). */
  release(pair: string, slotAt: number): void {
    const sent = this.pairs.get(pair)?.sent;
    const i = sent?.lastIndexOf(slotAt) ?? -1;
    if (sent && i >= 0) sent.splice(i, 1);
  }

  /**
   * The provider refused `messageId` for this pair (131056): block the pair for `hintMs` or
   * an exponentially growing multiple of the window, and reserve the message's next slot.
   * Returns the wait (ms) until that slot.
   */
  backOff(pair: string, messageId: string, hintMs?: number): number {
    const now = this.now();
    const state = this.state(pair);
    state.strikes += 1;
    const backoff = Math.min(PairRateLimiter.MAX_BACKOFF_MS, this.windowMs * 2 ** (state.strikes - 1));
    state.blockedUntil = Math.max(state.blockedUntil, now + Math.max(hintMs ?? 0, backoff));
    state.reservations.delete(messageId);
    const slotAt = this.nextSlot(state, now);
    state.reservations.set(messageId, slotAt);
    return Math.ceil(slotAt - now);
  }

  /** The provider accepted a message for this pair: its backoff starts over. */
  accepted(pair: string): void {
    const state = this.pairs.get(pair);
    if (state) state.strikes = 0;
  }

  /** Recipients with limiter state (for tests and metrics). */
  get size(): number {
    return this.pairs.size;
  }

  /** When the actual sends allow the next one. */
  private freeAt(state: PairState): number {
    const decisive = state.sent[state.sent.length - this.limit];
    return Math.max(state.blockedUntil, decisive === undefined ? Number.NEGATIVE_INFINITY : decisive + this.windowMs);
  }

  /** The first slot after every send made and every slot promised. */
  private nextSlot(state: PairState, now: number): number {
    const taken = [...state.sent, ...state.reservations.values()].sort((a, b) => a - b);
    const decisive = taken[taken.length - this.limit];
    return Math.max(now, state.blockedUntil, decisive === undefined ? now : decisive + this.windowMs);
  }

  private state(pair: string): PairState {
    let state = this.pairs.get(pair);
    if (!state) {
      state = { sent: [], reservations: new Map(), blockedUntil: 0, strikes: 0 };
      this.pairs.set(pair, state);
    }
    return state;
  }

  /**
   * Forgets recipients that no longer constrain anything, and reservations nobody came back
   * for; at most once per window, so that the cost stays proportional to the traffic.
   */
  private sweep(now: number): void {
    this.lastSweepAt = now;
    const horizon = now - this.windowMs;
    const abandoned = now - 10 * this.windowMs - PairRateLimiter.MAX_BACKOFF_MS;
    for (const [pair, state] of this.pairs) {
      trimBefore(state.sent, horizon);
      for (const [id, at] of state.reservations) if (at < abandoned) state.reservations.delete(id);
      if (state.sent.length === 0 && state.reservations.size === 0 && state.blockedUntil <= horizon) this.pairs.delete(pair);
    }
  }
}

/** Drops the leading entries of an ascending list that are at or before `horizon`. */
function trimBefore(times: number[], horizon: number): void {
  let stale = 0;
  while (stale < times.length && (times[stale] as number) <= horizon) stale += 1;
  if (stale > 0) times.splice(0, stale);
}
