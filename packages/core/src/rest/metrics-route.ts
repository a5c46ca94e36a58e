/**
 * `GET /metrics`: the worker's Prometheus registry in the text exposition format, plus the
 * REST layer's own figures (requests by route and status, and their latency; each answer is
 * also a debug log line). Protected by
 * control-plane auth when auth is configured (it names every connector).
 *
 * The plugin applies to its parent (Fastify's `skip-override`), so that its response hook
 * counts the requests of every route, whichever plugin declared them.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Metrics } from '../metrics.ts';

export interface MetricsRoutesDeps {
  metrics: Pick<Metrics, 'registry'>;
}

/** Label for requests that matched no route: raw paths would make one series per probe. */
const UNMATCHED = 'unmatched';

function requestMetrics(registry: Registry) {
  const requests =
    (registry.getSingleMetric('omnibus_rest_requests_total') as Counter<'method' | 'route' | 'status'> | undefined) ??
    new Counter({
      name: 'omnibus_rest_requests_total',
      help: 'REST requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    });
  const latency =
    (registry.getSingleMetric('omnibus_rest_request_duration_seconds') as Histogram<'method' | 'route'> | undefined) ??
    new Histogram({
      name: 'omnibus_rest_request_duration_seconds',
      help: 'Time to answer a REST request, by method and route pattern',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    });
  return { requests, latency };
}

export function metricsRoutes(deps: MetricsRoutesDeps): FastifyPluginAsync {
  const { registry } = deps.metrics;
  const plugin: FastifyPluginAsync = async (app) => {
    const { requests, latency } = requestMetrics(registry);
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? UNMATCHED;
      requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
      // The route pattern, never the URL: query strings of webhooks may carry tokens.
      request.log.debug({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request answered');
    });

    app.get('/metrics', async (_request, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    });
  };
  Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'omnibus-metrics' });
  return plugin;
}
