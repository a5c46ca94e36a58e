#!/usr/bin/env node
/**
 * The `omnibus` command: `start` runs a worker; the other verbs talk to a running worker's
 * REST API, as an operator would with curl.
 */
import { Command } from 'commander';
import { Worker } from '../runtime/worker.ts';
import { loadWorkerConfig } from '../runtime/worker-config.ts';
import { VERSION } from '../version.ts';

const program = new Command('omnibus').description('Omnibus: omnichannel message delivery on a shard-aware bus').version(VERSION);

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

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`omnibus: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
