/**
 * A worker's REST surface for the route tests: a real LMDB store in a temp dir, the real
 * herder and plugin registry (with examples/ on plugin.path, so HelloSink is installed), and
 * the route plugins composed as worker/worker.ts composes them (without the reconciler, so
 * statuses stay as the tests write them). Log lines go to a file through the
 * runtime's own logger (same redaction), so tests can read everything that was logged.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { createLogger } from '../../src/logging.ts';
import { Metrics } from '../../src/metrics.ts';
import { authPlugin, type AuthConfig } from '../../src/rest/auth.ts';
import { backlogRoutes } from '../../src/rest/backlog.ts';
import { browseRoutes } from '../../src/rest/browse.ts';
import { Producer } from '../../src/bus/producer.ts';
import { controlPlaneRoutes } from '../../src/rest/control-plane.ts';
import { dataPlaneRoutes } from '../../src/rest/data-plane.ts';
import { templateRoutes } from '../../src/rest/templates.ts';
import { suppressionRoutes } from '../../src/rest/suppressions.ts';
import { Templates } from '../../src/transforms/templates/service.ts';
import { hooksRoutes, type HooksRoutesDeps } from '../../src/rest/hooks.ts';
import type { RequestGuardOptions } from '../../src/rest/request-guards.ts';
import { loggersRoutes } from '../../src/rest/loggers.ts';
import { createLoggerRegistry, type LoggerRegistry } from '../../src/runtime/logger-registry.ts';
import { metricsRoutes } from '../../src/rest/metrics-route.ts';
import { openApiRoutes } from '../../src/rest/openapi.ts';
import { buildServer, clusterIdOf, HEALTHY, rootRoute } from '../../src/rest/server.ts';
import { ConfigProviders, KnownSecrets } from '../../src/runtime/config-providers.ts';
import { StoreHerder } from '../../src/runtime/herder.ts';
import { createPluginRegistry, type DiscoveredPlugins } from '../../src/runtime/plugins.ts';
import { LmdbStore } from '../../src/store/lmdb.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const examplesDir = join(repoRoot, 'examples');
/** The distribution package: its dependencies are the first-party connectors a worker of the `omnibus` command has. */
export const distributionDir = join(repoRoot, 'packages/omnibus');

export interface TestWorker {
  app: FastifyInstance;
  store: LmdbStore;
  herder: StoreHerder;
  plugins: DiscoveredPlugins;
  loggers: LoggerRegistry;
  metrics: Metrics;
  logger: Logger;
  dir: string;
  /** Everything logged so far (flushed first). */
  logText(): Promise<string>;
  close(): Promise<void>;
}

export interface TestWorkerOptions {
  auth?: AuthConfig;
  bodyLimit?: number;
  /** The environment `${env:}` placeholders see; every name in it is allowed. */
  env?: NodeJS.ProcessEnv;
  /** `config.providers.file.allowed.paths` (none by default). */
  fileAllowedPaths?: string[];
  /** Extra route plugins. */
  routes?: FastifyPluginAsync[];
  /** Plugins registered before all others (e.g. an onRoute collector). */
  before?: FastifyPluginAsync[];
  /** Another plugin registry than examples/ on plugin.path. */
  plugins?: DiscoveredPlugins;
  /** Host, Origin and CORS settings (none allowed beyond the defaults when absent). */
  guards?: RequestGuardOptions;
  /** topic.tracking.enable and topic.tracking.allow.reset (both true when absent). */
  topicTracking?: { enabled: boolean; allowReset: boolean };
  /** /hooks body limit and timeout. */
  hooks?: Pick<HooksRoutesDeps, 'bodyLimit' | 'timeoutMs'>;
}

let pluginsOnce: Promise<DiscoveredPlugins> | undefined;

/** Plugin discovery imports modules; once per test file is enough. */
export function testPlugins(): Promise<DiscoveredPlugins> {
  pluginsOnce ??= createPluginRegistry({ pluginPath: [examplesDir], distributionDirs: [distributionDir], logger: createLogger({ level: 'silent' }) });
  return pluginsOnce;
}

export async function startTestWorker(options: TestWorkerOptions = {}): Promise<TestWorker> {
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-rest-'));
  const logFile = join(dir, 'worker.log');
  const knownSecrets = new KnownSecrets();
  const logger = createLogger({ level: 'debug', destination: logFile, sync: true, scrubLine: (line) => knownSecrets.scrubLine(line) });
  const loggers = createLoggerRegistry(logger);
  const store = new LmdbStore(join(dir, 'data'), { sweepIntervalMs: 0 });
  await store.init();
  const plugins = options.plugins ?? (await testPlugins());
  const metrics = new Metrics({ defaultMetrics: false });
  const herder = new StoreHerder({
    store,
    plugins,
    providers: ConfigProviders.defaults({
      env: options.env ?? {},
      envAllowedNames: Object.keys(options.env ?? {}),
      fileAllowedPaths: options.fileAllowedPaths ?? [],
      // The herder's logger: a logger of its own would change the list /admin/loggers answers.
      logger: loggers.get('omnibus.herder'),
      knownSecrets,
    }),
    workerId: () => '127.0.0.1:8083',
    logger: loggers.get('omnibus.herder'),
  });
  const restLogger = loggers.get('omnibus.rest');
  const templates = new Templates(store);
  const app = await buildServer({
    logger: restLogger,
    bodyLimit: options.bodyLimit,
    ...(options.guards ? { guards: options.guards } : {}),
    routes: [
      ...(options.before ?? []),
      authPlugin(options.auth ?? { bearerTokens: [], basicUsers: [] }),
      rootRoute(clusterIdOf(store.description)),
      async (root) => {
        root.get('/health', async () => HEALTHY);
      },
      controlPlaneRoutes({ herder, plugins, logger: restLogger, ...(options.topicTracking ? { topicTracking: options.topicTracking } : {}) }),
      dataPlaneRoutes({ store, producer: new Producer({ store, metrics }), templates }),
      templateRoutes({ templates }),
      suppressionRoutes({ store }),
      hooksRoutes({ herder, logger: loggers.get('omnibus.hooks'), ...options.hooks }),
      metricsRoutes({ metrics }),
      loggersRoutes({ loggers }),
      openApiRoutes(),
      browseRoutes({ store }),
      // A worker alone: no peer to ask for its part of the backlog.
      backlogRoutes({ store, local: () => metrics.backlog(), selfId: () => '127.0.0.1:8083', members: () => [] }),
      ...(options.routes ?? []),
    ],
  });
  await app.ready();

  return {
    app,
    store,
    herder,
    plugins,
    loggers,
    metrics,
    logger,
    dir,
    async logText() {
      await new Promise<void>((done) => logger.flush(() => done()));
      return readFileSync(logFile, 'utf8');
    },
    async close() {
      await app.close();
      await store.close();
      await new Promise<void>((done) => logger.flush(() => done()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A HelloSink config, the connector every route test can create (it ships in examples/). */
export function helloConfig(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'connector.class': 'HelloSink', topics: 'people', name, ...extra };
}
