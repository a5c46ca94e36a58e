/**
 * Config specs: a connector declares its keys once, fluently, and gets from that one
 * declaration the parsed TypeScript type, the JSON Schema, Kafka Connect's validate response
 * and the Markdown docs. Modelled on Kafka's ConfigDef (types, importance, groups,
 * validators, recommenders) with Benthos-style builders.
 */
import { brandedInstanceOf, brandPrototype, hasBrand } from './brand.ts';
import { ConfigError } from './errors.ts';

export type ConfigType = 'STRING' | 'INT' | 'LONG' | 'DOUBLE' | 'BOOLEAN' | 'LIST' | 'PASSWORD' | 'CLASS';
export type Importance = 'HIGH' | 'MEDIUM' | 'LOW';
export type Width = 'NONE' | 'SHORT' | 'MEDIUM' | 'LONG';

/**
 * A secret. Its `toString`, `toJSON` and inspection print `[hidden]`, so that a password
 * logged or serialised by mistake never leaks; call `value()` where the secret is really used.
 * Recognised by brand: `instanceof Password` and {@link isPassword} hold for a password made
 * by another copy of the SDK (a plugin's own).
 */
export class Password {
  static {
    brandPrototype(this, 'Password');
  }
  static [Symbol.hasInstance](value: unknown): boolean {
    return brandedInstanceOf(this, Password, 'Password', value);
  }
  static readonly HIDDEN = '[hidden]';
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  value(): string {
    return this.#value;
  }
  toString(): string {
    return Password.HIDDEN;
  }
  toJSON(): string {
    return Password.HIDDEN;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return Password.HIDDEN;
  }
}

/** True for a {@link Password} of any copy of the SDK. */
export function isPassword(value: unknown): value is Password {
  return hasBrand(value, 'Password') && typeof (value as { value?: unknown }).value === 'function';
}

/** Returns a problem description, or undefined when the value is fine. */
export type Validator<V> = { describe: string; check(value: V): string | undefined };

interface TypeOf {
  STRING: string;
  INT: number;
  LONG: number;
  DOUBLE: number;
  BOOLEAN: boolean;
  LIST: string[];
  PASSWORD: Password;
  CLASS: string;
}

export interface KeyOptions<V> {
  documentation: string;
  importance?: Importance;
  /** A key with a default is optional; a key without one is required unless `optional` is set. */
  default?: V extends Password ? string : V;
  optional?: boolean;
  group?: string;
  displayName?: string;
  width?: Width;
  validator?: Validator<V>;
  /** Values offered to operators (UIs show them); not enforced unless the validator says so. */
  recommended?: readonly (V extends string[] ? string : V extends Password ? string : V)[];
  /** Keys whose visibility or recommended values depend on this one. */
  dependents?: string[];
}

export interface ConfigKey {
  name: string;
  type: ConfigType;
  documentation: string;
  importance: Importance;
  defaultValue: unknown;
  required: boolean;
  group: string | null;
  orderInGroup: number;
  displayName: string;
  width: Width;
  validator: Validator<never> | undefined;
  recommended: readonly unknown[];
  dependents: string[];
}

type ValueOf<T extends ConfigType, O> = O extends { default: unknown }
  ? TypeOf[T]
  : O extends { optional: true }
    ? TypeOf[T] | undefined
    : TypeOf[T];

/** Kafka Connect's `ConfigInfos` (the body of `PUT /connector-plugins/{p}/config/validate`). */
export interface ConfigInfos {
  name: string;
  error_count: number;
  groups: string[];
  configs: Array<{
    definition: {
      name: string;
      type: ConfigType;
      required: boolean;
      default_value: string | null;
      importance: Importance;
      documentation: string;
      group: string | null;
      width: Width;
      display_name: string;
      dependents: string[];
      order: number;
    };
    value: {
      name: string;
      value: string | null;
      recommended_values: string[];
      errors: string[];
      visible: boolean;
    };
  }>;
}

/** Raw configs arrive as Kafka sends them (all strings) or as JSON values; both are accepted. */
export type RawConfig = Record<string, unknown>;

/**
 * A connector's config declaration. Specs from another copy of the SDK (a plugin's own) are
 * used through their `keys` only, so they merge with and parse like this copy's; `instanceof
 * ConfigSpec` and {@link isConfigSpec} recognise them by brand.
 */
export class ConfigSpec<T = Record<string, never>> {
  static {
    brandPrototype(this, 'ConfigSpec');
  }
  static [Symbol.hasInstance](value: unknown): boolean {
    return brandedInstanceOf(this, ConfigSpec, 'ConfigSpec', value);
  }
  readonly keys: readonly ConfigKey[];

  constructor(keys: readonly ConfigKey[] = []) {
    this.keys = keys;
  }

  static builder(): ConfigSpec<Record<string, never>> {
    return new ConfigSpec();
  }

  string<K extends string, O extends KeyOptions<string>>(name: K, options: O) {
    return this.define<K, 'STRING', O>(name, 'STRING', options);
  }
  int<K extends string, O extends KeyOptions<number>>(name: K, options: O) {
    return this.define<K, 'INT', O>(name, 'INT', options);
  }
  long<K extends string, O extends KeyOptions<number>>(name: K, options: O) {
    return this.define<K, 'LONG', O>(name, 'LONG', options);
  }
  double<K extends string, O extends KeyOptions<number>>(name: K, options: O) {
    return this.define<K, 'DOUBLE', O>(name, 'DOUBLE', options);
  }
  boolean<K extends string, O extends KeyOptions<boolean>>(name: K, options: O) {
    return this.define<K, 'BOOLEAN', O>(name, 'BOOLEAN', options);
  }
  /** A comma-separated list (Kafka's LIST); also accepts a JSON array. */
  list<K extends string, O extends KeyOptions<string[]>>(name: K, options: O) {
    return this.define<K, 'LIST', O>(name, 'LIST', options);
  }
  /** A secret: parsed into a {@link Password}, never echoed by the runtime's GET responses or logs. */
  password<K extends string, O extends KeyOptions<Password>>(name: K, options: O) {
    return this.define<K, 'PASSWORD', O>(name, 'PASSWORD', options);
  }

  /** Combines two specs (the runtime adds its common keys to a connector's own). */
  merge<U>(other: ConfigSpec<U>): ConfigSpec<T & U> {
    const names = new Set(this.keys.map((k) => k.name));
    return new ConfigSpec<T & U>([...this.keys, ...other.keys.filter((k) => !names.has(k.name))]);
  }

  key(name: string): ConfigKey | undefined {
    return this.keys.find((k) => k.name === name);
  }

  /** True when `name` is a secret under this spec, also as one provider's `providers.<alias>.<name>`. */
  isSecret(name: string): boolean {
    const ownKey = /^providers\.[A-Za-z0-9_-]+\.(.+)$/.exec(name)?.[1];
    return this.key(name)?.type === 'PASSWORD' || (ownKey !== undefined && this.key(ownKey)?.type === 'PASSWORD');
  }

  /**
   * Parses a raw config into typed values. Throws a {@link ConfigError} listing every problem;
   * keys the spec does not declare are kept as they are (connectors may pass extras through).
   */
  parse(raw: RawConfig): T {
    const errors: Record<string, string[]> = {};
    const parsed: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(raw)) {
      if (!this.key(name)) parsed[name] = value;
    }
    for (const key of this.keys) {
      const result = parseKey(key, raw[key.name]);
      if (result.errors.length > 0) errors[key.name] = result.errors;
      else if (result.value !== undefined) parsed[key.name] = result.value;
    }
    if (Object.keys(errors).length > 0) throw new ConfigError(errors);
    return parsed as T;
  }

  /** Kafka Connect's validate response for `raw`, with `name` as the plugin's class. */
  validate(name: string, raw: RawConfig): ConfigInfos {
    const groups: string[] = [];
    const configs = this.keys.map((key) => {
      if (key.group && !groups.includes(key.group)) groups.push(key.group);
      const given = raw[key.name];
      const { errors } = parseKey(key, given);
      return {
        definition: {
          name: key.name,
          type: key.type,
          required: key.required,
          default_value: key.defaultValue === undefined ? null : formatValue(key.type, key.defaultValue),
          importance: key.importance,
          documentation: key.documentation,
          group: key.group,
          width: key.width,
          display_name: key.displayName,
          dependents: key.dependents,
          order: key.orderInGroup,
        },
        value: {
          name: key.name,
          value:
            key.type === 'PASSWORD' && given !== undefined && given !== null
              ? Password.HIDDEN
              : given === undefined || given === null
                ? key.defaultValue === undefined
                  ? null
                  : formatValue(key.type, key.defaultValue)
                : formatValue(key.type, given),
          recommended_values: key.recommended.map((v) => formatValue(key.type, v)),
          errors,
          visible: true,
        },
      };
    });
    const error_count = configs.reduce((sum, c) => sum + c.value.errors.length, 0);
    return { name, error_count, groups, configs };
  }

  /** JSON Schema (draft 2020-12 subset that ajv accepts) of the raw config. */
  jsonSchema(): Record<string, unknown> {
    const properties: Record<string, unknown> = {};
    for (const key of this.keys) {
      const schema: Record<string, unknown> = { description: key.documentation, ...jsonTypeOf(key.type) };
      if (key.defaultValue !== undefined) schema.default = key.defaultValue;
      if (key.type === 'PASSWORD') schema.writeOnly = true;
      if (key.recommended.length > 0) schema.examples = [...key.recommended];
      properties[key.name] = schema;
    }
    return {
      type: 'object',
      properties,
      required: this.keys.filter((k) => k.required).map((k) => k.name),
      additionalProperties: true,
    };
  }

  /** Markdown reference of every key, grouped; `pnpm docs` writes it next to each connector. */
  toMarkdown(title: string, intro = ''): string {
    const lines = [`# ${title}`, ''];
    if (intro) lines.push(intro, '');
    const groups = new Map<string, ConfigKey[]>();
    for (const key of this.keys) {
      const group = key.group ?? 'General';
      groups.set(group, [...(groups.get(group) ?? []), key]);
    }
    for (const [group, keys] of groups) {
      lines.push(`## ${group}`, '', '| Key | Type | Default | Importance | Description |', '|---|---|---|---|---|');
      for (const key of keys) {
        const formatted = key.defaultValue === undefined ? undefined : formatValue(key.type, key.defaultValue);
        // An empty default (an empty list or string) would be an empty, invisible code span.
        const defaultText = formatted === undefined ? (key.required ? '*required*' : '') : formatted === '' ? '`""`' : `\`${formatted}\``;
        const doc = [key.documentation, key.validator ? `Valid values: ${key.validator.describe}.` : '']
          .filter(Boolean)
          .join(' ')
          .replace(/\|/g, '\\|')
          .replace(/\n/g, ' ');
        lines.push(`| \`${key.name}\` | ${key.type.toLowerCase()} | ${defaultText} | ${key.importance.toLowerCase()} | ${doc} |`);
      }
      lines.push('');
    }
    return lines.join('\n');
  }

  private define<K extends string, TT extends ConfigType, O extends KeyOptions<TypeOf[TT]>>(
    name: K,
    type: TT,
    options: O,
  ): ConfigSpec<T & { [P in K]: ValueOf<TT, O> }> {
    if (this.key(name)) throw new Error(`Config key ${name} is declared twice`);
    const group = options.group ?? null;
    const orderInGroup = this.keys.filter((k) => k.group === group).length + 1;
    const key: ConfigKey = {
      name,
      type,
      documentation: options.documentation,
      importance: options.importance ?? 'MEDIUM',
      defaultValue: options.default,
      required: options.default === undefined && !options.optional,
      group,
      orderInGroup,
      displayName: options.displayName ?? name,
      width: options.width ?? 'NONE',
      validator: options.validator as Validator<never> | undefined,
      recommended: options.recommended ?? [],
      dependents: options.dependents ?? [],
    };
    return new ConfigSpec([...this.keys, key]);
  }
}

function jsonTypeOf(type: ConfigType): Record<string, unknown> {
  switch (type) {
    case 'INT':
    case 'LONG':
      return { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?\\d+$' }] };
    case 'DOUBLE':
      return { anyOf: [{ type: 'number' }, { type: 'string', pattern: '^-?\\d+(\\.\\d+)?([eE][-+]?\\d+)?$' }] };
    case 'BOOLEAN':
      return { anyOf: [{ type: 'boolean' }, { type: 'string', enum: ['true', 'false', 'TRUE', 'FALSE', 'True', 'False'] }] };
    case 'LIST':
      return { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
    default:
      return { type: 'string' };
  }
}

function formatValue(type: ConfigType, value: unknown): string {
  if (type === 'PASSWORD') return Password.HIDDEN;
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}

function parseKey(key: ConfigKey, given: unknown): { value: unknown; errors: string[] } {
  const missing = given === undefined || given === null || (given === '' && key.type !== 'STRING' && key.type !== 'PASSWORD');
  if (missing) {
    if (key.defaultValue !== undefined) return parseKey({ ...key, defaultValue: undefined, required: false }, key.defaultValue);
    if (key.required) return { value: undefined, errors: [`Missing required configuration "${key.name}" which has no default value.`] };
    return { value: undefined, errors: [] };
  }
  const converted = convert(key, given);
  if ('error' in converted) return { value: undefined, errors: [converted.error] };
  const problem = key.validator?.check(converted.value as never);
  if (problem) return { value: undefined, errors: [`Invalid value ${formatValue(key.type, given)} for configuration ${key.name}: ${problem}`] };
  return { value: converted.value, errors: [] };
}

function convert(key: ConfigKey, given: unknown): { value: unknown } | { error: string } {
  const bad = (expected: string) => ({
    error: `Invalid value ${key.type === 'PASSWORD' ? Password.HIDDEN : JSON.stringify(given)} for configuration ${key.name}: Expected ${expected}`,
  });
  switch (key.type) {
    case 'STRING':
    case 'CLASS':
      return typeof given === 'string' ? { value: given.trim() } : typeof given === 'number' ? { value: String(given) } : bad('a string');
    case 'PASSWORD':
      if (isPassword(given)) return { value: given };
      return typeof given === 'string' ? { value: new Password(given) } : bad('a string');
    case 'INT':
    case 'LONG': {
      const n = typeof given === 'number' ? given : typeof given === 'string' && /^\s*-?\d+\s*$/.test(given) ? Number(given) : NaN;
      if (!Number.isSafeInteger(n)) return bad('an integer');
      if (key.type === 'INT' && (n > 2147483647 || n < -2147483648)) return bad('a 32-bit integer');
      return { value: n };
    }
    case 'DOUBLE': {
      const n = typeof given === 'number' ? given : typeof given === 'string' && given.trim() !== '' ? Number(given) : NaN;
      return Number.isFinite(n) ? { value: n } : bad('a number');
    }
    case 'BOOLEAN':
      if (typeof given === 'boolean') return { value: given };
      if (typeof given === 'string' && /^(true|false)$/i.test(given.trim())) return { value: given.trim().toLowerCase() === 'true' };
      return bad('value to be either true or false');
    case 'LIST':
      if (Array.isArray(given) && given.every((v) => typeof v === 'string')) return { value: given.map((v) => v.trim()).filter(Boolean) };
      if (typeof given === 'string')
        return {
          value: given
            .split(',')
            .map((v) => v.trim())
            .filter(Boolean),
        };
      return bad('a comma-separated list');
  }
}

/** True for a {@link ConfigSpec} of any copy of the SDK. */
export function isConfigSpec(value: unknown): value is ConfigSpec<unknown> {
  return hasBrand(value, 'ConfigSpec') && Array.isArray((value as { keys?: unknown }).keys);
}

/** Validators for config keys; each one describes itself for docs and error messages. */
export const validators = {
  range(min: number, max: number): Validator<number> {
    return {
      describe: `[${min},...,${max}]`,
      check: (v) => (v < min ? `Value must be at least ${min}` : v > max ? `Value must be no more than ${max}` : undefined),
    };
  },
  atLeast(min: number): Validator<number> {
    return { describe: `[${min},...]`, check: (v) => (v < min ? `Value must be at least ${min}` : undefined) };
  },
  oneOf<V extends string>(...allowed: V[]): Validator<string> {
    return {
      describe: `[${allowed.join(', ')}]`,
      check: (v) => (allowed.includes(v as V) ? undefined : `String must be one of: ${allowed.join(', ')}`),
    };
  },
  nonEmptyString(): Validator<string> {
    return { describe: 'non-empty string', check: (v) => (v.trim() === '' ? 'String must be non-empty' : undefined) };
  },
  nonEmptyList(): Validator<string[]> {
    return { describe: 'non-empty list', check: (v) => (v.length === 0 ? 'List must be non-empty' : undefined) };
  },
  pattern(re: RegExp, what: string): Validator<string> {
    return { describe: what, check: (v) => (re.test(v) ? undefined : `Value must be ${what}`) };
  },
  url(): Validator<string> {
    return {
      describe: 'an http(s) URL',
      check: (v) => {
        try {
          const u = new URL(v);
          return u.protocol === 'http:' || u.protocol === 'https:' ? undefined : 'Value must be an http or https URL';
        } catch {
          return 'Value must be a valid URL';
        }
      },
    };
  },
};
