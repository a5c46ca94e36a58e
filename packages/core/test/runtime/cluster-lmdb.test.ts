// Distributed mode on one LMDB directory shared by processes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { clusterScenario } from './cluster-scenario.ts';
import type { WorkerProcess } from '@omnibus/test-support';

let dir: string;
const processes: WorkerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-cluster-lmdb-'));
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await rm(dir, { recursive: true, force: true });
});

describe('distributed mode on one LMDB directory shared by processes', () => {
  it('2 workers share a connector, survive a SIGKILL, rebalance onto a newcomer, and hand over on a graceful stop', { timeout: 180_000 }, async () => {
    await clusterScenario({ store: `lmdb:${join(dir, 'data')}`, label: 'lmdb', workers: 2, dir, processes });
  });
});
