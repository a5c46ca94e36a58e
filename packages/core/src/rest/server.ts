/**
 * The worker's HTTP server: one Fastify instance serving the control plane (Kafka Connect's
 * REST API), the data plane, metrics and provider webhooks. Every route module registers
 * itself as a plugin; errors of every route go through the one mapping in `errors.ts`.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
} from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { toHttpError } from '../errors.ts';
import { uiRoutes } from './ui.ts';

export interface ServerOptions {
  logger: PinoLogger;
  /** Largest accepted request body, bytes (413 beyond it). */
  bodyLimit?: number;
  routes: FastifyPluginAsync[];
}

export type WorkerHealth = { status: 'starting' | 'healthy' | 'unhealthy'; message: string };

export const HEALTHY: WorkerHealth = {
  status: 'healthy',
  message: 'Worker has completed startup and is ready to handle requests.',
};
export const STARTING: WorkerHealth = {
  status: 'starting',
  message: 'Worker is still starting up. Please try again later.',
};

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
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
    const { status, body } = toHttpError(error);
    if (status >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error_code: 404, message: `HTTP 404 Not Found: ${request.method} ${request.url.split('?')[0]}` });
  });

  for (const route of options.routes) await app.register(route);
  await app.register(uiRoutes({ logger: options.logger }));
  return app;
}
