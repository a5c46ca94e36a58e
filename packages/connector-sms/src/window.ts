/**
 * A send window: at most `limit` requests in flight, handed out in FIFO order. With SMPP
 * the limit adapts (AIMD, as TCP's congestion window): a throttling reply halves it and
 * pauses new sends for a while; every window's worth of successes grows it by one, back up
 * to the configured size.
 */
export class SendWindow {
  readonly #max: number;
  #limit: number;
  #inFlight = 0;
  #successes = 0;
  #pausedUntil = 0;
  #resumeTimer: NodeJS.Timeout | undefined;
  readonly #waiting: Array<() => void> = [];

  constructor(max: number) {
    this.#max = max;
    this.#limit = max;
  }

  /** The current limit (below the configured size after throttling). */
  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Waits for a slot; call the returned function (once or more) when the request is answered. */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      this.#waiting.push(() => {
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.#inFlight -= 1;
          this.#drain();
        });
      });
      this.#drain();
    });
  }

  onSuccess(): void {
    this.#successes += 1;
    if (this.#successes >= this.#limit && this.#limit < this.#max) {
      this.#limit += 1;
      this.#successes = 0;
      this.#drain();
    }
  }

  /** The provider asked us to slow down: halve the window and send nothing for `pauseMs`. */
  onThrottle(pauseMs: number): void {
    this.#limit = Math.max(1, Math.floor(this.#limit / 2));
    this.#successes = 0;
    this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + pauseMs);
  }

  /** Wakes every waiter when closing, so that nothing stays parked. */
  close(): void {
    this.#pausedUntil = 0;
    clearTimeout(this.#resumeTimer);
    this.#limit = Number.MAX_SAFE_INTEGER;
    this.#drain();
  }

  #drain(): void {
    const pause = this.#pausedUntil - Date.now();
    if (pause > 0) {
      if (!this.#resumeTimer) {
        this.#resumeTimer = setTimeout(() => {
          this.#resumeTimer = undefined;
          this.#drain();
        }, pause);
      }
      return;
    }
    while (this.#waiting.length > 0 && this.#inFlight < this.#limit) {
      this.#inFlight += 1;
      this.#waiting.shift()?.();
    }
  }
}
