/**
 * Debezium's ExtractNewRecordState, for change events in Debezium's envelope (`before`,
 * `after`, `op`, `ts_ms`, `source`), as Omnibus's ScyllaDB CDC source produces them: the value
 * becomes the row after the change. Deletes and tombstones are handled as Debezium does:
 *
 * - `delete.tombstone.handling.mode` (Debezium 2.5+), when set: `drop` drops deletes and
 *   tombstones; `tombstone` turns a delete into a tombstone (null value) and drops tombstones;
 *   `rewrite` turns a delete into the row before it with `__deleted: "true"` (other changes get
 *   `"false"`) and drops tombstones; `rewrite-with-tombstone` rewrites and keeps tombstones;
 *   `delete-to-tombstone` turns deletes into tombstones and keeps tombstones.
 * - otherwise the older keys: `delete.handling.mode` (`drop`, the default; `none`: a delete
 *   becomes a tombstone; `rewrite`) and `drop.tombstones` (true by default).
 *
 * `add.fields` adds envelope fields to the row (`op`, `ts_ms`, or `source.<field>`; a bare
 * name that is not an envelope field is read from `source`, e.g. `table_name`), named with
 * `add.fields.prefix` and `.` turned into `_` (`source.ts_ms` → `__source_ts_ms`);
 * `add.headers` adds them as headers the same way. A value that is not a change event (no
 * `op`) passes through unchanged.
 *
 * ScyllaDB's ScyllaExtractNewRecordState does the same, then unwraps the cells of ScyllaDB's
 * legacy event format, where each non-key column is `{"value": …}` (null when not set).
 */
import { ConfigSpec, validators } from '@omnibus/sdk';
import { single } from './define.ts';
import { headerText, isMap, type JsonMap } from './record.ts';
import type { TransformRecord } from '@omnibus/sdk';

const ENVELOPE_FIELDS = new Set(['op', 'ts_ms', 'ts_us', 'ts_ns', 'before', 'after', 'source', 'transaction']);

const spec = ConfigSpec.builder()
  .boolean('drop.tombstones', {
    documentation: 'Deprecated (use delete.tombstone.handling.mode). Whether tombstones are dropped.',
    default: true,
  })
  .string('delete.handling.mode', {
    documentation: 'Deprecated (use delete.tombstone.handling.mode). How delete events are handled: drop, none (a tombstone) or rewrite (the row before, with __deleted).',
    default: 'drop',
    validator: validators.oneOf('drop', 'none', 'rewrite'),
    recommended: ['drop', 'none', 'rewrite'],
  })
  .string('delete.tombstone.handling.mode', {
    documentation: 'How delete events and tombstones are handled: drop, tombstone, rewrite, rewrite-with-tombstone or delete-to-tombstone. When unset, delete.handling.mode and drop.tombstones decide.',
    optional: true,
    validator: validators.oneOf('drop', 'tombstone', 'rewrite', 'rewrite-with-tombstone', 'delete-to-tombstone'),
    recommended: ['drop', 'tombstone', 'rewrite', 'rewrite-with-tombstone', 'delete-to-tombstone'],
  })
  .list('add.fields', { documentation: 'Envelope fields to add to the row, e.g. op,source.ts_ms,table_name.', default: [] })
  .string('add.fields.prefix', { documentation: 'Prefix of the names of added fields.', default: '__' })
  .list('add.headers', { documentation: 'Envelope fields to add as headers, e.g. op,source.ts_ms.', default: [] })
  .string('add.headers.prefix', { documentation: 'Prefix of the names of added headers.', default: '__' });

type Config = ReturnType<typeof spec.parse>;

interface Handling {
  deletes: 'drop' | 'tombstone' | 'rewrite';
  keepTombstones: boolean;
}

function handlingOf(config: Config): Handling {
  switch (config['delete.tombstone.handling.mode']) {
    case 'drop':
      return { deletes: 'drop', keepTombstones: false };
    case 'tombstone':
      return { deletes: 'tombstone', keepTombstones: false };
    case 'rewrite':
      return { deletes: 'rewrite', keepTombstones: false };
    case 'rewrite-with-tombstone':
      return { deletes: 'rewrite', keepTombstones: true };
    case 'delete-to-tombstone':
      return { deletes: 'tombstone', keepTombstones: true };
    default: {
      const legacy = config['delete.handling.mode'];
      return { deletes: legacy === 'none' ? 'tombstone' : legacy === 'rewrite' ? 'rewrite' : 'drop', keepTombstones: !config['drop.tombstones'] };
    }
  }
}

/** An envelope field by reference: `op`, `source.ts_ms`, or a bare source field such as `table_name`. */
function envelopeField(envelope: JsonMap, reference: string): { name: string; value: unknown } {
  const dot = reference.indexOf('.');
  const [struct, field] = dot >= 0 ? [reference.slice(0, dot), reference.slice(dot + 1)] : ENVELOPE_FIELDS.has(reference) ? ['', reference] : ['source', reference];
  const holder = struct === '' ? envelope : envelope[struct];
  const value = isMap(holder) ? holder[field] : undefined;
  return { name: dot >= 0 ? reference.replaceAll('.', '_') : reference, value: value === undefined ? null : value };
}

function unwrapCells(row: JsonMap): JsonMap {
  const out: JsonMap = {};
  for (const [name, cell] of Object.entries(row)) {
    out[name] = isMap(cell) && Object.keys(cell).length === 1 && Object.prototype.hasOwnProperty.call(cell, 'value') ? cell.value : cell;
  }
  return out;
}

function extractor(config: Config, unwrap: boolean): (record: TransformRecord) => TransformRecord | null {
  const handling = handlingOf(config);
  const fieldsPrefix = config['add.fields.prefix'];
  const headersPrefix = config['add.headers.prefix'];
  const addFields = config['add.fields'];
  const addHeaders = config['add.headers'];
  return (record) => {
    const envelope = record.value;
    if (envelope === null || envelope === undefined) return handling.keepTombstones ? record : null;
    if (!isMap(envelope) || typeof envelope.op !== 'string') return record;
    const isDelete = envelope.op === 'd';
    let row: JsonMap | null;
    if (isDelete) {
      if (handling.deletes === 'drop') return null;
      if (handling.deletes === 'tombstone') row = null;
      else row = isMap(envelope.before) ? { ...envelope.before } : {};
    } else {
      row = isMap(envelope.after) ? { ...envelope.after } : null;
    }
    if (row !== null) {
      if (unwrap) row = unwrapCells(row);
      for (const reference of addFields) {
        const { name, value } = envelopeField(envelope, reference);
        row[fieldsPrefix + name] = value;
      }
      if (handling.deletes === 'rewrite') row[`${fieldsPrefix}deleted`] = String(isDelete);
    }
    let headers = record.headers;
    if (addHeaders.length > 0) {
      const added: Record<string, string> = { ...headers };
      headers = added;
      for (const reference of addHeaders) {
        const { name, value } = envelopeField(envelope, reference);
        added[headersPrefix + name] = headerText(value);
      }
    }
    return { ...record, value: row, headers };
  };
}

export const ExtractNewRecordState = single({
  className: 'io.debezium.transforms.ExtractNewRecordState',
  aliases: ['ExtractNewRecordState'],
  description: "Extracts the row after the change from a Debezium change event's envelope (the 'after' field), with Debezium's handling of deletes and tombstones.",
  config: spec,
  create(config) {
    const apply = extractor(config, false);
    return { apply };
  },
});

export const ScyllaExtractNewRecordState = single({
  className: 'com.scylladb.cdc.debezium.connector.transforms.ScyllaExtractNewRecordState',
  aliases: ['ScyllaExtractNewRecordState'],
  description: "ExtractNewRecordState for ScyllaDB's CDC events: also unwraps the {\"value\": …} cells of ScyllaDB's legacy event format.",
  config: spec,
  create(config) {
    const apply = extractor(config, true);
    return { apply };
  },
});
