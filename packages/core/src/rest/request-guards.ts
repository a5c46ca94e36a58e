/**
 * What a web browser must not be able to make the REST API do on its user's behalf.
 *
 * - **DNS rebinding.** A page at attacker.example can make its name resolve to 127.0.0.1 and
 *   then read the worker's answers as its own. Its requests carry `Host: attacker.example`, so
 *   a loopback listener accepts only Host names that cannot be rebound: localhost names,
 *   loopback addresses, the listener's own address, the advertised URL's host and
 *   `rest.allowed.hosts`; others get 421. Other listeners check Host only when
 *   `rest.allowed.hosts` is set.
 * - **Cross-site requests.** Any page can POST to the worker (a form, or `fetch` in no-cors
 *   mode) without reading the answer. A POST, PUT, PATCH or DELETE whose `Origin` is not the
 *   API's own, or that the browser marks `Sec-Fetch-Site: cross-site`/`same-site`, is refused
 *   (403) unless its origin is in `rest.cors.allowed.origins`. Requests without either header
 *   come from programs, not pages (browsers always send Origin on such requests), and pass.
 *   `/hooks/*` is called by providers' servers and is exempt (each call is signed).
 * - **CORS** is off (no Access-Control-* header) unless `rest.cors.allowed.origins` or Kafka's
 *   `access.control.allow.origin` is set. An allowed origin may use the methods
 *   `access.control.allow.methods` names (its preflight says so, and the origin check holds a
 *   request of another method to the cross-site rule), by default every method for
 *   `rest.cors.allowed.origins` and Kafka's GET, POST and HEAD for `access.control.allow.origin`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_LISTENER, isLoopbackAddress, type Listener } from './listeners.ts';

export interface RequestGuardOptions {
  /** `rest.allowed.hosts`. */
  allowedHosts: readonly string[];
  /** `rest.cors.allowed.origins`; `*` allows any origin but `null`. */
  allowedOrigins: readonly string[];
  /** The host of `rest.advertised.url`, which peers and operators use. */
  advertisedHost?: string | undefined;
  /** Methods allowed origins may use (upper case); every method of the API when absent. */
  allowedMethods?: readonly string[];
}

/** Kafka's default Access-Control-Allow-Methods (Jetty's CrossOriginFilter). */
export const KAFKA_CORS_METHODS = ['GET', 'POST', 'HEAD'] as const;

const commaList = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/**
 * The allowed origins and methods of a worker's settings: `rest.cors.allowed.origins` and
 * Kafka's `access.control.allow.origin` together, and `access.control.allow.methods` (empty:
 * every method when `rest.cors.allowed.origins` names origins, else Kafka's default).
 */
export function corsSettings(config: {
  'rest.cors.allowed.origins': readonly string[];
  'access.control.allow.origin': string;
  'access.control.allow.methods': string;
}): Pick<RequestGuardOptions, 'allowedOrigins' | 'allowedMethods'> {
  const allowedOrigins = [...config['rest.cors.allowed.origins'], ...commaList(config['access.control.allow.origin'])];
  const methods = commaList(config['access.control.allow.methods']).map((m) => m.toUpperCase());
  if (methods.length > 0) return { allowedOrigins, allowedMethods: [...new Set(methods)] };
  if (config['rest.cors.allowed.origins'].length > 0) return { allowedOrigins };
  return { allowedOrigins, allowedMethods: KAFKA_CORS_METHODS };
}

/** Set on the raw request by the server it came through. */
export const LISTENER = Symbol('omnibus.listener');
type TaggedRequest = { [LISTENER]?: Listener };

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$/;
const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const CORS_HEADERS = 'authorization, content-type';

/** A Host header's name, normalised as a browser's URL parser does (lower case, IPv4 and IPv6 canonical forms, no trailing dot). */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined || !HOST_HEADER.test(header)) return undefined;
  let host: string;
  try {
    host = new URL(`http://${header}`).hostname;
  } catch {
    return undefined;
  }
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/** An origin (`scheme://host[:port]`) in the form browsers send it; undefined for `null` and anything else. */
export function normalOrigin(origin: string): string | undefined {
  if (!/^https?:\/\/[^/?#@\s]+\/?$/i.test(origin)) return undefined;
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? undefined : url.origin;
  } catch {
    return undefined;
  }
}

function refuse(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.status(status).header('connection', 'close').send({ error_code: status, message });
}

/** Quotes a caller's header for an error message, short and printable. */
const quoted = (text: string) => JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);

export function requestGuardHook(options: RequestGuardOptions, firstListener: Listener = DEFAULT_LISTENER) {
  const allowedHosts = new Set(options.allowedHosts.map((host) => hostName(host.trim()) ?? host.trim().toLowerCase()));
  const advertised = options.advertisedHost === undefined ? undefined : hostName(options.advertisedHost);
  const anyOrigin = options.allowedOrigins.includes('*');
  const allowedOrigins = new Set(options.allowedOrigins.flatMap((origin) => normalOrigin(origin.trim()) ?? []));
  const corsEnabled = anyOrigin || allowedOrigins.size > 0;
  const allowedMethods = new Set(options.allowedMethods ?? CORS_METHODS);
  const methodsHeader = [...allowedMethods].join(', ');

  const hostAllowed = (listener: Listener, header: string | undefined): boolean => {
    if (!listener.loopback && allowedHosts.size === 0) return true;
    const name = hostName(header);
    if (name === undefined) return false;
    return (
      isLoopbackAddress(name) ||
      name === hostName(listener.host.includes(':') ? `[${listener.host}]` : listener.host) ||
      name === advertised ||
      allowedHosts.has(name)
    );
  };

  const originAllowed = (origin: string | undefined): origin is string => {
    if (origin === undefined) return false;
    const normal = normalOrigin(origin);
    return normal !== undefined && (anyOrigin || allowedOrigins.has(normal));
  };

  const sameOrigin = (origin: string, host: string | undefined): boolean => {
    const normal = normalOrigin(origin);
    if (normal === undefined || host === undefined || !HOST_HEADER.test(host)) return false;
    try {
      const own = new URL(`${new URL(normal).protocol}//${host}`);
      return own.origin === normal;
    } catch {
      return false;
    }
  };

  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const listener = (request.raw as TaggedRequest)[LISTENER] ?? firstListener;
    const host = request.headers.host;
    if (!hostAllowed(listener, host)) {
      const message =
        host === undefined
          ? 'A Host header is required on this listener'
          : `Host ${quoted(host)} is not accepted on this listener (it could be a DNS rebinding attack); add the name to rest.allowed.hosts to accept it`;
      await refuse(reply, 421, message);
      return;
    }

    const origin = request.headers.origin;
    const allowedOrigin = originAllowed(origin);
    // Answers differ by origin when CORS is on: caches must keep them apart.
    if (corsEnabled) void reply.header('vary', 'Origin');
    if (corsEnabled && allowedOrigin) {
      void reply.header('access-control-allow-origin', anyOrigin ? '*' : normalOrigin(origin));
      if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
        await reply
          .status(204)
          .header('access-control-allow-methods', methodsHeader)
          .header('access-control-allow-headers', CORS_HEADERS)
          .header('access-control-max-age', '600')
          .send();
        return;
      }
    }

    // An allowed origin writes only with the methods it is allowed; any other is judged as any page's.
    if (!STATE_CHANGING.has(request.method) || (allowedOrigin && allowedMethods.has(request.method))) return;
    if (request.routeOptions.url?.startsWith('/hooks/')) return;
    const site = request.headers['sec-fetch-site'];
    const crossSite = site === 'cross-site' || site === 'same-site';
    if (crossSite || (origin !== undefined && !sameOrigin(origin, host))) {
      const from = origin === undefined ? `a ${site} page` : `origin ${quoted(origin)}`;
      await refuse(
        reply,
        403,
        `Cross-origin ${request.method} refused: requests from ${from} may not change anything here; ` +
          (allowedOrigin
            ? `add ${request.method} to access.control.allow.methods to allow it`
            : 'add the origin to rest.cors.allowed.origins (or access.control.allow.origin) to allow it'),
      );
    }
  };
}

/**
 * Whether a JSON text (a string, or its UTF-8 bytes) nests arrays and objects deeper than
 * `maxDepth`. Counts brackets outside strings, without parsing: a body nested thousands deep
 * is refused before any recursive code (schema validation, serialisation) sees it.
 */
export function jsonNestedDeeperThan(text: string | Uint8Array, maxDepth: number): boolean {
  const at = typeof text === 'string' ? (i: number) => text.charCodeAt(i) : (i: number) => text[i] as number;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = at(i);
    if (inString) {
      if (code === 0x5c) i++;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x7b || code === 0x5b) {
      if (++depth > maxDepth) return true;
    } else if (code === 0x7d || code === 0x5d) depth--;
  }
  return false;
}

/** Whether a parsed JSON value nests arrays and objects deeper than `maxDepth` (walked without recursion). */
export function valueNestedDeeperThan(value: object, maxDepth: number): boolean {
  const pending: Array<{ value: object; depth: number }> = [{ value, depth: 1 }];
  while (pending.length > 0) {
    const { value: current, depth } = pending.pop() as { value: object; depth: number };
    if (depth > maxDepth) return true;
    for (const child of Object.values(current)) {
      if (typeof child === 'object' && child !== null) pending.push({ value: child as object, depth: depth + 1 });
    }
  }
  return false;
}
