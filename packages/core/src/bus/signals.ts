/**
 * In-process wake-ups: a produce on this worker tells this worker's consumers of the same
 * (topic, shard) at once, so local traffic never waits for a poll. Produces on other workers
 * arrive as wake hints from those workers (see peer-wake.ts), which notify here the same way;
 * a hint that is lost leaves the consumers to their adaptive polling.
 */
import { EventEmitter } from 'node:events';
import type { Priority } from '../store/port.ts';

/** Where a notification comes from: a produce on this worker, or a peer's hint about one on its own. */
export type SignalOrigin = 'local' | 'peer';

export type LocalProduceListener = (topic: string, shard: number) => void;

/**
 * Called after a produce to the (topic, shard). `landedFrom`, when known (a local produce): the
 * written entries' timestamps are at least this, and they are all visible now. `priorities`,
 * when known (a local produce): those of the written messages, so that only their lanes are
 * read (bus/priority-lanes.ts); otherwise any.
 */
export type ShardListener = (landedFrom?: number, priorities?: ReadonlySet<Priority>) => void;

export class ShardSignals {
  private readonly emitter = new EventEmitter();
  private readonly localListeners = new Set<LocalProduceListener>();

  constructor() {
    // One listener per consumed shard per task: the default limit of 10 is meaningless here.
    this.emitter.setMaxListeners(0);
  }

  notify(topic: string, shard: number, origin: SignalOrigin = 'local', landedFrom?: number, priorities?: ReadonlySet<Priority>): void {
    this.emitter.emit(channel(topic, shard), landedFrom, priorities);
    // Only local produces are passed on to peers: a hint relayed again would bounce between workers.
    if (origin === 'local') for (const listener of this.localListeners) listener(topic, shard);
  }

  /** Calls `listener` after every produce to (topic, shard), local or hinted by a peer; returns the unsubscribe. */
  subscribe(topic: string, shard: number, listener: ShardListener): () => void {
    const name = channel(topic, shard);
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  }

  /** Calls `listener` after every local produce, whatever its (topic, shard); returns the unsubscribe. */
  onLocalProduce(listener: LocalProduceListener): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }
}

const channel = (topic: string, shard: number) => `${topic}\u0000${shard}`;
