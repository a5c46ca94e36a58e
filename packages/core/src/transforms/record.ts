/**
 * What the built-in transformations share: Kafka's `$Key`/`$Value` split (one class operates on
 * the key, the other on the value), its requirement that a schemaless record be a map, and
 * dotted field paths.
 */
import { PermanentError, type TransformRecord } from '@omnibus/sdk';

export type JsonMap = Record<string, unknown>;
export type Side = 'key' | 'value';

/** A record a transformation cannot handle (Kafka's DataException); the record fails, permanently. */
export class TransformError extends PermanentError {
  constructor(message: string) {
    super('OMNI_ERR_TRANSFORM_FAILED', message);
  }
}

export function isMap(value: unknown): value is JsonMap {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function operand(record: TransformRecord, side: Side): unknown {
  return side === 'key' ? record.key : record.value;
}

export function withOperand(record: TransformRecord, side: Side, value: unknown): TransformRecord {
  return side === 'key' ? { ...record, key: value } : { ...record, value };
}

/** Kafka's `Requirements.requireMap`, with its message. */
export function requireMap(value: unknown, purpose: string): JsonMap {
  if (!isMap(value)) throw new TransformError(`Only Map objects supported in absence of schema for [${purpose}], found: ${typeName(value)}`);
  return value;
}

/** Kafka's `Requirements.requireMapOrNull`. */
export function requireMapOrNull(value: unknown, purpose: string): JsonMap | null {
  return value === null || value === undefined ? null : requireMap(value, purpose);
}

/** The JSON type of a value, named as Kafka names the Java classes schemaless JSON decodes to. */
export function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'java.util.ArrayList';
  switch (typeof value) {
    case 'string':
      return 'java.lang.String';
    case 'boolean':
      return 'java.lang.Boolean';
    case 'number':
      return Number.isInteger(value) ? 'java.lang.Long' : 'java.lang.Double';
    default:
      return 'java.util.HashMap';
  }
}

/** The value at a dotted path (`a.b.c`) of a map, or undefined where the path leads nowhere. */
export function valueAtPath(root: unknown, path: readonly string[]): unknown {
  let current = root;
  for (const step of path) {
    if (!isMap(current) || !Object.prototype.hasOwnProperty.call(current, step)) return undefined;
    current = current[step];
  }
  return current;
}

/** Header values are strings on the bus: a non-string value becomes its JSON. */
export function headerText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

/** The class names and aliases of Kafka's `$Key`/`$Value` pair of one transformation. */
export function kafkaNames(packageName: string, simpleName: string, side: Side, defaultSide?: Side): { className: string; aliases: string[] } {
  const suffix = side === 'key' ? '$Key' : '$Value';
  const aliases = [`${simpleName}${suffix}`];
  if (defaultSide === side) aliases.push(simpleName, `${packageName}.${simpleName}`);
  return { className: `${packageName}.${simpleName}${suffix}`, aliases };
}

export const KAFKA_TRANSFORMS = 'org.apache.kafka.connect.transforms';
export const KAFKA_PREDICATES = 'org.apache.kafka.connect.transforms.predicates';
