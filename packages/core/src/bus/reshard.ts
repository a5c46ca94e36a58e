/**
 * Raising a topic's shard count while it is in use, with each key's order kept.
 *
 * A key's shard is a function of the shard count, so a new count moves most keys. The change
 * therefore takes effect at a switch time `at`, set RESHARD_NOTICE_MS ahead: a message whose
 * routing time (its produce's clock) is before `at` goes where the old count sends it, one at or
 * after where the new count does. Every worker learns the new layout before the switch (a
 * producer re-reads a cached topic every TOPIC_REFRESH_MS, a sink task before it hands over a
 * message past what its topic read can vouch for), so no message after the switch is routed
 * by the old layout.
 *
 * Order across the switch: a message of a key that moved, found in its new shard, is held back
 * until its old shard holds no unfinished message older than it (for this connector): the
 * key's earlier messages, in the old shard, have then all been handled. Once the old shard is
 * drained past the switch (and past what a produce straddling it may have stamped), nothing of
 * the old layout is left there and the check stops.
 */
import { coreError } from '../errors.ts';
import type { Reshard, Topic } from '../store/port.ts';
import { shardOf } from './shard.ts';
import { MAX_SHARDS } from './topics.ts';

/** How far ahead of the request a new layout takes effect: every worker must know it by then. */
export const RESHARD_NOTICE_MS = 10_000;
/** How old a topic read may be when it routes a message or vouches for one's layout (well inside the notice). */
export const TOPIC_REFRESH_MS = 5_000;
/**
 * How far past its produce's clock a message's time may be (a producer moves a message of the
 * same key and millisecond to the next one to keep its order): old-layout messages are all
 * older than the switch plus this.
 */
export const RESHARD_SETTLE_MS = 2_000;

/** The shard count that routes a message produced at `ts`. */
export function shardCountAt(topic: Pick<Topic, 'shards' | 'reshards'>, ts: number): number {
  const reshards = topic.reshards;
  if (!reshards || reshards.length === 0) return topic.shards;
  for (const reshard of reshards) if (ts < reshard.at) return reshard.from;
  return topic.shards;
}

/** The latest change of layout at or before `ts`, if any. */
export function reshardAt(topic: Pick<Topic, 'reshards'>, ts: number): Reshard | undefined {
  const reshards = topic.reshards;
  if (!reshards) return undefined;
  for (let i = reshards.length - 1; i >= 0; i--) if (reshards[i]!.at <= ts) return reshards[i];
  return undefined;
}

/**
 * Where the key of a message at `ts` in `shard` was before the latest switch at or before `ts`,
 * when that is another shard (its earlier messages may be there); undefined when the key did
 * not move, or the message is older than every switch.
 */
export function previousShard(topic: Pick<Topic, 'reshards'>, token: string, shard: number, ts: number): { reshard: Reshard; shard: number } | undefined {
  const reshard = reshardAt(topic, ts);
  if (!reshard) return undefined;
  const before = shardOf(BigInt(token), reshard.from);
  return before === shard ? undefined : { reshard, shard: before };
}

/** The topic with `shards` shards from `now + RESHARD_NOTICE_MS` on, or a 400 naming `shards`. */
export function reshardedTopic(topic: Topic, shards: unknown, now = Date.now()): Topic {
  if (typeof shards !== 'number' || !Number.isInteger(shards) || shards <= topic.shards || shards > MAX_SHARDS) {
    const problem = `must be an integer above the topic's ${topic.shards} shards and at most ${MAX_SHARDS}`;
    throw coreError('OMNI_ERR_TOPIC_INVALID', { problem: `Invalid shard count: shards ${problem}` }, { errors: { shards: problem } });
  }
  const previous = topic.reshards ?? [];
  // A change asked for before the previous one took effect follows it.
  const at = Math.max(now + RESHARD_NOTICE_MS, (previous.at(-1)?.at ?? 0) + 1);
  return { ...topic, shards, reshards: [...previous, { at, from: topic.shards, to: shards }] };
}
