// The data plane's answers, checked against the OpenAPI document the worker serves (the data
// plane's own behaviour is tested with the bus; this keeps the document true to it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectDocumented } from './openapi-check.ts';
import { helloConfig, startTestWorker, type TestWorker } from './harness.ts';

let worker: TestWorker;

beforeAll(async () => {
  worker = await startTestWorker();
  await worker.herder.createConnector('greeter', helloConfig('greeter', { topics: 'people' }));
});
afterAll(async () => {
  await worker?.close();
});

async function call(method: string, url: string, payload?: object) {
  const response = await worker.app.inject({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
  expectDocumented(method, url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
}

describe('the data plane, as documented', () => {
  it('creates, lists and gets topics', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
    expect((await call('POST', '/topics', { name: 'people', shards: 4, schema, 'retention.ms': 3_600_000 })).status).toBe(201);
    expect((await call('POST', '/topics', { name: 'people', shards: 4 })).status).toBe(409);
    expect((await call('POST', '/topics', { name: 'bad name', shards: 0 })).status).toBe(400);
    expect((await call('GET', '/topics')).status).toBe(200);
    expect((await call('GET', '/topics/people')).body).toMatchObject({ name: 'people', shards: 4 });
    expect((await call('GET', '/topics/nope')).status).toBe(404);
  });

  it('produces, routes, and traces messages and groups', async () => {
    const produced = await call('POST', '/topics/people/messages', { messages: [{ key: 'ada', value: { name: 'Ada' }, id: 'msg-1' }], group: 'campaign-1' });
    expect(produced.status).toBe(202);
    expect((await call('POST', '/topics/people/messages', { messages: [{ key: 'x', value: { nom: 'X' } }] })).status).toBe(422);
    expect((await call('POST', '/topics/nope/messages', { messages: [{ key: 'x', value: {} }] })).status).toBe(404);
    expect((await call('GET', '/topics/people/route?key=ada')).body).toMatchObject({ key: 'ada', shard: expect.any(Number) });
    expect((await call('GET', '/topics/people/route')).status).toBe(400);
    expect((await call('GET', '/messages/msg-1')).body).toMatchObject({ message: { id: 'msg-1', key: 'ada' } });
    expect((await call('GET', '/messages/nope')).status).toBe(404);
    expect((await call('GET', '/groups/campaign-1')).body).toMatchObject({ group: 'campaign-1', messages: 1 });
    expect((await call('GET', '/groups/nope')).status).toBe(404);
  });

  it('holds messages for later (send_at, quiet hours) and shows them scheduled', async () => {
    const quiet = { start: '00:00', end: '23:59', time_zone: 'Pacific/Kiritimati' };
    expect((await call('POST', '/topics', { name: 'later', shards: 2, quiet_hours: quiet })).body).toMatchObject({ quiet_hours: quiet });
    expect((await call('POST', '/topics', { name: 'later-bad', shards: 2, quiet_hours: { ...quiet, time_zone: 'Nowhere/Else' } })).status).toBe(400);
    const sendAt = Date.now() + 3_600_000;
    const produced = await call('POST', '/topics/people/messages', {
      messages: [
        { key: 'ada', value: { name: 'Ada' }, id: 'held-1', send_at: new Date(sendAt).toISOString(), quiet_hours: false },
        { key: 'bob', value: { name: 'Bob' }, id: 'held-2', quiet_hours: { start: '00:00', end: '00:01', time_zone: 'UTC' } },
      ],
    });
    expect(produced.status).toBe(202);
    expect((produced.body.messages as Array<Record<string, unknown>>)[0]).toEqual({ id: 'held-1', shard: expect.any(Number), send_at: sendAt });
    expect((await call('GET', '/messages/held-1')).body).toMatchObject({ state: 'scheduled', send_at: sendAt, scheduled_by: 'send_at', deliveries: [] });
    expect((await call('POST', '/topics/people/messages', { messages: [{ key: 'x', value: { name: 'X' }, send_at: 'soon' }] })).status).toBe(422);
    const withFallback = await call('POST', '/topics/people/messages', {
      messages: [{ key: 'eve', value: { name: 'Eve' }, id: 'fb-1', fallback: { topic: 'later', value: { text: 'hi' }, after_ms: 60_000 } }],
    });
    expect(withFallback.status).toBe(202);
    expect((await call('GET', '/messages/fb-1')).body).toMatchObject({ fallback_id: 'fb-1:fallback' });
    expect((await call('GET', '/messages/fb-1:fallback')).body).toMatchObject({ fallback_of: 'fb-1', state: 'scheduled', scheduled_by: 'fallback' });
    expect((await call('POST', '/topics/people/messages', { messages: [{ key: 'x', value: { name: 'X' }, fallback: { topic: 'nope', value: 1, after_ms: 1 } }] })).status).toBe(422);
  });
});
