// The three-node cluster for `pnpm test:cluster`: reused when it already runs (nodes a test
// killed come back on their data), started here otherwise and then stopped at teardown.
import type { TestProject } from 'vitest/node';
import { ensureCluster, stopCluster } from '../../../../scripts/cassandra/cluster.mjs';

const log = (line: string): void => console.log(`[cassandra cluster] ${line}`);

export const CLUSTER_NODES = 3;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await ensureCluster({ nodes: CLUSTER_NODES, log });
  project.provide('cassandraCluster', { contactPoints: cluster.contactPoints, localDataCenter: cluster.localDataCenter });
  return async () => {
    if (cluster.startedHere) await stopCluster({ log });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    cassandraCluster: { contactPoints: string[]; localDataCenter: string };
  }
}
