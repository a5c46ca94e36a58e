// Wake hints between workers: a message produced on one worker reaches a sink task running on
// another within moments, because the producing worker tells its peers which shard it wrote to.
// The consuming worker's idle polls are set minutes apart (a shard is read when its task starts,
// then only when woken), so only the hint can explain a hand-off well inside that interval. Both
// workers require credentials (rest.auth.bearer.tokens), so the hint also shows that a worker
// authenticates to its peers. Two workers in one process, on one LMDB directory.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS } from '../../src/worker/di.ts';
import { Worker } from '../../src/worker/worker.ts';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { expectDocumented } from '../rest/openapi-check.ts';
import { eventually, FAST_CLUSTER } from './helpers.ts';

/** The consumers' poll interval, idle or not: jittered, the first poll after a task's start comes at least 0.8 × this later. */
const POLL_MS = 300_000;
const TOKEN = 'cluster-secret';
const auth = { authorization: `Bearer ${TOKEN}` };

let dir: string;
const workers: Worker[] = [];

async function startWorker(): Promise<Worker> {
  const worker = new Worker(
    workerConfigSpec.parse({
      store: `lmdb:${join(dir, 'data')}`,
      listeners: ['http://127.0.0.1:0'],
      'log.level': process.env.OMNIBUS_TEST_LOG_LEVEL ?? 'silent',
      'rest.auth.bearer.tokens': TOKEN,
      ...FAST_CLUSTER,
    }),
  );
  worker.container.register(TOKENS.consumerOptions, { useValue: { pollMinMs: POLL_MS, pollIdleMs: POLL_MS, pollIdleMaxMs: POLL_MS } });
  workers.push(worker);
  await worker.start();
  return worker;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-wake-hints-'));
  await startWorker();
  await startWorker();
  // Each knows the other before anything is produced (membership is read at every heartbeat).
  await eventually(
    async () => workers.map((w) => w.container.resolve(TOKENS.membership).members.length),
    (counts) => counts.every((n) => n === 2),
    'both workers to see each other',
  );
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await rm(dir, { recursive: true, force: true });
});

const request = (worker: Worker, method: string, path: string, body?: unknown, headers: Record<string, string> = auth) =>
  fetch(`${worker.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/** Reads of the buffer (whole messages or positions only) the worker has made. */
async function bufferReads(worker: Worker): Promise<number> {
  const metric = await worker.container.resolve(TOKENS.metrics).storeLatency.get();
  return metric.values
    .filter((v) => v.metricName?.endsWith('_count') && /Buffer$/.test(String(v.labels.operation)))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('wake hints', () => {
  it('a message produced on one worker reaches the sink task on the other long before its next poll', async () => {
    const shards = 4;
    expect((await request(workers[0]!, 'POST', '/topics', { name: 'handoff', shards })).status).toBe(201);
    const file = join(dir, 'handoff.jsonl');
    await workers[0]!.herder.createConnector('handoff', { 'connector.class': 'FileSink', 'tasks.max': '1', topics: 'handoff', file });
    const status = await eventually(
      () => workers[0]!.herder.connectorStatus('handoff'),
      (s) => s.tasks.length === 1 && s.tasks[0]!.state === 'RUNNING',
      'the task to run',
    );
    const consumer = workers.find((w) => w.workerId === status.tasks[0]!.worker_id)!;
    const producer = workers.find((w) => w !== consumer)!;
    expect(consumer).toBeDefined();
    // The task has read every shard once (at its start); its next reads are minutes away.
    await eventually(() => bufferReads(consumer), (reads) => reads >= shards, 'the first read of every shard');

    const route = (await (await request(producer, 'GET', '/topics/handoff/route?key=alice')).json()) as { shard: number };
    const woken: number[] = [];
    consumer.container.resolve(TOKENS.signals).subscribe('handoff', route.shard, () => woken.push(Date.now()));

    const producedAt = Date.now();
    const produced = await request(producer, 'POST', '/topics/handoff/messages', { messages: [{ key: 'alice', value: { text: 'hi' } }] });
    expect(produced.status).toBe(202);
    const [{ id }] = ((await produced.json()) as { messages: Array<{ id: string }> }).messages as [{ id: string }];

    await eventually(
      () => readFile(file, 'utf8').catch(() => ''),
      (text) => text.includes(id),
      'the message to be written by the sink on the other worker',
      60_000,
    );
    const deliveredAfterMs = Date.now() - producedAt;
    // Nothing on the consuming worker produced: its consumers were woken by the producer's hint.
    expect(woken.length).toBeGreaterThanOrEqual(1);
    expect(woken[0]).toBeGreaterThanOrEqual(producedAt);
    expect(deliveredAfterMs).toBeLessThan(POLL_MS * 0.8);
    expect(producer.container.resolve(TOKENS.peerWake).counts.failed).toBe(0);
  });

  it('POST /internal/wake requires credentials and a valid body, and accepts shards nobody here reads', async () => {
    const worker = workers[0]!;
    const check = async (response: Response, path = '/internal/wake') => {
      const body = await response.text();
      expectDocumented('POST', path, { statusCode: response.status, body, headers: Object.fromEntries(response.headers) });
      return { status: response.status, body: body ? (JSON.parse(body) as Record<string, unknown>) : undefined };
    };
    const hint = { shards: [{ topic: 'no-such-topic', shard: 7 }], at: Date.now() };

    expect(await check(await request(worker, 'POST', '/internal/wake', hint, {}))).toMatchObject({ status: 401, body: { error_code: 401 } });
    expect(await check(await request(worker, 'POST', '/internal/wake', hint))).toEqual({ status: 204, body: undefined });
    const bad = await check(await request(worker, 'POST', '/internal/wake', { shards: [{ topic: 'handoff', shard: 'one' }] }));
    expect(bad).toMatchObject({ status: 400, body: { error_code: 400, errors: [{ index: 0, field: 'shard' }] } });
    expect(await check(await request(worker, 'POST', '/internal/wake', { topic: 'handoff' }))).toMatchObject({ status: 400 });
    const notJson = await fetch(`${worker.url}/internal/wake`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"shards": [' });
    expect(await check(notJson)).toMatchObject({ status: 400, body: { error_code: 400 } });
  });
});
