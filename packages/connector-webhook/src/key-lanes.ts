/**
 * Posts a batch of records in order per key, several POSTs at once. Each lane takes whole keys
 * (all the batch's records of a key go through one lane, in batch order) and posts them in
 * chunks of up to `perPost` records, so a key's records reach the endpoint in order whether a
 * POST carries one record or many. Once a chunk must be retried, the later records of its keys
 * are not posted: they are held (retried after it), so the receiver never sees them first.
 */
import type { SinkOutcome } from '@omnibus/sdk';

export interface LaneLimits {
  /** POSTs in flight at once. */
  inFlight: number;
  /** Most records in one POST. */
  perPost: number;
}

const held = (after: SinkOutcome): SinkOutcome => ({
  status: 'retry',
  error: { code: 'OMNI_ERR_WEBHOOK_HELD', message: 'an earlier record of its key is being retried' },
  ...(after.status === 'retry' && after.retryAfterMs !== undefined ? { retryAfterMs: after.retryAfterMs } : {}),
});

export async function postInKeyOrder(
  records: ReadonlyArray<{ key: string }>,
  limits: LaneLimits,
  post: (indexes: number[]) => Promise<SinkOutcome>,
): Promise<SinkOutcome[]> {
  const outcomes = new Array<SinkOutcome>(records.length);
  const byKey = new Map<string, number[]>();
  records.forEach((record, i) => {
    const list = byKey.get(record.key);
    if (list) list.push(i);
    else byKey.set(record.key, [i]);
  });
  const keys = [...byKey.values()];
  let nextKey = 0;

  const lane = async (): Promise<void> => {
    // The keys this lane took and has records of left to post, each as its remaining indexes.
    let open: number[][] = [];
    for (;;) {
      const chunk: number[] = [];
      const touched: number[][] = [];
      const take = (queue: number[]) => {
        touched.push(queue);
        chunk.push(...queue.splice(0, limits.perPost - chunk.length));
      };
      for (const queue of open) if (chunk.length < limits.perPost) take(queue);
      while (chunk.length < limits.perPost && nextKey < keys.length) {
        const queue = keys[nextKey++]!;
        open.push(queue);
        take(queue);
      }
      if (chunk.length === 0) return;
      const outcome = await post(chunk);
      for (const i of chunk) outcomes[i] = outcome;
      if (outcome.status === 'retry') {
        for (const queue of touched) for (const i of queue.splice(0)) outcomes[i] = held(outcome);
      }
      open = open.filter((queue) => queue.length > 0);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limits.inFlight, keys.length)) }, lane));
  return outcomes;
}
