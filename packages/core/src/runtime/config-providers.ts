/**
 * Config providers (Kafka's KIP-297): `${env:NAME}` and `${file:path:key}` placeholders keep
 * secrets out of the store. The store and every GET keep the placeholders as written; only the
 * worker that starts a connector or task resolves them, so a secret exists in clear only in
 * the memory of the process that uses it.
 */
import { readFile } from 'node:fs/promises';
import { OmnibusError } from '@omnibus/sdk';

/** Kafka's ConfigTransformer pattern: `${provider:[path:]key}`. */
const PLACEHOLDER = /\$\{([^}]*?):(?:([^}]*?):)?([^}]*?)\}/g;
const ANY_PLACEHOLDER = new RegExp(PLACEHOLDER.source);

export interface ConfigProvider {
  /**
   * The values of `keys` under `path` (undefined for providers that have no path, such as env).
   * A key the provider does not have is left out of the result; a path it cannot read throws.
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
        unresolved.map((u) => `"${u.configKey}" uses ${u.placeholder}: ${u.reason}`).join('; '),
    );
    this.unresolved = unresolved;
  }
}

export function hasPlaceholder(value: string): boolean {
  return ANY_PLACEHOLDER.test(value);
}

function placeholdersIn(value: string): Placeholder[] {
  return [...value.matchAll(PLACEHOLDER)].map((m) => ({ text: m[0], provider: m[1] ?? '', path: m[2], key: m[3] ?? '' }));
}

/** `${env:NAME}`: the worker's environment. */
export function envProvider(env: NodeJS.ProcessEnv = process.env): ConfigProvider {
  return {
    async get(path, keys) {
      if (path !== undefined) throw new Error(`the env provider takes no path (write \${env:NAME})`);
      const out = new Map<string, string>();
      for (const key of keys) {
        const value = env[key];
        if (value !== undefined) out.set(key, value);
      }
      return out;
    },
  };
}

/** `${file:path:key}`: a Java properties file (`key=value` lines) or a JSON object, read when needed. */
export function fileProvider(): ConfigProvider {
  return {
    async get(path, keys) {
      if (!path) throw new Error('the file provider needs a path (write ${file:/path/to/file:key})');
      let text: string;
      try {
        text = await readFile(path, 'utf8');
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
    } catch (error) {
      throw new Error(`file ${path} is not valid JSON (${(error as Error).message})`);
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

export class ConfigProviders {
  constructor(private readonly providers: Readonly<Record<string, ConfigProvider>>) {}

  /** `env` and `file`, as most deployments want them. */
  static defaults(options: { env?: NodeJS.ProcessEnv } = {}): ConfigProviders {
    return new ConfigProviders({ env: envProvider(options.env), file: fileProvider() });
  }

  /**
   * A copy of `config` with every placeholder replaced by its value. Throws an
   * {@link UnresolvedConfigError} naming every placeholder that could not be resolved (never a value).
   */
  async resolve(config: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    const { values, unresolved } = await this.lookUp(config);
    if (unresolved.length > 0) throw new UnresolvedConfigError(unresolved);
    return substitute(config, values);
  }

  /**
   * Resolves what can be resolved here and reports the rest, without throwing: validation on a
   * worker that lacks a secret must not reject a config another worker will run.
   */
  async tryResolve(config: Readonly<Record<string, string>>): Promise<{ config: Record<string, string>; unresolvedKeys: Set<string> }> {
    const { values, unresolved } = await this.lookUp(config);
    const unresolvedKeys = new Set(unresolved.map((u) => u.configKey));
    const resolved = substitute(config, values);
    for (const key of unresolvedKeys) {
      const raw = config[key];
      if (raw !== undefined) resolved[key] = raw;
    }
    return { config: resolved, unresolvedKeys };
  }

  private async lookUp(config: Readonly<Record<string, string>>): Promise<{ values: Map<string, string>; unresolved: UnresolvedPlaceholder[] }> {
    // Group the lookups by (provider, path) so that a file is read once however many keys use it.
    const wanted = new Map<string, { provider: string; path: string | undefined; keys: Set<string>; users: Array<[string, Placeholder]> }>();
    for (const [configKey, value] of Object.entries(config)) {
      if (typeof value !== 'string') continue;
      for (const placeholder of placeholdersIn(value)) {
        // As Kafka's ConfigTransformer: only a known provider makes a placeholder, so that
        // template text such as "Hello ${user:name}" in a config stays as written.
        if (!this.providers[placeholder.provider]) continue;
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
        if (value !== undefined) values.set(placeholder.text, value);
        else
          unresolved.push({
            configKey,
            placeholder: placeholder.text,
            reason:
              failure ??
              (name === 'env' ? `environment variable ${placeholder.key} is not set` : `key "${placeholder.key}" not found in ${path}`),
          });
      }
    }
    return { values, unresolved };
  }
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
