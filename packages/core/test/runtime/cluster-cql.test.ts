// Distributed mode on one Cassandra keyspace.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { clusterScenario } from './cluster-scenario.ts';
import type { WorkerProcess } from '@omnibus/test-support';

let dir: string;
const processes: WorkerProcess[] = [];
let keyspace: FreshKeyspace;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-cluster-cql-'));
  keyspace = await freshKeyspace('runtime_cluster');
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await rm(dir, { recursive: true, force: true });
  await keyspace?.drop();
});

describe('distributed mode on one Cassandra keyspace', () => {
  it('3 workers share a connector, survive a SIGKILL, rebalance onto a newcomer, and hand over on a graceful stop', { timeout: 180_000 }, async () => {
    await clusterScenario({ store: cqlUrl(keyspace.keyspace), label: 'cql', workers: 3, dir, processes });
  });
});
