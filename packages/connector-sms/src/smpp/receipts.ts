/**
 * Turns SMPP delivery receipts, which come one per segment, into one delivery update per
 * message.
 *
 * A long message is several submit_sm, each with its own SMSC message id; the message's
 * providerId is the id of its FIRST segment. A receipt of any segment maps back to the
 * message. The message counts as delivered when every segment's receipt says DELIVRD (a
 * handset shows a long text only once all parts arrived), and as failed as soon as one
 * segment's receipt gives a final failure.
 *
 * The map from segment ids to messages lives in memory (bounded, oldest dropped first).
 * A receipt whose id is not in it (the task restarted, another task's session received it)
 * is reported under its own id as providerId, which is right for single-segment messages
 * and for the first segment of long ones.
 */
import type { DeliveryUpdate } from '@omnibus/sdk';
import { SmsErrorCode } from '../errors.ts';
import { canonicalId, receiptKeyOfSubmitted, type Receipt, type ReceiptIdConversion } from '../receipt.ts';

interface Tracked {
  messageId: string;
  providerId: string;
  total: number;
  keys: string[];
  delivered: Set<string>;
  lastDoneAt: number;
}

/** The segments of one message as they are accepted by the SMSC. */
export interface TrackedMessage {
  /** Call with each segment's SMSC id, in segment order, as soon as it is accepted. */
  accepted(segmentId: string): void;
  /** The message will not be sent whole: stop matching its receipts. */
  abandon(): void;
}

export class ReceiptTracker {
  readonly #conversion: ReceiptIdConversion;
  readonly #capacity: number;
  readonly #bySegment = new Map<string, Tracked>();

  constructor(conversion: ReceiptIdConversion, capacity = 200_000) {
    this.#conversion = conversion;
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#bySegment.size;
  }

  /**
   * Starts tracking a message of `total` segments before its first submit_sm, so that a
   * receipt racing ahead of the last submit_sm_resp still finds it.
   */
  track(messageId: string, total: number): TrackedMessage {
    const tracked: Tracked = { messageId, providerId: '', total, keys: [], delivered: new Set(), lastDoneAt: 0 };
    return {
      accepted: (segmentId) => {
        const key = receiptKeyOfSubmitted(segmentId, this.#conversion);
        if (tracked.keys.length === 0) tracked.providerId = segmentId;
        tracked.keys.push(key);
        this.#bySegment.set(key, tracked);
        this.#evict();
      },
      abandon: () => this.#forget(tracked),
    };
  }

  /** The update a final receipt settles, or undefined while segments are still outstanding. */
  settle(receipt: Receipt, receivedAt = Date.now()): DeliveryUpdate | undefined {
    if (!receipt.outcome) return undefined;
    const at = receipt.doneAt ?? receivedAt;
    const key = canonicalId(receipt.messageId);
    const tracked = this.#bySegment.get(key);
    if (!tracked) return updateOf(receipt, at, { providerId: receipt.messageId });
    const ids = { messageId: tracked.messageId, providerId: tracked.providerId };
    const segments = tracked.total > 1 ? { segments: tracked.total } : {};
    if (receipt.outcome === 'failed') {
      this.#forget(tracked);
      return updateOf(receipt, at, ids, tracked.total > 1 ? { ...segments, segment: tracked.keys.indexOf(key) + 1 } : {});
    }
    tracked.delivered.add(key);
    tracked.lastDoneAt = Math.max(tracked.lastDoneAt, at);
    if (tracked.delivered.size < tracked.total) return undefined;
    this.#forget(tracked);
    return updateOf(receipt, tracked.lastDoneAt, ids, segments);
  }

  #forget(tracked: Tracked): void {
    for (const key of tracked.keys) if (this.#bySegment.get(key) === tracked) this.#bySegment.delete(key);
  }

  #evict(): void {
    while (this.#bySegment.size > this.#capacity) {
      const oldest = this.#bySegment.keys().next().value;
      if (oldest === undefined) break;
      this.#bySegment.delete(oldest);
    }
  }
}

function updateOf(
  receipt: Receipt,
  at: number,
  ids: { messageId?: string; providerId: string },
  extra: Record<string, unknown> = {},
): DeliveryUpdate {
  const details = { stat: receipt.stat, ...(receipt.error ? { err: receipt.error } : {}), ...extra };
  if (receipt.outcome === 'delivered') return { ...ids, state: 'delivered', at, details };
  const hasErrorCode = receipt.error !== undefined && !/^0+$/.test(receipt.error);
  return {
    ...ids,
    state: 'failed',
    at,
    error: {
      code: hasErrorCode ? (receipt.error as string) : SmsErrorCode.UNDELIVERED,
      message: `SMSC receipt stat:${receipt.stat}${receipt.error ? ` err:${receipt.error}` : ''}`,
    },
    details,
  };
}
