/**
 * Kafka's Cast: casts fields, or the whole key or value, to int8, int16, int32, int64,
 * float32, float64, boolean or string, with Java's conversions: a number narrowed to an
 * integer type is truncated and wraps around as Java's `byteValue()`/`intValue()` do; a string
 * is parsed (an integer type needs an integer string); `true`/`false` become 1/0; a number is
 * true when it is not 0; a string is true when it is "true" in any case. Maps and lists can be
 * cast only to string (their JSON). A null, and a field the record lacks, stay as they are.
 */
import { ConfigSpec, validators, type Validator } from '@omnibus/sdk';
import { keyValuePair } from './define.ts';
import { KAFKA_TRANSFORMS, operand, requireMap, TransformError, typeName, withOperand } from './record.ts';

const TYPES = ['int8', 'int16', 'int32', 'int64', 'float32', 'float64', 'boolean', 'string'] as const;
type CastType = (typeof TYPES)[number];
const isCastType = (t: string): t is CastType => (TYPES as readonly string[]).includes(t);

interface CastSpec {
  whole?: CastType;
  fields: Map<string, CastType>;
}

/** Parses `spec`; throws an Error with Kafka's words when it is invalid. */
function parseSpec(entries: readonly string[]): CastSpec {
  const fields = new Map<string, CastType>();
  let whole: CastType | undefined;
  for (const entry of entries) {
    const parts = entry.split(':');
    if (parts.length > 2) throw new Error(`Invalid type found in casting spec: ${entry}`);
    const type = parts[parts.length - 1]!.trim().toLowerCase();
    if (!isCastType(type)) throw new Error(`Invalid type found in casting spec: ${parts[parts.length - 1]!.trim()}`);
    if (parts.length === 1) {
      if (entries.length > 1) throw new Error('Cast transformations that specify a type to cast to for the entire value must have only one spec');
      whole = type;
    } else {
      fields.set(parts[0]!.trim(), type);
    }
  }
  return whole === undefined ? { fields } : { whole, fields };
}

const specValidator: Validator<string[]> = {
  describe: 'list of colon-delimited pairs, e.g. foo:bar,abc:xyz, or one type for the whole key or value',
  check: (entries) => {
    try {
      parseSpec(entries);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  },
};

const INTEGER_BITS: Partial<Record<CastType, number>> = { int8: 8, int16: 16, int32: 32, int64: 64 };

function toInteger(value: number | string | boolean, type: CastType, bits: number): number {
  let n: number;
  if (typeof value === 'boolean') n = value ? 1 : 0;
  else if (typeof value === 'string') {
    if (!/^[-+]?\d+$/.test(value)) throw new TransformError(`Value (${value}) was not a valid ${type}: it is not an integer`);
    const parsed = BigInt(value);
    if (parsed !== BigInt.asIntN(bits, parsed)) throw new TransformError(`Value (${value}) is out of range for ${type}`);
    return Number(parsed);
  } else n = value;
  if (!Number.isFinite(n)) return 0;
  const truncated = BigInt(Math.trunc(n));
  // A JSON integer is a Java long: narrowing it wraps around.
  if (Number.isInteger(n)) return Number(BigInt.asIntN(bits, truncated));
  if (bits === 64) {
    // Java's double-to-long saturates; beyond 2^53 a JSON number is not exact anyway.
    const max = 2n ** 63n - 1n;
    const min = -(2n ** 63n);
    return Number(truncated > max ? max : truncated < min ? min : truncated);
  }
  // A fraction is a Java double: byteValue()/shortValue()/intValue() saturate to an int first.
  const asInt = truncated > 2147483647n ? 2147483647n : truncated < -2147483648n ? -2147483648n : truncated;
  return Number(BigInt.asIntN(bits, asInt));
}

export function castValue(value: unknown, type: CastType): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === 'object') {
    if (type === 'string') return JSON.stringify(value);
    throw new TransformError(`Cast transformation does not support casting to/from ${Array.isArray(value) ? 'ARRAY' : 'MAP'}`);
  }
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    throw new TransformError(`Unexpected type in Cast transformation: ${typeName(value)}`);
  }
  const bits = INTEGER_BITS[type];
  if (bits !== undefined) return toInteger(value, type, bits);
  switch (type) {
    case 'float32':
    case 'float64': {
      const n = typeof value === 'boolean' ? (value ? 1 : 0) : typeof value === 'string' ? Number(value) : value;
      if (typeof value === 'string' && (value.trim() === '' || !Number.isFinite(n))) throw new TransformError(`Value (${value}) was not a valid ${type}`);
      return type === 'float32' ? Math.fround(n) : n;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'number') return value !== 0;
      return value.toLowerCase() === 'true';
    default:
      return String(value);
  }
}

const spec = ConfigSpec.builder().list('spec', {
  documentation:
    'List of fields and the type to cast them to of the form field1:type,field2:type to cast fields of Maps or Structs. A single type to cast the entire value. Valid types are int8, int16, int32, int64, float32, float64, boolean, and string.',
  validator: { describe: specValidator.describe, check: (v) => validators.nonEmptyList().check(v) ?? specValidator.check(v) },
});

export const Cast = keyValuePair({
  packageName: KAFKA_TRANSFORMS,
  simpleName: 'Cast',
  description: 'Casts fields or the entire key or value to a specific type',
  config: spec,
  create(config, side) {
    const casts = parseSpec(config.spec);
    return {
      apply(record) {
        const current = operand(record, side);
        if (current === null || current === undefined) return record;
        if (casts.whole !== undefined) return withOperand(record, side, castValue(current, casts.whole));
        const updated = { ...requireMap(current, 'cast types') };
        for (const [field, type] of casts.fields) {
          if (Object.prototype.hasOwnProperty.call(updated, field)) updated[field] = castValue(updated[field], type);
        }
        return withOperand(record, side, updated);
      },
    };
  },
});
