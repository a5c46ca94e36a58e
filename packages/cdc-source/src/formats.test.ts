/**
 * ScyllaDB's connector formats: the JSON text of each event is compared with what its
 * JsonConverter writes (schemas off) for the same change — the examples of its README, and the
 * rules of its emitters (ScyllaChangeRecordEmitterLegacy, ScyllaChangeRecordEmitter).
 */
import cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import type { LogRow } from './envelope.ts';
import { kafkaValue, scyllaFormatEvents, type ScyllaFormatOptions } from './formats.ts';
import { CQL, type CqlTableShape } from './schema.ts';
import { encodeStreamId } from './stream-id.ts';
import { timeuuidFromMicros } from './timeuuid.ts';

const int = { code: CQL.int };
const text = { code: CQL.text };
// The README's table: CREATE TABLE ks.t(pk int, ck int, v text, PRIMARY KEY(pk, ck))
const t: CqlTableShape = {
  name: 't',
  partitionKeys: [{ name: 'pk', type: int }],
  clusteringKeys: [{ name: 'ck', type: int }],
  columns: [
    { name: 'pk', type: int },
    { name: 'ck', type: int },
    { name: 'v', type: text },
  ],
};

const MICROS = 1611578808701321;
const NOW_US = 1611578868758123;
const stream = encodeStreamId({ token: 77n, vnodeIndex: 3, random: 5n });
const context = { version: '2.0.3', topicPrefix: 'MyScyllaCluster', keyspace: 'ks', table: 't', nowUs: NOW_US };

function write(...rows: Array<{ op: number; values: Record<string, unknown> }>): LogRow[] {
  return rows.map((r, seq) => ({
    streamId: stream,
    time: timeuuidFromMicros(MICROS),
    micros: MICROS,
    batchSeqNo: seq,
    endOfBatch: seq === rows.length - 1,
    operation: r.op,
    ttl: null,
    values: r.values,
  }));
}

const legacy: ScyllaFormatOptions = { format: 'legacy', preimages: false, includeBefore: 'none', includeAfter: 'none' };
const advanced: ScyllaFormatOptions = { format: 'advanced', preimages: false, includeBefore: 'full', includeAfter: 'full' };

const source =
  '{"version":"2.0.3","connector":"scylla","name":"MyScyllaCluster","ts_ms":1611578808701,"snapshot":"false","db":"ks","sequence":null,' +
  '"ts_us":1611578808701321,"ts_ns":1611578808701000000,"keyspace_name":"ks","table_name":"t"}';
const times = ',"ts_ms":1611578868758,"transaction":null,"ts_us":1611578868758123,"ts_ns":1611578868758123000}';
const noTimes = ',"ts_ms":1611578868758,"transaction":null,"ts_us":null,"ts_ns":null}';

describe('legacy format (cdc.output.format=legacy)', () => {
  it('INSERT: non-key columns wrapped in {"value": …}, columns in log order, key of the primary key', () => {
    const [event, ...rest] = scyllaFormatEvents(write({ op: 2, values: { pk: 1, ck: 1, v: 'example row' } }), t, legacy, context);
    expect(rest).toEqual([]);
    expect(event!.key).toBe('{"ck":1,"pk":1}');
    expect(JSON.stringify(event!.value)).toBe(`{"source":${source},"before":null,"after":{"ck":1,"pk":1,"v":{"value":"example row"}},"op":"c"${times}`);
  });

  it('UPDATE setting NULL: {"value": null}; a column not written: null', () => {
    const table: CqlTableShape = { ...t, columns: [...t.columns, { name: 'w', type: text }] };
    const [event] = scyllaFormatEvents(write({ op: 1, values: { pk: 1, ck: 1, v: null, 'cdc$deleted_v': true, w: null } }), table, legacy, context);
    expect(JSON.stringify(event!.value)).toBe(`{"source":${source},"before":null,"after":{"ck":1,"pk":1,"v":{"value":null},"w":null},"op":"u"${times}`);
  });

  it('DELETE: before holds the key and null cells, after null', () => {
    const [event] = scyllaFormatEvents(write({ op: 3, values: { pk: 1, ck: 1 } }), t, legacy, context);
    expect(JSON.stringify(event!.value)).toBe(`{"source":${source},"before":{"ck":1,"pk":1,"v":null},"after":null,"op":"d"${times}`);
  });

  it('one event per delta row, collections left out, partition deletes of clustered tables dropped', () => {
    const table: CqlTableShape = { ...t, columns: [...t.columns, { name: 'tags', type: { code: CQL.set, info: text, options: { frozen: false } } }] };
    const events = scyllaFormatEvents(
      write(
        { op: 2, values: { pk: 1, ck: 1, v: 'a' } },
        { op: 1, values: { pk: 1, ck: 1, 'cdc$deleted_tags': true, tags: ['x'] } },
        { op: 4, values: { pk: 1, ck: null } },
      ),
      table,
      legacy,
      context,
    );
    expect(events.map((e) => [e.value.op, JSON.stringify(e.value.after), e.row.batchSeqNo])).toEqual([
      ['c', '{"ck":1,"pk":1,"v":{"value":"a"}}', 0],
      ['u', '{"ck":1,"pk":1,"v":null}', 1],
    ]);
  });

  it('with experimental.preimages.enabled: before from the pre-image, deleted flags read from the delta row', () => {
    const events = scyllaFormatEvents(
      write({ op: 0, values: { pk: 1, ck: 1, v: 'old' } }, { op: 1, values: { pk: 1, ck: 1, v: null, 'cdc$deleted_v': true } }),
      t,
      { ...legacy, preimages: true },
      context,
    );
    expect(JSON.stringify(events[0]!.value)).toBe(
      `{"source":${source},"before":{"ck":1,"pk":1,"v":{"value":"old"}},"after":{"ck":1,"pk":1,"v":{"value":null}},"op":"u"${noTimes}`,
    );
  });
});

describe('advanced format (cdc.output.format=advanced)', () => {
  it('UPDATE with full pre- and post-images: plain values, before completed from the post-image', () => {
    const table: CqlTableShape = { ...t, columns: [...t.columns, { name: 'w', type: text }] };
    const [event, ...rest] = scyllaFormatEvents(
      write(
        { op: 0, values: { pk: 1, ck: 1, v: 'old value' } },
        { op: 1, values: { pk: 1, ck: 1, v: 'new value' } },
        { op: 9, values: { pk: 1, ck: 1, v: 'new value', w: 'kept' } },
      ),
      table,
      advanced,
      context,
    );
    expect(rest).toEqual([]);
    expect(event!.key).toBe('{"ck":1,"pk":1}');
    expect(event!.row.batchSeqNo).toBe(1);
    expect(JSON.stringify(event!.value)).toBe(
      `{"source":${source},"before":{"ck":1,"pk":1,"v":"old value","w":"kept"},"after":{"ck":1,"pk":1,"v":"new value","w":"kept"},"op":"u"${noTimes}`,
    );
  });

  it('only-updated: the key and the changed columns, others null', () => {
    const table: CqlTableShape = { ...t, columns: [...t.columns, { name: 'w', type: text }] };
    const [event] = scyllaFormatEvents(
      write(
        { op: 0, values: { pk: 1, ck: 1, v: 'old value' } },
        { op: 1, values: { pk: 1, ck: 1, v: 'new value' } },
        { op: 9, values: { pk: 1, ck: 1, v: 'new value', w: 'kept' } },
      ),
      table,
      { ...advanced, includeBefore: 'only-updated', includeAfter: 'only-updated' },
      context,
    );
    expect(JSON.stringify([event!.value.before, event!.value.after])).toBe('[{"ck":1,"pk":1,"v":"old value","w":null},{"ck":1,"pk":1,"v":"new value","w":null}]');
  });

  it('without images (none): one event per delta row, before and after null', () => {
    const events = scyllaFormatEvents(write({ op: 2, values: { pk: 1, ck: 1, v: 'a' } }), t, { ...advanced, includeBefore: 'none', includeAfter: 'none' }, context);
    expect(JSON.stringify(events[0]!.value)).toBe(`{"source":${source},"before":null,"after":null,"op":"c"${noTimes}`);
  });

  it('DELETE with full pre-image; partition delete of a table without clustering key', () => {
    const accounts: CqlTableShape = {
      name: 'a',
      partitionKeys: [{ name: 'id', type: int }],
      clusteringKeys: [],
      columns: [
        { name: 'id', type: int },
        { name: 'balance', type: { code: CQL.bigint } },
      ],
    };
    const [event] = scyllaFormatEvents(write({ op: 0, values: { id: 5, balance: 12n } }, { op: 4, values: { id: 5 } }), accounts, advanced, context);
    expect(event!.key).toBe('{"id":5}');
    expect(JSON.stringify([event!.value.op, event!.value.before, event!.value.after])).toBe('["d",{"balance":12,"id":5},null]');
  });
});

describe('kafkaValue', () => {
  it('writes values as the connector hands them to JsonConverter', () => {
    expect(kafkaValue(Math.fround(1.1), { code: CQL.float })).toBe(1.1);
    expect(kafkaValue('9007199254740993', { code: CQL.bigint })).toBe('9007199254740993');
    expect(kafkaValue({ year: 1970, month: 1, day: 3 }, { code: CQL.date })).toBe(2);
    expect(kafkaValue(cassandra.types.LocalDate.fromString('1969-12-31'), { code: CQL.date })).toBe(-1);
    expect(kafkaValue(cassandra.types.LocalTime.fromString('00:00:01.5'), { code: CQL.time })).toBe(1_500_000_000);
    expect(kafkaValue(new Map([['k', 1]]), { code: CQL.map, info: [text, int] })).toEqual([{ key: 'k', value: 1 }]);
    expect(kafkaValue({ buffer: Buffer.from('00000000000000000000000000000001', 'hex') }, { code: CQL.inet })).toBe('0:0:0:0:0:0:0:1');
    expect(kafkaValue(Buffer.from('hi'), { code: CQL.blob })).toBe('aGk=');
  });
});
