/**
 * Kafka's ValueToKey: the key becomes a map of the listed fields of the value (a field the
 * value lacks is null, as in Kafka). Omnibus keys are strings, so once the chain has run the
 * runtime keeps the key as canonical JSON (see chain.ts).
 */
import { ConfigSpec, validators } from '@omnibus/sdk';
import { single } from './define.ts';
import { KAFKA_TRANSFORMS, requireMap } from './record.ts';

export const ValueToKey = single({
  className: `${KAFKA_TRANSFORMS}.ValueToKey`,
  aliases: ['ValueToKey'],
  description: 'Replaces the record key with a new key formed from a subset of fields in the record value.',
  config: ConfigSpec.builder().list('fields', { documentation: 'Field names on the record value to extract as the record key.', validator: validators.nonEmptyList() }),
  create({ fields }) {
    return {
      apply(record) {
        const value = requireMap(record.value, 'copying fields from value to key');
        const key: Record<string, unknown> = {};
        for (const field of fields) key[field] = Object.prototype.hasOwnProperty.call(value, field) ? value[field] : null;
        return { ...record, key };
      },
    };
  },
});
