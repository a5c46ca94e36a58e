/**
 * A real worker on a fresh LMDB directory that finds the first-party connectors as the
 * `omnibus` command's worker does (the distribution package's dependencies), with fast
 * heartbeats, and a JSON client of its REST API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { Worker } from '../../src/worker/worker.ts';
import { distributionDir } from '../rest/harness.ts';

export type Body = Record<string, unknown>;

export interface DistributionWorker {
  worker: Worker;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Body }>;
  close(): Promise<void>;
}

export async function startDistributionWorker(prefix: string): Promise<DistributionWorker> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const worker = new Worker(
    workerConfigSpec.parse({
      store: `lmdb:${join(root, 'data')}`,
      listeners: ['http://127.0.0.1:0'],
      'log.level': process.env.OMNIBUS_TEST_LOG_LEVEL ?? 'silent',
      'heartbeat.interval.ms': 200,
      'lease.ttl.ms': 2000,
    }),
    { distributionDirs: [distributionDir] },
  );
  await worker.start();
  return {
    worker,
    async call(method, path, body) {
      const response = await fetch(`${worker.url}${path}`, {
        method,
        ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as Body) : {} };
    },
    async close() {
      await worker.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
