/**
 * CQL values as JSON, and the JSON Schema of a table's change events.
 *
 * Mapping (CQL → JSON):
 * - ascii, text, varchar → string
 * - tinyint, smallint, int → integer
 * - bigint, counter, varint, decimal → string of decimal digits, so that no precision is
 *   lost to JavaScript's 53-bit numbers (Debezium's `precise` handling of these types)
 * - float, double → number; NaN and ±Infinity, which JSON cannot hold, → "NaN", "Infinity", "-Infinity"
 * - boolean → boolean
 * - timestamp → integer, milliseconds since the Unix epoch (Kafka Connect's and Debezium's
 *   `Timestamp`); the envelope's `source.ts_us` keeps the microseconds of the write itself
 * - date → "YYYY-MM-DD"; time → "HH:MM:SS[.fffffffff]"; duration → CQL's form, e.g. "1mo2d3h"
 * - uuid, timeuuid → string (canonical UUID); inet → string; blob → base64 string
 * - list, set, vector → array; tuple → array (one item per component)
 * - map → object; keys that are not strings are written as their JSON text (an int key 1 → "1")
 * - user-defined type → object with one property per field
 * - frozen<T> → as T
 */
/** The shape of a column type in cassandra-driver's metadata (`DataTypeInfo`). */
export interface CqlType {
  code: number;
  info?: unknown;
  options?: { frozen?: boolean; reversed?: boolean };
  customTypeName?: string;
}

export interface CqlColumn {
  name: string;
  type: CqlType;
  isStatic?: boolean;
}

/** What the functions here need of cassandra-driver's `TableMetadata`. */
export interface CqlTableShape {
  name: string;
  columns: readonly CqlColumn[];
  partitionKeys: readonly CqlColumn[];
  clusteringKeys: readonly CqlColumn[];
}

export const CQL = {
  custom: 0x00,
  ascii: 0x01,
  bigint: 0x02,
  blob: 0x03,
  boolean: 0x04,
  counter: 0x05,
  decimal: 0x06,
  double: 0x07,
  float: 0x08,
  int: 0x09,
  text: 0x0a,
  timestamp: 0x0b,
  uuid: 0x0c,
  varchar: 0x0d,
  varint: 0x0e,
  timeuuid: 0x0f,
  inet: 0x10,
  date: 0x11,
  time: 0x12,
  smallint: 0x13,
  tinyint: 0x14,
  duration: 0x15,
  list: 0x20,
  map: 0x21,
  set: 0x22,
  udt: 0x30,
  tuple: 0x31,
} as const;

/** A collection or UDT whose cells are written one by one (not frozen). */
export function isNonFrozenCollection(type: CqlType): boolean {
  const multiCell = type.code === CQL.list || type.code === CQL.set || type.code === CQL.map || type.code === CQL.udt;
  return multiCell && type.options?.frozen !== true;
}

interface UdtInfo {
  name?: string;
  fields: Array<{ name: string; type: CqlType }>;
}

const udtInfo = (type: CqlType): UdtInfo => type.info as UdtInfo;
const elementType = (type: CqlType): CqlType => type.info as CqlType;
const mapTypes = (type: CqlType): [CqlType, CqlType] => type.info as [CqlType, CqlType];

/** A map key as an object property name. */
function propertyName(key: unknown, type: CqlType): string {
  const json = cqlToJson(key, type);
  return typeof json === 'string' ? json : JSON.stringify(json);
}

/** One CQL value (as cassandra-driver decodes it) as JSON. */
export function cqlToJson(value: unknown, type: CqlType): unknown {
  if (value === null || value === undefined) return null;
  switch (type.code) {
    case CQL.ascii:
    case CQL.text:
    case CQL.varchar:
      return String(value);
    case CQL.tinyint:
    case CQL.smallint:
    case CQL.int:
      return Number(value);
    case CQL.bigint:
    case CQL.counter:
    case CQL.varint:
    case CQL.decimal:
      return String(value);
    case CQL.float:
    case CQL.double: {
      const n = Number(value);
      return Number.isFinite(n) ? n : String(n);
    }
    case CQL.boolean:
      return Boolean(value);
    case CQL.timestamp:
      return value instanceof Date ? value.getTime() : Number(value);
    case CQL.blob:
      return (value as Buffer).toString('base64');
    case CQL.uuid:
    case CQL.timeuuid:
    case CQL.inet:
    case CQL.date:
    case CQL.time:
    case CQL.duration:
      return String(value);
    case CQL.list:
    case CQL.set:
      return [...(value as Iterable<unknown>)].map((item) => cqlToJson(item, elementType(type)));
    case CQL.map: {
      const [keyType, valueType] = mapTypes(type);
      const entries: Iterable<[unknown, unknown]> =
        value instanceof Map ? value.entries() : Object.entries(value as Record<string, unknown>);
      const out: Record<string, unknown> = {};
      for (const [k, v] of entries) out[propertyName(k, keyType)] = cqlToJson(v, valueType);
      return out;
    }
    case CQL.udt: {
      const out: Record<string, unknown> = {};
      const fields = value as Record<string, unknown>;
      for (const field of udtInfo(type).fields) out[field.name] = cqlToJson(fields[field.name], field.type);
      return out;
    }
    case CQL.tuple: {
      const types = type.info as CqlType[];
      const items = typeof (value as { values?: unknown }).values === 'function' ? (value as { values(): unknown[] }).values() : (value as unknown[]);
      return [...items].map((item, i) => cqlToJson(item, types[i] ?? { code: CQL.custom }));
    }
    case CQL.custom: {
      if (type.customTypeName === 'vector') {
        const [subtype] = type.info as [CqlType, number];
        const elements = (value as { elements?: unknown[] }).elements ?? [...(value as Iterable<unknown>)];
        return elements.map((item) => cqlToJson(item, subtype));
      }
      return Buffer.isBuffer(value) ? value.toString('base64') : String(value);
    }
    default:
      return String(value);
  }
}

/** The JSON Schema of a value of `type`, as {@link cqlToJson} writes it. */
export function jsonSchemaForType(type: CqlType): Record<string, unknown> {
  switch (type.code) {
    case CQL.ascii:
    case CQL.text:
    case CQL.varchar:
      return { type: 'string' };
    case CQL.tinyint:
      return { type: 'integer', minimum: -128, maximum: 127 };
    case CQL.smallint:
      return { type: 'integer', minimum: -32768, maximum: 32767 };
    case CQL.int:
      return { type: 'integer', minimum: -2147483648, maximum: 2147483647 };
    case CQL.bigint:
    case CQL.counter:
      return { type: 'string', pattern: '^-?\\d+$', description: 'a 64-bit integer, as decimal digits' };
    case CQL.varint:
      return { type: 'string', pattern: '^-?\\d+$', description: 'an arbitrary-precision integer, as decimal digits' };
    case CQL.decimal:
      return { type: 'string', description: 'an arbitrary-precision decimal, as text (e.g. "12.50", "1E+3")' };
    case CQL.float:
    case CQL.double:
      return { anyOf: [{ type: 'number' }, { type: 'string', enum: ['NaN', 'Infinity', '-Infinity'] }] };
    case CQL.boolean:
      return { type: 'boolean' };
    case CQL.timestamp:
      return { type: 'integer', description: 'milliseconds since the Unix epoch' };
    case CQL.blob:
      return { type: 'string', contentEncoding: 'base64' };
    case CQL.uuid:
    case CQL.timeuuid:
      return { type: 'string', format: 'uuid' };
    case CQL.inet:
      return { type: 'string', description: 'an IPv4 or IPv6 address' };
    case CQL.date:
      return { type: 'string', format: 'date' };
    case CQL.time:
      return { type: 'string', pattern: '^\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?$', description: 'time of day with up to nanoseconds' };
    case CQL.duration:
      return { type: 'string', description: 'a CQL duration, e.g. "1mo2d3h4m5s6ms7us8ns"' };
    case CQL.list:
      return { type: 'array', items: jsonSchemaForType(elementType(type)) };
    case CQL.set:
      return { type: 'array', uniqueItems: true, items: jsonSchemaForType(elementType(type)) };
    case CQL.map: {
      const [keyType, valueType] = mapTypes(type);
      return {
        type: 'object',
        additionalProperties: jsonSchemaForType(valueType),
        description: `map keyed by ${cqlTypeName(keyType)}${isText(keyType) ? '' : ' (keys written as their JSON text)'}`,
      };
    }
    case CQL.udt: {
      const info = udtInfo(type);
      const properties: Record<string, unknown> = {};
      for (const field of info.fields) properties[field.name] = nullable(jsonSchemaForType(field.type));
      return { type: 'object', ...(info.name ? { title: info.name } : {}), properties, additionalProperties: false };
    }
    case CQL.tuple: {
      const types = type.info as CqlType[];
      return { type: 'array', items: types.map((t) => nullable(jsonSchemaForType(t))), minItems: types.length, maxItems: types.length };
    }
    case CQL.custom:
      if (type.customTypeName === 'vector') {
        const [subtype, dimension] = type.info as [CqlType, number];
        return { type: 'array', items: jsonSchemaForType(subtype), minItems: dimension, maxItems: dimension };
      }
      return { type: 'string', description: 'a custom CQL type, as text' };
    default:
      return {};
  }
}

const isText = (type: CqlType): boolean => type.code === CQL.ascii || type.code === CQL.text || type.code === CQL.varchar;

function nullable(schema: Record<string, unknown>): Record<string, unknown> {
  return { anyOf: [schema, { type: 'null' }] };
}

/** A CQL type as CQL writes it, e.g. `frozen<map<text, int>>`. */
export function cqlTypeName(type: CqlType): string {
  const names: Record<number, string> = Object.fromEntries(Object.entries(CQL).map(([name, code]) => [code, name]));
  const base = (() => {
    switch (type.code) {
      case CQL.list:
      case CQL.set:
        return `${names[type.code]}<${cqlTypeName(elementType(type))}>`;
      case CQL.map: {
        const [k, v] = mapTypes(type);
        return `map<${cqlTypeName(k)}, ${cqlTypeName(v)}>`;
      }
      case CQL.tuple:
        return `tuple<${(type.info as CqlType[]).map(cqlTypeName).join(', ')}>`;
      case CQL.udt:
        return udtInfo(type).name ?? 'udt';
      case CQL.custom:
        if (type.customTypeName === 'vector') {
          const [subtype, dimension] = type.info as [CqlType, number];
          return `vector<${cqlTypeName(subtype)}, ${dimension}>`;
        }
        return typeof type.info === 'string' ? `'${type.info}'` : 'custom';
      default:
        return names[type.code] ?? `type(${type.code})`;
    }
  })();
  return type.options?.frozen && (type.code === CQL.list || type.code === CQL.set || type.code === CQL.map || type.code === CQL.udt || type.code === CQL.tuple)
    ? `frozen<${base}>`
    : base;
}

/** The JSON Schema of one row image (`before`/`after`) of a table. */
export function rowSchemaForTable(table: CqlTableShape): Record<string, unknown> {
  const keyNames = new Set([...table.partitionKeys, ...table.clusteringKeys].map((c) => c.name));
  const properties: Record<string, unknown> = {};
  for (const column of table.columns) {
    const schema = { ...jsonSchemaForType(column.type), description: describeColumn(column, keyNames.has(column.name)) };
    properties[column.name] = keyNames.has(column.name) ? schema : nullable(schema);
  }
  return {
    type: 'object',
    properties,
    // Partition key columns are in every image; clustering columns are absent from the
    // images of static-row changes and partition deletes.
    required: table.partitionKeys.map((c) => c.name),
    additionalProperties: false,
  };
}

function describeColumn(column: CqlColumn, isKey: boolean): string {
  const kind = isKey ? 'primary key column' : column.isStatic ? 'static column' : 'column';
  const partial = !isKey && isNonFrozenCollection(column.type) ? '; without a post-image, element-wise changes are in collection_changes' : '';
  return `${cqlTypeName(column.type)} ${kind}${partial}`;
}

/**
 * The JSON Schema of the change events of one table: the Debezium-style envelope written to
 * `<topic.prefix>.<keyspace>.<table>` in the `merged` format (cdc.output.format).
 */
export function jsonSchemaForTable(table: CqlTableShape): Record<string, unknown> {
  const row = rowSchemaForTable(table);
  const keyspace = (table as { keyspace?: unknown }).keyspace;
  const title = typeof keyspace === 'string' ? `${keyspace}.${table.name}` : table.name;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: `${title} change event`,
    type: 'object',
    definitions: { row },
    properties: {
      before: {
        description: 'The row before the change: the pre-image when the table has one; for a delete without pre-image, the key columns; otherwise null.',
        anyOf: [{ $ref: '#/definitions/row' }, { type: 'null' }],
      },
      after: {
        description:
          'The row after the change: the post-image when the table has one, otherwise the key and the columns the write set (a column set to null is null, a column not written is absent); null for deletes.',
        anyOf: [{ $ref: '#/definitions/row' }, { type: 'null' }],
      },
      op: { description: 'c = insert, u = update, d = row or partition delete', enum: ['c', 'u', 'd'] },
      ts_ms: { type: 'integer', description: 'when the connector processed the change (ms since the epoch)' },
      source: {
        type: 'object',
        properties: {
          version: { type: 'string' },
          connector: { const: 'scylla' },
          name: { type: 'string', description: 'the topic prefix' },
          ts_ms: { type: 'integer', description: 'write time of the change, ms since the epoch' },
          ts_us: { type: 'integer', description: 'write time of the change, µs since the epoch (cdc$time)' },
          ts_ns: { type: 'integer', description: 'write time of the change, ns since the epoch (exact to the µs)' },
          sequence: { type: 'string', description: 'the write\'s cdc$time and the change\'s cdc$batch_seq_no, as a JSON array in text' },
          snapshot: { const: false },
          db: { type: 'string' },
          keyspace_name: { type: 'string' },
          table_name: { type: 'string' },
        },
        required: ['version', 'connector', 'name', 'ts_ms', 'ts_us', 'ts_ns', 'sequence', 'snapshot', 'db', 'keyspace_name', 'table_name'],
      },
      collection_changes: {
        type: 'object',
        description:
          'Only without a post-image: per non-frozen collection or UDT column changed element by element, the elements added (same shape as the column) and the keys removed.',
        additionalProperties: {
          type: 'object',
          properties: { added: {}, removed: { type: 'array' } },
        },
      },
    },
    required: ['before', 'after', 'op', 'ts_ms', 'source'],
  };
}
