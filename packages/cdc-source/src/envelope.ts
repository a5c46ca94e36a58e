/**
 * From CDC log rows to change events.
 *
 * ScyllaDB writes the log rows of one base write under one stream and one `cdc$time`,
 * numbered by `cdc$batch_seq_no` from 0: pre-images (operation 0) first, then the delta rows
 * (1 update, 2 insert, 3 row delete, 4 partition delete, 5–8 range delete bounds), then
 * post-images (9); `cdc$end_of_batch` marks the last row (cdc/log.cc). One write can hold
 * several delta rows: a batch touching several rows of a partition, or one statement that
 * ScyllaDB splits (an INSERT with a collection is a row marker, a collection tombstone and
 * the added cells; a batch of TTL'd INSERTs, whose null cells carry no TTL). The insert/update
 * deltas of one row in one write are merged into one change; every delete is a change of its own.
 *
 * Range deletes are skipped, as ScyllaDB's Kafka connector does: they name no row.
 */
import { CQL, cqlToJson, isNonFrozenCollection, type CqlColumn, type CqlTableShape, type CqlType } from './schema.ts';
import { compareTimeuuids, timeuuidString } from './timeuuid.ts';

export const CdcOperation = {
  preImage: 0,
  update: 1,
  insert: 2,
  rowDelete: 3,
  partitionDelete: 4,
  rangeDeleteStartInclusive: 5,
  rangeDeleteStartExclusive: 6,
  rangeDeleteEndInclusive: 7,
  rangeDeleteEndExclusive: 8,
  postImage: 9,
} as const;

const DELETED = 'cdc$deleted_';
const DELETED_ELEMENTS = 'cdc$deleted_elements_';

/** One row of a `<table>_scylla_cdc_log` table. */
export interface LogRow {
  streamId: Buffer;
  /** `cdc$time` as 16 bytes. */
  time: Buffer;
  /** Write time, µs since the epoch. */
  micros: number;
  batchSeqNo: number;
  endOfBatch: boolean;
  operation: number;
  ttl: number | null;
  /** Every column of the row by name, as cassandra-driver decoded it (mirrored and cdc$deleted_* columns). */
  values: Record<string, unknown>;
}

export type Op = 'c' | 'u' | 'd';
export type RowImage = Record<string, unknown>;

export interface CollectionChange {
  added?: unknown;
  removed?: unknown[];
}

export interface Change {
  op: Op;
  /** The message key: JSON of the primary key columns present, in key order. */
  key: string;
  before: RowImage | null;
  after: RowImage | null;
  collectionChanges?: Record<string, CollectionChange>;
  /** The first delta row of the change: its stream, time and sequence number identify the change. */
  row: LogRow;
}

/** Debezium's `source` block, its fields in Debezium's order. */
export interface EnvelopeSource {
  version: string;
  connector: 'scylla';
  name: string;
  ts_ms: number;
  snapshot: false;
  db: string;
  /** The write's `cdc$time` and the change's `cdc$batch_seq_no`, as a JSON array in text: `["<timeuuid>",0]`. */
  sequence: string;
  ts_us: number;
  /** The write time in ns (exact to the µs that `cdc$time` holds). */
  ts_ns: number;
  keyspace_name: string;
  table_name: string;
}

export interface Envelope {
  before: RowImage | null;
  after: RowImage | null;
  op: Op;
  ts_ms: number;
  source: EnvelopeSource;
  collection_changes?: Record<string, CollectionChange>;
}

/** The change events of one write (the log rows of one stream and one `cdc$time`). */
export function changesOfWrite(rows: readonly LogRow[], table: CqlTableShape): Change[] {
  const ordered = [...rows].sort((a, b) => a.batchSeqNo - b.batchSeqNo);
  const pre = new Map<string, LogRow>();
  const post = new Map<string, LogRow>();
  const deltas: LogRow[] = [];
  for (const row of ordered) {
    if (row.operation === CdcOperation.preImage) pre.set(clusteringIdentity(row, table), row);
    else if (row.operation === CdcOperation.postImage) post.set(clusteringIdentity(row, table), row);
    else if (row.operation >= CdcOperation.update && row.operation <= CdcOperation.partitionDelete) deltas.push(row);
  }

  // Every insert/update row of one row in one write is one logical change, adjacent or not:
  // ScyllaDB splits a write by timestamp and TTL (cdc/split.cc), so a batch of TTL'd INSERTs
  // logs every row's TTL'd cells first and their TTL-less null cells after all of them. A
  // delete of the row (or of its partition) ends the change; what follows starts a new one.
  const changes: Array<Change | PendingUpsert> = [];
  const open = new Map<string, PendingUpsert>();
  for (const delta of deltas) {
    const identity = clusteringIdentity(delta, table);
    if (delta.operation === CdcOperation.rowDelete || delta.operation === CdcOperation.partitionDelete) {
      const partitionOnly = delta.operation === CdcOperation.partitionDelete;
      if (partitionOnly) open.clear();
      else open.delete(identity);
      // A partition delete has a pre-image only where the partition is one row (no clustering
      // key), and only from ScyllaDB 2026.1 on (scylladb#26578); it is used when present.
      const preImage = partitionOnly && table.clusteringKeys.length > 0 ? undefined : pre.get(identity);
      changes.push({
        op: 'd',
        key: keyOf(delta, table, partitionOnly),
        before: preImage ? imageOf(preImage, table, 'pre') : keyColumnsOf(delta, table, partitionOnly),
        after: null,
        row: delta,
      });
      continue;
    }
    let pending = open.get(identity);
    if (!pending) {
      pending = { first: delta, identity, merge: new DeltaMerge(table), inserted: false };
      open.set(identity, pending);
      changes.push(pending);
    }
    if (delta.operation === CdcOperation.insert) pending.inserted = true;
    pending.merge.apply(delta);
  }
  return changes.map((entry) => ('op' in entry ? entry : upsertChange(entry, table, pre, post)));
}

interface PendingUpsert {
  /** The first delta row of the change: its sequence number names the change. */
  first: LogRow;
  identity: string;
  merge: DeltaMerge;
  inserted: boolean;
}

function upsertChange(pending: PendingUpsert, table: CqlTableShape, pre: Map<string, LogRow>, post: Map<string, LogRow>): Change {
  const preImage = pre.get(pending.identity);
  const postImage = post.get(pending.identity);
  const change: Change = {
    op: pending.inserted ? 'c' : 'u',
    key: keyOf(pending.first, table, false),
    before: preImage ? imageOf(preImage, table, 'pre') : null,
    after: postImage ? imageOf(postImage, table, 'post') : { ...keyColumnsOf(pending.first, table, false), ...pending.merge.columns() },
    row: pending.first,
  };
  const collectionChanges = postImage ? undefined : pending.merge.collectionChanges();
  if (collectionChanges) change.collectionChanges = collectionChanges;
  return change;
}

export function envelopeOf(
  change: Change,
  context: { version: string; topicPrefix: string; keyspace: string; table: string; nowMs: number },
): Envelope {
  const envelope: Envelope = {
    before: change.before,
    after: change.after,
    op: change.op,
    ts_ms: context.nowMs,
    source: {
      version: context.version,
      connector: 'scylla',
      name: context.topicPrefix,
      ts_ms: Math.floor(change.row.micros / 1000),
      snapshot: false,
      db: context.keyspace,
      sequence: JSON.stringify([timeuuidString(change.row.time), change.row.batchSeqNo]),
      ts_us: change.row.micros,
      ts_ns: change.row.micros * 1000,
      keyspace_name: context.keyspace,
      table_name: context.table,
    },
  };
  if (change.collectionChanges) envelope.collection_changes = change.collectionChanges;
  return envelope;
}

// ---- keys ---------------------------------------------------------------------------------

function hasClustering(row: LogRow, table: CqlTableShape): boolean {
  return table.clusteringKeys.length > 0 && table.clusteringKeys.every((c) => row.values[c.name] !== null && row.values[c.name] !== undefined);
}

/** Which clustering row a log row is about ('' for the static row or a table without clustering columns). */
function clusteringIdentity(row: LogRow, table: CqlTableShape): string {
  if (!hasClustering(row, table)) return '';
  return JSON.stringify(table.clusteringKeys.map((c) => cqlToJson(row.values[c.name], c.type)));
}

function keyColumnsOf(row: LogRow, table: CqlTableShape, partitionOnly: boolean): RowImage {
  const columns: CqlColumn[] = [...table.partitionKeys];
  if (!partitionOnly && hasClustering(row, table)) columns.push(...table.clusteringKeys);
  const out: RowImage = {};
  for (const column of columns) out[column.name] = cqlToJson(row.values[column.name], column.type);
  return out;
}

/**
 * The message key: the primary key as JSON, columns in key order. Changes of the static row
 * and partition deletes carry the partition key alone.
 */
function keyOf(row: LogRow, table: CqlTableShape, partitionOnly: boolean): string {
  return JSON.stringify(keyColumnsOf(row, table, partitionOnly));
}

// ---- images -------------------------------------------------------------------------------

function dataColumns(table: CqlTableShape): CqlColumn[] {
  const keys = new Set([...table.partitionKeys, ...table.clusteringKeys].map((c) => c.name));
  return table.columns.filter((c) => !keys.has(c.name));
}

/**
 * A pre-image holds the columns it was asked for: a value, or null with `cdc$deleted_X` set
 * for a column that was null; a column left out of a (non-full) pre-image is absent. A
 * post-image holds every column.
 */
function imageOf(row: LogRow, table: CqlTableShape, kind: 'pre' | 'post'): RowImage {
  const image = keyColumnsOf(row, table, false);
  const staticRow = !hasClustering(row, table) && table.clusteringKeys.length > 0;
  for (const column of dataColumns(table)) {
    if (staticRow && !column.isStatic) continue;
    if (!staticRow && column.isStatic && table.clusteringKeys.length > 0) continue;
    const value = row.values[column.name];
    if (value !== null && value !== undefined) image[column.name] = wholeValue(value, column.type);
    else if (kind === 'post' || row.values[DELETED + column.name] === true) image[column.name] = null;
  }
  return image;
}

/** A column value as the log holds it (non-frozen lists are maps keyed by timeuuid) as JSON. */
function wholeValue(value: unknown, type: CqlType): unknown {
  if (type.code === CQL.list && type.options?.frozen !== true && value instanceof Map) {
    return listEntries(value).map(([, v]) => cqlToJson(v, type.info as CqlType));
  }
  return cqlToJson(value, type);
}

function listEntries(value: Map<unknown, unknown>): Array<[string, unknown]> {
  return [...value.entries()]
    .map(([k, v]) => [String(k), v] as [string, unknown])
    .sort(([a], [b]) => compareTimeuuids(a, b));
}

// ---- deltas -------------------------------------------------------------------------------

interface CollectionState {
  replaced: boolean;
  /** set and list: JSON items by identity; map and UDT: JSON values by key/field. */
  items: Map<string, unknown>;
  removed: unknown[];
}

/** Folds the delta rows of one row change into column values and collection changes. */
class DeltaMerge {
  private readonly atomic = new Map<string, unknown>();
  private readonly collections = new Map<string, CollectionState>();

  constructor(private readonly table: CqlTableShape) {}

  apply(row: LogRow): void {
    for (const column of dataColumns(this.table)) {
      if (isNonFrozenCollection(column.type)) this.applyCollection(row, column);
      else {
        const value = row.values[column.name];
        if (value !== null && value !== undefined) this.atomic.set(column.name, cqlToJson(value, column.type));
        else if (row.values[DELETED + column.name] === true) this.atomic.set(column.name, null);
      }
    }
  }

  private applyCollection(row: LogRow, column: CqlColumn): void {
    const cleared = row.values[DELETED + column.name] === true;
    const added = row.values[column.name];
    const removed = row.values[DELETED_ELEMENTS + column.name];
    const hasAdded = added !== null && added !== undefined;
    const hasRemoved = removed !== null && removed !== undefined;
    if (!cleared && !hasAdded && !hasRemoved) return;
    let state = this.collections.get(column.name);
    if (!state || cleared) {
      state = { replaced: cleared || state?.replaced === true, items: cleared ? new Map() : (state?.items ?? new Map()), removed: cleared ? [] : (state?.removed ?? []) };
      this.collections.set(column.name, state);
    }
    if (hasRemoved) {
      for (const key of removedKeys(removed, column.type)) {
        if (!state.items.delete(key.identity)) {
          if (!state.replaced) state.removed.push(key.json);
        }
        if (column.type.code === CQL.udt && state.replaced) state.items.set(key.identity, null);
      }
    }
    if (hasAdded) for (const [identity, json] of addedItems(added, column.type)) state.items.set(identity, json);
  }

  columns(): RowImage {
    const out: RowImage = Object.fromEntries(this.atomic);
    for (const [name, state] of this.collections) {
      if (!state.replaced) continue;
      const type = this.table.columns.find((c) => c.name === name)!.type;
      if (state.items.size === 0) {
        out[name] = null;
      } else if (type.code === CQL.udt) {
        // A UDT written whole has every field: the ones not written are null.
        const fields = (type.info as { fields: Array<{ name: string }> }).fields;
        out[name] = { ...Object.fromEntries(fields.map((f) => [f.name, null])), ...Object.fromEntries(state.items) };
      } else {
        out[name] = collectionValue(state.items, type);
      }
    }
    return out;
  }

  collectionChanges(): Record<string, CollectionChange> | undefined {
    const out: Record<string, CollectionChange> = {};
    for (const [name, state] of this.collections) {
      if (state.replaced) continue;
      const type = this.table.columns.find((c) => c.name === name)!.type;
      const change: CollectionChange = {};
      if (state.items.size > 0) change.added = collectionValue(state.items, type);
      if (state.removed.length > 0) change.removed = state.removed;
      out[name] = change;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
}

/** The elements a delta adds, by identity (set item, list cell timeuuid, map key, UDT field). */
function addedItems(value: unknown, type: CqlType): Array<[string, unknown]> {
  switch (type.code) {
    case CQL.set: {
      const items = [...(value as Iterable<unknown>)].map((v) => cqlToJson(v, type.info as CqlType));
      return items.map((json) => [JSON.stringify(json), json]);
    }
    case CQL.list:
      return listEntries(value as Map<unknown, unknown>).map(([k, v]) => [k, cqlToJson(v, type.info as CqlType)]);
    case CQL.map: {
      const json = cqlToJson(value, type) as Record<string, unknown>;
      return Object.entries(json);
    }
    case CQL.udt: {
      // A UDT delta holds the fields written; the others are null.
      const json = cqlToJson(value, type) as Record<string, unknown>;
      return Object.entries(json).filter(([, v]) => v !== null);
    }
    default:
      return [];
  }
}

/** The keys a delta removes: set items, list cell timeuuids, map keys, UDT field indices. */
function removedKeys(value: unknown, type: CqlType): Array<{ identity: string; json: unknown }> {
  const items = [...(value as Iterable<unknown>)];
  switch (type.code) {
    case CQL.set:
      return items.map((v) => {
        const json = cqlToJson(v, type.info as CqlType);
        return { identity: JSON.stringify(json), json };
      });
    case CQL.list:
      return items.map((v) => ({ identity: String(v), json: String(v) }));
    case CQL.map: {
      const [keyType] = type.info as [CqlType, CqlType];
      return items.map((v) => {
        const json = cqlToJson(v, keyType);
        return { identity: typeof json === 'string' ? json : JSON.stringify(json), json };
      });
    }
    case CQL.udt: {
      const fields = (type.info as { fields: Array<{ name: string }> }).fields;
      return items.map((v) => {
        const name = fields[Number(v)]?.name ?? String(v);
        return { identity: name, json: name };
      });
    }
    default:
      return [];
  }
}

function collectionValue(items: Map<string, unknown>, type: CqlType): unknown {
  switch (type.code) {
    case CQL.set:
      return [...items.values()];
    case CQL.list:
      return [...items.entries()].sort(([a], [b]) => compareTimeuuids(a, b)).map(([, v]) => v);
    default:
      return Object.fromEntries(items);
  }
}

// ---- ordering -----------------------------------------------------------------------------

/** Identity of one write in the log: its stream and its `cdc$time`. */
export function writeIdentity(row: LogRow): string {
  return `${row.streamId.toString('hex')}/${timeuuidString(row.time)}`;
}

/**
 * The read order of a window: by `cdc$time`, then stream, then `cdc$batch_seq_no`, so that the
 * rows of one write stay together and in their own order.
 */
export function compareLogRows(a: LogRow, b: LogRow): number {
  return compareTimeuuids(a.time, b.time) || Buffer.compare(a.streamId, b.streamId) || a.batchSeqNo - b.batchSeqNo;
}
