/**
 * Libraries the benchmark borrows from @omnibus/core's dependencies (lmdb for the raw ceiling,
 * bullmq for the comparison, fastify for the HTTP floor): resolved from that package, as the
 * workspace installs them there and not at the root. Only the few members the benchmark calls
 * are typed here.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const requireFromCore = createRequire(new URL('../../packages/core/package.json', import.meta.url));

async function importFromCore<T>(name: string): Promise<T> {
  return (await import(pathToFileURL(requireFromCore.resolve(name)).href)) as T;
}

export interface LmdbDatabase {
  put(key: string, value: Buffer): Promise<boolean>;
}
export interface LmdbRoot {
  openDB(options: { name: string; encoding: 'binary' }): LmdbDatabase;
  close(): Promise<void>;
}
export const lmdb = () => importFromCore<{ open(options: { path: string; compression: boolean }): LmdbRoot }>('lmdb');

export interface RedisConnection {
  host: string;
  port: number;
  maxRetriesPerRequest: null;
}
export interface BullQueue {
  addBulk(jobs: Array<{ name: string; data: unknown; opts?: Record<string, unknown> }>): Promise<unknown[]>;
  waitUntilReady(): Promise<unknown>;
  obliterate(options?: { force?: boolean }): Promise<void>;
  close(): Promise<void>;
}
export interface BullWorker {
  on(event: 'completed', listener: () => void): void;
  on(event: 'failed', listener: (job: unknown, error: Error) => void): void;
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
}
export interface BullMq {
  Queue: new (name: string, options: { connection: RedisConnection }) => BullQueue;
  Worker: new (
    name: string,
    processor: (job: { data: unknown }) => Promise<unknown>,
    options: { connection: RedisConnection; concurrency: number; autorun?: boolean; removeOnComplete?: { count: number } },
  ) => BullWorker;
}
export const bullmq = () => importFromCore<BullMq>('bullmq');

export interface FastifyApp {
  get(path: string, handler: () => Promise<unknown>): void;
  post(path: string, handler: (request: { body: unknown }, reply: { status(code: number): { send(body: unknown): unknown } }) => Promise<unknown>): void;
  listen(options: { host: string; port: number }): Promise<string>;
}
export const fastify = async () => (await importFromCore<{ default: (options: { bodyLimit: number }) => FastifyApp }>('fastify')).default;
