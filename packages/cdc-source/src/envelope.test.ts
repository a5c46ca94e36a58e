import cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { changesOfWrite, compareLogRows, envelopeOf, type LogRow } from './envelope.ts';
import { CQL, type CqlTableShape } from './schema.ts';
import { encodeStreamId } from './stream-id.ts';
import { timeuuidFromMicros, timeuuidString } from './timeuuid.ts';

const text = { code: CQL.text };
const orders: CqlTableShape = {
  name: 'orders',
  partitionKeys: [{ name: 'shop', type: text }],
  clusteringKeys: [{ name: 'id', type: { code: CQL.int } }],
  columns: [
    { name: 'shop', type: text },
    { name: 'id', type: { code: CQL.int } },
    { name: 'owner', type: text, isStatic: true },
    { name: 'total', type: { code: CQL.bigint } },
    { name: 'note', type: text },
    { name: 'tags', type: { code: CQL.set, info: text, options: { frozen: false } } },
  ],
};

/** A table without clustering key: a partition delete deletes its one row. */
const accounts: CqlTableShape = {
  name: 'accounts',
  partitionKeys: [{ name: 'id', type: text }],
  clusteringKeys: [],
  columns: [
    { name: 'id', type: text },
    { name: 'owner', type: text },
    { name: 'balance', type: { code: CQL.int } },
    { name: 'note', type: text },
  ],
};

const MICROS = 1_750_000_000_000_123;
const stream = encodeStreamId({ token: 77n, vnodeIndex: 3, random: 5n });
const time = timeuuidFromMicros(MICROS);

/** Log rows of one write, numbered as ScyllaDB numbers them; the last one ends the batch. */
function write(...rows: Array<{ op: number; values: Record<string, unknown> }>): LogRow[] {
  return rows.map((r, seq) => ({
    streamId: stream,
    time,
    micros: MICROS,
    batchSeqNo: seq,
    endOfBatch: seq === rows.length - 1,
    operation: r.op,
    ttl: null,
    values: r.values,
  }));
}

const key = { shop: 's1', id: 7 };

describe('changesOfWrite', () => {
  it('an insert with a post-image: after is the post-image, before null, op c, key in key order', () => {
    const [change, ...rest] = changesOfWrite(
      write(
        { op: 2, values: { ...key, total: cassandra.types.Long.fromString('9007199254740993'), note: 'hi' } },
        { op: 9, values: { ...key, total: cassandra.types.Long.fromString('9007199254740993'), note: 'hi', tags: null } },
      ),
      orders,
    );
    expect(rest).toEqual([]);
    expect(change).toMatchObject({ op: 'c', key: '{"shop":"s1","id":7}', before: null });
    // bigint keeps every digit; a post-image lists every column, null ones as null.
    expect(change!.after).toEqual({ shop: 's1', id: 7, total: '9007199254740993', note: 'hi', tags: null });
  });

  it('merges the deltas ScyllaDB splits one INSERT into (row marker, collection tombstone, added cells)', () => {
    const changes = changesOfWrite(
      write(
        { op: 2, values: { ...key, total: cassandra.types.Long.fromNumber(5) } },
        { op: 1, values: { ...key, 'cdc$deleted_tags': true } },
        { op: 1, values: { ...key, tags: ['a', 'b'] } },
      ),
      orders,
    );
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ op: 'c', after: { shop: 's1', id: 7, total: '5', tags: ['a', 'b'] } });
    expect(changes[0]!.collectionChanges).toBeUndefined();
  });

  it('an update with a pre-image of the touched columns: a null one shows as null, others are absent', () => {
    const [change] = changesOfWrite(
      write(
        { op: 0, values: { ...key, total: cassandra.types.Long.fromNumber(3), 'cdc$deleted_note': true } },
        { op: 1, values: { ...key, total: cassandra.types.Long.fromNumber(4), note: 'x' } },
      ),
      orders,
    );
    expect(change).toMatchObject({ op: 'u' });
    expect(change!.before).toEqual({ shop: 's1', id: 7, total: '3', note: null });
    expect(change!.after).toEqual({ shop: 's1', id: 7, total: '4', note: 'x' });
  });

  it('without a post-image: a column set to null is null, element-wise collection changes are listed apart', () => {
    const [change] = changesOfWrite(write({ op: 1, values: { ...key, 'cdc$deleted_note': true, tags: ['new'], 'cdc$deleted_elements_tags': ['old'] } }), orders);
    expect(change!.after).toEqual({ shop: 's1', id: 7, note: null });
    expect(change!.collectionChanges).toEqual({ tags: { added: ['new'], removed: ['old'] } });
  });

  it('a row delete: before is the pre-image, after null', () => {
    const [change] = changesOfWrite(
      write({ op: 0, values: { ...key, total: cassandra.types.Long.fromNumber(9), note: 'bye', 'cdc$deleted_tags': true } }, { op: 3, values: { ...key } }),
      orders,
    );
    expect(change).toEqual(expect.objectContaining({ op: 'd', after: null, key: '{"shop":"s1","id":7}' }));
    expect(change!.before).toEqual({ shop: 's1', id: 7, total: '9', note: 'bye', tags: null });
  });

  it('a row delete without pre-image keeps the key in before', () => {
    const [change] = changesOfWrite(write({ op: 3, values: { ...key } }), orders);
    expect(change!.before).toEqual({ shop: 's1', id: 7 });
  });

  it('a partition delete: op d keyed by the partition key alone', () => {
    const [change] = changesOfWrite(write({ op: 4, values: { shop: 's1', id: null } }), orders);
    expect(change).toMatchObject({ op: 'd', key: '{"shop":"s1"}', before: { shop: 's1' }, after: null });
  });

  it('a partition delete of a table without clustering key: before is its pre-image (ScyllaDB 2026.1+)', () => {
    const [change, ...rest] = changesOfWrite(
      write(
        { op: 0, values: { id: 'a1', owner: 'ann', balance: 10, 'cdc$deleted_note': true } },
        { op: 4, values: { id: 'a1' } },
      ),
      accounts,
    );
    expect(rest).toEqual([]);
    expect(change).toMatchObject({ op: 'd', key: '{"id":"a1"}', after: null });
    expect(change!.before).toEqual({ id: 'a1', owner: 'ann', balance: 10, note: null });
  });

  it('a partition delete of a table without clustering key and without pre-image (before 2026.1): the key', () => {
    const [change] = changesOfWrite(write({ op: 4, values: { id: 'a1' } }), accounts);
    expect(change).toMatchObject({ op: 'd', key: '{"id":"a1"}', before: { id: 'a1' }, after: null });
  });

  it('a batch of TTL\'d inserts with null columns (inserts first, null cells after): one change per row', () => {
    const changes = changesOfWrite(
      write(
        { op: 2, values: { shop: 's1', id: 1, note: 'a' } },
        { op: 2, values: { shop: 's1', id: 2, note: 'b' } },
        { op: 1, values: { shop: 's1', id: 1, 'cdc$deleted_total': true } },
        { op: 1, values: { shop: 's1', id: 2, 'cdc$deleted_total': true } },
      ),
      orders,
    );
    expect(changes.map((c) => [c.op, c.key, c.after, c.row.batchSeqNo])).toEqual([
      ['c', '{"shop":"s1","id":1}', { shop: 's1', id: 1, note: 'a', total: null }, 0],
      ['c', '{"shop":"s1","id":2}', { shop: 's1', id: 2, note: 'b', total: null }, 1],
    ]);
  });

  it('a delete between two upserts of one row in one write splits them', () => {
    const changes = changesOfWrite(
      write(
        { op: 1, values: { ...key, note: 'a' } },
        { op: 3, values: { ...key } },
        { op: 2, values: { ...key, note: 'b' } },
      ),
      orders,
    );
    expect(changes.map((c) => [c.op, c.after?.note ?? null])).toEqual([
      ['u', 'a'],
      ['d', null],
      ['c', 'b'],
    ]);
  });

  it('skips range deletes, which name no row', () => {
    const changes = changesOfWrite(write({ op: 5, values: { shop: 's1', id: 1 } }, { op: 8, values: { shop: 's1', id: 9 } }), orders);
    expect(changes).toEqual([]);
  });

  it('a static-row update is keyed by the partition key and shows the static columns', () => {
    const [change] = changesOfWrite(
      write({ op: 1, values: { shop: 's1', id: null, owner: 'ann' } }, { op: 9, values: { shop: 's1', id: null, owner: 'ann' } }),
      orders,
    );
    expect(change).toMatchObject({ op: 'u', key: '{"shop":"s1"}', after: { shop: 's1', owner: 'ann' } });
  });

  it('a batch over two rows of a partition: two changes in order, each with its own images', () => {
    const changes = changesOfWrite(
      write(
        { op: 0, values: { shop: 's1', id: 1, note: 'a0' } },
        { op: 0, values: { shop: 's1', id: 2, note: 'b0' } },
        { op: 1, values: { shop: 's1', id: 1, note: 'a1' } },
        { op: 1, values: { shop: 's1', id: 2, note: 'b1' } },
        { op: 9, values: { shop: 's1', id: 1, note: 'a1' } },
        { op: 9, values: { shop: 's1', id: 2, note: 'b1' } },
      ),
      orders,
    );
    expect(changes.map((c) => [c.key, c.before?.note, c.after?.note, c.row.batchSeqNo])).toEqual([
      ['{"shop":"s1","id":1}', 'a0', 'a1', 2],
      ['{"shop":"s1","id":2}', 'b0', 'b1', 3],
    ]);
  });
});

describe('envelopeOf', () => {
  it('builds the Debezium-style envelope with the write time in source', () => {
    const [change] = changesOfWrite(write({ op: 2, values: { ...key } }), orders);
    const envelope = envelopeOf(change!, { version: '1.2.3', topicPrefix: 'db', keyspace: 'shop', table: 'orders', nowMs: 42 });
    expect(envelope).toEqual({
      before: null,
      after: { shop: 's1', id: 7 },
      op: 'c',
      ts_ms: 42,
      source: {
        version: '1.2.3',
        connector: 'scylla',
        name: 'db',
        ts_ms: Math.floor(MICROS / 1000),
        snapshot: false,
        db: 'shop',
        sequence: `["${timeuuidString(time)}",0]`,
        ts_us: MICROS,
        ts_ns: MICROS * 1000,
        keyspace_name: 'shop',
        table_name: 'orders',
      },
    });
    // Debezium's field order; ts_ns written exactly.
    expect(Object.keys(envelope.source)).toEqual(['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'sequence', 'ts_us', 'ts_ns', 'keyspace_name', 'table_name']);
    expect(JSON.stringify(envelope.source.ts_ns)).toBe(`${MICROS}000`);
  });
});

describe('compareLogRows', () => {
  it('orders by time, then stream, then sequence number, keeping a write’s rows together', () => {
    const other = encodeStreamId({ token: 1n, vnodeIndex: 3, random: 5n });
    const later = timeuuidFromMicros(MICROS + 1);
    const row = (s: Buffer, t: Buffer, seq: number): LogRow => ({ streamId: s, time: t, micros: 0, batchSeqNo: seq, endOfBatch: false, operation: 1, ttl: null, values: {} });
    const rows = [row(stream, later, 0), row(stream, time, 1), row(other, time, 1), row(stream, time, 0), row(other, time, 0)];
    const sorted = rows.sort(compareLogRows).map((r) => [r.streamId === other ? 'other' : 'stream', r.time === later ? 'later' : 'first', r.batchSeqNo]);
    expect(sorted).toEqual([
      ['other', 'first', 0],
      ['other', 'first', 1],
      ['stream', 'first', 0],
      ['stream', 'first', 1],
      ['stream', 'later', 0],
    ]);
  });
});
