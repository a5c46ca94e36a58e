/** Kafka's HoistField: wraps the key or value in a map under `field`. */
import { ConfigSpec, validators } from '@omnibus/sdk';
import { keyValuePair } from './define.ts';
import { KAFKA_TRANSFORMS, operand, withOperand } from './record.ts';

export const HoistField = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'HoistField',
  description: 'Wraps the data in a map under the specified field name',
  config: ConfigSpec.builder().string('field', {
    documentation: 'Field name for the single field that will be created in the resulting map.',
    validator: validators.nonEmptyString(),
  }),
  create({ field }, side) {
    return { apply: (record) => withOperand(record, side, { [field]: operand(record, side) ?? null }) };
  },
});
