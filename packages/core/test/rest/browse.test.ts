// GET /workers and GET /topics/{topic}/messages (rest/browse.ts), checked against the document too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectDocumented } from './openapi-check.ts';
import { startTestWorker, type TestWorker } from './harness.ts';

let worker: TestWorker;

beforeAll(async () => {
  worker = await startTestWorker();
});
afterAll(async () => {
  await worker?.close();
});

async function call(method: string, url: string, payload?: object) {
  const response = await worker.app.inject({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
  expectDocumented(method, url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
}

describe('GET /workers', () => {
  it('lists the live members with their heartbeat age', async () => {
    const now = Date.now();
    await worker.store.heartbeat({ id: 'w-b', url: 'http://10.0.0.2:8083', startedAt: now - 60_000, heartbeatAt: now - 1_500 }, 30_000);
    await worker.store.heartbeat({ id: 'w-a', url: 'http://10.0.0.1:8083', startedAt: now - 5_000, heartbeatAt: now - 200 }, 30_000);
    const { status, body } = await call('GET', '/workers');
    expect(status).toBe(200);
    const workers = body.workers as Array<Record<string, unknown>>;
    expect(workers.map((w) => w.worker_id)).toEqual(['10.0.0.1:8083', '10.0.0.2:8083']);
    expect(workers[1]).toMatchObject({ url: 'http://10.0.0.2:8083', started_at: now - 60_000 });
    expect(workers[1]!.heartbeat_age_ms).toBeGreaterThanOrEqual(workers[0]!.heartbeat_age_ms as number);
  });
});

describe('GET /topics/{topic}/messages', () => {
  it('pages through every shard in time order', async () => {
    expect((await call('POST', '/topics', { name: 'letters', shards: 3 })).status).toBe(201);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const produced = await call('POST', '/topics/letters/messages', { messages: [{ key: `k${i}`, value: { i } }] });
      ids.push((produced.body.messages as Array<{ id: string }>)[0]!.id);
      // Distinct creation times, so that the order is the produce order.
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const seen: string[] = [];
    let since = 0;
    for (let page = 0; page < 10; page++) {
      const { status, body } = await call('GET', `/topics/letters/messages?limit=3&since=${since}`);
      expect(status).toBe(200);
      for (const m of body.messages as Array<{ id: string; value: unknown }>) if (!seen.includes(m.id)) seen.push(m.id);
      if (body.next_since === undefined) break;
      since = body.next_since as number;
    }
    expect(seen).toEqual(ids);
    const all = await call('GET', '/topics/letters/messages');
    expect((all.body.messages as unknown[]).length).toBe(7);
    expect(all.body.next_since).toBeUndefined();
  });

  it("finds a key's messages, reading only its shard, and pages on", async () => {
    expect((await call('POST', '/topics', { name: 'keyed', shards: 4 })).status).toBe(201);
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      const produced = await call('POST', '/topics/keyed/messages', {
        messages: [
          { key: 'customer-42', value: { i } },
          { key: `other-${i}`, value: { i } },
        ],
      });
      mine.push((produced.body.messages as Array<{ id: string }>)[0]!.id);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const { status, body } = await call('GET', '/topics/keyed/messages?key=customer-42');
    expect(status).toBe(200);
    expect((body.messages as Array<{ id: string; key: string }>).map((m) => m.id)).toEqual(mine);
    expect(body.next_since).toBeUndefined();
    const page = await call('GET', '/topics/keyed/messages?key=customer-42&limit=2');
    expect((page.body.messages as Array<{ id: string }>).map((m) => m.id)).toEqual(mine.slice(0, 2));
    expect(page.body.next_since).toBeTypeOf('number');
    expect((await call('GET', '/topics/keyed/messages?key=nobody')).body.messages).toEqual([]);
    expect((await call('GET', '/topics/keyed/messages?key=')).status).toBe(400);
  });

  it('answers 404 for an unknown topic and 400 for bad paging', async () => {
    expect((await call('GET', '/topics/nope/messages')).status).toBe(404);
    expect((await call('GET', '/topics/letters/messages?limit=0')).status).toBe(400);
    expect((await call('GET', '/topics/letters/messages?limit=501')).status).toBe(400);
    expect((await call('GET', '/topics/letters/messages?since=-1')).status).toBe(400);
  });
});
