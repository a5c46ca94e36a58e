/**
 * Validation of message values against a connector's published JSON Schema, so that a
 * connector's tests and the runtime's ingest reject the same values with the same words.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new WeakMap<object, ValidateFunction>();

export interface ValueProblem {
  path: string;
  message: string;
}

/** Problems of `value` under `schema`; an empty array when it conforms. */
export function checkValue(schema: Record<string, unknown>, value: unknown): ValueProblem[] {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => ({
    path: e.instancePath || '/',
    message: e.message ?? 'is invalid',
  }));
}
