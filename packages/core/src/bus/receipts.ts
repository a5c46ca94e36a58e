/**
 * Delivery receipts (provider webhooks, SMPP deliver_sm) move a sent message on to
 * delivered, read or failed. Receipts arrive late, twice, or out of order, so a state never
 * moves backwards: `read` is never undone by a late `delivered`, and a final outcome of our
 * own (dead) is never overwritten.
 *
 * A receipt's state is stored beside the sink's own (`putReceiptStates`), so a receipt that
 * lands while the sink writes `sent` (an SMSC sends it right after submit_sm_resp), on this
 * worker or another, is kept: neither write replaces the other, and `getDeliveries` gives the
 * receipt's state where it follows the sink's. Receipts of one message read its state and
 * then write the next: within a process they take turns per connector (`inReceiptTurn`).
 */
import type { DeliveryUpdate, Logger } from '@omnibus/sdk';
import { recordSuppressions } from './consent.ts';
import type { DeliveryChange } from './delivery-events.ts';
import { expediteFallbacks, PERMANENT_FAILURES } from './fallback.ts';
import type { ShardSignals } from './signals.ts';
import { RECEIPT_FOLLOWS, type MessagePosition, type NewMessageEvent, type ReceiptState, type Store } from '../store/port.ts';

export interface ReceiptOptions {
  within?: readonly string[];
  attempt?: number;
  /**
   * Publishes the state changes the receipts make (delivery events), once they are stored. A
   * receipt repeating the current state is published again (same event id: kept once), so a
   * receipt retried after a failed publish still gets its event out.
   */
  publish?: (changes: DeliveryChange[]) => Promise<void>;
  /** Where problems storing the receipts' suppressions are logged. */
  logger?: Logger;
  /** Wakes the scheduler when a `failed` receipt makes a fallback due (bus/fallback.ts). */
  signals?: ShardSignals;
}

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

/**
 * Applies a connector's receipts. `within`: the connector's topics, where its messages are (a
 * store looks for them there first); `attempt`: how many times these were tried already.
 */
export async function applyDeliveryUpdates(
  store: Store,
  connector: string,
  updates: readonly DeliveryUpdate[],
  workerId: string,
  options: ReceiptOptions = {},
): Promise<ReceiptResult> {
  const { within, attempt = 0, publish } = options;
  const result: ReceiptResult = { applied: 0, ignored: 0, unmatched: 0 };
  // What a receipt says about an address holds whether or not its message is found.
  if (attempt === 0) {
    const requests = updates.flatMap((update) => update.suppress ?? []);
    if (requests.length > 0) await recordSuppressions(store, requests, connector, options.logger ?? SILENT);
  }
  const named: Array<{ messageId: string; update: DeliveryUpdate }> = [];
  const unmatched: DeliveryUpdate[] = [];
  for (const update of updates) {
    const messageId = update.messageId ?? (update.providerId ? await store.findByProviderId(connector, update.providerId) : undefined);
    if (messageId) named.push({ messageId, update });
    else unmatched.push(update);
  }
  const positions = named.length > 0 ? await store.locateMessages(named.map((r) => r.messageId), within) : new Map<string, MessagePosition>();
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
    setTimeout(() => void applyDeliveryUpdates(store, connector, unmatched, workerId, { ...options, attempt: attempt + 1 }).catch(() => undefined), retryIn).unref();
  }
  if (resolved.length === 0) return result;
  await inReceiptTurn(store, connector, () => applyResolved(store, connector, resolved, workerId, result, publish, options.signals));
  return result;
}

/** Writes the states the receipts move their messages to, and their events; counts them in `result`. */
async function applyResolved(
  store: Store,
  connector: string,
  resolved: ReadonlyArray<{ position: MessagePosition; update: DeliveryUpdate }>,
  workerId: string,
  result: ReceiptResult,
  publish: ReceiptOptions['publish'],
  signals: ShardSignals | undefined,
): Promise<void> {
  const current = await store.getDeliveries(
    connector,
    resolved.map((r) => r.position),
  );
  const now = Date.now();
  const rows = new Map<string, ReceiptState>();
  const events: NewMessageEvent[] = [];
  const changes: DeliveryChange[] = [];
  // Oldest first, so that two receipts of one message in one call end in the later state.
  for (const { position, update } of [...resolved].sort((a, b) => a.update.at - b.update.at)) {
    const { messageId } = position;
    const before = rows.get(messageId) ?? current.get(messageId);
    const applies = !before || RECEIPT_FOLLOWS[update.state].has(before.state);
    if (applies) {
      const group = position.group ?? before?.group;
      rows.set(messageId, {
        ...position,
        // The group, which the sink's own row carries: the receipt moves the group's tally too.
        ...(group !== undefined ? { group } : {}),
        connector,
        state: update.state,
        workerId,
        ...(before?.providerId ?? update.providerId ? { providerId: before?.providerId ?? update.providerId } : {}),
        ...(update.error ?? before?.lastError ? { lastError: update.error ?? before?.lastError } : {}),
        updatedAt: now,
      });
      result.applied += 1;
    } else {
      result.ignored += 1;
    }
    if (publish && (applies || before?.state === update.state)) {
      changes.push({
        messageId,
        topic: position.topic,
        connector,
        state: update.state,
        at: update.at,
        receipt: true,
        ...(update.providerId ?? before?.providerId ? { providerId: update.providerId ?? before?.providerId } : {}),
        ...(update.error ? { error: update.error } : {}),
      });
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
  if (rows.size > 0) await store.putReceiptStates([...rows.values()]);
  await store.appendEvents(events);
  if (publish && changes.length > 0) await publish(changes);
  // A `failed` receipt releases the message's fallback (if it has one) at once.
  const failed = [...rows.values()].filter((r) => PERMANENT_FAILURES.has(r.state)).map((r) => r.messageId);
  if (failed.length > 0) await expediteFallbacks(store, failed, signals);
}

const SILENT: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => SILENT };

/** The latest work to end of each connector's turns, per store. */
const turns = new WeakMap<Store, Map<string, Promise<void>>>();

/**
 * Runs `work` (a read of delivery states and the receipt states that follow from it) once the
 * connector's previous turn in this process has ended, and holds the next until it ends.
 */
async function inReceiptTurn<T>(store: Store, connector: string, work: () => Promise<T>): Promise<T> {
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
