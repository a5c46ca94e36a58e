/**
 * Kafka's ExtractField: the key or value becomes one field of it. `field.syntax.version=V2`
 * (Kafka 3.8's KIP-821) reads `field` as a dotted path into nested maps; V1, the default, as
 * one field name. A null passes through; a missing field gives null.
 */
import { ConfigSpec, validators } from '@omnibus/sdk';
import { keyValuePair } from './define.ts';
import { KAFKA_TRANSFORMS, operand, requireMapOrNull, valueAtPath, withOperand } from './record.ts';

const spec = ConfigSpec.builder()
  .string('field', { documentation: 'Field name to extract.', validator: validators.nonEmptyString() })
  .string('field.syntax.version', {
    documentation: 'V1: `field` names one top-level field. V2: `field` is a dotted path into nested maps.',
    default: 'V1',
    validator: validators.oneOf('V1', 'V2', 'v1', 'v2'),
    recommended: ['V1', 'V2'],
  });

export const ExtractField = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'ExtractField',
  description: 'Extracts the specified field from a map; a null passes through unmodified',
  config: spec,
  create(config, side) {
    const path = config['field.syntax.version'].toUpperCase() === 'V2' ? config.field.split('.') : [config.field];
    return {
      apply(record) {
        const map = requireMapOrNull(operand(record, side), 'field extraction');
        if (map === null) return withOperand(record, side, null);
        const extracted = valueAtPath(map, path);
        return withOperand(record, side, extracted === undefined ? null : extracted);
      },
    };
  },
});
