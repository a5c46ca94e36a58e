/**
 * In-process wake-ups: a produce on this worker tells this worker's consumers of the same
 * (topic, shard) at once, so local traffic never waits for a poll. Produces on other workers
 * are not signalled; consumers see them through their adaptive polling.
 */
import { EventEmitter } from 'node:events';

export class ShardSignals {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per consumed shard per task: the default limit of 10 is meaningless here.
    this.emitter.setMaxListeners(0);
  }

  notify(topic: string, shard: number): void {
    this.emitter.emit(channel(topic, shard));
  }

  /** Calls `listener` after every local produce to (topic, shard); returns the unsubscribe. */
  subscribe(topic: string, shard: number, listener: () => void): () => void {
    const name = channel(topic, shard);
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  }
}

const channel = (topic: string, shard: number) => `${topic}\u0000${shard}`;
