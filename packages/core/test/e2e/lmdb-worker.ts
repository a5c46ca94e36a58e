/** An in-process worker on a fresh LMDB directory with the first-party connectors, and a JSON caller of its REST API. */
import { join } from 'node:path';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { Worker } from '../../src/worker/worker.ts';
import { distributionDir } from '../rest/harness.ts';

export type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: Record<string, unknown> }>;

/** Fast beats and short leases, so that the runtime's periodic work fits in a test. */
export async function startLmdbWorker(root: string): Promise<Worker> {
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
  return worker;
}

export function callerOf(worker: Worker): Call {
  return async (method, path, body) => {
    const response = await fetch(`${worker.url}${path}`, {
      method,
      ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}
