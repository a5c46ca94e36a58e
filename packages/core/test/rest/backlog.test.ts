// The lag an autoscaler and the control center read: a real sink runner on LMDB whose provider
// holds its first batch, so that messages wait; the per-shard and per-connector gauges on
// /metrics, the hand-off histogram, GET /connectors/{c}/backlog and GET /topics/{t}/backlog
// (checked against the document), a paused connector whose shard fills, and a worker gathering
// a peer's shards over real HTTP (and naming a peer that does not answer).
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@omnibus/test-support';
import { Producer } from '../../src/bus/producer.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import { SinkRunner } from '../../src/bus/sink-runner.ts';
import { backlogRoutes } from '../../src/rest/backlog.ts';
import { eventually, quietLogger, recordingSink } from '../bus/helpers.ts';
import { expectDocumented } from './openapi-check.ts';
import { helloConfig, startTestWorker, type TestWorker } from './harness.ts';

const CONNECTOR = 'slow';
const TOPIC = 'orders';
const SHARDS = 4;
const SEEN = 60_000;

let worker: TestWorker;
let runner: SinkRunner;
let producer: Producer;
let release: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (release = resolve));
const sink = recordingSink(async () => {
  await gate;
  return { status: 'sent' };
});

async function call(url: string) {
  const response = await worker.app.inject({ method: 'GET', url });
  expectDocumented('GET', url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
}

async function metricsText(): Promise<string> {
  return (await worker.app.inject({ method: 'GET', url: '/metrics' })).body;
}

/** A sample's value on /metrics, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const produce = (count: number, tag: string) =>
  producer.produce(
    TOPIC,
    Array.from({ length: count }, (_, i) => ({ key: `${tag}-${i}`, value: { i } })),
  );

beforeAll(async () => {
  worker = await startTestWorker();
  await worker.app.inject({ method: 'POST', url: '/topics', payload: { name: TOPIC, shards: SHARDS } });
  expect((await worker.app.inject({ method: 'POST', url: '/connectors', payload: { name: CONNECTOR, config: helloConfig(CONNECTOR, { topics: TOPIC }) } })).statusCode).toBe(201);
  const signals = new ShardSignals();
  producer = new Producer({ store: worker.store, signals });
  runner = new SinkRunner(
    { connectorName: CONNECTOR, taskId: 0, taskCount: 1, connector: sink.connector, config: { 'connector.class': 'RecordingSink', name: CONNECTOR, topics: TOPIC, 'batch.size': '5' } },
    {
      store: worker.store,
      producer,
      signals,
      metrics: worker.metrics,
      logger: quietLogger(),
      workerId: '127.0.0.1:8083',
      leaseTtlMs: 10_000,
      heartbeatMs: 1000,
      // Counted at every step once behind; idle shards keep their leases through the test.
      consumer: { backlogCountEveryMs: 0, releaseIdleAfterMs: 600_000 },
    },
  );
  await runner.start();
}, 60_000);

afterAll(async () => {
  release();
  await runner?.stop();
  await worker?.close();
});

describe('the backlog of a sink connector', () => {
  it('shows what waits per shard and in total, on /metrics and in REST, while the provider holds a batch', async () => {
    await produce(20, 'a');
    // Every message read: five in the held batch, the rest queued behind it.
    await eventually(async () => sample(await metricsText(), `omnibus_sink_waiting_messages{connector="${CONNECTOR}"}`) === 20, 'twenty waiting', SEEN);
    const text = await metricsText();
    let perShard = 0;
    for (let shard = 0; shard < SHARDS; shard++) {
      perShard += sample(text, `omnibus_sink_shard_waiting_messages{connector="${CONNECTOR}",topic="${TOPIC}",shard="${shard}"}`) ?? 0;
    }
    expect(perShard).toBe(20);
    expect(sample(text, `omnibus_sink_oldest_waiting_seconds{connector="${CONNECTOR}"}`)).toBeGreaterThan(0);
    // The held batch was handed over (once its `sending` rows are written): five first hand-offs observed.
    await eventually(async () => sample(await metricsText(), `omnibus_sink_handoff_seconds_count{connector="${CONNECTOR}"}`) === 5, 'five handed over', SEEN);

    const connector = await call(`/connectors/${CONNECTOR}/backlog`);
    expect(connector.status).toBe(200);
    expect(connector.body).toMatchObject({ name: CONNECTOR, waiting: 20, workers_unreachable: [] });
    expect(connector.body.oldest_waiting_ms).toBeGreaterThan(0);
    const shards = connector.body.shards as Array<{ topic: string; shard: number; waiting: number; worker_id: string | null; task: number | null }>;
    expect(shards.map((s) => s.shard)).toEqual([0, 1, 2, 3]);
    expect(shards.reduce((sum, s) => sum + s.waiting, 0)).toBe(20);
    for (const s of shards.filter((row) => row.waiting > 0)) expect(s).toMatchObject({ topic: TOPIC, worker_id: '127.0.0.1:8083', task: 0 });

    const topic = await call(`/topics/${TOPIC}/backlog`);
    expect(topic.status).toBe(200);
    const readers = topic.body.connectors as Array<{ name: string; waiting: number; shards: unknown[] }>;
    expect(readers.map((c) => [c.name, c.waiting, c.shards.length])).toEqual([[CONNECTOR, 20, SHARDS]]);
  });

  it('is 0 once everything is sent, and the hand-off histogram has every message', async () => {
    release();
    await eventually(async () => sample(await metricsText(), `omnibus_sink_waiting_messages{connector="${CONNECTOR}"}`) === 0, 'nothing waiting', SEEN);
    const text = await metricsText();
    expect(sample(text, `omnibus_sink_oldest_waiting_seconds{connector="${CONNECTOR}"}`)).toBe(0);
    expect(sample(text, `omnibus_sink_handoff_seconds_count{connector="${CONNECTOR}"}`)).toBe(20);
    expect((await call(`/connectors/${CONNECTOR}/backlog`)).body).toMatchObject({ waiting: 0, oldest_waiting_ms: 0 });
  });

  it('counts what arrives while the connector is paused, and nothing once it has resumed', async () => {
    await runner.pause();
    await produce(6, 'p');
    await eventually(async () => (await call(`/connectors/${CONNECTOR}/backlog`)).body.waiting === 6, 'six waiting while paused', SEEN);
    await runner.resume();
    await eventually(async () => (await call(`/connectors/${CONNECTOR}/backlog`)).body.waiting === 0, 'nothing waiting after resume', SEEN);
    expect(sink.received).toHaveLength(26);
  });

  it('answers 404 for an unknown connector or topic', async () => {
    expect((await call('/connectors/nobody/backlog')).status).toBe(404);
    expect((await call('/topics/nowhere/backlog')).status).toBe(404);
  });

  it("gathers a peer's shards over HTTP and names a peer that does not answer", async () => {
    await runner.pause();
    await produce(3, 'g');
    await eventually(async () => (await call(`/connectors/${CONNECTOR}/backlog`)).body.waiting === 3, 'three waiting', SEEN);
    const address = await worker.app.listen({ host: '127.0.0.1', port: 0 });
    const gone = `http://127.0.0.1:${await freePort()}`;
    // Another worker of the cluster, holding none of the shards itself.
    const other = Fastify();
    await other.register(
      backlogRoutes({
        store: worker.store,
        local: () => [],
        selfId: () => 'other:8083',
        members: () => [
          { id: 'other:8083', url: 'http://127.0.0.1:1' },
          { id: 'first:8083', url: address },
          { id: 'gone:8083', url: gone },
        ],
        peerTimeoutMs: 5000,
      }),
    );
    try {
      const answer = (await other.inject({ method: 'GET', url: `/connectors/${CONNECTOR}/backlog` })).json() as {
        waiting: number;
        shards: Array<{ waiting: number; worker_id: string | null }>;
        workers_unreachable: string[];
      };
      expect(answer.waiting).toBe(3);
      expect(answer.workers_unreachable).toEqual(['gone:8083']);
      expect(new Set(answer.shards.filter((s) => s.waiting > 0).map((s) => s.worker_id))).toEqual(new Set(['first:8083']));
    } finally {
      await other.close();
      await runner.resume();
    }
  });
});
