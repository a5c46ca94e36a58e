/**
 * The LMDB store's group tallies and cancellations (see group-tally.ts for the design):
 *   group_tallies [group, topic, shard] → GroupTally
 *   group_marks [group, topic, shard, connector, messageId] → GroupMark
 *   cancelled_messages [topic, shard, messageId] → when
 *   cancelled_groups group → when
 * A write carrying a group runs in a write transaction (not a batch): its reads of the marks
 * then see every earlier commit, of this process or another, and its own writes.
 */
import type { Database, Key, RootDatabase } from 'lmdb';
import { byPartition, emptyTally, foldChanges, markKeysOf, type GroupMark, type TallyChange } from './group-tally.ts';
import type { GroupTally, MessagePosition } from './port.ts';

/** Sorts after every key component we write: closes a prefix range. */
const AFTER_ALL = Buffer.from([0xff]);

export interface LmdbGroupTables {
  groupTallies: Database<GroupTally, Key>;
  groupMarks: Database<GroupMark, Key>;
  cancelledMessages: Database<number, Key>;
  cancelledGroups: Database<number, string>;
}

export const GROUP_TABLE_NAMES: Record<keyof LmdbGroupTables, string> = {
  groupTallies: 'group_tallies',
  groupMarks: 'group_marks',
  cancelledMessages: 'cancelled_messages',
  cancelledGroups: 'cancelled_groups',
};

export class LmdbGroups {
  constructor(
    private readonly root: () => RootDatabase,
    private readonly tables: () => LmdbGroupTables,
  ) {}

  /**
   * Runs `write` (the rows' own puts) in a batch, or, when `changes` move a tally, in a write
   * transaction that also folds them in: one commit either way.
   */
  write(changes: readonly TallyChange[], write: () => void): Promise<unknown> {
    if (changes.length === 0) return this.root().batch(write);
    return this.root().transaction(() => {
      write();
      this.fold(changes);
    });
  }

  /** Inside a write transaction: reads the marks the changes touch, moves the tallies, writes both. */
  fold(changes: readonly TallyChange[]): void {
    const { groupTallies, groupMarks } = this.tables();
    for (const partition of byPartition(changes)) {
      const { group, topic, shard } = partition;
      const tally = groupTallies.get([group, topic, shard]) ?? emptyTally(topic, shard);
      const marks = new Map<string, GroupMark>();
      for (const key of markKeysOf(partition)) {
        const [connector, messageId] = key.split('\u0000') as [string, string];
        const mark = groupMarks.get([group, topic, shard, connector, messageId]);
        if (mark) marks.set(key, mark);
      }
      const written = foldChanges(tally, marks, partition.changes);
      if (written.size === 0) continue;
      for (const [key, mark] of written) {
        const [connector, messageId] = key.split('\u0000') as [string, string];
        groupMarks.put([group, topic, shard, connector, messageId], mark);
      }
      groupTallies.put([group, topic, shard], tally);
    }
  }

  readTallies(group: string): GroupTally[] {
    return [...this.tables().groupTallies.getRange({ start: [group], end: [group, AFTER_ALL] }).map(({ value }) => value)];
  }

  async cancelMessages(positions: readonly MessagePosition[], at = Date.now()): Promise<void> {
    const { cancelledMessages } = this.tables();
    await this.root().batch(() => {
      for (const { topic, shard, messageId } of positions) cancelledMessages.put([topic, shard, messageId], at);
    });
  }

  async cancelGroup(group: string, at: number): Promise<void> {
    const { cancelledGroups } = this.tables();
    await this.root().batch(() => cancelledGroups.put(group, at));
  }

  cancelledAmong(positions: readonly MessagePosition[]): Set<string> {
    const { cancelledMessages, cancelledGroups } = this.tables();
    const cancelled = new Set<string>();
    const groups = new Map<string, boolean>();
    // Cancellations are rare: a topic none of whose messages is cancelled costs one look per
    // batch, not one per message (a batch is mostly of one topic: the last one's answer is kept).
    const topicsWithCancellations = new Map<string, boolean>();
    let lastTopic: string | undefined;
    let lastAny = false;
    for (const { topic, shard, messageId, group } of positions) {
      if (topic !== lastTopic) {
        let any = topicsWithCancellations.get(topic);
        if (any === undefined) {
          any = false;
          for (const _ of cancelledMessages.getKeys({ start: [topic], end: [topic, AFTER_ALL], limit: 1 })) any = true;
          topicsWithCancellations.set(topic, any);
        }
        lastTopic = topic;
        lastAny = any;
      }
      if (lastAny && cancelledMessages.get([topic, shard, messageId]) !== undefined) {
        cancelled.add(messageId);
        continue;
      }
      if (group === undefined) continue;
      let groupCancelled = groups.get(group);
      if (groupCancelled === undefined) groups.set(group, (groupCancelled = cancelledGroups.get(group) !== undefined));
      if (groupCancelled) cancelled.add(messageId);
    }
    return cancelled;
  }

  /** The retention sweep: the cancellations of removed messages go with them. */
  forgetCancelled(topic: string, shard: number, messageIds: readonly string[]): void {
    const { cancelledMessages } = this.tables();
    for (const id of messageIds) cancelledMessages.remove([topic, shard, id]);
  }
}
