/**
 * What the sink and source runners share: their loop's lifecycle (pause, resume, stop), how a
 * task failure is reported, and a shutdown that runs once however it is reached (a stop, a
 * failure, a start that could not finish).
 */
import type { Logger } from '@omnibus/sdk';
import { WakeableSleep } from './pacing.ts';

export abstract class RunnerLifecycle {
  /** Resolves with the reason when the task fails; the runner has shut down by then. */
  readonly failure: Promise<Error>;
  private settleFailure!: (error: Error) => void;
  private shutdownDone: Promise<void> | undefined;
  protected loop: Promise<void> | undefined;
  protected leaseTimer: NodeJS.Timeout | undefined;
  protected stopping = false;
  protected paused = false;
  /** Settles when the loop's current step does: a pause waits for it. */
  protected stepDone: Promise<void> = Promise.resolve();
  protected readonly sleeper = new WakeableSleep();
  protected abstract readonly logger: Logger;

  /** `what` names the runner in its failure log: "sink task", "source task". */
  constructor(private readonly what: string) {
    this.failure = new Promise((resolve) => (this.settleFailure = resolve));
  }

  async pause(): Promise<void> {
    this.paused = true;
    this.interrupt();
    await this.stepDone;
  }

  async resume(): Promise<void> {
    this.paused = false;
    this.sleeper.wake();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.interrupt();
    this.sleeper.wake();
    await this.loop;
    await this.shutdown();
  }

  /** Cuts short what a step is waiting on (a source's poll), for a pause or a stop. */
  protected interrupt(): void {}

  protected async fail(reason: Error): Promise<void> {
    this.logger.error({ err: reason }, `${this.what} failed`);
    this.stopping = true;
    await this.shutdown();
    this.settleFailure(reason);
  }

  protected shutdown(): Promise<void> {
    this.shutdownDone ??= (async () => {
      this.stopping = true;
      if (this.leaseTimer) clearTimeout(this.leaseTimer);
      await this.releaseAll();
    })();
    return this.shutdownDone;
  }

  /** Lets go of what the runner holds (its task, leases, unwritten state); runs once, at shutdown. */
  protected abstract releaseAll(): Promise<void>;
}
