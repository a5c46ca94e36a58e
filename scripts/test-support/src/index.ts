// Helpers for test files: the run's Cassandra and a keyspace of their own; worker processes (worker-process.ts).
import { randomBytes } from 'node:crypto';
import cassandra from 'cassandra-driver';
import { inject } from 'vitest';
import type { CassandraContext } from './context.ts';

export type { CassandraContext } from './context.ts';
export { freePort, WorkerProcess, type JsonResponse, type LogLevel, type WorkerProcessOptions } from './worker-process.ts';
export { loadSdkCopy, type SdkCopy } from './sdk-copy.ts';
export { selfSignedCertificate, type SelfSignedCertificate } from './tls.ts';

/** The Cassandra the global setup provided for this run. */
export function cassandraContext(): CassandraContext {
  const context = inject('cassandra');
  if (!context) {
    throw new Error('no Cassandra was provided: run tests through the root vitest config, whose global setup starts one');
  }
  return context;
}

/** host:port of the run's Cassandra, e.g. "127.0.0.1:9042". */
export function cassandraContactPoint(): string {
  return cassandraContext().contactPoint;
}

/** The store URL the runtime takes for a keyspace, e.g. cql://127.0.0.1:9042/ks?dc=datacenter1. */
export function cqlUrl(keyspace: string): string {
  const { contactPoint, localDataCenter } = cassandraContext();
  return `cql://${contactPoint}/${keyspace}?dc=${encodeURIComponent(localDataCenter)}`;
}

// Keyspace names are unquoted CQL identifiers (a letter, then letters, digits, _) of at most 48 chars.
const MAX_KEYSPACE_NAME = 48;

/** A lower-case keyspace name starting with the prefix, unique across runs and test files. */
export function uniqueKeyspaceName(prefix: string): string {
  const stem = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^[^a-z]+|_+$/g, '') || 'test';
  const suffix = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  return `${stem.slice(0, MAX_KEYSPACE_NAME - suffix.length - 1)}_${suffix}`;
}

export interface FreshKeyspace {
  keyspace: string;
  /** Connected, with no keyspace set: qualify table names, or pass `keyspace` in query options. */
  client: cassandra.Client;
  contactPoint: string;
  localDataCenter: string;
  /** Drops the keyspace and shuts the client down; safe to call more than once. */
  drop(): Promise<void>;
}

/**
 * Schema changes wait for the node longer than the driver's 12 s: with the suite's files
 * writing in parallel, a node took longer than that to drop a keyspace, which failed a file
 * whose tests had all passed.
 */
const SCHEMA_CHANGE = { readTimeout: 60_000 };

/**
 * Creates a keyspace of its own for a test file (SimpleStrategy, replication factor 1), so files
 * running in parallel never see each other's tables. Call `drop()` in afterAll.
 */
export async function freshKeyspace(prefix: string): Promise<FreshKeyspace> {
  const { contactPoint, localDataCenter } = cassandraContext();
  const keyspace = uniqueKeyspaceName(prefix);
  const client = new cassandra.Client({ contactPoints: [contactPoint], localDataCenter });
  try {
    await client.connect();
    await client.execute(
      `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
      [],
      SCHEMA_CHANGE,
    );
  } catch (error) {
    await client.shutdown();
    throw error;
  }
  const dropOnce = async (): Promise<void> => {
    try {
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], SCHEMA_CHANGE);
    } finally {
      await client.shutdown();
    }
  };
  let dropped: Promise<void> | undefined;
  const drop = (): Promise<void> => (dropped ??= dropOnce());
  return { keyspace, client, contactPoint, localDataCenter, drop };
}
