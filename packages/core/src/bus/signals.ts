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

/** `landedFrom`: the written entries' timestamps are at least this (see {@link ShardListener}). */
export type LocalProduceListener = (topic: string, shard: number, landedFrom?: number) => void;

/** One (topic, shard) a produce wrote, stamped `landedFrom` or later. */
export interface LandedWrite {
  topic: string;
  shard: number;
  landedFrom: number;
}

/**
 * Makes sure the other workers' consumers know of writes before they are acknowledged (see
 * {@link ShardSignals.announceSlowWrites}); resolves once they were told, or gave up.
 */
export type SlowWriteAnnouncer = (writes: readonly LandedWrite[]) => Promise<void>;

/**
 * Called after a produce to the (topic, shard). `landedFrom`, when known (a local produce, or a
 * peer's hint that carries it): the written entries' timestamps are at least this, and they are
 * all visible now. `priorities`, when known (a local produce): those of the written messages,
 * so that only their lanes are read (bus/priority-lanes.ts); otherwise any.
 */
export type ShardListener = (landedFrom?: number, priorities?: ReadonlySet<Priority>) => void;

export class ShardSignals {
  private readonly emitter = new EventEmitter();
  private readonly localListeners = new Set<LocalProduceListener>();
  private slowWriteAnnouncer: SlowWriteAnnouncer | undefined;

  constructor() {
    // One listener per consumed shard per task: the default limit of 10 is meaningless here.
    this.emitter.setMaxListeners(0);
  }

  notify(topic: string, shard: number, origin: SignalOrigin = 'local', landedFrom?: number, priorities?: ReadonlySet<Priority>): void {
    this.emitter.emit(channel(topic, shard), landedFrom, priorities);
    // Only local produces are passed on to peers: a hint relayed again would bounce between workers.
    if (origin === 'local') for (const listener of this.localListeners) listener(topic, shard, landedFrom);
  }

  /**
   * A local write acknowledged later than a consumer's confidence delay after its stamp: a hot
   * read on another worker may have passed that stamp before the entries were visible, and would
   * then hand over the next message of a key (produced once this one is acknowledged) before
   * this one, which only a re-read finds. The producer awaits this before acknowledging, so that
   * every peer's consumers of those shards read again from `landedFrom` before anything newer
   * can exist. Without peers (or without an announcer) there is nobody to tell.
   */
  announceSlowWrites(writes: readonly LandedWrite[]): Promise<void> {
    return writes.length > 0 && this.slowWriteAnnouncer ? this.slowWriteAnnouncer(writes) : Promise.resolve();
  }

  /** Who tells the peers of slow writes (peer-wake.ts); returns the unregister. */
  onSlowWrites(announcer: SlowWriteAnnouncer): () => void {
    this.slowWriteAnnouncer = announcer;
    return () => {
      if (this.slowWriteAnnouncer === announcer) this.slowWriteAnnouncer = undefined;
    };
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
