/**
 * Kafka's InsertField: adds the record's topic, partition, offset, timestamp or a static value
 * as fields of a map key or value. Omnibus's partition is the shard; its offset is the message
 * id (a message's position on the bus), for sink records only, as Kafka's. A `!`/`?` suffix on
 * a field name (required/optional) is accepted and, as in Kafka without schemas, changes
 * nothing. A null key or value (a tombstone) passes through unchanged, as do fields whose
 * metadata the record lacks (a source record has no shard yet).
 */
import { ConfigSpec } from '@omnibus/sdk';
import { keyValuePair } from './define.ts';
import { KAFKA_TRANSFORMS, operand, requireMap, TransformError, withOperand } from './record.ts';

const PURPOSE = 'field insertion';

const field = (what: string) => ({
  documentation: `Field name for ${what}. Suffix with ! to make this a required field, or ? to keep it optional (the default).`,
  optional: true as const,
});

const spec = ConfigSpec.builder()
  .string('topic.field', field('the topic'))
  .string('partition.field', field('the shard (Kafka partition) the record was read from; sink connectors only'))
  .string('offset.field', field('the message id (Omnibus has no offsets: a message id is its position on the bus); sink connectors only'))
  .string('timestamp.field', field('the record timestamp (ms since the epoch)'))
  .string('static.field', field('a static data field'))
  .string('static.value', { documentation: 'Static field value, if field name is configured.', optional: true });

const bare = (name: string | undefined): string | undefined => {
  if (name === undefined || name === '') return undefined;
  return name.endsWith('!') || name.endsWith('?') ? name.slice(0, -1) : name;
};

export const InsertField = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'InsertField',
  description: 'Inserts fields using attributes from the record metadata or a configured static value',
  config: spec,
  create(config, side) {
    const topicField = bare(config['topic.field']);
    const partitionField = bare(config['partition.field']);
    const offsetField = bare(config['offset.field']);
    const timestampField = bare(config['timestamp.field']);
    const staticField = bare(config['static.field']);
    const staticValue = config['static.value'];
    return {
      apply(record) {
        const current = operand(record, side);
        if (current === null || current === undefined) return record;
        const updated = { ...requireMap(current, PURPOSE) };
        if (topicField) updated[topicField] = record.topic;
        if (partitionField && record.shard !== undefined) updated[partitionField] = record.shard;
        if (offsetField) {
          if (record.direction !== 'sink' || record.id === undefined) {
            throw new TransformError(`Only sink records supported for [${PURPOSE}] of offset.field`);
          }
          updated[offsetField] = record.id;
        }
        if (timestampField && record.timestamp !== undefined) updated[timestampField] = record.timestamp;
        if (staticField && staticValue !== undefined) updated[staticField] = staticValue;
        return withOperand(record, side, updated);
      },
    };
  },
});
