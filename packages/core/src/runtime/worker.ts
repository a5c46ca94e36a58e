/**
 * A worker: one process of the Omnibus cluster. It opens the store, serves the REST API,
 * and (through the herder and the bus) runs the connector tasks assigned to it.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createLogger } from '../logging.ts';
import { buildServer, HEALTHY, STARTING, type WorkerHealth } from '../rest/server.ts';
import { VERSION } from '../version.ts';
import type { WorkerConfig } from './worker-config.ts';

export class Worker {
  readonly logger: Logger;
  private server: FastifyInstance | undefined;
  private health: WorkerHealth = STARTING;
  /** The URL this worker listens on once started (port 0 resolved). */
  url = '';

  constructor(readonly config: WorkerConfig) {
    this.logger = createLogger({ level: config['log.level'] });
  }

  /** Kafka's worker_id: the advertised host:port. */
  get workerId(): string {
    return new URL(this.url).host;
  }

  async start(): Promise<void> {
    const listener = new URL(this.config.listeners[0] ?? 'http://127.0.0.1:8083');
    this.server = await buildServer({
      logger: this.logger,
      bodyLimit: this.config['rest.body.limit.bytes'],
      routes: [
        async (app) => {
          app.get('/', async () => ({ version: VERSION, commit: 'omnibus', kafka_cluster_id: this.clusterId() }));
          app.get('/health', async (_request, reply) =>
            reply.status(this.health.status === 'healthy' ? 200 : this.health.status === 'starting' ? 503 : 500).send(this.health),
          );
        },
      ],
    });
    const address = await this.server.listen({ host: listener.hostname, port: Number(listener.port || 8083) });
    this.url = this.config['rest.advertised.url'] ?? address;
    this.health = HEALTHY;
    this.logger.info({ url: this.url, store: this.config.store, version: VERSION }, 'worker started');
  }

  async stop(): Promise<void> {
    this.health = STARTING;
    await this.server?.close();
    this.logger.info('worker stopped');
    this.logger.flush();
  }

  private clusterId(): string {
    return this.config.store.replace(/[?].*$/, '');
  }
}
