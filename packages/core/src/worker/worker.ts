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
import type { Scheduler } from '../bus/scheduler.ts';
import { createWorkerContainer, TOKENS } from './di.ts';
import { authConfigFrom, authEnabled, authPlugin } from '../rest/auth.ts';
import { backlogRoutes } from '../rest/backlog.ts';
import { browseRoutes } from '../rest/browse.ts';
import { peerAuthorization } from '../bus/peer-wake.ts';
import { controlPlaneRoutes } from '../rest/control-plane.ts';
import { dataPlaneRoutes } from '../rest/data-plane.ts';
import { templateRoutes } from '../rest/templates.ts';
import { suppressionRoutes } from '../rest/suppressions.ts';
import { Templates } from '../transforms/templates/service.ts';
import { hooksRoutes } from '../rest/hooks.ts';
import { listenerBindings } from '../rest/listeners.ts';
import { corsSettings } from '../rest/request-guards.ts';
import { loggersRoutes } from '../rest/loggers.ts';
import { metricsRoutes } from '../rest/metrics-route.ts';
import { openApiRoutes } from '../rest/openapi.ts';
import { buildServer, clusterIdOf, HEALTHY, listen, rootRoute, STARTING, type WorkerHealth } from '../rest/server.ts';
import { instrumentStore, type CountingStore } from '../store/instrumented.ts';
import { LmdbStore } from '../store/lmdb.ts';
import { openStore } from '../store/open.ts';
import { VERSION } from '../version.ts';
import type { StoreHerder } from '../runtime/herder.ts';
import { createPluginRegistry } from '../runtime/plugins.ts';
import type { Reconciler } from '../runtime/reconciler.ts';
import type { WorkerConfig } from '../runtime/worker-config.ts';

export interface WorkerOptions {
  /**
   * Distribution packages whose dependencies hold bundled connectors (the `omnibus` command's
   * package depends on the first-party ones); core alone has only its built-ins.
   */
  distributionDirs?: string[];
}

export class Worker {
  readonly logger: Logger;
  readonly container: DependencyContainer;
  private server: FastifyInstance | undefined;
  private peerWake: PeerWake | undefined;
  private scheduler: Scheduler | undefined;
  private health: WorkerHealth = STARTING;
  private state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new';
  /** The URL this worker is reached at once started: rest.advertised.url, else its first listener's (port 0 resolved). */
  url = '';
  /** Every listener's URL once started, in the order of `listeners` (port 0 resolved). */
  urls: string[] = [];

  constructor(
    readonly config: WorkerConfig,
    private readonly options: WorkerOptions = {},
  ) {
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
    // A careless listener setting stops the worker before it touches the store.
    const auth = authConfigFrom(this.config);
    const listeners = listenerBindings({
      listeners: this.config.listeners,
      'rest.auth.none': this.config['rest.auth.none'],
      'listeners.https.ssl.key.location': this.config['listeners.https.ssl.key.location'],
      'listeners.https.ssl.certificate.location': this.config['listeners.https.ssl.certificate.location'],
      keyPassword: this.config['listeners.https.ssl.key.password'].value(),
      authEnabled: authEnabled(auth),
    });
    const metrics = c.resolve(TOKENS.metrics);
    const loggers = c.resolve(TOKENS.loggers);
    const opened = openStore(this.config.store, { logger: loggers.get('omnibus.store') });
    if (opened instanceof LmdbStore) metrics.observeLmdb(() => opened.writeStats());
    const store = instrumentStore(opened, metrics);
    c.register(TOKENS.store, { useValue: store });
    await store.init();
    c.register(TOKENS.plugins, {
      useValue: await createPluginRegistry({
        pluginPath: this.config['plugin.path'],
        distributionDirs: this.options.distributionDirs,
        logger: loggers.get('omnibus.plugins'),
      }),
    });
    const plugins = c.resolve(TOKENS.plugins);
    const herder = c.resolve(TOKENS.herder);
    const templates = new Templates(store);

    const advertised = this.config['rest.advertised.url'];
    // What this worker shows its peers when it asks them for their part of a view.
    const peerCredential = peerAuthorization(auth);
    this.server = await buildServer({
      logger: this.logger,
      bodyLimit: this.config['rest.body.limit.bytes'],
      listeners,
      guards: {
        allowedHosts: this.config['rest.allowed.hosts'],
        ...corsSettings(this.config),
        advertisedHost: advertised === undefined ? undefined : advertisedHost(advertised),
      },
      requestTimeoutMs: this.config['rest.request.timeout.ms'],
      jsonMaxDepth: this.config['rest.json.max.depth'],
      uiSearchFrom: this.options.distributionDirs ?? [],
      routes: [
        authPlugin(auth),
        rootRoute(clusterIdOf(opened.description)),
        async (app) => {
          app.get('/health', async (_request, reply) =>
            reply.status(this.health.status === 'healthy' ? 200 : this.health.status === 'starting' ? 503 : 500).send(this.health),
          );
        },
        openApiRoutes(),
        controlPlaneRoutes({
          herder,
          plugins,
          logger: loggers.get('omnibus.rest'),
          topicTracking: { enabled: this.config['topic.tracking.enable'], allowReset: this.config['topic.tracking.allow.reset'] },
          providers: (connector) => metrics.providersOf(connector),
        }),
        dataPlaneRoutes({ store, producer: c.resolve(TOKENS.producer), templates }),
        templateRoutes({ templates }),
        suppressionRoutes({ store }),
        hooksRoutes({
          herder,
          logger: loggers.get('omnibus.hooks'),
          bodyLimit: this.config['rest.hooks.body.limit.bytes'],
          timeoutMs: this.config['rest.hooks.timeout.ms'],
          jsonMaxDepth: this.config['rest.json.max.depth'],
        }),
        metricsRoutes({ metrics }),
        loggersRoutes({ loggers }),
        browseRoutes({ store }),
        backlogRoutes({
          store,
          local: () => metrics.backlog(),
          selfId: () => c.resolve(TOKENS.identity).id,
          members: () => c.resolve(TOKENS.membership).members,
          ...(peerCredential ? { authorization: peerCredential } : {}),
        }),
      ],
    });
    this.urls = await listen(this.server);
    this.url = advertised ?? (this.urls[0] as string);
    const identity = c.resolve(TOKENS.identity);
    identity.url = this.url;
    identity.id = this.workerId;

    // Join the cluster, then run the first reconcile: healthy means "running what is mine".
    await c.resolve(TOKENS.membership).start();
    // Produces here wake the consumers on the other workers (they poll only as a safety net).
    this.peerWake = c.resolve(TOKENS.peerWake);
    this.peerWake.start();
    // Held messages (send_at, quiet hours) are released by one worker at a time: whichever holds the lease.
    this.scheduler = c.resolve(TOKENS.scheduler);
    this.scheduler.start();
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
    await this.scheduler?.stop().catch((error: unknown) => this.logger.warn({ err: error }, 'stopping the scheduler failed'));
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
}

function advertisedHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    throw new Error(`rest.advertised.url "${url}" is not a URL`);
  }
}
