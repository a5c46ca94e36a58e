/**
 * Delivery receipts (provider webhooks, SMPP deliver_sm) move a sent message on to
 * delivered, read or failed. Receipts arrive late, twice, or out of order, so a state never
 * moves backwards: `read` is never undone by a late `delivered`, and a final outcome of our
 * own (dead) is never overwritten.
 *
 * Applying receipts and writing a sink's own outcomes both read a message's state and then
 * write the next one. Within a process they take turns per connector (`inReceiptTurn`), so
 * that neither writes over a state the other wrote after its read: an SMSC sends its receipt
 * right after submit_sm_resp, while the sink is writing `sent`.
 */
import type { DeliveryUpdate } from '@omnibus/sdk';
import type { Delivery, DeliveryState, MessagePosition, NewMessageEvent, Store } from '../store/port.ts';

const ACCEPTS: Record<DeliveryUpdate['state'], ReadonlySet<DeliveryState>> = {
  delivered: new Set(['pending', 'sending', 'retrying', 'unknown', 'sent', 'failed']),
  read: new Set(['pending', 'sending', 'retrying', 'unknown', 'sent', 'delivered', 'failed']),
  failed: new Set(['pending', 'sending', 'retrying', 'unknown', 'sent']),
};

export interface ReceiptResult {
  applied: number;
  /** Receipts that would have moved a state backwards (kept as events only). */
  ignored: number;
  /** Receipts naming no message we know. */
  unmatched: number;
}

/**
 * A receipt can name a provider id whose mapping is stored with our `sent` row, moments after
 * the provider answered (an SMSC sends deliver_sm right after submit_sm_resp), or a message
 * whose id index entry is still being written (it follows the buffer row a sink reads): such
 * receipts are tried again after these delays before they are given up as unmatched.
 */
const UNMATCHED_RETRY_DELAYS_MS = [250, 1000, 4000];

export async function applyDeliveryUpdates(
  store: Store,
  connector: string,
  updates: readonly DeliveryUpdate[],
  workerId: string,
  attempt = 0,
): Promise<ReceiptResult> {
  const result: ReceiptResult = { applied: 0, ignored: 0, unmatched: 0 };
  const named: Array<{ messageId: string; update: DeliveryUpdate }> = [];
  const unmatched: DeliveryUpdate[] = [];
  for (const update of updates) {
    const messageId = update.messageId ?? (update.providerId ? await store.findByProviderId(connector, update.providerId) : undefined);
    if (messageId) named.push({ messageId, update });
    else unmatched.push(update);
  }
  const positions = named.length > 0 ? await store.locateMessages(named.map((r) => r.messageId)) : new Map<string, MessagePosition>();
  const resolved: Array<{ position: MessagePosition; update: DeliveryUpdate }> = [];
  for (const { messageId, update } of named) {
    const position = positions.get(messageId);
    if (position) resolved.push({ position, update });
    else unmatched.push(update);
  }
  result.unmatched = unmatched.length;
  const retryIn = UNMATCHED_RETRY_DELAYS_MS[attempt];
  if (unmatched.length > 0 && retryIn !== undefined) {
    // Best effort: the worker may stop (and close the store) before the timer fires.
    setTimeout(() => void applyDeliveryUpdates(store, connector, unmatched, workerId, attempt + 1).catch(() => undefined), retryIn).unref();
  }
  if (resolved.length === 0) return result;
  await inReceiptTurn(store, connector, () => applyResolved(store, connector, resolved, workerId, result));
  return result;
}

/** Writes the states the receipts move their messages to, and their events; counts them in `result`. */
async function applyResolved(
  store: Store,
  connector: string,
  resolved: ReadonlyArray<{ position: MessagePosition; update: DeliveryUpdate }>,
  workerId: string,
  result: ReceiptResult,
): Promise<void> {
  const current = await store.getDeliveries(
    connector,
    resolved.map((r) => r.position),
  );
  const now = Date.now();
  const rows = new Map<string, Delivery>();
  const events: NewMessageEvent[] = [];
  // Oldest first, so that two receipts of one message in one call end in the later state.
  for (const { position, update } of [...resolved].sort((a, b) => a.update.at - b.update.at)) {
    const { messageId } = position;
    const before = rows.get(messageId) ?? current.get(messageId);
    const applies = !before || ACCEPTS[update.state].has(before.state);
    if (applies) {
      rows.set(messageId, {
        ...position,
        connector,
        state: update.state,
        attempts: before?.attempts ?? 0,
        epoch: before?.epoch ?? 0,
        workerId: before?.workerId ?? workerId,
        ...(before?.providerId ?? update.providerId ? { providerId: before?.providerId ?? update.providerId } : {}),
        ...(update.error ?? before?.lastError ? { lastError: update.error ?? before?.lastError } : {}),
        updatedAt: now,
      });
      result.applied += 1;
    } else {
      result.ignored += 1;
    }
    events.push({
      messageId,
      topic: position.topic,
      at: update.at,
      type: update.state,
      connector,
      workerId,
      detail: {
        receipt: true,
        ...(applies ? {} : { ignored: `already ${before?.state}` }),
        ...(update.providerId ? { providerId: update.providerId } : {}),
        ...(update.error ? { error: update.error } : {}),
        ...update.details,
      },
    });
  }
  if (rows.size > 0) await store.putDeliveries([...rows.values()]);
  await store.appendEvents(events);
}

/** The latest work to end of each connector's turns, per store. */
const turns = new WeakMap<Store, Map<string, Promise<void>>>();

/**
 * Runs `work` (a read of delivery states and the writes that follow from it) once the
 * connector's previous turn in this process has ended, and holds the next until it ends.
 */
export async function inReceiptTurn<T>(store: Store, connector: string, work: () => Promise<T>): Promise<T> {
  let ofStore = turns.get(store);
  if (!ofStore) turns.set(store, (ofStore = new Map()));
  const previous = ofStore.get(connector);
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  ofStore.set(connector, ended);
  try {
    if (previous) await previous;
    return await work();
  } finally {
    end();
    if (ofStore.get(connector) === ended) ofStore.delete(connector);
  }
}

/** States only a receipt gives a message that we sent. */
const RECEIPT_STATES: ReadonlySet<DeliveryState> = new Set(['delivered', 'read', 'failed']);

/**
 * A provider can confirm a message before our own `sent` is stored: an SMSC sends the
 * receipt right after submit_sm_resp, a webhook can beat the HTTP response home. The `sent`
 * rows about to be written keep the state such a receipt already moved them to.
 */
export async function keepReceiptStates(store: Store, connector: string, rows: Delivery[]): Promise<Delivery[]> {
  const sent = rows.filter((row) => row.state === 'sent');
  if (sent.length === 0) return rows;
  const current = await store.getDeliveries(connector, sent);
  return rows.map((row) => {
    const stored = current.get(row.messageId);
    if (row.state !== 'sent' || !stored || !RECEIPT_STATES.has(stored.state)) return row;
    return { ...row, state: stored.state, ...(stored.lastError ? { lastError: stored.lastError } : {}) };
  });
}
