/**
 * Config providers (Kafka's KIP-297): `${env:NAME}` and `${file:path:key}` placeholders keep
 * secrets out of the store. The store and every GET keep the placeholders as written; only the
 * worker that starts a connector or task resolves them, so a secret exists in clear only in
 * the memory of the process that uses it.
 *
 * Whoever may write a connector config may name any placeholder, so each provider reads only
 * what the worker's settings allow (Kafka 3.8's `allowed.paths`): `${file:}` only files under
 * `config.providers.file.allowed.paths`, `${env:}` only the names in
 * `config.providers.env.allowed.names`; both empty by default, so both refuse everything.
 * A placeholder that cannot be resolved gets one answer whatever the cause (not allowed, no
 * such file, unreadable, no such key), so the answer says nothing about the host's files.
 */
import { lstat, readFile, realpath } from 'node:fs/promises';
import { resolve as resolvePath, sep } from 'node:path';
import { OmnibusError } from '@omnibus/sdk';
import type { Logger } from 'pino';
import { HIDDEN } from './connector-config.ts';
import { workerConfigSpec } from './worker-config.ts';

/** Kafka's ConfigTransformer pattern: `${provider:[path:]key}`. */
const PLACEHOLDER = /\$\{([^}]*?):(?:([^}]*?):)?([^}]*?)\}/g;
const ANY_PLACEHOLDER = new RegExp(PLACEHOLDER.source);
/** The providers every worker has. */
export const PROVIDER_NAMES = ['env', 'file'] as const;
const ONLY_KNOWN_PLACEHOLDERS = /^(\$\{(env|file):[^{}]*\})+$/;
/** The most a `${file:}` provider reads: secrets files are small; this keeps /dev/zero-like files out. */
const MAX_SECRETS_FILE_BYTES = 1024 * 1024;
/** What every unresolvable placeholder is told, whatever the cause. */
export const UNRESOLVED_REASON = 'could not be resolved (not allowed by the worker, or no such value)';

export interface ConfigProvider {
  /**
   * The values of `keys` under `path` (undefined for providers that have no path, such as env).
   * A key the provider does not have, or may not give, is left out of the result; a path it
   * cannot or may not read throws (the message goes to the worker's log only).
   */
  get(path: string | undefined, keys: ReadonlySet<string>): Promise<Map<string, string>>;
}

interface Placeholder {
  text: string;
  provider: string;
  path: string | undefined;
  key: string;
}

export interface UnresolvedPlaceholder {
  /** The config key whose value holds the placeholder. */
  configKey: string;
  placeholder: string;
  reason: string;
}

/** Some placeholders could not be resolved; the connector or task that needs them fails with this trace. */
export class UnresolvedConfigError extends OmnibusError {
  readonly unresolved: UnresolvedPlaceholder[];
  constructor(unresolved: UnresolvedPlaceholder[]) {
    super(
      'OMNI_ERR_CONFIG_PROVIDER_UNRESOLVED',
      `Could not resolve ${unresolved.length} config placeholder(s): ` +
        unresolved.map((u) => `"${u.configKey}" uses ${u.placeholder}, which ${u.reason}`).join('; '),
    );
    this.unresolved = unresolved;
  }
}

export function hasPlaceholder(value: string): boolean {
  return ANY_PLACEHOLDER.test(value);
}

/** True for a value made only of `${env:…}`/`${file:…}` placeholders: what a GET may show as written. */
export function isOnlyPlaceholders(value: string): boolean {
  return ONLY_KNOWN_PLACEHOLDERS.test(value);
}

function placeholdersIn(value: string): Placeholder[] {
  return [...value.matchAll(PLACEHOLDER)].map((m) => ({ text: m[0], provider: m[1] ?? '', path: m[2], key: m[3] ?? '' }));
}

/**
 * The variables the worker reads its own settings from (OMNIBUS_REST_AUTH_BASIC_USERS…): a
 * prefix such as `OMNIBUS_*` does not reach them, only their exact names do.
 */
const WORKER_SETTING_ENV_NAMES = new Set(workerConfigSpec.keys.map((k) => `OMNIBUS_${k.name.toUpperCase().replace(/[.-]/g, '_')}`));

/** True when `name` is one of `allowed`: an exact name, or a prefix written with a trailing `*`. */
export function envNameAllowed(name: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) =>
    entry.endsWith('*') ? name.startsWith(entry.slice(0, -1)) && !WORKER_SETTING_ENV_NAMES.has(name) : name === entry,
  );
}

/** `${env:NAME}`: the worker's environment, only the names `allowedNames` lists. */
export function envProvider(env: NodeJS.ProcessEnv = process.env, allowedNames: readonly string[] = []): ConfigProvider {
  return {
    async get(path, keys) {
      if (path !== undefined) throw new Error(`the env provider takes no path (write \${env:NAME})`);
      const out = new Map<string, string>();
      for (const key of keys) {
        const value = envNameAllowed(key, allowedNames) && Object.hasOwn(env, key) ? env[key] : undefined;
        if (typeof value === 'string') out.set(key, value);
      }
      return out;
    },
  };
}

/**
 * The real path of `path` if it lies under one of `allowedDirs` (compared after resolving `..`
 * and every symlink, of the file and of the directories); otherwise throws. Nothing outside
 * the allowed directories is touched, not even to see whether it exists.
 */
export async function allowedFile(path: string, allowedDirs: readonly string[]): Promise<string> {
  const under = (file: string, dir: string) => file.startsWith(dir.endsWith(sep) ? dir : dir + sep);
  const absolute = resolvePath(path);
  const dirs: Array<{ given: string; real: string | undefined }> = [];
  for (const dir of allowedDirs) {
    const given = resolvePath(dir);
    dirs.push({ given, real: await realpath(given).catch(() => undefined) });
  }
  if (!dirs.some((d) => under(absolute, d.given) || (d.real !== undefined && under(absolute, d.real)))) {
    throw new Error(`${path} is not under config.providers.file.allowed.paths`);
  }
  const real = await realpath(absolute);
  if (!dirs.some((d) => d.real !== undefined && under(real, d.real))) {
    throw new Error(`${path} leads out of config.providers.file.allowed.paths (through a symlink)`);
  }
  return real;
}

/**
 * `${file:path:key}`: a Java properties file (`key=value` lines) or a JSON object, read when
 * needed, only under `allowedPaths`.
 */
export function fileProvider(allowedPaths: readonly string[] = []): ConfigProvider {
  return {
    async get(path, keys) {
      if (!path) throw new Error('the file provider needs a path (write ${file:/path/to/file:key})');
      let text: string;
      try {
        const file = await allowedFile(path, allowedPaths);
        const stats = await lstat(file);
        if (!stats.isFile()) throw new Error('not a regular file');
        if (stats.size > MAX_SECRETS_FILE_BYTES) throw new Error(`larger than ${MAX_SECRETS_FILE_BYTES} bytes`);
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new Error(`file ${path} could not be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      }
      const entries = parseSecretsFile(path, text);
      const out = new Map<string, string>();
      for (const key of keys) {
        const value = entries.get(key);
        if (value !== undefined) out.set(key, value);
      }
      return out;
    },
  };
}

function parseSecretsFile(path: string, text: string): Map<string, string> {
  if (text.trimStart().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not the parser's message: it quotes the file's text.
      throw new Error(`file ${path} is not valid JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`file ${path} must hold a JSON object`);
    return new Map(
      Object.entries(parsed as Record<string, unknown>)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => [k, typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)]),
    );
  }
  return parseProperties(text);
}

/**
 * Java's Properties format, as Kafka's FileConfigProvider reads it: `#`/`!` comments, the key
 * ends at the first unescaped `=`, `:` or blank, a trailing backslash continues the line, and
 * `\t \n \r \\ \uXXXX` escapes.
 */
export function parseProperties(text: string): Map<string, string> {
  const logical: string[] = [];
  let pending = '';
  for (const rawLine of text.split(/\r\n|\r|\n/)) {
    const line = pending ? rawLine.trimStart() : rawLine;
    if (!pending && /^\s*([#!]|$)/.test(line)) continue;
    const trailing = /(\\+)$/.exec(line)?.[1]?.length ?? 0;
    if (trailing % 2 === 1) {
      pending += line.slice(0, -1);
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending) logical.push(pending);

  const out = new Map<string, string>();
  for (const entry of logical) {
    const line = entry.trimStart();
    let i = 0;
    let key = '';
    while (i < line.length) {
      const c = line[i]!;
      if (c === '\\' && i + 1 < line.length) {
        key += line.slice(i, i + 2);
        i += 2;
        continue;
      }
      if (c === '=' || c === ':' || c === ' ' || c === '\t' || c === '\f') break;
      key += c;
      i += 1;
    }
    let rest = line.slice(i).replace(/^[ \t\f]*/, '');
    if (rest.startsWith('=') || rest.startsWith(':')) rest = rest.slice(1).replace(/^[ \t\f]*/, '');
    out.set(unescapeProperty(key), unescapeProperty(rest));
  }
  return out;
}

function unescapeProperty(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, escape: string) => {
    if (escape.length === 5) return String.fromCharCode(parseInt(escape.slice(1), 16));
    return escape === 't' ? '\t' : escape === 'n' ? '\n' : escape === 'r' ? '\r' : escape === 'f' ? '\f' : escape;
  });
}

export interface ConfigProvidersOptions {
  env?: NodeJS.ProcessEnv;
  /** Directories `${file:}` may read under (`config.providers.file.allowed.paths`); empty refuses every file. */
  fileAllowedPaths?: readonly string[];
  /** Names (or `PREFIX*`) `${env:}` may read (`config.providers.env.allowed.names`); empty refuses every name. */
  envAllowedNames?: readonly string[];
  /** Where the cause of an unresolvable placeholder goes (the caller only learns that it could not be resolved). */
  logger?: Logger;
  /** Learns the secrets and resolved values of every config resolved to run (not to validate), so the log can leave them out. */
  knownSecrets?: KnownSecrets;
}

/** The resolved config, and a scrubber that takes every secret and resolved value of it back out of a text. */
export interface Resolved {
  config: Record<string, string>;
  scrubber: Scrubber;
}

export class ConfigProviders {
  constructor(
    private readonly providers: Readonly<Record<string, ConfigProvider>>,
    private readonly options: Pick<ConfigProvidersOptions, 'logger' | 'knownSecrets'> = {},
  ) {}

  /** `env` and `file`, each limited to what the options allow (nothing by default). */
  static defaults(options: ConfigProvidersOptions = {}): ConfigProviders {
    return new ConfigProviders(
      { env: envProvider(options.env, options.envAllowedNames ?? []), file: fileProvider(options.fileAllowedPaths ?? []) },
      options,
    );
  }

  /**
   * A copy of `config` with every placeholder replaced by its value. Throws an
   * {@link UnresolvedConfigError} naming every placeholder that could not be resolved (never a value).
   */
  async resolve(config: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    return (await this.resolveScrubbed(config)).config;
  }

  /**
   * As {@link resolve}, with a scrubber for texts (errors, traces) made from the resolved
   * config: `isSecret` says which keys hold secrets, whose values are scrubbed even when written
   * literally.
   */
  async resolveScrubbed(config: Readonly<Record<string, string>>, isSecret: (key: string) => boolean = () => false): Promise<Resolved> {
    const { values, unresolved } = await this.lookUp(config, 'warn');
    if (unresolved.length > 0) throw new UnresolvedConfigError(unresolved);
    const resolved = substitute(config, values);
    const scrubber = Scrubber.of(config, resolved, values, isSecret);
    this.options.knownSecrets?.remember(scrubber);
    return { config: resolved, scrubber };
  }

  /**
   * Resolves what can be resolved here and reports the rest, without throwing: validation on a
   * worker that lacks a secret must not reject a config another worker will run.
   */
  async tryResolve(
    config: Readonly<Record<string, string>>,
    isSecret: (key: string) => boolean = () => false,
  ): Promise<Resolved & { unresolvedKeys: Set<string>; scrubberFor(key: string): Scrubber }> {
    // Validation is open to every REST caller: the causes go to the debug log only.
    const { values, unresolved } = await this.lookUp(config, 'debug');
    const unresolvedKeys = new Set(unresolved.map((u) => u.configKey));
    const resolved = substitute(config, values);
    for (const key of unresolvedKeys) {
      const raw = config[key];
      if (raw !== undefined) resolved[key] = raw;
    }
    return {
      config: resolved,
      unresolvedKeys,
      scrubber: Scrubber.of(config, resolved, values, isSecret),
      /**
       * The scrubber for texts about one key only (its own validation errors): its own
       * placeholders' values. A scrubber of every value would also rewrite what the caller
       * wrote literally elsewhere, and so tell them when a guess equals a resolved value.
       */
      scrubberFor: (key) => {
        const own = new Map(placeholdersIn(config[key] ?? '').flatMap((p) => (values.has(p.text) ? [[p.text, values.get(p.text)!] as const] : [])));
        return Scrubber.of({ [key]: config[key] ?? '' }, { [key]: resolved[key] ?? '' }, own, isSecret);
      },
    };
  }

  private async lookUp(
    config: Readonly<Record<string, string>>,
    level: 'warn' | 'debug',
  ): Promise<{ values: Map<string, string>; unresolved: UnresolvedPlaceholder[] }> {
    // Group the lookups by (provider, path) so that a file is read once however many keys use it.
    const wanted = new Map<string, { provider: string; path: string | undefined; keys: Set<string>; users: Array<[string, Placeholder]> }>();
    for (const [configKey, value] of Object.entries(config)) {
      if (typeof value !== 'string') continue;
      for (const placeholder of placeholdersIn(value)) {
        // As Kafka's ConfigTransformer: only a known provider makes a placeholder, so that
        // template text such as "Hello ${user:name}" in a config stays as written.
        if (!Object.hasOwn(this.providers, placeholder.provider)) continue;
        const group = `${placeholder.provider}\u0000${placeholder.path ?? ''}`;
        const entry = wanted.get(group) ?? { provider: placeholder.provider, path: placeholder.path, keys: new Set(), users: [] };
        entry.keys.add(placeholder.key);
        entry.users.push([configKey, placeholder]);
        wanted.set(group, entry);
      }
    }
    const values = new Map<string, string>();
    const unresolved: UnresolvedPlaceholder[] = [];
    for (const { provider: name, path, keys, users } of wanted.values()) {
      const provider = this.providers[name]!;
      let found = new Map<string, string>();
      let failure: string | undefined;
      try {
        found = await provider.get(path, keys);
      } catch (error) {
        failure = (error as Error).message;
      }
      for (const [configKey, placeholder] of users) {
        const value = found.get(placeholder.key);
        if (value !== undefined) {
          values.set(placeholder.text, value);
          continue;
        }
        unresolved.push({ configKey, placeholder: placeholder.text, reason: UNRESOLVED_REASON });
        const cause =
          failure ??
          (name === 'env'
            ? `environment variable ${placeholder.key} is not set, or not in config.providers.env.allowed.names`
            : `key "${placeholder.key}" not found in ${path ?? ''}`);
        this.options.logger?.[level]({ configKey, placeholder: placeholder.text, cause }, 'config placeholder could not be resolved');
      }
    }
    return { values, unresolved };
  }
}

/**
 * Takes secrets back out of a text (an error message, a stack trace) before it is stored,
 * answered or logged: every value a placeholder resolved to becomes the placeholder as written,
 * every secret value `[hidden]`. Each value is also looked for JSON-escaped, URL-encoded and
 * trimmed, as error texts quote it. Values shorter than four characters are replaced only where
 * they stand alone (not inside a longer word or number), so that a `tasks.max` of `2` does not
 * blot out every digit of a trace.
 */
export class Scrubber {
  static readonly NONE = new Scrubber([]);
  private readonly replacements: Array<{ pattern: RegExp | string; length: number; replacement: string }>;
  private readonly whole: ReadonlyMap<string, string>;

  constructor(readonly entries: ReadonlyArray<{ value: string; replacement: string }>) {
    const forms = new Map<string, string>();
    for (const { value, replacement } of entries) {
      for (const form of formsOf(value)) if (form !== '' && form !== replacement && !forms.has(form)) forms.set(form, replacement);
    }
    this.whole = forms;
    this.replacements = [...forms]
      .sort(([a], [b]) => b.length - a.length)
      .map(([form, replacement]) => ({
        pattern: form.length >= 4 ? form : new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(form)}(?![\\p{L}\\p{N}])`, 'gu'),
        length: form.length,
        replacement,
      }));
  }

  /** The scrubber for a config: `raw` as stored, `resolved` from it, `values` by placeholder text. */
  static of(
    raw: Readonly<Record<string, string>>,
    resolved: Readonly<Record<string, string>>,
    values: ReadonlyMap<string, string>,
    isSecret: (key: string) => boolean,
  ): Scrubber {
    const entries: Array<{ value: string; replacement: string }> = [];
    for (const [key, value] of Object.entries(resolved)) {
      if (typeof value === 'string' && isSecret(key)) entries.push({ value, replacement: HIDDEN });
      // A secret written in clear, e.g. as `[hidden]` was restored: its raw form too.
      const rawValue = raw[key];
      if (typeof rawValue === 'string' && isSecret(key) && !hasPlaceholder(rawValue)) entries.push({ value: rawValue, replacement: HIDDEN });
    }
    for (const [placeholder, value] of values) entries.push({ value, replacement: placeholder });
    return new Scrubber(entries);
  }

  get empty(): boolean {
    return this.replacements.length === 0;
  }

  /** What stands for `text` when it is, whole, a value this scrubber replaces. */
  replacementOf(text: string): string | undefined {
    return this.whole.get(text);
  }

  /** True when `text` holds something this scrubber would replace. */
  finds(text: string): boolean {
    return this.replacements.some(({ pattern }) => (typeof pattern === 'string' ? text.includes(pattern) : new RegExp(pattern).test(text)));
  }

  scrub(text: string): string {
    let out = text;
    for (const { pattern, replacement } of this.replacements) {
      out = typeof pattern === 'string' ? out.split(pattern).join(replacement) : out.replace(pattern, () => replacement);
    }
    return out;
  }

  /**
   * An error as a log line, a trace or the runtime may carry it on: of the same class (so
   * `instanceof` still tells a retriable one from a fatal one), message, stack and every plain
   * field (code, retryAfterMs, a ConfigError's errors) scrubbed; anything else of it, such as
   * the request a library error holds, headers and all, or its cause, is left out.
   */
  error(error: unknown): Error {
    if (!(error instanceof Error)) return new Error(this.scrub(String(error)));
    const copy = Object.create(Object.getPrototypeOf(error) as object) as Error;
    for (const [key, value] of Object.entries(error)) {
      const scrubbed = this.value(value, 3);
      if (scrubbed !== undefined) Object.defineProperty(copy, key, { value: scrubbed, enumerable: true, writable: true, configurable: true });
    }
    for (const key of ['name', 'message', 'stack'] as const) {
      if (Object.hasOwn(error, key)) Object.defineProperty(copy, key, { value: this.scrub(String(error[key])), enumerable: false, writable: true, configurable: true });
    }
    return copy;
  }

  /** Strings scrubbed, numbers and booleans kept, plain arrays and objects walked `depth` levels deep; anything else undefined. */
  value(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
    if (depth <= 0 || typeof value !== 'object') return undefined;
    if (Array.isArray(value)) return value.map((item) => this.value(item, depth - 1));
    const prototype = Object.getPrototypeOf(value) as unknown;
    if (prototype !== Object.prototype && prototype !== null) return undefined;
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).flatMap(([key, item]) => {
        const scrubbed = this.value(item, depth - 1);
        return scrubbed === undefined ? [] : [[key, scrubbed]];
      }),
    );
  }
}

/**
 * The secrets and resolved values of the configs this worker runs, for its log: every log line
 * passes through {@link scrubLine} before it is written, so that no component (a runner, a
 * connector, a library's error) can log one. The most recent {@link MAX_KNOWN} values are kept.
 */
const PINO_NUMBERS = new Set(['level', 'time', 'pid']);

export class KnownSecrets {
  static readonly MAX_KNOWN = 2_000;
  private readonly known = new Map<string, string>();
  private scrubber = Scrubber.NONE;

  remember(scrubber: Scrubber): void {
    let added = false;
    for (const { value, replacement } of scrubber.entries) {
      if (value === '' || this.known.get(value) === replacement) continue;
      this.known.delete(value);
      this.known.set(value, replacement);
      added = true;
    }
    if (!added) return;
    for (const value of this.known.keys()) {
      if (this.known.size <= KnownSecrets.MAX_KNOWN) break;
      this.known.delete(value);
    }
    this.scrubber = new Scrubber([...this.known].map(([value, replacement]) => ({ value, replacement })));
  }

  /**
   * A JSON log line without any known value: the strings inside it are scrubbed (not the line's
   * text, so that the line stays JSON however short a value is).
   */
  scrubLine(line: string): string {
    const scrubber = this.scrubber;
    if (scrubber.empty || !scrubber.finds(line)) return line;
    try {
      const scrubbed = JSON.stringify(JSON.parse(line), (key, value: unknown) => {
        if (typeof value === 'string') return scrubber.scrub(value);
        // A number logged as a field (a port) that is, whole, a resolved value of 4 or more
        // digits; pino's own numbers are left alone, and shorter numbers would match too much.
        if (typeof value === 'number' && !PINO_NUMBERS.has(key) && String(value).length >= 4) return scrubber.replacementOf(String(value)) ?? value;
        return value;
      });
      return `${scrubbed}\n`;
    } catch {
      return scrubber.scrub(line);
    }
  }
}

function formsOf(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  let uri = value;
  try {
    uri = encodeURIComponent(value);
  } catch {
    // a lone surrogate: no encoded form to look for
  }
  return [value, value.trim(), json, JSON.stringify(json).slice(1, -1), uri];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function substitute(config: Readonly<Record<string, string>>, values: ReadonlyMap<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    out[key] = typeof value === 'string' ? value.replace(PLACEHOLDER, (text) => values.get(text) ?? text) : value;
  }
  return out;
}

/**
 * Puts the placeholders back into task configs computed from a resolved config (Kafka's
 * AbstractHerder.reverseTransform): a task value equal to the resolved value of a key whose
 * raw value held a placeholder becomes the raw value again, so no secret reaches the store.
 */
export function restorePlaceholders(
  raw: Readonly<Record<string, string>>,
  resolved: Readonly<Record<string, string>>,
  taskConfig: Record<string, string>,
): Record<string, string> {
  const out = { ...taskConfig };
  for (const [key, rawValue] of Object.entries(raw)) {
    if (!hasPlaceholder(rawValue)) continue;
    if (key in out && out[key] === resolved[key]) out[key] = rawValue;
  }
  return out;
}
