/**
 * Kafka Connect's `/admin/loggers` API (KIP-495) over the worker's LoggerRegistry
 * (runtime/logger-registry.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { coreError } from '../errors.ts';
import type { LoggerRegistry } from '../runtime/logger-registry.ts';

export interface LoggersRoutesDeps {
  loggers: LoggerRegistry;
}

/** `GET /admin/loggers`, `GET|PUT /admin/loggers/{logger}` with Kafka's bodies and quirks. */
export function loggersRoutes(deps: LoggersRoutesDeps): FastifyPluginAsync {
  const { loggers } = deps;
  return async (app) => {
    app.get('/admin/loggers', async () => loggers.levels());

    app.get<{ Params: { logger: string } }>('/admin/loggers/:logger', async (request) => {
      const level = loggers.describe(request.params.logger);
      if (!level) throw coreError('OMNI_ERR_LOGGER_NOT_FOUND', { logger: request.params.logger });
      return level;
    });

    app.put<{ Params: { logger: string }; Querystring: Record<string, unknown>; Body: unknown }>(
      '/admin/loggers/:logger',
      async (request, reply) => {
        const body = request.body;
        const level = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { level?: unknown }).level : undefined;
        if (level === undefined || level === null) {
          throw coreError('OMNI_ERR_LOGGER_LEVEL_MISSING', {});
        }
        if (typeof level !== 'string') throw coreError('OMNI_ERR_LOGGER_LEVEL_INVALID', { level: JSON.stringify(level) });
        const scope = typeof request.query.scope === 'string' ? request.query.scope.toLowerCase() : 'worker';
        if (scope !== 'worker' && scope !== 'cluster') {
          // Kafka's documented behaviour: an unknown scope is logged and treated as `worker`.
          request.log.warn({ scope: request.query.scope }, 'unknown logger scope; applying to this worker only');
        }
        const affected = loggers.setLevel(request.params.logger, level);
        loggers.root.info({ logger: request.params.logger, level: level.toUpperCase(), scope }, 'log level changed');
        // Cluster scope: applied on this worker; other workers keep their own levels (they share no log config).
        if (scope === 'cluster') return reply.status(204).send();
        return affected;
      },
    );
  };
}
