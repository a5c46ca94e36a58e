import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../packages/sdk/src/index.ts';
import { Producer } from '../../packages/core/src/bus/producer.ts';
import { SinkRunner } from '../../packages/core/src/bus/sink-runner.ts';
import { newTopic } from '../../packages/core/src/bus/topics.ts';
import FileSink from '../../packages/core/src/connectors/file-sink.ts';
import { Metrics } from '../../packages/core/src/metrics.ts';
import { LmdbStore } from '../../packages/core/src/store/lmdb.ts';
import { instrumentStore } from '../../packages/core/src/store/instrumented.ts';

const dir = await mkdtemp(join(tmpdir(), 'omnibus-idle-'));
const raw = new LmdbStore(join(dir, 'data'), { sweepIntervalMs: 0 });
await raw.init();
const metrics = new Metrics({ defaultMetrics: false });
const store = instrumentStore(raw, metrics);
await store.createTopic(newTopic({ name: 'idle', shards: 16 }));
const producer = new Producer({ store });
const runner = new SinkRunner(
  { connectorName: 'idle', taskId: 0, taskCount: 1, connector: FileSink as never, config: { name: 'idle', 'connector.class': 'FileSink', topics: 'idle', file: join(dir, 'o') } },
  { store, producer, metrics, logger: memoryLogger(), workerId: 'w', leaseTtlMs: 10_000, heartbeatMs: Number(process.env.HB ?? 2000) },
);
await runner.start();
await new Promise((r) => setTimeout(r, 20_000)); // settle into idle back-off
const q0 = store.queries;
const h0 = new Map((await metrics.storeLatency.get()).values.filter((v) => v.metricName?.endsWith('_count')).map((v) => [v.labels.operation, v.value]));
const secs = Number(process.env.SECS ?? 30);
await new Promise((r) => setTimeout(r, secs * 1000));
const q1 = store.queries;
console.log(`idle: ${((q1 - q0) / secs).toFixed(2)} store queries/s over ${secs} s (16 shards, 1 task)`);
for (const v of (await metrics.storeLatency.get()).values.filter((v) => v.metricName?.endsWith('_count'))) {
  const d = v.value - (h0.get(v.labels.operation) ?? 0);
  if (d > 0) console.log(`  ${v.labels.operation}: ${(d / secs).toFixed(2)}/s`);
}
await runner.stop();
await raw.close();
await rm(dir, { recursive: true, force: true });
