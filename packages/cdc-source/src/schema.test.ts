import cassandra from 'cassandra-driver';
import { checkValue } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { changesOfWrite, envelopeOf } from './envelope.ts';
import { CQL, cqlToJson, cqlTypeName, jsonSchemaForTable, jsonSchemaForType, type CqlTableShape, type CqlType } from './schema.ts';
import { encodeStreamId } from './stream-id.ts';
import { timeuuidFromMicros } from './timeuuid.ts';

const { types } = cassandra;
const t = (code: number, info?: unknown, frozen?: boolean): CqlType => ({ code, ...(info !== undefined ? { info } : {}), ...(frozen !== undefined ? { options: { frozen } } : {}) });

describe('cqlToJson', () => {
  it('maps scalar types as documented', () => {
    expect(cqlToJson('é', t(CQL.text))).toBe('é');
    expect(cqlToJson(-3, t(CQL.tinyint))).toBe(-3);
    expect(cqlToJson(types.Long.fromString('-9223372036854775808'), t(CQL.bigint))).toBe('-9223372036854775808');
    expect(cqlToJson(types.Integer.fromString('123456789012345678901234567890'), t(CQL.varint))).toBe('123456789012345678901234567890');
    expect(cqlToJson(types.BigDecimal.fromString('12.50'), t(CQL.decimal))).toBe('12.50');
    expect(cqlToJson(1.5, t(CQL.double))).toBe(1.5);
    expect(cqlToJson(Number.NaN, t(CQL.float))).toBe('NaN');
    expect(cqlToJson(Number.NEGATIVE_INFINITY, t(CQL.double))).toBe('-Infinity');
    expect(cqlToJson(false, t(CQL.boolean))).toBe(false);
    expect(cqlToJson(new Date('2025-01-02T03:04:05.678Z'), t(CQL.timestamp))).toBe(Date.parse('2025-01-02T03:04:05.678Z'));
    expect(cqlToJson(types.LocalDate.fromString('2025-01-02'), t(CQL.date))).toBe('2025-01-02');
    expect(cqlToJson(types.LocalTime.fromString('10:11:12.5'), t(CQL.time))).toMatch(/^10:11:12\.5/);
    const uuid = types.Uuid.random();
    expect(cqlToJson(uuid, t(CQL.uuid))).toBe(uuid.toString());
    expect(cqlToJson(types.InetAddress.fromString('::1'), t(CQL.inet))).toBe('::1');
    expect(cqlToJson(Buffer.from([0, 255]), t(CQL.blob))).toBe('AP8=');
    expect(cqlToJson(null, t(CQL.int))).toBeNull();
  });

  it('maps collections, tuples, UDTs and vectors', () => {
    expect(cqlToJson([1, 2], t(CQL.list, t(CQL.int)))).toEqual([1, 2]);
    expect(cqlToJson([types.Long.fromNumber(7)], t(CQL.set, t(CQL.bigint)))).toEqual(['7']);
    expect(cqlToJson(new Map([[1, 'one'], [2, 'two']]), t(CQL.map, [t(CQL.int), t(CQL.text)]))).toEqual({ 1: 'one', 2: 'two' });
    expect(cqlToJson(new Map([[new Date(0), true]]), t(CQL.map, [t(CQL.timestamp), t(CQL.boolean)]))).toEqual({ '0': true });
    expect(cqlToJson(new types.Tuple(1, 'a'), t(CQL.tuple, [t(CQL.int), t(CQL.text)]))).toEqual([1, 'a']);
    const udt = t(CQL.udt, { name: 'addr', fields: [{ name: 'street', type: t(CQL.text) }, { name: 'n', type: t(CQL.int) }] });
    expect(cqlToJson({ street: 'Main', n: null }, udt)).toEqual({ street: 'Main', n: null });
    const vector: CqlType = { code: CQL.custom, customTypeName: 'vector', info: [t(CQL.float), 2] };
    expect(cqlToJson({ elements: [0.5, 1] }, vector)).toEqual([0.5, 1]);
  });
});

describe('jsonSchemaForType', () => {
  it('gives each CQL type the JSON type its values have', () => {
    expect(jsonSchemaForType(t(CQL.varchar))).toEqual({ type: 'string' });
    expect(jsonSchemaForType(t(CQL.smallint))).toMatchObject({ type: 'integer', minimum: -32768, maximum: 32767 });
    for (const code of [CQL.bigint, CQL.varint, CQL.counter, CQL.decimal]) expect(jsonSchemaForType(t(code))).toMatchObject({ type: 'string' });
    expect(jsonSchemaForType(t(CQL.timestamp))).toMatchObject({ type: 'integer' });
    expect(jsonSchemaForType(t(CQL.timeuuid))).toEqual({ type: 'string', format: 'uuid' });
    expect(jsonSchemaForType(t(CQL.blob))).toEqual({ type: 'string', contentEncoding: 'base64' });
    expect(jsonSchemaForType(t(CQL.set, t(CQL.int)))).toMatchObject({ type: 'array', uniqueItems: true, items: { type: 'integer' } });
    expect(jsonSchemaForType(t(CQL.map, [t(CQL.text), t(CQL.double)]))).toMatchObject({ type: 'object' });
    expect(jsonSchemaForType(t(CQL.tuple, [t(CQL.int), t(CQL.text)]))).toMatchObject({ type: 'array', minItems: 2, maxItems: 2 });
  });

  it('names types as CQL writes them', () => {
    expect(cqlTypeName(t(CQL.map, [t(CQL.text), t(CQL.set, t(CQL.int), true)], true))).toBe('frozen<map<text, frozen<set<int>>>>');
  });
});

describe('jsonSchemaForTable', () => {
  const shape: CqlTableShape = {
    name: 'accounts',
    partitionKeys: [{ name: 'id', type: t(CQL.uuid) }],
    clusteringKeys: [],
    columns: [
      { name: 'id', type: t(CQL.uuid) },
      { name: 'balance', type: t(CQL.decimal) },
      { name: 'opened', type: t(CQL.timestamp) },
      { name: 'labels', type: t(CQL.map, [t(CQL.text), t(CQL.text)], false) },
    ],
  };
  const schema = jsonSchemaForTable(shape);
  const id = types.Uuid.random();
  const envelope = (op: number, values: Record<string, unknown>) =>
    envelopeOf(
      changesOfWrite(
        [{ streamId: encodeStreamId({ token: 1n, vnodeIndex: 0, random: 0n }), time: timeuuidFromMicros(1e15), micros: 1e15, batchSeqNo: 0, endOfBatch: true, operation: op, ttl: null, values }],
        shape,
      )[0]!,
      { version: '0.1.0', topicPrefix: 'db', keyspace: 'bank', table: 'accounts', nowMs: Date.now() },
    );

  it('accepts the events the connector writes for the table', () => {
    const insert = envelope(2, { id, balance: types.BigDecimal.fromString('10.25'), opened: new Date(), labels: new Map([['tier', 'gold']]), 'cdc$deleted_labels': true });
    expect(insert.after).toEqual({ id: id.toString(), balance: '10.25', opened: expect.any(Number), labels: { tier: 'gold' } });
    expect(checkValue(schema, insert)).toEqual([]);
    expect(checkValue(schema, envelope(3, { id }))).toEqual([]);
  });

  it('rejects what the table cannot produce', () => {
    const insert = envelope(2, { id, opened: new Date() });
    expect(checkValue(schema, { ...insert, op: 'x' })).not.toEqual([]);
    expect(checkValue(schema, { ...insert, after: { ...insert.after, opened: '2025-01-01' } })).not.toEqual([]);
    expect(checkValue(schema, { ...insert, after: { ...insert.after, unknown_column: 1 } })).not.toEqual([]);
  });
});
