// Vitest global setup: one Cassandra per test run. It reuses a node that is already up
// (`pnpm cassandra:start`, or OMNIBUS_CASSANDRA_CONTACT_POINT), otherwise starts one and stops
// it at teardown. Tests never skip for want of Cassandra: if none can be had, the run fails.
import type { TestProject } from 'vitest/node';
import { ensureCassandra, stopCassandra, type CassandraEndpoint } from '../../cassandra.mjs';
import type { CassandraContext } from './context.ts';

const log = (line: string): void => console.log(`[cassandra] ${line}`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let endpoint: CassandraEndpoint;
  try {
    endpoint = await ensureCassandra({ log });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `The tests need a real Cassandra and none could be started.\n${reason}\n` +
        'Start one with `pnpm cassandra:start`, or point OMNIBUS_CASSANDRA_CONTACT_POINT=host:port at a running cluster.',
      { cause: error },
    );
  }
  const provided: CassandraContext = { contactPoint: endpoint.contactPoint, localDataCenter: endpoint.localDataCenter };
  project.provide('cassandra', provided);
  return async () => {
    if (endpoint.startedHere) await stopCassandra({ log });
  };
}
