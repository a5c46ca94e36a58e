/**
 * A sink task's side of resharding (reshard.ts): which records must wait before they are
 * handed over, and when they may go.
 *
 * A record of a key that a raised shard count moved waits until its key's old shard holds no
 * message older than it (or of its millisecond) that this connector has not finished: the
 * key's earlier messages are all handled then. The check reads the old shard's positions from
 * its stored watermark (less the overlap, for writes that landed late) up to the record's time,
 * and their delivery states, at most every RECHECK_MS per old shard and only while records wait
 * on it; once the old shard is drained past the switch (plus the settle time), nothing of the
 * old layout is left there and no record waits on it again.
 *
 * A record newer than what the task's topic read vouches for (read at r: it knows every switch
 * up to r + RESHARD_NOTICE_MS) waits too, until the topic has been read again.
 *
 * Waiting always ends: a waiting record only waits on strictly older unfinished records (or of
 * its millisecond, which do not hold it), and the oldest waiting record has none but records
 * that do not wait.
 */
import { HANDLED_STATES, type Message, type Reshard, type Store, type Topic } from '../store/port.ts';
import { previousShard, RESHARD_NOTICE_MS, RESHARD_SETTLE_MS } from './reshard.ts';
import { watermarkKeys } from './priority.ts';

/** Least time between two checks of one old shard while records wait on it. */
const RECHECK_MS = 250;
/** Positions read per check; a full page counts as drained up to its last position. */
const PAGE = 1000;

interface Drain {
  /** Every message of the old shard older than this is finished (for this connector). */
  upTo: number;
  checkedAt: number;
  /** Drained past the switch plus the settle time: nothing left to wait for. */
  done: boolean;
}

export type Wait = { kind: 'none' } | { kind: 'topic' } | { kind: 'shard'; reshard: Reshard; shard: number };

export class ReshardGate {
  private readonly drains = new Map<string, Drain>();

  constructor(
    private readonly store: Store,
    private readonly connector: string,
    private readonly overlapMs: number,
  ) {}

  /** What `message` waits for, given the topic as read at `readAt`. */
  waitOf(topic: Topic, readAt: number, message: Message): Wait {
    if (message.createdAt >= readAt + RESHARD_NOTICE_MS) return { kind: 'topic' };
    if (!topic.reshards) return { kind: 'none' };
    const before = previousShard(topic, message.token, message.shard, message.createdAt);
    if (!before) return { kind: 'none' };
    const drain = this.drains.get(drainKey(topic.name, before.reshard, before.shard));
    if (drain && (drain.done || message.createdAt <= drain.upTo)) return { kind: 'none' };
    return { kind: 'shard', ...before };
  }

  /** Reads again how far these old shards are drained (those not checked in the last RECHECK_MS). */
  async check(topic: Topic, waits: ReadonlyArray<{ reshard: Reshard; shard: number }>, now = Date.now()): Promise<void> {
    const due = new Map<string, { reshard: Reshard; shard: number }>();
    for (const wait of waits) {
      const key = drainKey(topic.name, wait.reshard, wait.shard);
      const drain = this.drains.get(key);
      if (!drain?.done && (drain === undefined || now - drain.checkedAt >= RECHECK_MS)) due.set(key, wait);
    }
    await Promise.all(
      [...due].map(async ([key, { reshard, shard }]) => {
        const upTo = await this.drainedUpTo(topic, reshard, shard, now);
        this.drains.set(key, { upTo, checkedAt: now, done: upTo > reshard.at + RESHARD_SETTLE_MS });
      }),
    );
  }

  /** The time below which every message of the old shard is finished, up to the switch plus the settle time. */
  private async drainedUpTo(topic: Topic, reshard: Reshard, shard: number, now: number): Promise<number> {
    // Writes land at most the overlap late: only times that old are settled.
    const limit = Math.min(reshard.at + RESHARD_SETTLE_MS, now - this.overlapMs);
    // The lowest of the shard's lane watermarks (priority-lanes.ts): the buffer holds every lane's messages.
    const marks = await Promise.all(watermarkKeys(topic.name).map((key) => this.store.getWatermark(this.connector, key, shard)));
    const written = marks.filter((mark): mark is number => mark !== undefined);
    const watermark = written.length > 0 ? Math.min(...written) : Math.max(topic.createdAt, now - topic.retentionMs);
    const from = watermark - this.overlapMs;
    if (from > limit) return limit + 1;
    const positions = await this.store.scanBuffer(topic.name, shard, from, limit, PAGE);
    if (positions.length === 0) return limit + 1;
    const states = await this.store.getDeliveries(this.connector, positions);
    const open = positions.find((p) => {
      const state = states.get(p.messageId)?.state;
      return state === undefined || !HANDLED_STATES.has(state);
    });
    if (open) return open.ts;
    return positions.length >= PAGE ? positions[positions.length - 1]!.ts : limit + 1;
  }
}

const drainKey = (topic: string, reshard: Reshard, shard: number) => `${topic}/${reshard.at}/${shard}`;
