/**
 * Held messages on LMDB (see `Store.putScheduled`): two tables,
 *   scheduled_messages [dueAt, id] → the message and why it is held
 *   scheduled_ids      id → dueAt
 * An ordered key-value store needs no due-minute partitions: a range read from one due time to
 * another touches exactly the entries due in between, and nothing due later. A held message of
 * a group is counted in its tally (`scheduled`) in the transaction that holds it.
 */
import type { Database, Key, RootDatabase } from 'lmdb';
import { heldChanges, type TallyChange } from './group-tally.ts';
import { checkMessages } from './lmdb-cql-common.ts';
import type { FallbackCondition, Message, ScheduledMessage, ScheduledReason, ScheduledRef, Topic } from './port.ts';

/** A held message as stored: less what its key holds. */
interface StoredScheduled {
  message: Omit<Message, 'id'>;
  reason: ScheduledReason;
  fallback?: FallbackCondition;
}

export interface LmdbScheduledTables {
  scheduledMessages: Database<StoredScheduled, Key>;
  scheduledIds: Database<number, string>;
}

/** What the scheduled tables need of the store that opened them. */
export interface LmdbScheduledAccess {
  tables(): LmdbScheduledTables;
  /** Moves the read snapshot to the newest commit. */
  fresh(): void;
  writer(): RootDatabase;
  /** Resolves once the commit is flushed to disk. */
  durably(commit: Promise<unknown>): Promise<void>;
  /** Inside a write transaction: moves the group tallies by these changes (lmdb-groups.ts). */
  tally(changes: readonly TallyChange[]): void;
  topicOf(name: string): Topic | undefined;
}

export const LMDB_SCHEDULED_TABLES = { scheduledMessages: 'scheduled_messages', scheduledIds: 'scheduled_ids' } as const;

const AFTER_ALL = Buffer.from([0xff]);

export class LmdbScheduled {
  constructor(private readonly access: LmdbScheduledAccess) {}

  async put(entries: ScheduledMessage[]): Promise<void> {
    if (entries.length === 0) return;
    this.access.fresh();
    checkMessages(
      entries.map((e) => e.message),
      (name) => this.access.topicOf(name),
    );
    const { scheduledMessages, scheduledIds } = this.access.tables();
    await this.access.durably(
      this.access.writer().transaction(() => {
        for (const { message, dueAt, reason, fallback } of entries) {
          const previous = scheduledIds.get(message.id);
          if (previous !== undefined && previous !== dueAt) scheduledMessages.remove([previous, message.id]);
          const { id, ...rest } = message;
          scheduledMessages.put([dueAt, id], fallback ? { message: rest, reason, fallback } : { message: rest, reason });
          scheduledIds.put(id, dueAt);
        }
        // The group counts a held message in the transaction that holds it: both or neither.
        this.access.tally(heldChanges(entries));
      }),
    );
  }

  async get(ids: readonly string[]): Promise<Map<string, ScheduledMessage>> {
    this.access.fresh();
    const { scheduledMessages, scheduledIds } = this.access.tables();
    const found = new Map<string, ScheduledMessage>();
    for (const id of ids) {
      const dueAt = scheduledIds.get(id);
      if (dueAt === undefined) continue;
      const stored = scheduledMessages.get([dueAt, id]);
      if (stored) found.set(id, entryOf(dueAt, id, stored));
    }
    return found;
  }

  async readDue(fromDueAt: number, toDueAt: number, limit: number): Promise<ScheduledMessage[]> {
    if (limit <= 0 || fromDueAt > toDueAt) return [];
    this.access.fresh();
    const range = this.access.tables().scheduledMessages.getRange({ start: [fromDueAt], end: [toDueAt, AFTER_ALL], limit });
    return [...range.map(({ key, value }) => entryOf((key as [number, string])[0], (key as [number, string])[1], value))];
  }

  async remove(entries: ReadonlyArray<ScheduledRef>): Promise<void> {
    if (entries.length === 0) return;
    const { scheduledMessages, scheduledIds } = this.access.tables();
    await this.access.writer().transaction(() => {
      for (const { id, dueAt } of entries) {
        scheduledMessages.remove([dueAt, id]);
        if (scheduledIds.get(id) === dueAt) scheduledIds.remove(id);
      }
    });
  }
}

function entryOf(dueAt: number, id: string, stored: StoredScheduled): ScheduledMessage {
  return { message: { id, ...stored.message }, dueAt, reason: stored.reason, ...(stored.fallback ? { fallback: stored.fallback } : {}) };
}
