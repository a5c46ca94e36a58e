/**
 * Time policies of the bus: retry backoff with full jitter, and a token bucket for rate limits.
 */

/**
 * The wait before attempt `attempt + 1`, after `attempt` failed: full jitter over an
 * exponentially growing cap ("Exponential Backoff And Jitter", AWS architecture blog), never
 * shorter than the provider's own retry-after.
 */
export function retryDelay(attempt: number, initialMs: number, maxMs: number, retryAfterMs?: number, random = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * cap);
  return retryAfterMs !== undefined && retryAfterMs > jittered ? retryAfterMs : jittered;
}

/** Sends per second with a one-second burst; `rate` 0 means unlimited. */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private rate: number,
    now = Date.now(),
  ) {
    this.tokens = Math.max(1, rate);
    this.refilledAt = now;
  }

  get unlimited(): boolean {
    return this.rate <= 0;
  }

  /** Changes the rate (the runner's share moves as it gains or loses shards). */
  setRate(rate: number): void {
    this.rate = rate;
    this.tokens = Math.min(this.tokens, Math.max(1, rate));
  }

  /** Takes up to `wanted` tokens; returns how many were granted. */
  take(wanted: number, now = Date.now()): number {
    if (this.unlimited) return wanted;
    this.refill(now);
    const granted = Math.min(wanted, Math.floor(this.tokens));
    this.tokens -= granted;
    return granted;
  }

  /** How long until one token is available (0 if one is). */
  waitMs(now = Date.now()): number {
    if (this.unlimited) return 0;
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.refilledAt) / 1000;
    this.tokens = Math.min(Math.max(1, this.rate), this.tokens + elapsed * this.rate);
    this.refilledAt = now;
  }
}

/**
 * A runner loop's pause: `sleep(ms)` waits, `wake()` ends the current wait at once (new work,
 * a stop or a pause). A wake with nobody sleeping is dropped: the loop checks its state first.
 */
export class WakeableSleep {
  private wakeUp: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
  }
}
