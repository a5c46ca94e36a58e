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
 */
import { RECEIPT_FOLLOWS, type DeliveryState, type GroupTally, type Message, type MessagePosition, type ReceiptState, type ReceiptStateName } from './port.ts';

/** What the tally last counted for one (connector, message): the sink's own state and the receipt's. */
export interface GroupMark {
  own?: DeliveryState;
  receipt?: ReceiptStateName;
}

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
      if (before) continue;
      tally.messages += 1;
      marks.set(key, {});
      written.set(key, {});
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

/** Adds a partition's tally into the (topic, shard) tally that sums its connectors' partitions. */
export function addTally(into: GroupTally, part: Omit<GroupTally, 'topic' | 'shard'>): void {
  into.messages += part.messages;
  for (const [connector, counts] of Object.entries(part.connectors)) {
    const sum = (into.connectors[connector] ??= {});
    for (const [state, n] of Object.entries(counts) as Array<[DeliveryState, number]>) sum[state] = (sum[state] ?? 0) + n;
  }
}

/** The partition's mark keys that its changes touch. */
export const markKeysOf = (partition: TallyPartition): string[] => [...new Set(partition.changes.map((c) => markKey(c.connector, c.messageId)))];

/** A group's report: messages, and per connector its counts by state with pending (for the topics it reads). */
export function groupReport(tallies: readonly GroupTally[], readers: ReadonlyMap<string, readonly string[]>) {
  const connectors: Record<string, Partial<Record<DeliveryState, number>>> = {};
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
      const pending = tally.messages - counted;
      if (pending > 0) counts.pending = (counts.pending ?? 0) + pending;
    }
  }
  return { messages, connectors };
}
