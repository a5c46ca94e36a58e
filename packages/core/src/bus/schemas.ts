/**
 * JSON Schema compilation for value schemas. Each schema is compiled once (ajv turns it into a
 * function; compiling per message would dominate ingest cost), keyed by its canonical JSON so
 * that topics sharing a schema share the function.
 *
 * Topic schemas come from REST callers, so they are treated as hostile:
 * - their `pattern`, `patternProperties` and `propertyNames.pattern` regexes run on RE2
 *   (re2js, linear time in the input): `^(a+)+$` cannot stall the worker. Patterns RE2 cannot
 *   run (backreferences, lookarounds) or too large to run fast are refused when the topic is
 *   created, and the matching work per turn of the event loop is bounded;
 * - `uniqueItems` is checked in one pass (ajv compares every pair), and a schema is at most
 *   64 KiB (ajv's compile time grows with it);
 * - the compiled functions live in a bounded LRU cache, and the ajv instances that compile
 *   them are replaced every so often: ajv keeps every schema it compiled (and every `$id` it
 *   saw) for the life of the instance, which would grow without bound;
 * - an `$id` in one topic's schema is forgotten once that schema is compiled, so it can neither
 *   collide with nor be referenced by another topic's schema.
 * Connectors' own value schemas are code shipped with the connector, not input: they compile
 * with JavaScript's regex engine (some use lookaheads), through a cache of their own.
 */
import { Ajv, type CodeOptions, type ErrorObject, type KeywordDefinition, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { RE2JS } from 're2js';
import { compileLinear, UnsupportedPatternError, type LinearPattern } from '../linear-regex.ts';
import { canonicalJson } from '../store/canonical-json.ts';

type AnyAjv = Ajv | Ajv2019 | Ajv2020;
type Draft = 'draft07' | 'draft2019' | 'draft2020';
type RegExpEngine = NonNullable<CodeOptions['regExp']>;

// ajv-formats is CommonJS: under NodeNext its default import is the module object or the plugin.
const addFormats = ((formats as unknown as { default?: unknown }).default ?? formats) as (ajv: AnyAjv) => AnyAjv;

export { MAX_PATTERN_INSTRUCTIONS, UnsupportedPatternError } from '../linear-regex.ts';

/**
 * RE2's cost per character is the pattern's size (linear-regex.ts); the matching work one turn of the event loop may spend (instructions × characters, an
 * upper bound of the NFA's steps; at most about half a second) is bounded, so that no batch
 * of values can hold the worker for long. A batch over it is refused, not half-checked.
 */
export const PATTERN_STEPS_PER_TURN = 50_000_000;

/** Thrown (and turned into a violation) when a batch's pattern checks would exceed {@link PATTERN_STEPS_PER_TURN}. */
export class PatternBudgetError extends Error {}

let stepsThisTurn = 0;
let turnResetScheduled = false;

function chargePatternSteps(steps: number): void {
  if (!turnResetScheduled) {
    turnResetScheduled = true;
    setImmediate(() => {
      stepsThisTurn = 0;
      turnResetScheduled = false;
    });
  }
  stepsThisTurn += steps;
  if (stepsThisTurn > PATTERN_STEPS_PER_TURN) {
    throw new PatternBudgetError(
      `was not checked: matching the topic schema's patterns against this request's values would take too long ` +
        `(more than ${PATTERN_STEPS_PER_TURN} pattern instructions × characters); send shorter or fewer values per request`,
    );
  }
}

/**
 * ajv's `code.regExp` engine for untrusted schemas: RE2 semantics (no backtracking, so matching
 * time is linear in the input). ECMAScript syntax that RE2 spells differently (`\uXXXX`, named
 * groups) is translated first.
 */
export const linearRegExp: RegExpEngine = Object.assign(
  (pattern: string, flags: string) => {
    let compiled: LinearPattern;
    try {
      compiled = compileLinear(RE2JS.translateRegExp(pattern), flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0);
    } catch (error) {
      throw new UnsupportedPatternError(`pattern ${JSON.stringify(pattern)} is not accepted: ${(error as Error).message}`);
    }
    const { pattern: program, instructions } = compiled;
    return {
      test(input: string): boolean {
        chargePatternSteps(instructions * (input.length + 1));
        return program.test(input);
      },
      // ajv keys its per-instance pattern table by toString(): it must tell patterns apart.
      toString: () => `/${pattern}/${flags}`,
    };
  },
  { code: 'linearRegExp' },
);

/**
 * `uniqueItems` in linear time. ajv compares every pair of non-scalar items: an array of 16,000
 * small objects (150 KB) took minutes. Items are equal in JSON Schema exactly when their
 * canonical JSON (keys sorted) is, so a set of those finds duplicates in one pass.
 */
const linearUniqueItems: KeywordDefinition = {
  keyword: 'uniqueItems',
  type: 'array',
  schemaType: 'boolean',
  errors: true,
  validate: function uniqueItems(unique: boolean, data: unknown[]): boolean {
    if (!unique) return true;
    const seen = new Map<string, number>();
    for (let i = 0; i < data.length; i++) {
      const canonical = canonicalJson(data[i]);
      const first = seen.get(canonical);
      if (first !== undefined) {
        (uniqueItems as { errors?: Array<Partial<ErrorObject>> }).errors = [
          { keyword: 'uniqueItems', message: `must NOT have duplicate items (items ## ${first} and ${i} are identical)`, params: { i: first, j: i } },
        ];
        return false;
      }
      seen.set(canonical, i);
    }
    return true;
  },
};

/** Compiled value schemas, least recently used first out. */
export class SchemaCache {
  private readonly compiled = new Map<string, ValidateFunction>();
  private instances: Partial<Record<Draft, AnyAjv>> = {};
  private compilesOnInstances = 0;
  /** How many times the ajv instances were replaced (their memory freed once their functions are evicted). */
  instanceGenerations = 1;

  constructor(
    readonly capacity: number,
    private readonly regExp?: RegExpEngine,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error('a schema cache holds at least one schema');
  }

  get size(): number {
    return this.compiled.size;
  }

  /** Compiles (or finds compiled) `schema`; throws ajv's error when it is not a valid schema. */
  compile(schema: Record<string, unknown>): ValidateFunction {
    const canonical = canonicalJson(schema);
    const cached = this.compiled.get(canonical);
    if (cached) {
      this.compiled.delete(canonical);
      this.compiled.set(canonical, cached);
      return cached;
    }
    const validate = this.compileFresh(schema);
    this.compiled.set(canonical, validate);
    if (this.compiled.size > this.capacity) this.compiled.delete(this.compiled.keys().next().value as string);
    return validate;
  }

  /**
   * Like {@link compile}, but a schema that does not compile (stored before this version
   * refused it, e.g. a lookahead) gives a function that refuses every value and says why,
   * instead of failing each produce with a 500.
   */
  compileOrRefusal(schema: Record<string, unknown>): ValidateFunction {
    try {
      return this.compile(schema);
    } catch (error) {
      const key = `refused:${canonicalJson(schema)}`;
      let refusal = this.compiled.get(key);
      if (!refusal) {
        const message = `cannot be checked: the topic's schema is refused by this worker (${(error as Error).message}); recreate the topic with a schema it accepts`;
        const refuse = (() => false) as unknown as ValidateFunction;
        refuse.errors = [{ instancePath: '', schemaPath: '#', keyword: 'schema', params: {}, message }];
        refusal = refuse;
        this.compiled.set(key, refusal);
        if (this.compiled.size > this.capacity) this.compiled.delete(this.compiled.keys().next().value as string);
      }
      return refusal;
    }
  }

  private compileFresh(schema: Record<string, unknown>): ValidateFunction {
    // ajv holds on to what each instance compiled; a fresh instance after `capacity` compiles
    // bounds that to about two cachefuls (the old instance goes once its functions are evicted).
    if (this.compilesOnInstances >= this.capacity) {
      this.instances = {};
      this.compilesOnInstances = 0;
      this.instanceGenerations += 1;
    }
    this.compilesOnInstances += 1;
    const ajv = this.ajvFor(schema);
    const refsBefore = new Set(Object.keys(ajv.refs));
    // Work on a copy: ajv keys its own cache by the object, and the caller's object stays theirs.
    const own = structuredClone(schema);
    try {
      return ajv.compile(own);
    } finally {
      // Forget the schema and the `$id`s it declared: the compiled function has resolved them.
      (ajv as unknown as { _cache: Map<unknown, unknown> })._cache.delete(own);
      for (const ref of Object.keys(ajv.refs)) if (!refsBefore.has(ref)) delete ajv.refs[ref];
    }
  }

  private ajvFor(schema: Record<string, unknown>): AnyAjv {
    const declared = typeof schema.$schema === 'string' ? schema.$schema : '';
    const draft: Draft = declared.includes('2020-12') ? 'draft2020' : declared.includes('2019-09') ? 'draft2019' : 'draft07';
    let ajv = this.instances[draft];
    if (!ajv) {
      const options: Options = { allErrors: true, strict: false, addUsedSchema: false, ...(this.regExp ? { code: { regExp: this.regExp } } : {}) };
      ajv = addFormats(draft === 'draft2020' ? new Ajv2020(options) : draft === 'draft2019' ? new Ajv2019(options) : new Ajv(options));
      ajv.removeKeyword('uniqueItems');
      ajv.addKeyword(linearUniqueItems);
      this.instances[draft] = ajv;
    }
    return ajv;
  }
}

/** Enough for every topic of a large deployment; a miss costs one compile (about a millisecond). */
export const MAX_COMPILED_SCHEMAS = 512;

/** Topic schemas: from REST callers, on the linear-time regex engine. */
export const topicSchemas = new SchemaCache(MAX_COMPILED_SCHEMAS, linearRegExp);
/** Connectors' value schemas (code, not input), on JavaScript's regex engine. */
export const connectorSchemas = new SchemaCache(64);

/**
 * Compiles (or finds compiled) a stored topic's `schema`. One this worker cannot compile (kept
 * from an earlier version) refuses every value with a violation that says why.
 */
export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  return topicSchemas.compileOrRefusal(schema);
}

/** Compiles (or finds compiled) a connector's value schema. */
export function compileConnectorSchema(schema: Record<string, unknown>): ValidateFunction {
  return connectorSchemas.compile(schema);
}

/**
 * Largest topic schema, as canonical JSON. ajv's compile time grows with the schema (about a
 * millisecond per few properties) and blocks the worker; generous for real message schemas.
 */
export const MAX_TOPIC_SCHEMA_BYTES = 64 * 1024;

/** Why `schema` cannot be a topic's schema, or undefined when it compiles. */
export function schemaProblem(schema: unknown): string | undefined {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return 'schema must be a JSON object';
  try {
    const bytes = Buffer.byteLength(canonicalJson(schema));
    if (bytes > MAX_TOPIC_SCHEMA_BYTES) return `schema must be at most ${MAX_TOPIC_SCHEMA_BYTES} bytes as JSON (it has ${bytes})`;
    topicSchemas.compile(schema as Record<string, unknown>);
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
  try {
    if (validate(value)) return [];
  } catch (error) {
    if (error instanceof PatternBudgetError) return [{ path: '', message: error.message }];
    throw error;
  }
  return (validate.errors ?? []).map((e: ErrorObject) => ({
    path: e.instancePath,
    message:
      e.keyword === 'additionalProperties'
        ? `must not have property ${JSON.stringify((e.params as { additionalProperty?: string }).additionalProperty)}`
        : (e.message ?? 'is invalid'),
  }));
}
