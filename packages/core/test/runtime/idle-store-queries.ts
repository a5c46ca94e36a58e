// What an idle worker costs its store, in queries per second per operation, with the default
// heartbeat and lease settings: first with no connector, then with one sink on a 16-shard topic
// whose tasks have nothing to do. A measurement, not a test:
//   node --import tsx packages/core/test/runtime/idle-store-queries.ts [seconds per phase, default 30] [tasks, default 1] [lmdb|cql, default lmdb]
// `cql` uses the Cassandra of `pnpm cassandra:start` (127.0.0.1:9042) in a keyspace of its own, dropped at the end.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import cassandra from 'cassandra-driver';
import { ensureTopic } from '../../src/bus/topics.ts';
import { TOKENS } from '../../src/worker/di.ts';
import { Worker } from '../../src/worker/worker.ts';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';

const seconds = Number(process.argv[2] ?? 30);
const tasks = Number(process.argv[3] ?? 1);
const kind = process.argv[4] ?? 'lmdb';
const SHARDS = 16;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function perOperation(worker: Worker): Promise<Map<string, number>> {
  const metric = await worker.container.resolve(TOKENS.metrics).storeLatency.get();
  return new Map(metric.values.filter((v) => v.metricName?.endsWith('_count')).map((v) => [String(v.labels.operation), v.value]));
}

async function phase(worker: Worker, label: string): Promise<void> {
  await sleep(5000); // let start-up work settle
  const before = worker.store.queries;
  const opsBefore = await perOperation(worker);
  await sleep(seconds * 1000);
  const count = worker.store.queries - before;
  const opsAfter = await perOperation(worker);
  const breakdown = [...opsAfter]
    .map(([op, n]) => [op, n - (opsBefore.get(op) ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([op, n]) => `${op} ${(n / seconds).toFixed(3)}/s`)
    .join(', ');
  console.log(`${label}: ${count} store queries in ${seconds} s = ${(count / seconds).toFixed(3)}/s  (${breakdown})`);
}

const dir = await mkdtemp(join(tmpdir(), 'omnibus-idle-'));
process.env.OMNIBUS_FILE_SINK_ALLOWED_DIRS ??= dir;
const keyspace = `idle_queries_${randomBytes(4).toString('hex')}`;
const store = kind === 'cql' ? `cql://127.0.0.1:9042/${keyspace}?dc=datacenter1` : `lmdb:${join(dir, 'data')}`;
const worker = new Worker(workerConfigSpec.parse({ store, listeners: ['http://127.0.0.1:0'], 'log.level': 'warn' }));
try {
  await worker.start();
  console.log(`${kind}: heartbeat.interval.ms=${worker.config['heartbeat.interval.ms']} lease.ttl.ms=${worker.config['lease.ttl.ms']}`);
  await phase(worker, `${kind}, idle worker, no connector`);
  await ensureTopic(worker.store, { name: 'idle', shards: SHARDS });
  await worker.herder.createConnector('idle-sink', {
    'connector.class': 'FileSink',
    topics: 'idle',
    file: join(dir, 'idle.jsonl'),
    'tasks.max': String(tasks),
  });
  await phase(worker, `${kind}, idle worker, one sink with ${tasks} task(s) on a ${SHARDS}-shard topic, no traffic`);
} finally {
  await worker.stop();
  await rm(dir, { recursive: true, force: true });
  if (kind === 'cql') {
    const client = new cassandra.Client({ contactPoints: ['127.0.0.1:9042'], localDataCenter: 'datacenter1' });
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).finally(() => client.shutdown());
  }
}
