// What third-party Kafka Connect clients (kafka-connect-py, kafka-connect-cli, kafka-connect-api,
// kafka-connect-watcher, kafka-connect-healthcheck) rely on and Kafka Connect 3.9 does: the active
// topics view and its reset (202 by default), a `GET /` whose version they can compare and whose
// ids reveal nothing, and Boolean query parameters read as Kafka's JAX-RS resources read them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSpec, defineSourceConnector, type SourceRecord } from '@omnibus/sdk';
import { ACTIVE_TOPIC_REFRESH_MS, activeTopics, ActiveTopicsRecorder, resetActiveTopics } from '../../src/bus/active-topics.ts';
import { Producer } from '../../src/bus/producer.ts';
import { SourceRunner } from '../../src/bus/source-runner.ts';
import { createLogger } from '../../src/logging.ts';
import { Metrics } from '../../src/metrics.ts';
import { clusterIdOf } from '../../src/rest/server.ts';
import { LmdbStore } from '../../src/store/lmdb.ts';
import { VERSION } from '../../src/version.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { eventually, startWorker } from '../runtime/helpers.ts';
import { helloConfig, startTestWorker, type TestWorker } from './harness.ts';

let dir: string;
let worker: Worker;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-conformance-'));
  worker = await startWorker(`lmdb:${join(dir, 'data')}`);
});

afterAll(async () => {
  await worker?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function request(method: string, path: string, body?: unknown): Promise<{ status: number; text: string; body: unknown }> {
  const response = await fetch(new URL(path, worker.url), {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, text, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

describe('active topics (KIP-558)', () => {
  it("shows the topics a sink has read records from, not every topic it is configured with; a reset answers 202 and forgets them", async () => {
    for (const name of ['orders', 'refunds']) expect((await request('POST', '/topics', { name, shards: 2 })).status).toBe(201);
    const created = await request('POST', '/connectors', { name: 'ledger', config: { 'connector.class': 'SplitSink', targets: 'a', topics: 'orders,refunds' } });
    expect(created.status).toBe(201);
    // Configured with two topics, it has read from none yet.
    expect((await request('GET', '/connectors/ledger/topics')).body).toEqual({ ledger: { topics: [] } });

    expect((await request('POST', '/topics/orders/messages', { messages: [{ key: 'k1', value: { amount: 3 } }] })).status).toBe(202);
    await eventually(
      async () => (await request('GET', '/connectors/ledger/topics')).body,
      (body) => JSON.stringify(body) === JSON.stringify({ ledger: { topics: ['orders'] } }),
      'orders among the active topics of ledger',
    );

    const reset = await request('PUT', '/connectors/ledger/topics/reset');
    expect(reset.status).toBe(202);
    expect(reset.text).toBe('');
    expect((await request('GET', '/connectors/ledger/topics')).body).toEqual({ ledger: { topics: [] } });
    expect((await request('PUT', '/connectors/unknown/topics/reset')).status).toBe(404);
  });

  it('forgets a deleted connector\'s topics: one created again under its name starts with none', async () => {
    const config = { 'connector.class': 'SplitSink', targets: 'a', topics: 'orders' };
    expect((await request('POST', '/connectors', { name: 'again', config })).status).toBe(201);
    expect((await request('POST', '/topics/orders/messages', { messages: [{ key: 'k2', value: { amount: 4 } }] })).status).toBe(202);
    await eventually(
      async () => (await request('GET', '/connectors/again/topics')).body,
      (body) => JSON.stringify(body) === JSON.stringify({ again: { topics: ['orders'] } }),
      'orders among the active topics of again',
    );
    expect((await request('DELETE', '/connectors/again')).status).toBe(204);
    expect((await request('POST', '/connectors', { name: 'again', config })).status).toBe(201);
    expect((await request('GET', '/connectors/again/topics')).body).toEqual({ again: { topics: [] } });
  });

  it('shows the topics a source has produced to', async () => {
    const store = new LmdbStore(join(dir, 'source-data'), { sweepIntervalMs: 0 });
    await store.init();
    const metrics = new Metrics({ defaultMetrics: false });
    const rows = ['r1', 'r2'];
    const source = defineSourceConnector({
      className: 'TwoRowSource',
      version: '0.0.0',
      description: 'publishes two rows to the topic its config names',
      config: ConfigSpec.builder().string('target.topic', { documentation: 'where to publish' }),
      createTask: () => {
        let topic = '';
        let sent = false;
        return {
          async start(config: { 'target.topic': string }) {
            topic = config['target.topic'];
          },
          async poll(): Promise<SourceRecord[]> {
            if (sent) {
              await new Promise((resolve) => setTimeout(resolve, 20));
              return [];
            }
            sent = true;
            return rows.map((row, i) => ({ sourcePartition: { table: 't' }, sourceOffset: { position: i + 1 }, topic, key: row, value: { row } }));
          },
          async stop() {},
        };
      },
    });
    const runner = new SourceRunner(
      { connectorName: 'cdc', taskId: 0, taskCount: 1, connector: source, config: { name: 'cdc', 'connector.class': 'TwoRowSource', 'target.topic': 'changes' } },
      { store, producer: new Producer({ store, metrics }), metrics, logger: createLogger({ level: 'silent' }), workerId: 'w', leaseTtlMs: 2000, heartbeatMs: 200 },
    );
    try {
      expect(await activeTopics(store, 'cdc')).toEqual([]);
      await runner.start();
      await eventually(() => activeTopics(store, 'cdc'), (topics) => topics.length > 0, 'the source\'s active topics');
      expect(await activeTopics(store, 'cdc')).toEqual(['changes']);
      // Kept apart from the connector's own offsets (committed after the topic is recorded, so waited for).
      await eventually(() => store.getSourceOffsets('cdc'), (offsets) => offsets.length > 0, "the source's offsets");
      expect(await store.getSourceOffsets('cdc')).toEqual([{ partition: { table: 't' }, offset: { position: 2 } }]);
    } finally {
      await runner.stop();
      await store.close();
    }
  });

  it('a task records a topic again after a reset once it keeps using it, at most once a refresh period', async () => {
    const store = new LmdbStore(join(dir, 'recorder-data'), { sweepIntervalMs: 0 });
    await store.init();
    let now = 1_000_000;
    const recorder = new ActiveTopicsRecorder(store, 'mailer', 0, createLogger({ level: 'silent' }), true, () => now);
    try {
      await recorder.used(['mail', 'mail', 'sms']);
      expect(await activeTopics(store, 'mailer')).toEqual(['mail', 'sms']);
      await resetActiveTopics(store, 'mailer');
      await recorder.used(['mail']);
      expect(await activeTopics(store, 'mailer')).toEqual([]);
      now += ACTIVE_TOPIC_REFRESH_MS;
      await recorder.used(['mail']);
      expect(await activeTopics(store, 'mailer')).toEqual(['mail']);
      // Disabled (topic.tracking.enable=false): nothing is written.
      await new ActiveTopicsRecorder(store, 'quiet', 0, createLogger({ level: 'silent' }), false).used(['mail']);
      expect(await activeTopics(store, 'quiet')).toEqual([]);
    } finally {
      await store.close();
    }
  });

  describe('the worker settings', () => {
    let disabled: TestWorker;
    let noReset: TestWorker;
    beforeAll(async () => {
      disabled = await startTestWorker({ topicTracking: { enabled: false, allowReset: true } });
      noReset = await startTestWorker({ topicTracking: { enabled: true, allowReset: false } });
      for (const w of [disabled, noReset]) {
        const answer = await w.app.inject({ method: 'POST', url: '/connectors', payload: { name: 'hello', config: helloConfig('hello') } });
        expect(answer.statusCode).toBe(201);
      }
    });
    afterAll(async () => {
      await disabled?.close();
      await noReset?.close();
    });

    it('topic.tracking.enable=false: both routes answer Kafka\'s 403', async () => {
      for (const [method, url] of [['GET', '/connectors/hello/topics'], ['PUT', '/connectors/hello/topics/reset']] as const) {
        const answer = await disabled.app.inject({ method, url });
        expect(answer.statusCode).toBe(403);
        expect(answer.json()).toEqual({ error_code: 403, message: 'Topic tracking is disabled.' });
      }
    });

    it('topic.tracking.allow.reset=false: the reset answers Kafka\'s 403, the view still answers', async () => {
      const reset = await noReset.app.inject({ method: 'PUT', url: '/connectors/hello/topics/reset' });
      expect(reset.statusCode).toBe(403);
      expect(reset.json()).toEqual({ error_code: 403, message: 'Topic tracking reset is disabled.' });
      expect((await noReset.app.inject({ method: 'GET', url: '/connectors/hello/topics' })).json()).toEqual({ hello: { topics: [] } });
    });
  });
});

describe('GET /', () => {
  it('reports the Kafka Connect API level as a version clients compare (>= 3.5), Omnibus\'s own beside it, a hex commit and an opaque cluster id', async () => {
    const answer = await request('GET', '/');
    expect(answer.status).toBe(200);
    const info = answer.body as Record<string, string>;
    expect(Object.keys(info).sort()).toEqual(['commit', 'kafka_cluster_id', 'omnibus_version', 'version']);
    // As clients parse it: major.minor.patch, compared numerically.
    const [major, minor] = (info.version as string).split('.').map(Number) as [number, number];
    expect(info.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(major > 3 || (major === 3 && minor >= 5)).toBe(true);
    expect(info.omnibus_version).toBe(VERSION);
    expect(info.commit).toMatch(/^[0-9a-f]{16}$/);
    expect(info.kafka_cluster_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(answer.text).not.toContain(dir);
    expect(answer.text).not.toContain('lmdb');
    // Stable: the same store gives the same id on every worker, and every start.
    expect(info.kafka_cluster_id).toBe(clusterIdOf(worker.store.description));
  });

  it('gives every worker of one CQL keyspace the same id, whichever contact points it lists, and another keyspace another', () => {
    const id = clusterIdOf('cql://10.0.0.1:9042,10.0.0.2:9042/omnibus');
    expect(clusterIdOf('cql://10.0.0.2:9042/omnibus')).toBe(id);
    expect(clusterIdOf('cql://10.0.0.1:9042/billing')).not.toBe(id);
    expect(clusterIdOf('lmdb:/var/lib/omnibus/a')).not.toBe(clusterIdOf('lmdb:/var/lib/omnibus/b'));
  });
});

describe('Boolean query parameters, as Kafka reads them', () => {
  it('take anything but true (any case) as false, and blank as the default, where Kafka answers 400 for nothing', async () => {
    const config = { 'connector.class': 'SplitSink', targets: 'a', topics: 'orders' };
    expect((await request('POST', '/connectors', { name: 'flags', config })).status).toBe(201);
    // includeTasks=yes is false for Kafka: the legacy restart, 204 with no body.
    for (const query of ['includeTasks=yes', 'onlyFailed=1', 'includeTasks=', 'includeTasks=maybe&onlyFailed=0']) {
      const answer = await request('POST', `/connectors/flags/restart?${query}`);
      expect(answer.status, query).toBe(204);
    }
    expect((await request('POST', '/connectors/flags/restart?includeTasks=TRUE')).status).toBe(202);
    const connectors = (await request('GET', '/connector-plugins')).body as unknown[];
    const all = (await request('GET', '/connector-plugins?connectorsOnly=false')).body as unknown[];
    expect(all.length).toBeGreaterThan(connectors.length);
    expect((await request('GET', '/connector-plugins?connectorsOnly=perhaps')).body).toEqual(all);
    expect((await request('GET', '/connector-plugins?connectorsOnly=')).body).toEqual(connectors);
  });
});
