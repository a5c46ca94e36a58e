/**
 * The worker's HTTP server: one Fastify instance serving the control plane (Kafka Connect's
 * REST API), the data plane, metrics and provider webhooks. Every route module registers
 * itself as a plugin; errors of every route go through the one mapping in `errors.ts`.
 *
 * The one instance serves every configured listener: one Node server per listener (https
 * ones with their TLS material), each tagging its requests with its listener, so that the
 * request guards (`request-guards.ts`) judge the Host header by the listener it came through.
 */
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
} from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { coreError, toHttpError } from '../errors.ts';
import { STORE_RETRY_AFTER_SECONDS, storeUnavailable } from '../store/cql-errors.ts';
import { COMMIT_ID, KAFKA_CONNECT_API_VERSION, VERSION } from '../version.ts';
import type { ListenerBinding } from './listeners.ts';
import { LISTENER, requestGuardHook, valueNestedDeeperThan, type RequestGuardOptions } from './request-guards.ts';
import { uiRoutes } from './ui.ts';

export interface ServerOptions {
  logger: PinoLogger;
  /** Largest accepted request body, bytes (413 beyond it). */
  bodyLimit?: number;
  routes: FastifyPluginAsync[];
  /** Where to serve (see {@link listen}); without, Fastify's own server, judged as a loopback listener. */
  listeners?: ListenerBinding[];
  /** Host, Origin and CORS checks; by default no extra host or origin is allowed. */
  guards?: RequestGuardOptions;
  /** Longest a client may take to send a whole request, ms (408 beyond it). */
  requestTimeoutMs?: number;
  /** Deepest nesting accepted in a JSON body (400 beyond it). */
  jsonMaxDepth?: number;
  /** Packages the control center may be installed as a dependency of (the distribution's), besides core. */
  uiSearchFrom?: readonly string[];
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_JSON_MAX_DEPTH = 64;

/** The servers of each instance built with listeners, in listener order. */
const servers = new WeakMap<FastifyInstance, Array<{ binding: ListenerBinding; server: Server }>>();

export type WorkerHealth = { status: 'starting' | 'healthy' | 'unhealthy'; message: string };

export const HEALTHY: WorkerHealth = {
  status: 'healthy',
  message: 'Worker has completed startup and is ready to handle requests.',
};
export const STARTING: WorkerHealth = {
  status: 'starting',
  message: 'Worker is still starting up. Please try again later.',
};

/** What `GET /` answers: Kafka's ServerInfo, with Omnibus's own version beside it. */
export interface ServerInfo {
  /** The Kafka Connect REST API level implemented, in the form clients compare (e.g. 3.9.0). */
  version: string;
  commit: string;
  kafka_cluster_id: string;
  omnibus_version: string;
}

/** `GET /`: Kafka's ServerInfo; `clusterId` from {@link clusterIdOf}. */
export function rootRoute(clusterId: string): FastifyPluginAsync {
  const info: ServerInfo = { version: KAFKA_CONNECT_API_VERSION, commit: COMMIT_ID, kafka_cluster_id: clusterId, omnibus_version: VERSION };
  return async (app) => {
    app.get('/', async () => info);
  };
}

/**
 * The cluster's id, the same on every worker of one store and opaque as Kafka's (base64url of
 * 16 bytes): a digest of what the workers share, so it shows no path, host or keyspace. A CQL
 * store's workers may list different contact points; its keyspace is what they share.
 */
export function clusterIdOf(storeDescription: string): string {
  const shared = storeDescription.startsWith('cql://') ? `cql:${storeDescription.slice(storeDescription.lastIndexOf('/') + 1)}` : storeDescription;
  return createHash('sha256').update(shared).digest().subarray(0, 16).toString('base64url');
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const bindings = options.listeners ?? [];
  const created: Array<{ binding: ListenerBinding; server: Server }> = [];
  const app = Fastify({
    requestTimeout,
    ...(bindings.length > 0
      ? {
          serverFactory: (handler: (request: IncomingMessage, response: ServerResponse) => void) => {
            for (const binding of bindings) created.push({ binding, server: createListenerServer(binding, handler, requestTimeout) });
            return (created[0] as { server: Server }).server;
          },
        }
      : {}),
    loggerInstance: options.logger.child({ component: 'rest' }) as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? 8 * 1024 * 1024,
    // Requests are counted and timed by the metrics route; one log line per request would drown the rest.
    logController: new LogController({ disableRequestLogging: true }),
    // Kafka Connect answers an unknown trailing slash the same as the path without it.
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1000 },
    forceCloseConnections: true,
    // Malformed URLs (bad percent-encoding, over-long parameters) fail before routing: same error body.
    frameworkErrors: (error, _request, reply) => {
      const { status, body } = toHttpError(error);
      void (reply as FastifyReply).status(status).send(body);
    },
  });

  app.setErrorHandler((error, request, reply) => {
    // The cluster short of replicas is no server error: the client is told to come back.
    const unavailable = storeUnavailable(error) ?? storeUnavailable((error as { cause?: unknown }).cause);
    if (unavailable) {
      request.log.warn({ err: error, url: request.url }, 'store unavailable; answered 503');
      const { status, body } = toHttpError(unavailable);
      void reply.status(status).header('retry-after', String(STORE_RETRY_AFTER_SECONDS)).send(body);
      return;
    }
    const { status, body } = toHttpError(error);
    if (status >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    void reply.status(status).send(body);
  });
  // JSON nested thousands deep would overflow the stack of recursive code (schema validation,
  // serialisation) after parsing: refused here, whichever scope's parser read it.
  const jsonMaxDepth = options.jsonMaxDepth ?? DEFAULT_JSON_MAX_DEPTH;
  app.addHook('preValidation', async (request) => {
    const body: unknown = request.body;
    if (typeof body === 'object' && body !== null && !Buffer.isBuffer(body) && valueNestedDeeperThan(body, jsonMaxDepth)) {
      throw coreError('OMNI_ERR_JSON_TOO_DEEP', { max: jsonMaxDepth });
    }
  });

  // Before every other hook (auth included): a refused Host or origin learns nothing else.
  app.addHook('onRequest', requestGuardHook(options.guards ?? { allowedHosts: [], allowedOrigins: [] }, bindings[0]?.listener));

  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error_code: 404, message: `HTTP 404 Not Found: ${request.method} ${request.url.split('?')[0]}` });
  });

  for (const route of options.routes) await app.register(route);
  await app.register(uiRoutes({ logger: options.logger, ...(options.uiSearchFrom ? { searchFrom: options.uiSearchFrom } : {}) }));
  if (created.length > 0) {
    servers.set(app, created);
    app.addHook('onClose', async () => {
      await Promise.all(created.slice(1).map(({ server }) => closeServer(server)));
    });
  }
  return app;
}

function createListenerServer(
  binding: ListenerBinding,
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  requestTimeout: number,
): Server {
  const tagged = (request: IncomingMessage, response: ServerResponse) => {
    (request as IncomingMessage & { [LISTENER]?: unknown })[LISTENER] = binding.listener;
    handler(request, response);
  };
  const timeouts = {
    requestTimeout,
    headersTimeout: Math.min(requestTimeout, 60_000),
    // Node checks the timeouts this often (30 s by default, longer than many a timeout).
    connectionsCheckingInterval: Math.min(1000, requestTimeout),
  };
  if (binding.listener.protocol === 'https') {
    if (!binding.tls) throw new Error(`listener ${binding.listener.url} has no TLS key and certificate`);
    try {
      return createHttpsServer({ ...binding.tls, ...timeouts, minVersion: 'TLSv1.2' }, tagged) as unknown as Server;
    } catch (error) {
      throw new Error(
        `the TLS key or certificate of ${binding.listener.url} cannot be used (listeners.https.ssl.key.location, ` +
          `listeners.https.ssl.certificate.location, listeners.https.ssl.key.password): ${(error as Error).message}`,
      );
    }
  }
  return createHttpServer(timeouts, tagged);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Serves every listener `app` was built with; resolves to their URLs (port 0 resolved) in
 * listener order. Rejects, having closed what it opened, when any one cannot be served.
 */
export async function listen(app: FastifyInstance): Promise<string[]> {
  const served = servers.get(app);
  if (!served) throw new Error('this server was built without listeners');
  const [first, ...others] = served as [(typeof served)[number], ...typeof served];
  let current = first.binding.listener;
  try {
    await app.listen({ host: current.host, port: current.port });
    for (const { binding, server } of others) {
      current = binding.listener;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: current.host, port: current.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    }
  } catch (error) {
    await app.close().catch(() => undefined);
    throw new Error(`listener ${current.url} cannot be served: ${(error as Error).message}`);
  }
  return served.map(({ binding, server }) => {
    const { port } = server.address() as AddressInfo;
    const host = binding.listener.host.includes(':') ? `[${binding.listener.host}]` : binding.listener.host;
    return `${binding.listener.protocol}://${host}:${port}`;
  });
}
