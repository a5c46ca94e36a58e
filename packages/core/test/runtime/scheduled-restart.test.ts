// Held messages survive a worker restart: produced with a send_at through the REST API, shown
// as `scheduled` until due, then handed to the sink (never before send_at) by whichever worker
// runs the scheduler after the restart; on LMDB and on Cassandra.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/worker/worker.ts';
import { eventually, startWorker } from './helpers.ts';

let dir: string;
let keyspace: FreshKeyspace;
const workers: Worker[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-scheduled-'));
  keyspace = await freshKeyspace('runtime_scheduled');
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await keyspace?.drop();
  await rm(dir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers, checked by the assertions
type Json = any;

async function call(worker: Worker, method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${worker.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}

const lines = async (file: string): Promise<Array<{ id?: string; value: unknown }>> =>
  (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

describe.each([
  ['lmdb', () => `lmdb:${join(dir, 'data')}`],
  ['cql', () => cqlUrl(keyspace.keyspace)],
])('send_at across a worker restart on %s', (name, storeUrl) => {
  it('is held (scheduled), survives the restart, and is handed to the sink once, not before send_at', async () => {
    const store = storeUrl();
    const file = join(dir, `${name}.jsonl`);
    let worker = await startWorker(store);
    workers.push(worker);
    expect((await call(worker, 'POST', '/topics', { name: 'later', shards: 4 })).status).toBe(201);
    await worker.herder.createConnector(`later-${name}`, { 'connector.class': 'FileSink', topics: 'later', file });

    const sendAt = Date.now() + 15_000;
    const produce = await call(worker, 'POST', '/topics/later/messages', {
      messages: [
        { key: 'ada', value: { n: 1 }, id: `held-${name}`, send_at: new Date(sendAt).toISOString() },
        { key: 'bob', value: { n: 2 }, id: `now-${name}` },
      ],
    });
    expect(produce.status).toBe(202);
    expect(produce.body.messages[0]).toMatchObject({ id: `held-${name}`, send_at: sendAt });

    const held = await call(worker, 'GET', `/messages/held-${name}`);
    expect(held.status).toBe(200);
    expect(held.body).toMatchObject({ state: 'scheduled', send_at: sendAt, message: { id: `held-${name}`, value: { n: 1 } }, deliveries: [] });
    // The other one goes at once.
    await eventually(() => lines(file), (l) => l.length === 1, 'the unscheduled message delivered');

    await worker.stop();
    worker = await startWorker(store);
    workers.push(worker);

    const delivered = await eventually(
      () => call(worker, 'GET', `/messages/held-${name}`),
      (r) => r.status === 200 && r.body.deliveries?.[0]?.state === 'sent',
      'the held message sent after the restart',
      60_000,
    );
    expect(delivered.body.deliveries[0].updated_at).toBeGreaterThanOrEqual(sendAt);
    expect(delivered.body.message.headers['omnibus.send.at']).toBe(String(sendAt));
    // Released by the worker started after the restart.
    expect(delivered.body.events.find((e: { type: string }) => e.type === 'released')).toMatchObject({ worker_id: worker.workerId });
    const written = await lines(file);
    expect(written).toHaveLength(2);
    expect(written.filter((l) => JSON.stringify(l).includes(`held-${name}`))).toHaveLength(1);
    await worker.herder.deleteConnector(`later-${name}`);
  }, 120_000);
});
