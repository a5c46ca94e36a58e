/**
 * The suppression list on CQL: one partition per (channel, address), a row per category, the
 * rest of the entry as JSON (`body`). Sinks read an address's partitions before each send;
 * the list pages in token order with the driver's paging state as the cursor.
 */
import type cassandra from 'cassandra-driver';
import { coreError } from '../errors.ts';
import type { Suppression, SuppressionPage } from './port.ts';
import { decodeCursor, encodeCursor, suppressionBody, suppressionOf, type SuppressionBody } from './suppression-codec.ts';

type QueryOptions = cassandra.QueryOptions;
type Execute = (query: string, params: unknown[], options: QueryOptions) => Promise<cassandra.types.ResultSet>;

/** The table (schema migration 6). */
export const suppressionsTable = (ks: string): string =>
  `CREATE TABLE IF NOT EXISTS ${ks}.suppressions (channel text, address text, category text, body text, PRIMARY KEY ((channel, address), category))`;

const COLUMNS = 'channel, address, category, body';

export class CqlSuppressions {
  private readonly q: Record<'insert' | 'selectIn' | 'selectOne' | 'deleteOne' | 'deleteAll' | 'selectAll', string>;

  constructor(
    ks: string,
    private readonly execute: Execute,
    private readonly plain: QueryOptions,
    private readonly idempotent: QueryOptions,
  ) {
    this.q = {
      insert: `INSERT INTO ${ks}.suppressions (${COLUMNS}) VALUES (?, ?, ?, ?)`,
      selectIn: `SELECT ${COLUMNS} FROM ${ks}.suppressions WHERE channel = ? AND address IN ?`,
      selectOne: `SELECT ${COLUMNS} FROM ${ks}.suppressions WHERE channel = ? AND address = ?`,
      deleteOne: `DELETE FROM ${ks}.suppressions WHERE channel = ? AND address = ? AND category = ?`,
      deleteAll: `DELETE FROM ${ks}.suppressions WHERE channel = ? AND address = ?`,
      selectAll: `SELECT ${COLUMNS} FROM ${ks}.suppressions`,
    };
  }

  async put(entries: Suppression[]): Promise<void> {
    await Promise.all(
      entries.map((entry) => this.execute(this.q.insert, [entry.channel, entry.address, entry.category, JSON.stringify(suppressionBody(entry))], this.idempotent)),
    );
  }

  async find(channel: string, addresses: readonly string[]): Promise<Suppression[]> {
    const unique = [...new Set(addresses)];
    if (unique.length === 0) return [];
    const result = await this.execute(this.q.selectIn, [channel, unique], { ...this.plain, fetchSize: unique.length * 8 + 100 });
    return result.rows.map(fromRow);
  }

  async delete(channel: string, address: string, category?: string): Promise<number> {
    const present = (await this.execute(this.q.selectOne, [channel, address], this.plain)).rows.map(fromRow);
    const removed = category === undefined ? present : present.filter((entry) => entry.category === category);
    if (removed.length === 0) return 0;
    if (category === undefined) await this.execute(this.q.deleteAll, [channel, address], this.idempotent);
    else await this.execute(this.q.deleteOne, [channel, address, category], this.idempotent);
    return removed.length;
  }

  async list(limit: number, cursor?: string): Promise<SuppressionPage> {
    let pageState: string | undefined;
    if (cursor !== undefined) {
      const decoded = decodeCursor(cursor);
      if (decoded === undefined || !/^[0-9a-f]+$/.test(decoded)) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'cursor is not one this list gave' });
      pageState = decoded;
    }
    const result = await this.execute(this.q.selectAll, [], { ...this.plain, fetchSize: limit, ...(pageState ? { pageState } : {}) });
    const entries = result.rows.map(fromRow);
    return result.pageState ? { entries, cursor: encodeCursor(result.pageState) } : { entries };
  }
}

function fromRow(row: cassandra.types.Row): Suppression {
  return suppressionOf(row.get('channel') as string, row.get('address') as string, row.get('category') as string, JSON.parse(row.get('body') as string) as SuppressionBody);
}
