/**
 * `omnibus start`: runs a worker until SIGINT/SIGTERM. Like Kafka's connect-standalone,
 * `--connector conn.json …` creates or updates those connectors once the worker is up; their
 * configs persist in the store, so a restart without the flag runs them too.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { parseProperties } from '../runtime/config-providers.ts';
import { Worker } from '../worker/worker.ts';
import { loadWorkerConfig } from '../runtime/worker-config.ts';

interface StartOptions {
  store?: string;
  listeners?: string;
  config?: string;
  pluginPath?: string;
  connector?: string[];
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('start a worker')
    .option('--store <url>', 'lmdb:<dir> or cql://host:9042/keyspace?dc=<dc>')
    .option('--listeners <urls>', 'REST listeners, comma-separated (e.g. http://127.0.0.1:8083)')
    .option('--config <file>', 'worker config file (JSON, dotted keys)')
    .option('--plugin-path <dirs>', 'directories of connector packages, comma-separated')
    .option('--connector <files...>', 'connector configs to create or update at start (JSON {name, config} or a flat map with name; or .properties)')
    .action(async (options: StartOptions) => {
      const config = loadWorkerConfig(
        { store: options.store, listeners: options.listeners, 'plugin.path': options.pluginPath },
        { file: options.config },
      );
      // Read every connector file before starting: a typo should not leave a half-started worker.
      const connectors = (options.connector ?? []).map(readConnectorFile);
      const worker = new Worker(config);
      const shutdown = async (signal: string) => {
        worker.logger.info({ signal }, 'shutting down');
        await worker.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      await worker.start();
      try {
        for (const { file, name, config: connectorConfig } of connectors) {
          const { created } = await worker.herder.putConnectorConfig(name, connectorConfig);
          worker.logger.info({ connector: name, file }, created ? 'connector created from file' : 'connector updated from file');
        }
      } catch (error) {
        await worker.stop();
        throw error;
      }
    });
}

/** A connector file: `{name, config}` (POST /connectors' body), a flat config map with `name`, or Java properties. */
export function readConnectorFile(file: string): { file: string; name: string; config: Record<string, string> } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`connector file ${file} could not be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let body: Record<string, unknown>;
  if (extname(file).toLowerCase() === '.properties') {
    body = Object.fromEntries(parseProperties(text));
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new Error(`connector file ${file} is not valid JSON (${(error as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`connector file ${file} must hold a JSON object`);
    body = parsed as Record<string, unknown>;
  }
  const nested = body.config;
  const config = (typeof nested === 'object' && nested !== null && !Array.isArray(nested) ? nested : body) as Record<string, unknown>;
  const name = typeof body.name === 'string' ? body.name.trim() : typeof config.name === 'string' ? config.name.trim() : '';
  if (!name) throw new Error(`connector file ${file} names no connector (give "name")`);
  const strings: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    // Files are written by hand: numbers and booleans are accepted and stored as Kafka's strings.
    if (typeof value === 'string') strings[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') strings[key] = String(value);
    else throw new Error(`connector file ${file}: the value of "${key}" must be a string`);
  }
  return { file, name, config: strings };
}
