/**
 * `omnibus start`: runs a worker until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { Worker } from '../runtime/worker.ts';
import { loadWorkerConfig } from '../runtime/worker-config.ts';

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('start a worker')
    .option('--store <url>', 'lmdb:<dir> or cql://host:9042/keyspace?dc=<dc>')
    .option('--listeners <urls>', 'REST listeners, comma-separated (e.g. http://127.0.0.1:8083)')
    .option('--config <file>', 'worker config file (JSON, dotted keys)')
    .option('--plugin-path <dirs>', 'directories of connector packages, comma-separated')
    .action(async (options: { store?: string; listeners?: string; config?: string; pluginPath?: string }) => {
      const config = loadWorkerConfig(
        { store: options.store, listeners: options.listeners, 'plugin.path': options.pluginPath },
        { file: options.config },
      );
      const worker = new Worker(config);
      const shutdown = async (signal: string) => {
        worker.logger.info({ signal }, 'shutting down');
        await worker.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      await worker.start();
    });
}
