/**
 * Exact group counts, kept as states change, on both stores.
 *
 * A group's messages are counted per (group, topic, shard) in a tally ({@link GroupTally}):
 * how many were produced there, and per connector how many are in each state. Beside the tally
 * the store keeps one mark per (connector, message) of the group: the sink's own state and the
 * receipt's state last counted for it. A write that carries a group (a produced message, a
 * delivery row, a receipt state) reads the marks of its messages, moves each message's count
 * from the state its old mark gives to the state its new mark gives, and writes the new marks
 * with the new tally — together:
 *
 * - LMDB: in the write's own transaction (the tally and marks are rows like the others).
 * - CQL: a lightweight transaction on the tally's partition, which holds the tally (static
 *   columns, with a version) and the marks (its rows): read the version and the marks, then one
 *   conditional batch writes the marks and the tally `IF version = <read>`; a lost race reads
 *   again. Counter columns are not used: a counter increment retried after a timeout counts
 *   twice, while a mark makes the same change written twice count once.
 *
 * So a write repeated (a retried store call, a produce with the same id, a receipt sent twice)
 * finds its marks already written and changes nothing, and writers need no lease: the sink
 * task owning the shard and receipts applied by any worker tally the same partition. On CQL
 * the tally is written before the delivery rows (and after a produce's buffer rows): if a
 * worker stops between the two, the delivery is written again by whoever owns the shard next
 * (an in-doubt `sending` becomes `unknown` or is sent again, a receipt is repeated by its
 * provider), which moves the tally to the truth.
 *
 * Counts follow `getDeliveries`: the receipt's state where it follows the sink's
 * ({@link effectiveState}). A message with no state for a connector counts as pending.
 *
 * A message held for later (send_at, quiet hours) is counted when it is held, in the same write
 * as its hold (LMDB: the same transaction; CQL: right after the held rows, as a produce's
 * buffer rows): `messages` counts it and `scheduled` too, and its produced mark says `held`.
 * Its release appends it to the buffer, which marks it produced again: a held mark becomes a
 * plain one and `scheduled` goes down by one; `messages` is not counted again. A report shows
 * `scheduled` for every connector reading the topic (a connector added while it is held too).
 * A fallback is not counted while held: it may never be sent (its original's state drops it),
 * so it is counted when released, as any produced message.
 */
import { RECEIPT_FOLLOWS, type DeliveryState, type GroupTally, type Message, type MessagePosition, type ReceiptState, type ReceiptStateName, type ScheduledMessage } from './port.ts';

/** What the tally last counted for one (connector, message): the sink's own state and the receipt's; for a produced mark, whether it is still held. */
export interface GroupMark {
  own?: DeliveryState;
  receipt?: ReceiptStateName;
  held?: true;
}

/** A state a group report counts a message in: a delivery state, or `scheduled` while it is held for later. */
export type GroupState = DeliveryState | 'scheduled';

/** The connector name under which a produced message is marked (counted in `messages`). */
export const PRODUCED = '';

/** One change to one message of a group: produced, or a new own or receipt state for a connector. */
export interface TallyChange {
  group: string;
  topic: string;
  shard: number;
  messageId: string;
  /** {@link PRODUCED} for a produced message. */
  connector: string;
  own?: DeliveryState;
  receipt?: ReceiptStateName;
  /** For a message held for later: when it is due (ms since the epoch). Its marks are kept until then and its topic's retention after. */
  heldUntil?: number;
}

/**
 * The changes of one tally partition: (group, topic, shard, connector). One connector's writes
 * (its sink task's and its receipts') never contend with another's, nor with produces.
 */
export interface TallyPartition {
  group: string;
  topic: string;
  shard: number;
  connector: string;
  changes: TallyChange[];
}

export const markKey = (connector: string, messageId: string) => `${connector}\u0000${messageId}`;

export const emptyTally = (topic: string, shard: number): GroupTally => ({ topic, shard, messages: 0, connectors: {} });

/** The state a mark counts in: the receipt's where it follows the sink's (as `withReceipt`); none for pending. */
export function effectiveState(mark: GroupMark | undefined): DeliveryState | undefined {
  if (!mark) return undefined;
  const { own, receipt } = mark;
  const state = receipt && (!own || RECEIPT_FOLLOWS[receipt].has(own)) ? receipt : own;
  return state === 'pending' ? undefined : state;
}

export function messageChanges(messages: readonly Message[]): TallyChange[] {
  const changes: TallyChange[] = [];
  for (const m of messages) {
    if (m.group !== undefined) changes.push({ group: m.group, topic: m.topic, shard: m.shard, messageId: m.id, connector: PRODUCED });
  }
  return changes;
}

/** Held messages of a group, counted while held (fallbacks are not: see above). */
export function heldChanges(entries: readonly ScheduledMessage[]): TallyChange[] {
  const changes: TallyChange[] = [];
  for (const { message: m, dueAt, reason } of entries) {
    if (m.group !== undefined && reason !== 'fallback') changes.push({ group: m.group, topic: m.topic, shard: m.shard, messageId: m.id, connector: PRODUCED, heldUntil: dueAt });
  }
  return changes;
}

export function deliveryChanges(rows: ReadonlyArray<MessagePosition & { connector: string; state: DeliveryState }>): TallyChange[] {
  const changes: TallyChange[] = [];
  for (const d of rows) {
    if (d.group !== undefined) changes.push({ group: d.group, topic: d.topic, shard: d.shard, messageId: d.messageId, connector: d.connector, own: d.state });
  }
  return changes;
}

export function receiptChanges(receipts: readonly ReceiptState[]): TallyChange[] {
  const changes: TallyChange[] = [];
  for (const r of receipts) {
    if (r.group !== undefined) changes.push({ group: r.group, topic: r.topic, shard: r.shard, messageId: r.messageId, connector: r.connector, receipt: r.state });
  }
  return changes;
}

/** The changes by tally partition. */
export function byPartition(changes: readonly TallyChange[]): TallyPartition[] {
  const partitions = new Map<string, TallyPartition>();
  for (const change of changes) {
    const key = `${change.group}\u0000${change.topic}\u0000${change.shard}\u0000${change.connector}`;
    let partition = partitions.get(key);
    if (!partition) partitions.set(key, (partition = { group: change.group, topic: change.topic, shard: change.shard, connector: change.connector, changes: [] }));
    partition.changes.push(change);
  }
  return [...partitions.values()];
}

/**
 * Applies one partition's changes, in order, to its tally (changed in place) and its marks
 * (`marks`: the current mark of each changed message, by {@link markKey}; updated in place).
 * Answers the marks that changed: what to write with the tally. Nothing changed, nothing to write.
 */
export function foldChanges(tally: GroupTally, marks: Map<string, GroupMark>, changes: readonly TallyChange[]): Map<string, GroupMark> {
  const written = new Map<string, GroupMark>();
  for (const change of changes) {
    const key = markKey(change.connector, change.messageId);
    const before = marks.get(key);
    if (change.connector === PRODUCED) {
      const mark = producedMark(tally, before, change.heldUntil !== undefined);
      if (mark) {
        marks.set(key, mark);
        written.set(key, mark);
      }
      continue;
    }
    const after: GroupMark = { ...before };
    if (change.own !== undefined) after.own = change.own;
    if (change.receipt !== undefined) after.receipt = change.receipt;
    if (before && before.own === after.own && before.receipt === after.receipt) continue;
    const from = effectiveState(before);
    const to = effectiveState(after);
    if (from !== to) {
      const counts = (tally.connectors[change.connector] ??= {});
      if (from !== undefined) {
        counts[from] = (counts[from] ?? 0) - 1;
        if (counts[from] === 0) delete counts[from];
      }
      if (to !== undefined) counts[to] = (counts[to] ?? 0) + 1;
    }
    marks.set(key, after);
    written.set(key, after);
  }
  return written;
}

/**
 * Counts a message held (`held`) or appended to the buffer (produced, or released) once: the new
 * mark to write, or none when the tally has it counted so already. A hold after its release
 * (a retried write landing late) changes nothing; a release after its hold moves it from
 * `scheduled` to the connectors' states.
 */
function producedMark(tally: GroupTally, before: GroupMark | undefined, held: boolean): GroupMark | undefined {
  if (held) {
    if (before) return undefined;
    tally.messages += 1;
    tally.scheduled = (tally.scheduled ?? 0) + 1;
    return { held: true };
  }
  if (before && !before.held) return undefined;
  if (before && (tally.scheduled ?? 0) > 0) {
    tally.scheduled! -= 1;
    if (tally.scheduled === 0) delete tally.scheduled;
  } else {
    // Never counted, or counted held by a tally that has expired since (CQL: a tally outlived by its marks): count it now.
    tally.messages += 1;
  }
  return {};
}

/** Adds a partition's tally into the (topic, shard) tally that sums its connectors' partitions. */
export function addTally(into: GroupTally, part: Omit<GroupTally, 'topic' | 'shard'>): void {
  into.messages += part.messages;
  if (part.scheduled) into.scheduled = (into.scheduled ?? 0) + part.scheduled;
  for (const [connector, counts] of Object.entries(part.connectors)) {
    const sum = (into.connectors[connector] ??= {});
    for (const [state, n] of Object.entries(counts) as Array<[DeliveryState, number]>) sum[state] = (sum[state] ?? 0) + n;
  }
}

/** The partition's mark keys that its changes touch. */
export const markKeysOf = (partition: TallyPartition): string[] => [...new Set(partition.changes.map((c) => markKey(c.connector, c.messageId)))];

/**
 * A group's report: messages, and per connector its counts by state with `scheduled` (held for
 * later) and pending (for the topics it reads).
 */
export function groupReport(tallies: readonly GroupTally[], readers: ReadonlyMap<string, readonly string[]>) {
  const connectors: Record<string, Partial<Record<GroupState, number>>> = {};
  let messages = 0;
  for (const tally of tallies) {
    messages += tally.messages;
    for (const connector of readers.get(tally.topic) ?? []) {
      const counts = (connectors[connector] ??= {});
      let counted = 0;
      for (const [state, n] of Object.entries(tally.connectors[connector] ?? {}) as Array<[DeliveryState, number]>) {
        counts[state] = (counts[state] ?? 0) + n;
        counted += n;
      }
      // On CQL a sink can count a released message a moment before its release is tallied: never more than the messages.
      const scheduled = Math.min(tally.scheduled ?? 0, Math.max(0, tally.messages - counted));
      if (scheduled > 0) counts.scheduled = (counts.scheduled ?? 0) + scheduled;
      const pending = tally.messages - counted - scheduled;
      if (pending > 0) counts.pending = (counts.pending ?? 0) + pending;
    }
  }
  return { messages, connectors };
}
