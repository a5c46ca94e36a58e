/**
 * The event formats of ScyllaDB's Kafka connector (scylla-cdc-source-connector 2.0, Debezium
 * 2.7), chosen with its own key `cdc.output.format`, written from its documented behaviour:
 *
 * - `legacy` (ScyllaDB's default): one event per delta row; every non-key column wrapped as
 *   `{"value": …}` when the row sets or deletes it, `null` when it leaves it alone;
 *   collections, UDTs and tuples left out; `before` from the pre-image only with
 *   `experimental.preimages.enabled`; partition deletes of tables with clustering key dropped.
 * - `advanced`: `before` and `after` built from the pre- and post-images
 *   (`cdc.include.before` / `cdc.include.after`: none, full, only-updated), plain values.
 *
 * The value is what Kafka Connect's JsonConverter writes for the connector's Struct with
 * `schemas.enable=false`: every field of the schema, in schema order, null when unset —
 * `source, before, after, op, ts_ms, transaction, ts_us, ts_ns` — and row images with the
 * table's columns in the CDC log's column order (ScyllaDB orders them by name).
 */
import { CQL, type CqlColumn, type CqlTableShape, type CqlType } from './schema.ts';
import { CdcOperation, type LogRow } from './envelope.ts';
import { compareTimeuuids } from './timeuuid.ts';

export const OUTPUT_FORMATS = ['merged', 'legacy', 'advanced'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const INCLUDE_MODES = ['none', 'full', 'only-updated'] as const;
export type IncludeMode = (typeof INCLUDE_MODES)[number];

export interface ScyllaFormatOptions {
  format: 'legacy' | 'advanced';
  /** `experimental.preimages.enabled` (legacy). */
  preimages: boolean;
  /** `cdc.include.before` / `cdc.include.after` (advanced). */
  includeBefore: IncludeMode;
  includeAfter: IncludeMode;
}

export interface EventContext {
  version: string;
  topicPrefix: string;
  keyspace: string;
  table: string;
  /** Processing time, µs since the epoch. */
  nowUs: number;
}

/** One event: the record key (JSON text), the value, and the log row that names it. */
export interface FormattedEvent {
  key: string;
  value: Record<string, unknown>;
  row: LogRow;
}

type Image = Record<string, unknown>;

const DELETED = 'cdc$deleted_';
const DELETED_ELEMENTS = 'cdc$deleted_elements_';

/** The events ScyllaDB's connector emits for the log rows of one write. */
export function scyllaFormatEvents(rows: readonly LogRow[], table: CqlTableShape, options: ScyllaFormatOptions, context: EventContext): FormattedEvent[] {
  const ordered = [...rows].sort((a, b) => a.batchSeqNo - b.batchSeqNo);
  return options.format === 'legacy' ? legacyEvents(ordered, table, options, context) : advancedEvents(ordered, table, options, context);
}

// ---- legacy -------------------------------------------------------------------------------

function legacyEvents(rows: LogRow[], table: CqlTableShape, options: ScyllaFormatOptions, context: EventContext): FormattedEvent[] {
  const columns = logColumns(table).filter((c) => isLegacyType(c.type));
  const preImages = new Map<string, LogRow>();
  const events: FormattedEvent[] = [];
  for (const row of rows) {
    const identity = rowIdentity(row, table);
    if (row.operation === CdcOperation.preImage) {
      if (options.preimages) preImages.set(identity, row);
      continue;
    }
    if (!isEmitted(row, table)) continue;
    const preImage = options.preimages ? preImages.get(identity) : undefined;
    if (preImage) preImages.delete(identity);
    // Cells come from `source`; whether a column was deleted always from the delta row.
    const cells = (source: LogRow): Image => {
      const out: Image = {};
      for (const column of columns) {
        const value = kafkaValue(source.values[column.name], column.type);
        if (isKey(column, table)) out[column.name] = value;
        else out[column.name] = value !== null || row.values[DELETED + column.name] === true ? { value } : null;
      }
      return out;
    };
    const op = opOf(row);
    const before = op === 'd' ? cells(preImage ?? row) : preImage ? cells(preImage) : null;
    const after = op === 'd' ? null : cells(row);
    // Without a pre-image the connector builds the envelope with Debezium's Envelope, which
    // sets ts_us and ts_ns; with one (inserts, updates), with its own, which does not.
    const envelopeTimes = op === 'd' || !preImage;
    events.push({ key: keyOf(row, table, columns), value: envelope(before, after, op, row, context, envelopeTimes), row });
  }
  return events;
}

function isLegacyType(type: CqlType): boolean {
  return ![CQL.list, CQL.set, CQL.map, CQL.udt, CQL.tuple].includes(type.code as never) && !(type.code === CQL.custom);
}

// ---- advanced -----------------------------------------------------------------------------

interface Pending {
  pre?: LogRow;
  change?: LogRow;
  post?: LogRow;
}

function advancedEvents(rows: LogRow[], table: CqlTableShape, options: ScyllaFormatOptions, context: EventContext): FormattedEvent[] {
  const columns = logColumns(table);
  const usePre = options.includeBefore !== 'none';
  const usePost = options.includeAfter !== 'none';
  const pending = new Map<string, Pending>();
  const events: FormattedEvent[] = [];
  for (const row of rows) {
    const identity = rowIdentity(row, table);
    const isImage = row.operation === CdcOperation.preImage || row.operation === CdcOperation.postImage;
    if (!isImage && !isEmitted(row, table)) continue;
    if (isImage && !(usePre || usePost)) continue;
    // The connector gathers a row's pre-image, delta and post-image, and emits once it has
    // what the configured images need (its TaskInfo).
    const state = pending.get(identity) ?? {};
    if (row.operation === CdcOperation.preImage) state.pre = row;
    else if (row.operation === CdcOperation.postImage) state.post = row;
    else state.change = row;
    pending.set(identity, state);
    if (!isComplete(state, usePre, usePost)) continue;
    pending.delete(identity);
    events.push(advancedEvent(state as Required<Pick<Pending, 'change'>> & Pending, table, columns, options, context));
  }
  return events;
}

function isComplete(state: Pending, usePre: boolean, usePost: boolean): boolean {
  const change = state.change;
  if (!change) return false;
  const op = change.operation;
  const deletes = op === CdcOperation.rowDelete || op === CdcOperation.partitionDelete;
  // A new row has no pre-image; a deleted one no post-image. A partition delete is complete
  // without pre-image (ScyllaDB writes one from 2026.1 on, before the delete row, so it is
  // already there when it exists).
  const preReady = !usePre || op === CdcOperation.insert || op === CdcOperation.partitionDelete || state.pre !== undefined;
  const postReady = !usePost || deletes || state.post !== undefined;
  return preReady && postReady;
}

function advancedEvent(
  state: Pending & { change: LogRow },
  table: CqlTableShape,
  columns: CqlColumn[],
  options: ScyllaFormatOptions,
  context: EventContext,
): FormattedEvent {
  const { pre, change, post } = state;
  const anyImage = post ?? pre ?? change;
  const op = opOf(change);
  let before: Image | null;
  let after: Image | null;
  if (op === 'c') {
    after = fullImage(post, columns);
    before = fullImage(pre, columns);
  } else if (op === 'u') {
    const modified = modifiedColumns(change, columns, table);
    after = options.includeAfter === 'only-updated' ? onlyUpdated(post, modified, columns, table) : fullImage(post, columns);
    before = options.includeBefore === 'only-updated' ? onlyUpdated(pre, modified, columns, table) : beforeOfUpdate(pre, post, modified, columns, table);
  } else {
    before = fullImage(pre, columns);
    after = null;
  }
  return { key: keyOf(anyImage, table, columns), value: envelope(before, after, op, change, context, false), row: change };
}

/** Every column, null when the image has no value; null without image. */
function fullImage(image: LogRow | undefined, columns: CqlColumn[]): Image | null {
  if (!image) return null;
  const out: Image = {};
  for (const column of columns) out[column.name] = kafkaValue(image.values[column.name], column.type);
  return out;
}

/** The key and the columns the write changed, from the image; every other column null. */
function onlyUpdated(image: LogRow | undefined, modified: Set<string>, columns: CqlColumn[], table: CqlTableShape): Image | null {
  if (!image) return null;
  const out: Image = {};
  for (const column of columns) {
    out[column.name] = isKey(column, table) || modified.has(column.name) ? kafkaValue(image.values[column.name], column.type) : null;
  }
  return out;
}

/**
 * The row before an update: ScyllaDB's pre-image holds the old values of the columns the write
 * changed; the others are as the post-image shows them.
 */
function beforeOfUpdate(pre: LogRow | undefined, post: LogRow | undefined, modified: Set<string>, columns: CqlColumn[], table: CqlTableShape): Image | null {
  if (!pre) return null;
  if (!post) return fullImage(pre, columns);
  const out: Image = {};
  for (const column of columns) {
    const from = !isKey(column, table) && modified.has(column.name) ? pre : post;
    out[column.name] = kafkaValue(from.values[column.name], column.type);
  }
  return out;
}

/** Columns a delta row sets, sets to null, or removes elements from. */
function modifiedColumns(change: LogRow, columns: CqlColumn[], table: CqlTableShape): Set<string> {
  const out = new Set<string>();
  for (const column of columns) {
    if (isKey(column, table)) continue;
    const values = change.values;
    const set = values[column.name] !== null && values[column.name] !== undefined;
    const removed = values[DELETED_ELEMENTS + column.name] !== null && values[DELETED_ELEMENTS + column.name] !== undefined;
    if (set || values[DELETED + column.name] === true || removed) out.add(column.name);
  }
  return out;
}

// ---- shared -------------------------------------------------------------------------------

/** The delta rows the connector emits: inserts, updates, row deletes, and partition deletes of tables without clustering key. */
function isEmitted(row: LogRow, table: CqlTableShape): boolean {
  switch (row.operation) {
    case CdcOperation.insert:
    case CdcOperation.update:
    case CdcOperation.rowDelete:
      return true;
    case CdcOperation.partitionDelete:
      return table.clusteringKeys.length === 0;
    default:
      return false;
  }
}

function opOf(row: LogRow): 'c' | 'u' | 'd' {
  if (row.operation === CdcOperation.insert) return 'c';
  if (row.operation === CdcOperation.update) return 'u';
  return 'd';
}

/** The base table's columns in the CDC log's column order: ScyllaDB sorts a table's regular columns by name. */
export function logColumns(table: CqlTableShape): CqlColumn[] {
  return [...table.columns].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function isKey(column: CqlColumn, table: CqlTableShape): boolean {
  return table.partitionKeys.some((c) => c.name === column.name) || table.clusteringKeys.some((c) => c.name === column.name);
}

/** The row a log row is about, as the connector tells rows apart: its primary key values. */
function rowIdentity(row: LogRow, table: CqlTableShape): string {
  return JSON.stringify([...table.partitionKeys, ...table.clusteringKeys].map((c) => kafkaValue(row.values[c.name], c.type)));
}

/** The record key: the primary key columns in log column order, a missing clustering column null. */
function keyOf(row: LogRow, table: CqlTableShape, columns: CqlColumn[]): string {
  const key: Image = {};
  for (const column of columns) if (isKey(column, table)) key[column.name] = kafkaValue(row.values[column.name], column.type);
  return JSON.stringify(key);
}

function envelope(before: Image | null, after: Image | null, op: 'c' | 'u' | 'd', row: LogRow, context: EventContext, envelopeTimes: boolean): Record<string, unknown> {
  const nowMs = Math.floor(context.nowUs / 1000);
  const writeMs = Math.floor(row.micros / 1000);
  return {
    source: {
      version: context.version,
      connector: 'scylla',
      name: context.topicPrefix,
      ts_ms: writeMs,
      snapshot: 'false',
      db: context.keyspace,
      sequence: null,
      ts_us: row.micros,
      // Debezium derives ts_ns from the change time it is given, which has milliseconds only.
      ts_ns: writeMs * 1_000_000,
      keyspace_name: context.keyspace,
      table_name: context.table,
    },
    before,
    after,
    op,
    ts_ms: nowMs,
    transaction: null,
    ts_us: envelopeTimes ? context.nowUs : null,
    ts_ns: envelopeTimes ? context.nowUs * 1000 : null,
  };
}

/**
 * A CQL value as the connector hands it to Kafka Connect, as JsonConverter writes it: bigint
 * and counter as numbers, timestamp as ms, date as days since the epoch, time as ns of the
 * day, blob as base64, uuid/varint/decimal/inet/duration as text, float as the shortest
 * decimal of its 32-bit value, collections as arrays (maps as arrays of {key, value}), tuples
 * as {field_0, …}, UDTs as objects.
 */
export function kafkaValue(value: unknown, type: CqlType): unknown {
  if (value === null || value === undefined) return null;
  switch (type.code) {
    case CQL.ascii:
    case CQL.text:
    case CQL.varchar:
    case CQL.uuid:
    case CQL.timeuuid:
    case CQL.varint:
    case CQL.decimal:
    case CQL.duration:
      return String(value);
    case CQL.bigint:
    case CQL.counter: {
      // JSON numbers beyond 2^53 cannot be written exactly from JavaScript: those stay text.
      const n = Number(String(value));
      return Number.isSafeInteger(n) ? n : String(value);
    }
    case CQL.tinyint:
    case CQL.smallint:
    case CQL.int:
      return Number(value);
    case CQL.boolean:
      return Boolean(value);
    case CQL.double: {
      const n = Number(value);
      return Number.isFinite(n) ? n : String(n);
    }
    case CQL.float:
      return shortestFloat32(Number(value));
    case CQL.timestamp:
      return value instanceof Date ? value.getTime() : Number(value);
    case CQL.date: {
      // cassandra-driver's LocalDate: a UTC Date, or (beyond Date's range) the day count itself.
      const date = value as { date?: Date; _value?: number | null; year: number; month: number; day: number };
      if (typeof date._value === 'number') return date._value;
      if (date.date instanceof Date && !Number.isNaN(date.date.getTime())) return Math.floor(date.date.getTime() / 86_400_000);
      return Math.floor(Date.UTC(date.year, date.month - 1, date.day) / 86_400_000);
    }
    case CQL.time:
      return Number(String((value as { getTotalNanoseconds(): unknown }).getTotalNanoseconds()));
    case CQL.blob:
      return (value as Buffer).toString('base64');
    case CQL.inet:
      return javaHostAddress(value);
    case CQL.list:
    case CQL.set: {
      const element = type.info as CqlType;
      if (value instanceof Map) {
        // A non-frozen list in the log: cells keyed by timeuuid, in timeuuid order.
        return [...value.entries()].sort(([a], [b]) => compareTimeuuids(String(a), String(b))).map(([, v]) => kafkaValue(v, element));
      }
      return [...(value as Iterable<unknown>)].map((item) => kafkaValue(item, element));
    }
    case CQL.map: {
      const [keyType, valueType] = type.info as [CqlType, CqlType];
      const entries: Iterable<[unknown, unknown]> = value instanceof Map ? value.entries() : Object.entries(value as Record<string, unknown>);
      return [...entries].map(([k, v]) => ({ key: kafkaValue(k, keyType), value: kafkaValue(v, valueType) }));
    }
    case CQL.tuple: {
      const types = type.info as CqlType[];
      const items = typeof (value as { values?: unknown }).values === 'function' ? (value as { values(): unknown[] }).values() : (value as unknown[]);
      return Object.fromEntries([...items].map((item, i) => [`field_${i}`, kafkaValue(item, types[i] ?? { code: CQL.custom })]));
    }
    case CQL.udt: {
      const fields = (type.info as { fields: Array<{ name: string; type: CqlType }> }).fields;
      const record = value as Record<string, unknown>;
      return Object.fromEntries(fields.map((f) => [f.name, kafkaValue(record[f.name], f.type)]));
    }
    default:
      return Buffer.isBuffer(value) ? value.toString('base64') : String(value);
  }
}

/** Java's Float.toString value: the shortest decimal that reads back as the same 32-bit float. */
function shortestFloat32(n: number): number | string {
  if (!Number.isFinite(n)) return String(n);
  const target = Math.fround(n);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(target.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return target;
}

/** `InetAddress.getHostAddress()`: dotted IPv4, or IPv6 as eight uncompressed hex groups. */
function javaHostAddress(value: unknown): string {
  const buffer = (value as { buffer?: Buffer }).buffer;
  if (!Buffer.isBuffer(buffer) || buffer.length !== 16) return String(value);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(buffer.readUInt16BE(i).toString(16));
  return groups.join(':');
}
