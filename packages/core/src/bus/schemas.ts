/**
 * JSON Schema compilation for topic value schemas. Each schema is compiled once (ajv turns it
 * into a function; compiling per message would dominate ingest cost), keyed by its canonical
 * JSON so that topics sharing a schema share the function.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { canonicalJson } from '../store/canonical-json.ts';

type AnyAjv = Ajv | Ajv2019 | Ajv2020;

// ajv-formats is CommonJS: under NodeNext its default import is the module object or the plugin.
const addFormats = ((formats as unknown as { default?: unknown }).default ?? formats) as (ajv: AnyAjv) => AnyAjv;

function makeAjv<A extends AnyAjv>(ajv: A): A {
  addFormats(ajv);
  return ajv;
}

const drafts = {
  draft07: makeAjv(new Ajv({ allErrors: true, strict: false })),
  draft2019: makeAjv(new Ajv2019({ allErrors: true, strict: false })),
  draft2020: makeAjv(new Ajv2020({ allErrors: true, strict: false })),
};

function ajvFor(schema: Record<string, unknown>): AnyAjv {
  const declared = typeof schema.$schema === 'string' ? schema.$schema : '';
  if (declared.includes('2020-12')) return drafts.draft2020;
  if (declared.includes('2019-09')) return drafts.draft2019;
  return drafts.draft07;
}

const compiled = new Map<string, ValidateFunction>();

/** Compiles (or finds compiled) `schema`; throws ajv's error when it is not a valid schema. */
export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  const canonical = canonicalJson(schema);
  let validate = compiled.get(canonical);
  if (!validate) {
    validate = ajvFor(schema).compile(schema);
    compiled.set(canonical, validate);
  }
  return validate;
}

/** Why `schema` cannot be used, or undefined when it compiles. */
export function schemaProblem(schema: unknown): string | undefined {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return 'schema must be a JSON object';
  try {
    compileSchema(schema as Record<string, unknown>);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export interface SchemaViolation {
  /** JSON pointer into the value, '' for the value itself. */
  path: string;
  message: string;
}

export function violations(validate: ValidateFunction, value: unknown): SchemaViolation[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => ({
    path: e.instancePath,
    message:
      e.keyword === 'additionalProperties'
        ? `must not have property ${JSON.stringify((e.params as { additionalProperty?: string }).additionalProperty)}`
        : (e.message ?? 'is invalid'),
  }));
}
