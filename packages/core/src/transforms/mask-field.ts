/**
 * Kafka's MaskField: replaces the listed fields with the empty value of their type (0, false,
 * "", [] or {}), or with `replacement`, converted to the field's type (a number field takes a
 * numeric replacement; a boolean, list or map cannot take one). A field the record does not
 * have is left absent (Kafka would add it as null). A tombstone passes through unchanged.
 */
import { ConfigSpec, validators } from '@omnibus/sdk';
import { keyValuePair } from './define.ts';
import { KAFKA_TRANSFORMS, operand, requireMap, TransformError, typeName, withOperand } from './record.ts';

const spec = ConfigSpec.builder()
  .list('fields', { documentation: 'Names of fields to mask.', validator: validators.nonEmptyList() })
  .string('replacement', {
    documentation: 'Custom value replacement, that will be applied to all \'fields\' values (numeric or non-empty string values only).',
    optional: true,
    validator: validators.nonEmptyString(),
  });

function emptyOf(value: unknown): unknown {
  if (Array.isArray(value)) return [];
  switch (typeof value) {
    case 'string':
      return '';
    case 'number':
      return 0;
    case 'boolean':
      return false;
    default:
      return {};
  }
}

function replaced(value: unknown, replacement: string): unknown {
  if (typeof value === 'string') return replacement;
  if (typeof value === 'number') {
    const number = Number.isInteger(value) ? (/^\s*-?\d+\s*$/.test(replacement) ? Number(replacement) : NaN) : Number(replacement);
    if (!Number.isFinite(number) || replacement.trim() === '') throw new TransformError(`Unable to convert ${replacement} (java.lang.String) to number`);
    return number;
  }
  throw new TransformError(`Cannot mask value of type ${typeName(value)} with custom replacement.`);
}

export const MaskField = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'MaskField',
  description: 'Masks specified fields with a valid null value for the field type, or a custom replacement',
  config: spec,
  create(config, side) {
    const { fields, replacement } = config;
    return {
      apply(record) {
        const current = operand(record, side);
        if (current === null || current === undefined) return record;
        const updated = { ...requireMap(current, 'masking') };
        for (const field of fields) {
          if (!Object.prototype.hasOwnProperty.call(updated, field)) continue;
          const value = updated[field];
          if (value === null || value === undefined) continue;
          updated[field] = replacement === undefined ? emptyOf(value) : replaced(value, replacement);
        }
        return withOperand(record, side, updated);
      },
    };
  },
});
