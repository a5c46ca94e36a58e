/**
 * A worker: one process of the Omnibus cluster (several may share a process in tests). It
 * opens the store, serves the REST API, joins the cluster through the store, and runs the
 * connector tasks the rendezvous plan gives it. Workers on one store form one Connect
 * cluster; one worker on LMDB is standalone mode.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import type { PeerWake } from '../bus/peer-wake.ts';
import { createWorkerContainer, TOKENS } from '../di.ts';
import { authConfigFrom, authPlugin } from '../rest/auth.ts';
import { browseRoutes } from '../rest/browse.ts';
import { controlPlaneRoutes } from '../rest/control-plane.ts';
import { dataPlaneRoutes } from '../rest/data-plane.ts';
import { hooksRoutes } from '../rest/hooks.ts';
import { loggersRoutes } from '../rest/loggers.ts';
import { metricsRoutes } from '../rest/metrics-route.ts';
import { openApiRoutes } from '../rest/openapi.ts';
import { buildServer, HEALTHY, STARTING, type WorkerHealth } from '../rest/server.ts';
import { instrumentStore, type CountingStore } from '../store/instrumented.ts';
import { LmdbStore } from '../store/lmdb.ts';
import { openStore } from '../store/open.ts';
import { VERSION } from '../version.ts';
import type { StoreHerder } from './herder.ts';
import { createPluginRegistry } from './plugins.ts';
import type { Reconciler } from './reconciler.ts';
import type { WorkerConfig } from './worker-config.ts';

export class Worker {
  readonly logger: Logger;
  readonly container: DependencyContainer;
  private server: FastifyInstance | undefined;
  private peerWake: PeerWake | undefined;
  private health: WorkerHealth = STARTING;
  private state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new';
  /** The URL this worker listens on once started (port 0 resolved). */
  url = '';

  constructor(readonly config: WorkerConfig) {
    this.container = createWorkerContainer(config);
    this.logger = this.container.resolve(TOKENS.logger);
  }

  /** Kafka's worker_id: the advertised host:port. */
  get workerId(): string {
    return new URL(this.url).host;
  }

  get herder(): StoreHerder {
    return this.container.resolve(TOKENS.herder);
  }

  /** The instrumented store: `queries` counts what this worker asked of it. */
  get store(): CountingStore {
    return this.container.resolve(TOKENS.store);
  }

  get reconciler(): Reconciler {
    return this.container.resolve(TOKENS.reconciler);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`a worker starts once (this one is ${this.state})`);
    this.state = 'starting';
    try {
      await this.open();
    } catch (error) {
      await this.stop().catch(() => undefined);
      throw error;
    }
    this.state = 'started';
  }

  private async open(): Promise<void> {
    const c = this.container;
    const metrics = c.resolve(TOKENS.metrics);
    const loggers = c.resolve(TOKENS.loggers);
    const opened = openStore(this.config.store, { logger: loggers.get('omnibus.store') });
    if (opened instanceof LmdbStore) metrics.observeLmdb(() => opened.writeStats());
    const store = instrumentStore(opened, metrics);
    c.register(TOKENS.store, { useValue: store });
    await store.init();
    c.register(TOKENS.plugins, {
      useValue: await createPluginRegistry({ pluginPath: this.config['plugin.path'], logger: loggers.get('omnibus.plugins') }),
    });
    const plugins = c.resolve(TOKENS.plugins);
    const herder = c.resolve(TOKENS.herder);

    const listener = new URL(this.config.listeners[0] ?? 'http://127.0.0.1:8083');
    this.server = await buildServer({
      logger: this.logger,
      bodyLimit: this.config['rest.body.limit.bytes'],
      routes: [
        authPlugin(authConfigFrom(this.config)),
        async (app) => {
          app.get('/', async () => ({ version: VERSION, commit: 'omnibus', kafka_cluster_id: this.clusterId() }));
          app.get('/health', async (_request, reply) =>
            reply.status(this.health.status === 'healthy' ? 200 : this.health.status === 'starting' ? 503 : 500).send(this.health),
          );
        },
        openApiRoutes(),
        controlPlaneRoutes({ herder, plugins, logger: loggers.get('omnibus.rest') }),
        dataPlaneRoutes({ store, producer: c.resolve(TOKENS.producer) }),
        hooksRoutes({ herder, logger: loggers.get('omnibus.hooks') }),
        metricsRoutes({ metrics }),
        loggersRoutes({ loggers }),
        browseRoutes({ store }),
      ],
    });
    const address = await this.server.listen({ host: listener.hostname, port: Number(listener.port || 8083) });
    this.url = this.config['rest.advertised.url'] ?? address;
    const identity = c.resolve(TOKENS.identity);
    identity.url = this.url;
    identity.id = this.workerId;

    // Join the cluster, then run the first reconcile: healthy means "running what is mine".
    await c.resolve(TOKENS.membership).start();
    // Produces here wake the consumers on the other workers (they poll only as a safety net).
    this.peerWake = c.resolve(TOKENS.peerWake);
    this.peerWake.start();
    const reconciler = this.reconciler;
    reconciler.start();
    await reconciler.ready;
    this.health = HEALTHY;
    this.logger.info({ url: this.url, workerId: identity.id, store: store.description, version: VERSION }, 'worker started');
  }

  /**
   * Leaves the cluster cleanly: stops serving, stops the local tasks (their statuses become
   * UNASSIGNED and their leases are released, so others take them at once), removes the
   * membership, closes the store.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const wasStarted = this.state === 'started' || this.state === 'starting';
    this.state = 'stopping';
    this.health = STARTING;
    const c = this.container;
    await this.server?.close().catch((error: unknown) => this.logger.warn({ err: error }, 'closing the REST server failed'));
    if (wasStarted && c.isRegistered(TOKENS.store) && this.url) {
      await this.reconciler.stop().catch((error: unknown) => this.logger.warn({ err: error }, 'stopping tasks failed'));
      await c
        .resolve(TOKENS.membership)
        .leave()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'leaving the cluster failed'));
    }
    this.peerWake?.stop();
    if (c.isRegistered(TOKENS.store)) await c.resolve(TOKENS.store).close();
    this.state = 'stopped';
    this.logger.info('worker stopped');
    this.logger.flush();
  }

  /** The store's identity without credentials or options: what every worker of this cluster shares. */
  private clusterId(): string {
    return this.config.store.replace(/[?].*$/, '').replace(/\/\/[^/@]*@/, '//');
  }
}
