/**
 * A real worker on a fresh LMDB directory of its own (lmdb-worker.ts), with a JSON client of
 * its REST API, and a close that stops it and removes the directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from '../../src/worker/worker.ts';
import { callerOf, startLmdbWorker, type Call } from './lmdb-worker.ts';

export type Body = Record<string, unknown>;

export interface DistributionWorker {
  worker: Worker;
  call: Call;
  close(): Promise<void>;
}

export async function startDistributionWorker(prefix: string): Promise<DistributionWorker> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const worker = await startLmdbWorker(root);
  return {
    worker,
    call: callerOf(worker),
    async close() {
      await worker.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
