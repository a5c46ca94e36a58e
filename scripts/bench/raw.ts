/**
 * The ceiling: how fast each store takes single rows of about 300 bytes, with nothing of
 * Omnibus around it. LMDB: `put` in a loop (lmdb-js batches the puts of an event turn into one
 * transaction; the measure ends when the last commit is acknowledged). Cassandra: one prepared
 * INSERT per row, many in flight, as a client tuned for throughput would write.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import cassandra from 'cassandra-driver';
import { lmdb } from './deps.ts';

const ROW_BYTES = 300;
const WARM_UP_MS = 5_000;

/** Rows per second of `put` of 300-byte values under 36-character keys into a fresh LMDB environment. */
export async function rawLmdbPuts(rows: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'omnibus-raw-lmdb-'));
  const { open } = await lmdb();
  const root = open({ path: dir, compression: false });
  const db = root.openDB({ name: 'rows', encoding: 'binary' });
  try {
    const value = randomBytes(ROW_BYTES);
    const keys = Array.from({ length: rows }, (_, i) => `row-${String(i).padStart(12, '0')}-${'x'.repeat(19)}`);
    const started = performance.now();
    // Puts of one event turn share a transaction; yield now and then so that commits proceed as they would in a server.
    let last: Promise<boolean> = Promise.resolve(true);
    for (let i = 0; i < rows; i++) {
      last = db.put(keys[i]!, value);
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }
    await last;
    return rows / ((performance.now() - started) / 1000);
  } finally {
    await root.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** How a raw insert run replicates and acknowledges its rows (a cluster's, as the bus would write there). */
export interface RawCqlReplication {
  /** Every node's contact point, so that each request goes to a replica. */
  contactPoints: string[];
  replicationFactor: number;
  consistency: 'ONE' | 'QUORUM' | 'LOCAL_QUORUM';
}

/**
 * Rows per second of a prepared single-row INSERT (300 bytes) with `inFlight` requests at once:
 * on one node at replication 1, or as `replication` says.
 */
export async function rawCqlInserts(contactPoint: string, rows: number, inFlight = 256, replication?: RawCqlReplication): Promise<number> {
  const client = new cassandra.Client({
    ...clusterAddress(replication?.contactPoints ?? [contactPoint]),
    localDataCenter: 'datacenter1',
    pooling: { maxRequestsPerConnection: 2048 },
    socketOptions: { readTimeout: 60_000 },
  });
  await client.connect();
  const keyspace = `omnibus_raw_${randomBytes(4).toString('hex')}`;
  try {
    await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': ${replication?.replicationFactor ?? 1}}`);
    await client.execute(`CREATE TABLE ${keyspace}.rows (id text PRIMARY KEY, body blob)`);
    const insert = `INSERT INTO ${keyspace}.rows (id, body) VALUES (?, ?)`;
    const body = randomBytes(ROW_BYTES - 36);
    const options = { prepare: true, isIdempotent: true, ...(replication ? { consistency: cassandra.types.consistencies[camel(replication.consistency)] } : {}) };
    // Warm up for a few seconds before the clock starts (the statement prepared, the connections
    // open, the node's code compiled), so that the ceiling is the node's steady rate: a low
    // ceiling would flatter every ratio to it.
    const writeRows = async (count: number, prefix: string) => {
      let next = 0;
      const writer = async () => {
        while (next < count) {
          const i = next++;
          await executeRetryingTimeouts(() => client.execute(insert, [`${prefix}-${String(i).padStart(12, '0')}-${'x'.repeat(19)}`, body], options));
        }
      };
      await Promise.all(Array.from({ length: inFlight }, writer));
    };
    const warmUntil = performance.now() + WARM_UP_MS;
    while (performance.now() < warmUntil) await writeRows(5_000, `warm-${Math.round(performance.now())}`);
    const started = performance.now();
    await writeRows(rows, 'row');
    return rows / ((performance.now() - started) / 1000);
  } finally {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    await client.shutdown();
  }
}

/**
 * Runs an idempotent write again when the cluster timed it out (replicas too slow for the
 * consistency level, as a loaded machine makes them with 256 writes in flight): the driver's
 * default policy gives up on such a write, and one timeout would end the measurement. The
 * retries' time counts in the rate.
 */
async function executeRetryingTimeouts<T>(write: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const timedOut =
        error instanceof cassandra.errors.OperationTimedOutError ||
        (error instanceof cassandra.errors.ResponseError && [cassandra.types.responseErrorCodes.writeTimeout, cassandra.types.responseErrorCodes.overloaded].includes(error.code));
      if (!timedOut || attempt >= attempts) throw error;
    }
  }
}

/** LOCAL_QUORUM → localQuorum: the driver's name for a consistency level. */
function camel(level: RawCqlReplication['consistency']): keyof typeof cassandra.types.consistencies {
  return level.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof typeof cassandra.types.consistencies;
}

/** Drops a keyspace a bench section created; a failure is logged, not thrown (the figures stand). */
export async function dropKeyspace(contactPoints: string[], localDataCenter: string, keyspace: string, log: (line: string) => void): Promise<void> {
  const client = new cassandra.Client({ ...clusterAddress(contactPoints), localDataCenter });
  try {
    await client.connect();
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  } catch (error) {
    log(`could not drop keyspace ${keyspace}: ${(error as Error).message}`);
  } finally {
    await client.shutdown();
  }
}

/**
 * Contact points and the CQL port of every node: the driver reaches the peers it discovers on
 * `protocolOptions.port` (9042 unless told), not on the contact point's port, so a cluster on
 * another port would otherwise be mixed up with a node on 9042.
 */
function clusterAddress(points: readonly string[]): { contactPoints: string[]; protocolOptions?: { port: number } } {
  const port = points.map((point) => /:(\d+)$/.exec(point)?.[1]).find((p) => p !== undefined);
  return port === undefined ? { contactPoints: [...points] } : { contactPoints: points.map((point) => point.replace(/:\d+$/, '')), protocolOptions: { port: Number(port) } };
}
