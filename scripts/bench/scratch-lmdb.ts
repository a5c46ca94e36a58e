import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../packages/sdk/src/index.ts';
import { Producer } from '../../packages/core/src/bus/producer.ts';
import { ShardSignals } from '../../packages/core/src/bus/signals.ts';
import { SinkRunner } from '../../packages/core/src/bus/sink-runner.ts';
import { newTopic } from '../../packages/core/src/bus/topics.ts';
import FileSink from '../../packages/core/src/connectors/file-sink.ts';
import { Metrics } from '../../packages/core/src/metrics.ts';
import { LmdbStore } from '../../packages/core/src/store/lmdb.ts';
import { instrumentStore } from '../../packages/core/src/store/instrumented.ts';

const N = Number(process.env.N ?? 50_000);
const BATCH = Number(process.env.BATCH ?? 500);
const CONC = Number(process.env.CONC ?? 4);
const dir = await mkdtemp(join(tmpdir(), 'omnibus-bench-'));
const raw = new LmdbStore(join(dir, 'data'), { sweepIntervalMs: 0 });
await raw.init();
const storeMetrics = new Metrics({ defaultMetrics: false });
const store = instrumentStore(raw, storeMetrics);
const signals = new ShardSignals();
const producer = new Producer({ store, signals });
await store.createTopic(newTopic({ name: 'p', shards: 16 }));
await store.createTopic(newTopic({ name: 'e2e', shards: 16 }));

async function produceAll(topic: string, n: number) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const start = next;
      next += BATCH;
      const items = [];
      for (let i = start; i < Math.min(n, start + BATCH); i++) items.push({ key: `user-${i % 10_000}@example.org`, value: { to: `user-${i % 10_000}@example.org`, subject: 'hello', n: i } });
      await producer.produce(topic, items);
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
}

let t = performance.now();
await produceAll('p', N);
let s = (performance.now() - t) / 1000;
console.log(`produce: ${N} msgs in ${s.toFixed(2)} s = ${Math.round(N / s)} msg/s (batch ${BATCH}, concurrency ${CONC})`);

const file = join(dir, 'out.jsonl');
const runner = new SinkRunner(
  { connectorName: 'bench', taskId: 0, taskCount: 1, connector: FileSink as never, config: { name: 'bench', 'connector.class': 'FileSink', topics: 'e2e', file, 'batch.size': process.env.SINK_BATCH ?? '500' } },
  { store, producer, signals, metrics: new Metrics({ defaultMetrics: false }), logger: memoryLogger(), workerId: 'w', leaseTtlMs: 10_000, heartbeatMs: 2000 },
);
let produced = 0;
if (process.env.BACKLOG) {
  await produceAll('e2e', N);
  t = performance.now();
  await runner.start();
} else {
  await runner.start();
  t = performance.now();
  await produceAll('e2e', N);
  produced = (performance.now() - t) / 1000;
}
const metrics = (runner as unknown as { deps: { metrics: Metrics } }).deps.metrics;
for (;;) {
  const sent = (await metrics.recordsSent.get()).values[0]?.value ?? 0;
  if (sent >= N) break;
  await new Promise((r) => setTimeout(r, 10));
}
s = (performance.now() - t) / 1000;
console.log(`produce→FileSink: ${N} msgs in ${s.toFixed(2)} s = ${Math.round(N / s)} msg/s end to end (producing took ${produced.toFixed(2)} s); file ${(await stat(file)).size} bytes`);
await runner.stop();
const h = await storeMetrics.storeLatency.get();
for (const v of h.values) if (v.metricName?.endsWith('_sum') || v.metricName?.endsWith('_count')) console.log(v.metricName, v.labels.operation, v.value.toFixed(3));
await store.close();
await rm(dir, { recursive: true, force: true });
