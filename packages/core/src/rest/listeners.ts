/**
 * The worker's REST listeners (`listeners`, Kafka's setting): what each URL means, and the
 * start-up checks that keep a careless setting from exposing the control plane. Every listener
 * is served, or the worker refuses to start; `https://` listeners serve TLS with the key and
 * certificate of `listeners.https.ssl.*`; a listener reachable from other machines needs
 * `rest.auth.*` (or an explicit `rest.auth.none=true`).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { SecureContextOptions } from 'node:tls';

export interface Listener {
  /** As configured. */
  url: string;
  protocol: 'http' | 'https';
  /** The address to bind, without IPv6 brackets. */
  host: string;
  port: number;
  /** Bound to the loopback interface only: reachable from this machine alone. */
  loopback: boolean;
}

/** What an https:// listener serves with. */
export type TlsMaterial = Pick<SecureContextOptions, 'key' | 'cert' | 'passphrase'>;

export interface ListenerBinding {
  listener: Listener;
  tls?: TlsMaterial;
}

/** The listener a request that came through none (an injected one, in tests) is judged as. */
export const DEFAULT_LISTENER: Listener = { url: 'http://127.0.0.1:8083', protocol: 'http', host: '127.0.0.1', port: 8083, loopback: true };

const LISTENER_URL = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?\/?$/;
const DEFAULT_PORT = 8083;

/** True for loopback addresses and localhost names (`localhost`, `*.localhost`); IPv6 without brackets. */
export function isLoopbackAddress(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) {
    if (name === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(name)) return true;
    const mapped = /^::ffff:(?:(\d+\.\d+\.\d+\.\d+)|7f[0-9a-f]{2}:[0-9a-f]{1,4})$/.exec(name);
    return mapped !== null && (mapped[1] === undefined || mapped[1].startsWith('127.'));
  }
  return false;
}

export function parseListener(url: string): Listener {
  const match = LISTENER_URL.exec(url.trim());
  if (!match) {
    throw new Error(`listener "${url}" is not a listener URL: write http://host:port or https://host:port (e.g. http://127.0.0.1:8083)`);
  }
  const protocol = (match[1] as string).toLowerCase() as 'http' | 'https';
  const host = (match[2] as string).replace(/^\[(.*)\]$/, '$1');
  if (host.includes(':') && isIP(host) !== 6) throw new Error(`listener "${url}": ${host} is not an IPv6 address`);
  const port = match[3] === undefined ? DEFAULT_PORT : Number(match[3]);
  if (port > 65535) throw new Error(`listener "${url}": port ${port} is out of range`);
  return { url, protocol, host, port, loopback: isLoopbackAddress(host) };
}

/** Every configured listener, each one once; at least one. */
export function parseListeners(urls: readonly string[]): Listener[] {
  if (urls.length === 0) throw new Error('listeners is empty: give at least one, e.g. http://127.0.0.1:8083');
  const listeners = urls.map(parseListener);
  const seen = new Set<string>();
  for (const listener of listeners) {
    if (listener.port === 0) continue;
    const where = `${listener.host.toLowerCase()}:${listener.port}`;
    if (seen.has(where)) throw new Error(`listeners: ${where} is configured twice`);
    seen.add(where);
  }
  return listeners;
}

export interface ListenerSettings {
  listeners: string[];
  'rest.auth.none': boolean;
  'listeners.https.ssl.key.location'?: string | undefined;
  'listeners.https.ssl.certificate.location'?: string | undefined;
  /** The key's passphrase ('' when none). */
  keyPassword: string;
  /** Whether `rest.auth.*` configures any credential. */
  authEnabled: boolean;
}

/**
 * The listeners to serve, with their TLS material; throws, naming the settings to give, when
 * an https listener has no key or certificate, or when a listener other machines can reach
 * would serve without credentials.
 */
export function listenerBindings(settings: ListenerSettings): ListenerBinding[] {
  const listeners = parseListeners(settings.listeners);
  const exposed = listeners.filter((listener) => !listener.loopback);
  if (exposed.length > 0 && !settings.authEnabled && !settings['rest.auth.none']) {
    throw new Error(
      `listener ${exposed.map((listener) => listener.url).join(', ')} is reachable from other machines but no rest.auth.* credential is set: ` +
        'set rest.auth.bearer.tokens or rest.auth.basic.users, listen on 127.0.0.1 only, or set rest.auth.none=true to serve it without authentication',
    );
  }
  const tls = listeners.some((listener) => listener.protocol === 'https') ? readTlsMaterial(settings) : undefined;
  return listeners.map((listener) => (listener.protocol === 'https' ? { listener, tls } : { listener }));
}

function readTlsMaterial(settings: ListenerSettings): TlsMaterial {
  const keyKey = 'listeners.https.ssl.key.location';
  const certKey = 'listeners.https.ssl.certificate.location';
  const missing = [keyKey, certKey].filter((key) => !settings[key as typeof keyKey]);
  if (missing.length > 0) {
    throw new Error(`an https:// listener needs a private key and a certificate (PEM files): set ${missing.join(' and ')}`);
  }
  const read = (key: typeof keyKey | typeof certKey) => {
    const path = settings[key] as string;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`${key}: ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  };
  return { key: read(keyKey), cert: read(certKey), ...(settings.keyPassword ? { passphrase: settings.keyPassword } : {}) };
}
