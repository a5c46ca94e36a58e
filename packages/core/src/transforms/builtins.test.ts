/**
 * Each built-in against the examples of Kafka's and Confluent's SMT documentation (the config
 * snippet and the Before/After records), plus the edge cases Kafka specifies for schemaless
 * records.
 */
import { runPredicate, runTransformation, type TestTransformRecord, type Transformation } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { Cast } from './cast.ts';
import { BUILTIN_CATALOG } from './catalog.ts';
import { ExtractField } from './extract-field.ts';
import { Filter } from './filter.ts';
import { DropHeaders, HeaderFrom, InsertHeader } from './headers.ts';
import { HoistField } from './hoist-field.ts';
import { InsertField } from './insert-field.ts';
import { MaskField } from './mask-field.ts';
import { HasHeaderKey, RecordIsTombstone, TopicNameMatches, ValueFieldMatches } from './predicates.ts';
import { ReplaceField } from './replace-field.ts';
import { RegexRouter, TimestampRouter } from './routers.ts';
import { SetSchemaMetadata } from './set-schema-metadata.ts';
import { ValueToKey } from './value-to-key.ts';

const one = <C>(t: Transformation<C>, config: Record<string, unknown>, record: TestTransformRecord) => runTransformation(t, config, [record])[0];

describe('InsertField', () => {
  it('inserts a static field (Kafka docs example)', () => {
    const out = one(InsertField.value, { 'static.field': 'MessageSource', 'static.value': 'Kafka Connect framework' }, {
      value: { author: 'Philip K. Dick', character: 'Palmer Eldritch' },
    });
    expect(out?.value).toEqual({ author: 'Philip K. Dick', character: 'Palmer Eldritch', MessageSource: 'Kafka Connect framework' });
  });

  it('inserts topic, shard, id and timestamp of a sink record; !/? suffixes name the same field', () => {
    const out = one(InsertField.value, { 'topic.field': 'topic!', 'partition.field': 'partition?', 'offset.field': 'offset', 'timestamp.field': 'ts' }, {
      topic: 'sms',
      value: { to: '+441234' },
      shard: 7,
      id: 'm-1',
      timestamp: 1_700_000_000_000,
    });
    expect(out?.value).toEqual({ to: '+441234', topic: 'sms', partition: 7, offset: 'm-1', ts: 1_700_000_000_000 });
  });

  it('passes a tombstone through, skips metadata a source record lacks, and refuses a non-map', () => {
    expect(one(InsertField.value, { 'topic.field': 't' }, { value: null })?.value).toBeNull();
    expect(one(InsertField.value, { 'partition.field': 'p', 'timestamp.field': 'ts' }, { value: {}, direction: 'source' })?.value).toEqual({});
    expect(() => one(InsertField.value, { 'offset.field': 'o' }, { value: {}, direction: 'source' })).toThrow(/Only sink records/);
    expect(() => one(InsertField.value, { 'topic.field': 't' }, { value: 'text' })).toThrow(
      'Only Map objects supported in absence of schema for [field insertion], found: java.lang.String',
    );
  });

  it('works on the key with $Key', () => {
    expect(one(InsertField.key, { 'static.field': 'k', 'static.value': 'v' }, { key: { id: 1 }, value: 'x' })).toMatchObject({ key: { id: 1, k: 'v' }, value: 'x' });
  });
});

describe('ReplaceField', () => {
  const value = { foo: 1, bar: 2, baz: 3, qux: 4 };
  it('excludes, includes and renames (Kafka docs examples)', () => {
    expect(one(ReplaceField.value, { exclude: 'bar' }, { value })?.value).toEqual({ foo: 1, baz: 3, qux: 4 });
    expect(one(ReplaceField.value, { include: 'foo,bar' }, { value })?.value).toEqual({ foo: 1, bar: 2 });
    expect(one(ReplaceField.value, { renames: 'foo:c1,bar:c2' }, { value })?.value).toEqual({ c1: 1, c2: 2, baz: 3, qux: 4 });
  });
  it('exclude wins over include; the older blacklist/whitelist names still work', () => {
    expect(one(ReplaceField.value, { include: 'foo,bar', exclude: 'bar' }, { value })?.value).toEqual({ foo: 1 });
    expect(one(ReplaceField.value, { blacklist: 'foo' }, { value })?.value).toEqual({ bar: 2, baz: 3, qux: 4 });
    expect(one(ReplaceField.value, { whitelist: 'qux' }, { value })?.value).toEqual({ qux: 4 });
  });
  it('refuses a rename that is not old:new', () => {
    expect(() => one(ReplaceField.value, { renames: 'foo' }, { value })).toThrow(/Invalid rename mapping: foo/);
  });
});

describe('MaskField', () => {
  const value = { id: 12345, name: 'Jane', ssn: '123-45-6789', active: true, score: 2.5, tags: ['a'], address: { city: 'Paris' } };
  it('masks with the empty value of each type', () => {
    expect(one(MaskField.value, { fields: 'id,ssn,active,score,tags,address' }, { value })?.value).toEqual({
      id: 0,
      name: 'Jane',
      ssn: '',
      active: false,
      score: 0,
      tags: [],
      address: {},
    });
  });
  it('masks with a replacement (Kafka docs: ssn replaced), converted for numbers', () => {
    expect(one(MaskField.value, { fields: 'ssn', replacement: '<redacted>' }, { value })?.value).toMatchObject({ ssn: '<redacted>' });
    expect(one(MaskField.value, { fields: 'id', replacement: '-1' }, { value })?.value).toMatchObject({ id: -1 });
    expect(() => one(MaskField.value, { fields: 'id', replacement: 'x' }, { value })).toThrow('Unable to convert x (java.lang.String) to number');
    expect(() => one(MaskField.value, { fields: 'active', replacement: 'x' }, { value })).toThrow(/Cannot mask value of type java.lang.Boolean/);
  });
});

describe('ValueToKey, ExtractField, HoistField', () => {
  it('ValueToKey builds the key from value fields (Kafka docs example)', () => {
    const out = one(ValueToKey, { fields: 'userId,city,state' }, { value: { userId: 42, city: 'Lyon', state: 'ARA', other: 1 } });
    expect(out?.key).toEqual({ userId: 42, city: 'Lyon', state: 'ARA' });
  });
  it('ExtractField takes one field (Kafka docs example), and a nested one with V2', () => {
    expect(one(ExtractField.value, { field: 'id' }, { value: { id: 42, cost: 4000 } })?.value).toBe(42);
    expect(one(ExtractField.key, { field: 'id' }, { key: { id: 'k1' }, value: 1 })?.key).toBe('k1');
    expect(one(ExtractField.value, { field: 'a.b', 'field.syntax.version': 'V2' }, { value: { a: { b: 'deep' } } })?.value).toBe('deep');
    expect(one(ExtractField.value, { field: 'a.b' }, { value: { 'a.b': 'flat' } })?.value).toBe('flat');
    expect(one(ExtractField.value, { field: 'missing' }, { value: { id: 1 } })?.value).toBeNull();
    expect(one(ExtractField.value, { field: 'id' }, { value: null })?.value).toBeNull();
  });
  it('HoistField wraps (Kafka docs example)', () => {
    expect(one(HoistField.value, { field: 'line' }, { value: 42 })?.value).toEqual({ line: 42 });
  });
});

describe('Cast', () => {
  it('casts a field (Kafka docs example: price to float64) and several fields', () => {
    expect(one(Cast.value, { spec: 'price:float64' }, { value: { price: 1234, product_id: '9987' } })?.value).toEqual({ price: 1234, product_id: '9987' });
    expect(one(Cast.value, { spec: 'ID:string,score:float64,ok:boolean' }, { value: { ID: 46920, score: '4761.5', ok: 1 } })?.value).toEqual({
      ID: '46920',
      score: 4761.5,
      ok: true,
    });
  });
  it('casts the whole value, with Java narrowing', () => {
    expect(one(Cast.value, { spec: 'int8' }, { value: 300 })?.value).toBe(44);
    expect(one(Cast.value, { spec: 'int32' }, { value: 12.9 })?.value).toBe(12);
    expect(one(Cast.value, { spec: 'int16' }, { value: '-12' })?.value).toBe(-12);
    expect(one(Cast.value, { spec: 'boolean' }, { value: 'TRUE' })?.value).toBe(true);
    expect(one(Cast.value, { spec: 'int64' }, { value: true })?.value).toBe(1);
    expect(one(Cast.value, { spec: 'string' }, { value: { a: 1 } })?.value).toBe('{"a":1}');
    expect(() => one(Cast.value, { spec: 'int32' }, { value: '1.5' })).toThrow(/not a valid int32/);
  });
  it('refuses bad specs with Kafka\'s words', () => {
    expect(() => one(Cast.value, { spec: 'a:int99' }, { value: {} })).toThrow('Invalid type found in casting spec: int99');
    expect(() => one(Cast.value, { spec: 'int8,a:int8' }, { value: {} })).toThrow(/must have only one spec/);
  });
});

describe('Filter, routers and headers', () => {
  it('Filter drops everything', () => {
    expect(runTransformation(Filter, {}, [{ value: 1 }, { value: null }])).toEqual([null, null]);
  });

  it('RegexRouter rewrites a matching topic (Kafka docs example: drop a prefix) and leaves others', () => {
    const config = { regex: 'soe-(.*)', replacement: '$1' };
    expect(one(RegexRouter, config, { topic: 'soe-Order', value: 1 })?.topic).toBe('Order');
    expect(one(RegexRouter, config, { topic: 'other-soe-Order', value: 1 })?.topic).toBe('other-soe-Order');
    expect(one(RegexRouter, { regex: '(.*)', replacement: 'prefix_$1' }, { topic: 'mail', value: 1 })?.topic).toBe('prefix_mail');
  });

  it('RegexRouter refuses a pattern RE2 cannot compile (no backreferences)', () => {
    expect(() => one(RegexRouter, { regex: '(a)\\1', replacement: 'x' }, { value: 1 })).toThrow(/regex/);
  });

  it('RegexRouter refuses a pattern too large for the linear engine to run fast (as topic schemas do)', () => {
    expect(() => one(RegexRouter, { regex: '[ab]{0,1000}[cd]{0,1000}e', replacement: 'x' }, { value: 1 })).toThrow(/instructions/);
  });

  it('TimestampRouter formats the topic (Kafka docs example and default)', () => {
    const timestamp = Date.UTC(2019, 5, 14, 9, 30, 5, 7);
    expect(one(TimestampRouter, {}, { topic: 'bar', value: 1, timestamp })?.topic).toBe('bar-20190614');
    expect(one(TimestampRouter, { 'topic.format': 'foo-${topic}-${timestamp}', 'timestamp.format': 'YYYYMM' }, { topic: 'bar', value: 1, timestamp })?.topic).toBe(
      'foo-bar-201906',
    );
    expect(one(TimestampRouter, { 'timestamp.format': "yyyy-MM-dd'T'HH:mm:ss.SSS" }, { topic: 't', value: 1, timestamp })?.topic).toBe('t-2019-06-14T09:30:05.007');
    // Java's week year: Tuesday 2024-12-31 is in week 1 of 2025 (weeks start on Sunday, US locale).
    expect(one(TimestampRouter, { 'timestamp.format': 'YYYY' }, { topic: 't', value: 1, timestamp: Date.UTC(2024, 11, 31) })?.topic).toBe('t-2025');
    expect(() => one(TimestampRouter, {}, { topic: 't', value: 1 })).toThrow(/Timestamp missing/);
    expect(() => one(TimestampRouter, { 'timestamp.format': 'yyyyQ' }, { value: 1, timestamp })).toThrow(/Illegal pattern character 'Q'/);
  });

  it('InsertHeader, DropHeaders (Kafka docs examples)', () => {
    expect(one(InsertHeader, { header: 'MessageSource', 'value.literal': 'Kafka Connect framework' }, { value: 1, headers: { a: '1' } })?.headers).toEqual({
      a: '1',
      MessageSource: 'Kafka Connect framework',
    });
    expect(one(DropHeaders, { headers: 'source,dest' }, { value: 1, headers: { source: 's', dest: 'd', keep: 'k' } })?.headers).toEqual({ keep: 'k' });
  });

  it('HeaderFrom copies or moves fields to headers (Kafka docs example)', () => {
    const record = { value: { id: 42, ts: 'now', body: 'x' }, headers: { h: '1' } };
    const copied = one(HeaderFrom.value, { fields: 'id,ts', headers: 'record_id,ts', operation: 'copy' }, record);
    expect(copied?.headers).toEqual({ h: '1', record_id: '42', ts: 'now' });
    expect(copied?.value).toEqual(record.value);
    const moved = one(HeaderFrom.value, { fields: 'id,ts', headers: 'record_id,ts', operation: 'move' }, record);
    expect(moved?.value).toEqual({ body: 'x' });
    expect(() => one(HeaderFrom.value, { fields: 'id,ts', headers: 'record_id', operation: 'copy' }, record)).toThrow(
      "'fields' config must have the same number of elements as 'headers' config.",
    );
  });

  it('SetSchemaMetadata is refused: Omnibus records have no schema to rename', () => {
    expect(() => one(SetSchemaMetadata.value, { 'schema.name': 'com.example.Order' }, { value: {} })).toThrow(/schemaless JSON/);
  });
});

describe('predicates', () => {
  it('TopicNameMatches matches the whole topic name', () => {
    expect(runPredicate(TopicNameMatches, { pattern: 'foo' }, [{ topic: 'foo', value: 1 }, { topic: 'foobar', value: 1 }])).toEqual([true, false]);
    expect(runPredicate(TopicNameMatches, { pattern: 'sms-.*' }, [{ topic: 'sms-uk', value: 1 }])).toEqual([true]);
    expect(() => runPredicate(TopicNameMatches, { pattern: '(' }, [])).toThrow(/Invalid regex/);
  });
  it('HasHeaderKey and RecordIsTombstone', () => {
    expect(runPredicate(HasHeaderKey, { name: 'trace' }, [{ value: 1, headers: { trace: '' } }, { value: 1 }])).toEqual([true, false]);
    expect(runPredicate(RecordIsTombstone, {}, [{ value: null }, { value: {} }, { value: 0 }])).toEqual([true, false, false]);
  });
  it('ValueFieldMatches: pattern, equals, in, dotted paths; absent and non-scalar fields never match', () => {
    const records = [{ value: { to: '+447700900123' } }, { value: { to: '+33612345678' } }, { value: { other: 1 } }, { value: null }, { value: { to: { n: 1 } } }];
    expect(runPredicate(ValueFieldMatches, { field: 'to', pattern: '\\+44.*' }, records)).toEqual([true, false, false, false, false]);
    expect(runPredicate(ValueFieldMatches, { field: 'to', equals: '+33612345678' }, records)).toEqual([false, true, false, false, false]);
    expect(runPredicate(ValueFieldMatches, { field: 'a.b', in: 'x,3,true' }, [{ value: { a: { b: 3 } } }, { value: { a: { b: true } } }, { value: { a: { b: 'y' } } }])).toEqual([
      true,
      true,
      false,
    ]);
  });
  it('ValueFieldMatches needs exactly one of pattern, equals, in', () => {
    expect(() => runPredicate(ValueFieldMatches, { field: 'to' }, [])).toThrow(/One of pattern, equals or in is required/);
    expect(() => runPredicate(ValueFieldMatches, { field: 'to', equals: 'a', in: 'a,b' }, [])).toThrow(/Only one of/);
  });
});

describe('the built-in catalog', () => {
  it('finds each built-in by Kafka class name and short name; a bare name means $Value', () => {
    expect(BUILTIN_CATALOG.transformation('org.apache.kafka.connect.transforms.InsertField$Value')).toBe(InsertField.value);
    expect(BUILTIN_CATALOG.transformation('InsertField$Key')).toBe(InsertField.key);
    expect(BUILTIN_CATALOG.transformation('InsertField')).toBe(InsertField.value);
    expect(BUILTIN_CATALOG.transformation('io.debezium.transforms.ExtractNewRecordState')?.className).toBe('io.debezium.transforms.ExtractNewRecordState');
    expect(BUILTIN_CATALOG.predicate('org.apache.kafka.connect.transforms.predicates.TopicNameMatches')).toBe(TopicNameMatches);
    expect(BUILTIN_CATALOG.predicate('io.omnibus.predicates.ValueFieldMatches')).toBe(ValueFieldMatches);
    expect(BUILTIN_CATALOG.transformation('TopicNameMatches')).toBeUndefined();
  });
});
