/**
 * The suppression list on LMDB: one table keyed [channel, address, category], so an address's
 * entries on a channel are one range and the whole list reads in key order.
 */
import type { Database, Key, RootDatabase } from 'lmdb';
import { coreError } from '../errors.ts';
import type { Suppression, SuppressionPage } from './port.ts';
import { decodeCursor, encodeCursor, suppressionBody, suppressionOf, type SuppressionBody } from './suppression-codec.ts';

type SuppressionKey = [string, string, string];

/** Sorts after every string in lmdb-js's key order. */
const AFTER_ALL_STRINGS = '\uffff';

export class LmdbSuppressions {
  constructor(
    private readonly table: Database<SuppressionBody, Key>,
    /** The root, its read snapshot moved to the newest commit. */
    private readonly fresh: () => RootDatabase,
    private readonly writer: () => RootDatabase,
  ) {}

  async put(entries: Suppression[]): Promise<void> {
    if (entries.length === 0) return;
    await this.writer().transaction(() => {
      for (const entry of entries) this.table.put([entry.channel, entry.address, entry.category], suppressionBody(entry));
    });
  }

  async find(channel: string, addresses: readonly string[]): Promise<Suppression[]> {
    this.fresh();
    const found: Suppression[] = [];
    for (const address of new Set(addresses)) {
      for (const { key, value } of this.table.getRange({ start: [channel, address], end: [channel, address, AFTER_ALL_STRINGS] })) {
        found.push(suppressionOf(channel, address, (key as SuppressionKey)[2], value));
      }
    }
    return found;
  }

  async delete(channel: string, address: string, category?: string): Promise<number> {
    return this.writer().transaction(() => {
      const keys =
        category === undefined
          ? [...this.table.getKeys({ start: [channel, address], end: [channel, address, AFTER_ALL_STRINGS] })]
          : this.table.get([channel, address, category]) !== undefined
            ? [[channel, address, category]]
            : [];
      for (const key of keys) this.table.remove(key);
      return keys.length;
    });
  }

  async list(limit: number, cursor?: string): Promise<SuppressionPage> {
    this.fresh();
    let start: SuppressionKey | undefined;
    if (cursor !== undefined) {
      const after = decodeCursor(cursor);
      let parsed: unknown;
      try {
        parsed = after === undefined ? undefined : JSON.parse(after);
      } catch {
        parsed = undefined;
      }
      if (!Array.isArray(parsed) || parsed.length !== 3 || !parsed.every((part) => typeof part === 'string')) {
        throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'cursor is not one this list gave' });
      }
      start = parsed as SuppressionKey;
    }
    const entries: Suppression[] = [];
    let last: SuppressionKey | undefined;
    for (const { key, value } of this.table.getRange({ ...(start ? { start } : {}), limit: limit + 2 })) {
      const [channel, address, category] = key as SuppressionKey;
      if (start && channel === start[0] && address === start[1] && category === start[2]) continue;
      if (entries.length === limit) return { entries, cursor: encodeCursor(JSON.stringify(last)) };
      entries.push(suppressionOf(channel, address, category, value));
      last = [channel, address, category];
    }
    return { entries };
  }
}
