/** ExtractNewRecordState on the change events Omnibus's ScyllaDB CDC source produces (see packages/cdc-source/src/envelope.ts). */
import { runTransformation } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { ExtractNewRecordState, ScyllaExtractNewRecordState } from './debezium.ts';

const source = { version: '0.1.0', connector: 'scylla', name: 'shop', ts_ms: 1700000000123, ts_us: 1700000000123456, snapshot: false, db: 'shop', keyspace_name: 'shop', table_name: 'orders' };
const insert = { before: null, after: { id: 1, to: 'ada@example.org', total: 12 }, op: 'c', ts_ms: 1700000000200, source };
const update = { before: { id: 1, to: 'ada@example.org', total: 12 }, after: { id: 1, to: 'ada@example.org', total: 15 }, op: 'u', ts_ms: 1700000000300, source };
const deletion = { before: { id: 1, to: 'ada@example.org', total: 15 }, after: null, op: 'd', ts_ms: 1700000000400, source };

const values = (config: Record<string, unknown>, events: unknown[]) => runTransformation(ExtractNewRecordState, config, events.map((value) => ({ value }))).map((r) => (r === null ? 'dropped' : r.value));

describe('ExtractNewRecordState', () => {
  it('gives the row after an insert or update; by default drops deletes and tombstones', () => {
    expect(values({}, [insert, update, deletion, null])).toEqual([insert.after, update.after, 'dropped', 'dropped']);
  });

  it('delete.handling.mode=rewrite gives the row before a delete with __deleted, and drop.tombstones=false keeps tombstones', () => {
    expect(values({ 'delete.handling.mode': 'rewrite', 'drop.tombstones': 'false' }, [insert, deletion, null])).toEqual([
      { ...insert.after, __deleted: 'false' },
      { ...deletion.before, __deleted: 'true' },
      null,
    ]);
    expect(values({ 'delete.handling.mode': 'none' }, [deletion, null])).toEqual([null, 'dropped']);
  });

  it('delete.tombstone.handling.mode decides when set', () => {
    expect(values({ 'delete.tombstone.handling.mode': 'drop' }, [deletion, null])).toEqual(['dropped', 'dropped']);
    expect(values({ 'delete.tombstone.handling.mode': 'tombstone' }, [deletion, null])).toEqual([null, 'dropped']);
    expect(values({ 'delete.tombstone.handling.mode': 'rewrite' }, [deletion, null])).toEqual([{ ...deletion.before, __deleted: 'true' }, 'dropped']);
    expect(values({ 'delete.tombstone.handling.mode': 'rewrite-with-tombstone' }, [deletion, null])).toEqual([{ ...deletion.before, __deleted: 'true' }, null]);
    expect(values({ 'delete.tombstone.handling.mode': 'delete-to-tombstone', 'drop.tombstones': 'true' }, [deletion, null])).toEqual([null, null]);
  });

  it('add.fields and add.headers copy envelope and source fields (Debezium docs: op,table,source.ts_ms)', () => {
    const [out] = runTransformation(ExtractNewRecordState, { 'add.fields': 'op,table_name,source.ts_ms', 'add.headers': 'op,db', 'add.headers.prefix': 'cdc.' }, [{ value: insert }]);
    expect(out?.value).toEqual({ ...insert.after, __op: 'c', __table_name: 'orders', __source_ts_ms: 1700000000123 });
    expect(out?.headers).toEqual({ 'cdc.op': 'c', 'cdc.db': 'shop' });
  });

  it('passes through a value that is not a change event', () => {
    expect(values({}, [{ hello: 'world' }, 'text'])).toEqual([{ hello: 'world' }, 'text']);
  });
});

describe('ScyllaExtractNewRecordState', () => {
  it("unwraps the {value} cells of ScyllaDB's legacy format; a cell not set is null", () => {
    const legacy = { before: null, after: { id: 1, to: { value: 'ada@example.org' }, total: { value: 12 }, note: null }, op: 'c', ts_ms: 1, source };
    const [out] = runTransformation(ScyllaExtractNewRecordState, {}, [{ value: legacy }]);
    expect(out?.value).toEqual({ id: 1, to: 'ada@example.org', total: 12, note: null });
  });

  it('leaves the plain rows Omnibus produces as they are', () => {
    const [out] = runTransformation(ScyllaExtractNewRecordState, {}, [{ value: update }]);
    expect(out?.value).toEqual(update.after);
  });
});
