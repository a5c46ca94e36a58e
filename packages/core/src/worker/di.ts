/**
 * The composition root's container (tsyringe). Every part is registered under an explicit
 * token with a factory: the runtime runs through esbuild (tsx, vitest), which emits no
 * decorator metadata, so nothing may rely on constructor parameter types.
 *
 * One child container per worker, so that several workers in one process (tests) never share
 * a store, a metrics registry or a task. Parts that need I/O to exist (the store, the plugin
 * registry) are registered as values once the worker has opened them.
 */
import 'reflect-metadata';
import type { Logger } from 'pino';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer, type InjectionToken } from 'tsyringe';
import { NETWORKED_STORE_CONSUMER_OPTIONS, type ConsumerOptions } from '../bus/consumer.ts';
import { PeerWake, peerAuthorization } from '../bus/peer-wake.ts';
import { createTaskRunnerFactory } from '../bus/runners.ts';
import { Producer } from '../bus/producer.ts';
import { Scheduler } from '../bus/scheduler.ts';
import { ShardSignals } from '../bus/signals.ts';
import { createLogger } from '../logging.ts';
import { Metrics } from '../metrics.ts';
import { authConfigFrom } from '../rest/auth.ts';
import { createLoggerRegistry, type LoggerRegistry } from '../runtime/logger-registry.ts';
import { ConfigProviders, KnownSecrets } from '../runtime/config-providers.ts';
import { StoreHerder } from '../runtime/herder.ts';
import { Membership, type WorkerIdentity } from '../runtime/membership.ts';
import { ConnectorCatalog, Reconciler } from '../runtime/reconciler.ts';
import type { PluginRegistry, TaskRunnerFactory } from '../runtime/types.ts';
import { heartbeatIntervalMs, type WorkerConfig } from '../runtime/worker-config.ts';
import { CqlStore } from '../store/cql.ts';
import type { CountingStore } from '../store/instrumented.ts';

const token = <T>(name: string) => Symbol(name) as InjectionToken<T>;

export const TOKENS = {
  config: token<WorkerConfig>('WorkerConfig'),
  identity: token<WorkerIdentity>('WorkerIdentity'),
  logger: token<Logger>('Logger'),
  loggers: token<LoggerRegistry>('LoggerRegistry'),
  metrics: token<Metrics>('Metrics'),
  /** Registered by the worker once opened and initialised. */
  store: token<CountingStore>('Store'),
  /** Registered by the worker once discovered. */
  plugins: token<PluginRegistry>('PluginRegistry'),
  configProviders: token<ConfigProviders>('ConfigProviders'),
  /** The secrets and resolved values of the configs this worker runs: no log line carries one. */
  knownSecrets: token<KnownSecrets>('KnownSecrets'),
  signals: token<ShardSignals>('ShardSignals'),
  /** Tells the other workers which shards this one wrote to. */
  peerWake: token<PeerWake>('PeerWake'),
  /** Overrides of the sink consumers' read and poll settings (tests; none by default). */
  consumerOptions: token<Partial<ConsumerOptions>>('ConsumerOptions'),
  producer: token<Producer>('Producer'),
  catalog: token<ConnectorCatalog>('ConnectorCatalog'),
  herder: token<StoreHerder>('Herder'),
  membership: token<Membership>('Membership'),
  taskRunners: token<TaskRunnerFactory>('TaskRunnerFactory'),
  reconciler: token<Reconciler>('Reconciler'),
  /** Releases held messages when due; resolved once the worker listens (it needs the worker id). */
  scheduler: token<Scheduler>('Scheduler'),
} as const;

const single = <T>(make: (c: DependencyContainer) => T) => ({ useFactory: instanceCachingFactory<T>(make) });

export function createWorkerContainer(config: WorkerConfig, parent: DependencyContainer = rootContainer): DependencyContainer {
  const c = parent.createChildContainer();
  const identity: WorkerIdentity = { id: '', url: '' };
  const beatMs = heartbeatIntervalMs(config);
  c.register(TOKENS.config, { useValue: config });
  c.register(TOKENS.identity, { useValue: identity });
  c.register(TOKENS.knownSecrets, single(() => new KnownSecrets()));
  c.register(
    TOKENS.logger,
    single((d) => {
      const known = d.resolve(TOKENS.knownSecrets);
      return createLogger({ level: config['log.level'], scrubLine: (line) => known.scrubLine(line) });
    }),
  );
  c.register(TOKENS.loggers, single((d) => createLoggerRegistry(d.resolve(TOKENS.logger))));
  c.register(TOKENS.metrics, single(() => new Metrics()));
  c.register(
    TOKENS.configProviders,
    single((d) =>
      ConfigProviders.defaults({
        fileAllowedPaths: config['config.providers.file.allowed.paths'],
        envAllowedNames: config['config.providers.env.allowed.names'],
        logger: d.resolve(TOKENS.loggers).get('omnibus.config.providers'),
        knownSecrets: d.resolve(TOKENS.knownSecrets),
      }),
    ),
  );
  c.register(TOKENS.signals, single(() => new ShardSignals()));
  // Asked of the store itself (the instrumented proxy keeps its class), not of the URL again.
  c.register(
    TOKENS.consumerOptions,
    single((d) => (d.resolve(TOKENS.store) instanceof CqlStore ? NETWORKED_STORE_CONSUMER_OPTIONS : {})),
  );
  c.register(
    TOKENS.peerWake,
    single((d) => {
      const membership = d.resolve(TOKENS.membership);
      const authorization = peerAuthorization(authConfigFrom(config));
      return new PeerWake({
        signals: d.resolve(TOKENS.signals),
        members: () => membership.members,
        selfId: () => identity.id,
        ...(authorization ? { authorization } : {}),
        logger: d.resolve(TOKENS.loggers).get('omnibus.wake'),
        metrics: d.resolve(TOKENS.metrics),
      });
    }),
  );
  c.register(TOKENS.catalog, single((d) => new ConnectorCatalog(d.resolve(TOKENS.plugins))));

  c.register(
    TOKENS.producer,
    single((d) => {
      const catalog = d.resolve(TOKENS.catalog);
      return new Producer({
        store: d.resolve(TOKENS.store),
        signals: d.resolve(TOKENS.signals),
        metrics: d.resolve(TOKENS.metrics),
        consumerSchemas: (topic) => catalog.sinkSchemas(topic),
      });
    }),
  );

  c.register(
    TOKENS.herder,
    single(
      (d) =>
        new StoreHerder({
          store: d.resolve(TOKENS.store),
          plugins: d.resolve(TOKENS.plugins),
          providers: d.resolve(TOKENS.configProviders),
          workerId: () => identity.id,
          logger: d.resolve(TOKENS.loggers).get('omnibus.herder'),
          producer: d.resolve(TOKENS.producer),
          // Resolved on the first write, when the reconciler exists: the local loop reacts at once.
          onChange: () => d.resolve(TOKENS.reconciler).kick(),
        }),
    ),
  );

  c.register(
    TOKENS.membership,
    single(
      (d) =>
        new Membership(
          d.resolve(TOKENS.store),
          { identity, heartbeatIntervalMs: beatMs, ttlMs: config['lease.ttl.ms'], groups: config['worker.groups'] },
          d.resolve(TOKENS.loggers).get('omnibus.membership'),
        ),
    ),
  );

  c.register(
    TOKENS.taskRunners,
    single((d) => {
      // The bus's runners take the worker id as a value: build them on first use, once it is known.
      let factory: TaskRunnerFactory | undefined;
      const runners = (): TaskRunnerFactory => {
        if (!identity.id) throw new Error('task runners are available once the worker listens');
        factory ??= createTaskRunnerFactory({
          store: d.resolve(TOKENS.store),
          producer: d.resolve(TOKENS.producer),
          metrics: d.resolve(TOKENS.metrics),
          logger: d.resolve(TOKENS.loggers).get('omnibus.tasks'),
          workerId: identity.id,
          leaseTtlMs: config['lease.ttl.ms'],
          heartbeatMs: beatMs,
          trackActiveTopics: config['topic.tracking.enable'],
          signals: d.resolve(TOKENS.signals),
          consumer: d.resolve(TOKENS.consumerOptions),
          reportDeliveries: (connector, updates, topics, eventsTopic) => d.resolve(TOKENS.herder).applyDeliveryUpdates(connector, updates, topics, eventsTopic),
        });
        return factory;
      };
      const lazy: TaskRunnerFactory = { sink: (spec) => runners().sink(spec), source: (spec) => runners().source(spec) };
      return lazy;
    }),
  );

  c.register(
    TOKENS.reconciler,
    single(
      (d) =>
        new Reconciler({
          store: d.resolve(TOKENS.store),
          plugins: d.resolve(TOKENS.plugins),
          runners: d.resolve(TOKENS.taskRunners),
          providers: d.resolve(TOKENS.configProviders),
          membership: d.resolve(TOKENS.membership),
          logger: d.resolve(TOKENS.loggers).get('omnibus.reconciler'),
          metrics: d.resolve(TOKENS.metrics),
          catalog: d.resolve(TOKENS.catalog),
          leaseTtlMs: config['lease.ttl.ms'],
          intervalMs: beatMs,
        }),
    ),
  );
  c.register(
    TOKENS.scheduler,
    single((d) => {
      if (!identity.id) throw new Error('the scheduler is available once the worker listens');
      return new Scheduler({
        store: d.resolve(TOKENS.store),
        producer: d.resolve(TOKENS.producer),
        signals: d.resolve(TOKENS.signals),
        workerId: identity.id,
        leaseTtlMs: config['lease.ttl.ms'],
        logger: d.resolve(TOKENS.loggers).get('omnibus.scheduler'),
        metrics: d.resolve(TOKENS.metrics),
      });
    }),
  );
  return c;
}

