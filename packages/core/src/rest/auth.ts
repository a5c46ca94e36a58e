/**
 * Control-plane authentication: bearer tokens and/or HTTP basic users from the worker config
 * (`rest.auth.bearer.tokens`, `rest.auth.basic.users`). When either is set, every route needs
 * credentials except the ones a load balancer or a provider must reach without them:
 * `GET /` and `/health` (probes), `/openapi.json` (the API's public description) and
 * `/hooks/*` (provider webhooks, which connectors verify with the provider's signature) and `/ui/*`
 * (the control center's static files: every API call they make needs credentials).
 * `/metrics` stays protected: it names every connector; Prometheus sends bearer tokens.
 *
 * Credentials are compared in constant time (HMAC digests of equal length, every configured
 * credential checked), so response times do not reveal how much of a guess was right.
 */
import { isPassword, type Password } from '@omnibus/sdk';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

export interface AuthConfig {
  bearerTokens: string[];
  basicUsers: Array<{ user: string; password: string }>;
}

/** Route patterns reachable without credentials. */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/', '/health', '/openapi.json', '/hooks/:connector', '/hooks/:connector/*', '/ui', '/ui/*']);

const REALM = 'omnibus';

/** Reads the worker config's auth keys (comma-separated tokens; `user:password` pairs, split at the first colon). */
export function authConfigFrom(workerConfig: {
  'rest.auth.bearer.tokens': string | Password;
  'rest.auth.basic.users': string | Password;
}): AuthConfig {
  // Password-typed in the worker config, so that a logged config never shows them.
  const split = (secret: string | Password) =>
    (isPassword(secret) ? secret.value() : secret)
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  const basicUsers = split(workerConfig['rest.auth.basic.users']).map((pair) => {
    const colon = pair.indexOf(':');
    if (colon <= 0) throw new Error('rest.auth.basic.users must be comma-separated user:password pairs');
    return { user: pair.slice(0, colon), password: pair.slice(colon + 1) };
  });
  return { bearerTokens: split(workerConfig['rest.auth.bearer.tokens']), basicUsers };
}

export function authEnabled(config: AuthConfig): boolean {
  return config.bearerTokens.length > 0 || config.basicUsers.length > 0;
}

/**
 * An `onRequest` hook enforcing `config`; undefined when auth is not configured. Add it to the
 * root instance (or register {@link authPlugin}) so that it covers every route, the data
 * plane's included, and unknown paths (which then answer 401, not 404, to strangers).
 */
export function authHook(config: AuthConfig): ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined {
  if (!authEnabled(config)) return undefined;
  // Digests under a per-process key: equal-length inputs for timingSafeEqual, whatever the secrets' lengths.
  const key = randomBytes(32);
  const digest = (text: string) => createHmac('sha256', key).update(text).digest();
  const tokens = config.bearerTokens.map(digest);
  const users = config.basicUsers.map(({ user, password }) => digest(`${user}:${password}`));
  const challenges = [
    ...(tokens.length > 0 ? [`Bearer realm="${REALM}"`] : []),
    ...(users.length > 0 ? [`Basic realm="${REALM}", charset="UTF-8"`] : []),
  ];

  const matchesAny = (candidate: Buffer, allowed: Buffer[]): boolean => {
    let match = false;
    for (const expected of allowed) match = timingSafeEqual(candidate, expected) || match;
    return match;
  };

  const authenticated = (header: string | undefined): boolean => {
    if (!header) return false;
    const space = header.indexOf(' ');
    if (space <= 0) return false;
    const scheme = header.slice(0, space).toLowerCase();
    const credentials = header.slice(space + 1).trim();
    if (scheme === 'bearer' && tokens.length > 0) return matchesAny(digest(credentials), tokens);
    if (scheme === 'basic' && users.length > 0) return matchesAny(digest(Buffer.from(credentials, 'base64').toString('utf8')), users);
    return false;
  };

  return async (request, reply) => {
    const route = request.routeOptions.url;
    if (route !== undefined && PUBLIC_ROUTES.has(route)) return;
    if (authenticated(request.headers.authorization)) return;
    const message = request.headers.authorization ? 'Invalid credentials' : 'Authentication required';
    await reply.status(401).header('www-authenticate', challenges).send({ error_code: 401, message });
  };
}

/**
 * The hook as a plugin that applies to its parent (Fastify's `skip-override`, what the
 * fastify-plugin package sets): register it before the route plugins.
 */
export function authPlugin(config: AuthConfig): FastifyPluginAsync {
  const hook = authHook(config);
  const plugin: FastifyPluginAsync = async (app) => {
    if (hook) app.addHook('onRequest', hook);
  };
  Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'omnibus-auth' });
  return plugin;
}
