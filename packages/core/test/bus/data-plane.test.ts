import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../src/bus/producer.ts';
import { routeKey } from '../../src/bus/shard.ts';
import { dataPlaneRoutes } from '../../src/rest/data-plane.ts';
import { buildServer } from '../../src/rest/server.ts';
import { PRIORITY_HEADER } from '../../src/store/port.ts';
import { lmdbStore, type StoreHandle } from './helpers.ts';

describe('data plane REST', () => {
  let handle: StoreHandle;
  let app: FastifyInstance;

  beforeAll(async () => {
    handle = await lmdbStore();
    const producer = new Producer({ store: handle.store });
    app = await buildServer({ logger: pino({ level: 'silent' }), routes: [dataPlaneRoutes({ store: handle.store, producer })], bodyLimit: 256 * 1024 });
  });
  afterAll(async () => {
    await app.close();
    await handle.close();
  });

  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object });
  const get = (url: string) => app.inject({ method: 'GET', url });

  it('creates a topic (201), refuses a second one of that name (409) and lists it', async () => {
    const schema = { type: 'object', required: ['to'], properties: { to: { type: 'string' } } };
    const created = await post('/topics', { name: 'sms.outbound', shards: 16, schema, 'retention.ms': 3_600_000 });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'sms.outbound', shards: 16, schema, 'retention.ms': 3_600_000 });
    const again = await post('/topics', { name: 'sms.outbound', shards: 4 });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toEqual({ error_code: 409, message: 'Topic sms.outbound already exists' });
    expect((await get('/topics/sms.outbound')).json()).toMatchObject({ name: 'sms.outbound', shards: 16 });
    expect((await get('/topics')).json().map((t: { name: string }) => t.name)).toContain('sms.outbound');
    const missing = await get('/topics/nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error_code: 404, message: 'Topic nope not found' });
  });

  it('answers 400 for a bad topic name, shard count, schema or retention, and creates nothing', async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: 'bad name!', shards: 1 }, 'name'],
      [{ name: 'x'.repeat(250), shards: 1 }, 'name'],
      [{ name: 'ok', shards: 0 }, 'shards'],
      [{ name: 'ok', shards: 4097 }, 'shards'],
      [{ name: 'ok', shards: 1.5 }, 'shards'],
      [{ name: 'ok', shards: 2, schema: { type: 'no-such-type' } }, 'schema'],
      [{ name: 'ok', shards: 2, 'retention.ms': -5 }, 'retention.ms'],
    ];
    for (const [body, field] of cases) {
      const response = await post('/topics', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      const json = response.json();
      expect(json.error_code).toBe(400);
      expect(Object.keys(json.errors)).toEqual([field]);
    }
    expect((await post('/topics', [1, 2])).statusCode).toBe(400);
    expect((await get('/topics/ok')).statusCode).toBe(404);
  });

  it('accepts messages (202 with {id, shard} each) and rejects an invalid batch whole (422)', async () => {
    await post('/topics', { name: 'mail', shards: 8, schema: { type: 'object', required: ['to'], properties: { to: { type: 'string' } } } });
    const accepted = await post('/topics/mail/messages', {
      group: 'campaign-1',
      messages: [
        { key: 'a@example.org', value: { to: 'a@example.org' } },
        { key: 'b@example.org', value: { to: 'b@example.org' }, id: 'welcome:b' },
      ],
    });
    expect(accepted.statusCode).toBe(202);
    const produced = accepted.json().messages as Array<{ id: string; shard: number }>;
    expect(produced.map((m) => m.shard)).toEqual([routeKey('a@example.org', 8).shard, routeKey('b@example.org', 8).shard]);
    expect(produced[1]!.id).toBe('welcome:b');

    const rejected = await post('/topics/mail/messages', {
      messages: [{ key: 'c@example.org', value: { to: 'c@example.org' }, id: 'never-written' }, { key: 'd@example.org', value: {} }],
    });
    expect(rejected.statusCode).toBe(422);
    expect(rejected.json()).toEqual({
      error_code: 422,
      message: '1 of 2 messages are invalid; none was accepted',
      errors: [{ index: 1, field: 'value', message: "must have required property 'to'" }],
    });
    expect((await get('/messages/never-written')).statusCode).toBe(404);

    expect((await post('/topics/mail/messages', { nope: [] })).statusCode).toBe(400);
    expect((await post('/topics/unknown/messages', { messages: [{ key: 'k', value: 1 }] })).statusCode).toBe(404);
    const tooMany = await post('/topics/mail/messages', { messages: Array.from({ length: 1001 }, (_, i) => ({ key: `k${i}`, value: { to: 'x' } })) });
    expect(tooMany.statusCode).toBe(413);
    const hugeBody = await post('/topics/mail/messages', { messages: [{ key: 'k', value: { to: 'x'.repeat(300 * 1024) } }] });
    expect(hugeBody.statusCode).toBe(413);
    expect(hugeBody.json().error_code).toBe(413);
    const notJson = await app.inject({ method: 'POST', url: '/topics/mail/messages', headers: { 'content-type': 'application/json' }, payload: '{"messages": [' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error_code).toBe(400);
  });

  it('takes expires_at as an RFC 3339 time or ms, keeps it in the omnibus.expires.at header, and names the field when it is bad', async () => {
    await post('/topics', { name: 'otp', shards: 2 });
    const at = new Date(Date.now() + 600_000);
    const accepted = await post('/topics/otp/messages', { messages: [{ key: '+1', value: 'code', expires_at: at.toISOString() }] });
    expect(accepted.statusCode).toBe(202);
    const shown = await get(`/messages/${(accepted.json().messages as Array<{ id: string }>)[0]!.id}`);
    expect(shown.json().message.headers).toEqual({ 'omnibus.expires.at': String(at.getTime()) });
    const rejected = await post('/topics/otp/messages', { messages: [{ key: '+1', value: 'code', expires_at: 'in ten minutes' }] });
    expect(rejected.statusCode).toBe(422);
    expect(rejected.json().errors).toEqual([{ index: 0, field: 'expires_at', message: expect.stringContaining('RFC 3339') }]);
  });

  it('routes a key to its token and shard', async () => {
    await post('/topics', { name: 'routes', shards: 12 });
    const response = await get('/topics/routes/route?key=%2B33612345678');
    expect(response.statusCode).toBe(200);
    const route = routeKey('+33612345678', 12);
    expect(response.json()).toEqual({ key: '+33612345678', token: route.token, shard: route.shard });
    expect((await get('/topics/routes/route')).statusCode).toBe(400);
    expect((await get('/topics/none/route?key=a')).statusCode).toBe(404);
  });

  it('shows a message with its deliveries and events, and counts a group by state per connector', async () => {
    await post('/topics', { name: 'push', shards: 2 });
    const produced = (
      await post('/topics/push/messages', {
        group: 'wave-7',
        messages: [
          { key: 'u1', value: { text: 'a' } },
          { key: 'u2', value: { text: 'b' } },
          { key: 'u3', value: { text: 'c' } },
        ],
      })
    ).json().messages as Array<{ id: string }>;
    const [m1, m2] = produced.map((m) => m.id) as [string, string, string];
    const now = Date.now();
    await handle.store.putConnector({ name: 'push-sink', config: { 'connector.class': 'FileSink', topics: 'push' }, targetState: 'STARTED', taskConfigs: [], generation: 1, createdAt: now, updatedAt: now });
    const positions = await handle.store.locateMessages([m1, m2]);
    await handle.store.putDeliveries([
      // A sink's rows carry their message's group: they move the group's counts.
      { ...positions.get(m1)!, group: 'wave-7', connector: 'push-sink', state: 'sent', attempts: 1, epoch: 1, workerId: 'w1', providerId: 'P1', updatedAt: now },
      { ...positions.get(m2)!, group: 'wave-7', connector: 'push-sink', state: 'failed', attempts: 2, epoch: 1, workerId: 'w1', lastError: { code: 'E', message: 'no' }, updatedAt: now },
    ]);
    await handle.store.appendEvents([{ messageId: m2, topic: positions.get(m2)!.topic, at: now, type: 'failed', connector: 'push-sink', workerId: 'w1', detail: { error: { code: 'E', message: 'no' } } }]);

    const shown = await get(`/messages/${m2}`);
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toMatchObject({
      message: { id: m2, topic: 'push', key: 'u2', value: { text: 'b' }, group: 'wave-7' },
      deliveries: [{ connector: 'push-sink', state: 'failed', attempts: 2, worker_id: 'w1', last_error: { code: 'E', message: 'no' } }],
      events: [{ type: 'failed', connector: 'push-sink' }],
    });
    expect((await get('/messages/unknown-id')).json()).toEqual({ error_code: 404, message: 'Message unknown-id not found' });

    const group = await get('/groups/wave-7');
    expect(group.statusCode).toBe(200);
    expect(group.json()).toEqual({ group: 'wave-7', messages: 3, truncated: false, connectors: { 'push-sink': { sent: 1, failed: 1, pending: 1 } } });
    expect((await get('/groups/no-such-group')).statusCode).toBe(404);
  });

  it('takes a priority per item, answers 422 naming the field for an unknown one, and shows it on GET /messages/{id}', async () => {
    expect((await post('/topics', { name: 'otp-priority', shards: 4 })).statusCode).toBe(201);
    const bad = await post('/topics/otp-priority/messages', { messages: [{ key: '+33600000001', value: { code: '1234' }, priority: 'asap' }] });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ error_code: 422, errors: [{ index: 0, field: 'priority' }] });

    const produced = await post('/topics/otp-priority/messages', {
      messages: [{ key: '+33600000001', value: { code: '1234' }, priority: 'high' }, { key: '+33600000002', value: { code: '5678' } }],
    });
    expect(produced.statusCode).toBe(202);
    const [high, normal] = produced.json().messages as Array<{ id: string }>;
    const shown = (await get(`/messages/${high!.id}`)).json();
    expect(shown.message).toMatchObject({ priority: 'high', headers: { [PRIORITY_HEADER]: 'high' } });
    expect((await get(`/messages/${normal!.id}`)).json().message.priority).toBe('normal');
  });
});
