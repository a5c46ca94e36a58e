// Exact group counts past the old 10,000-message report cap, and cancellation before hand-off,
// on both stores, through the data plane's routes and real sink runners.
import { isDeepStrictEqual } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkConnector } from '@omnibus/sdk';
import { Producer } from '../../src/bus/producer.ts';
import { Scheduler } from '../../src/bus/scheduler.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import type { SinkRunner } from '../../src/bus/sink-runner.ts';
import { newTopic } from '../../src/bus/topics.ts';
import { dataPlaneRoutes } from '../../src/rest/data-plane.ts';
import { buildServer } from '../../src/rest/server.ts';
import type { Store } from '../../src/store/port.ts';
import { cqlStore, deliveriesById, eventually, lmdbStore, quietLogger, receiptingSink, recordingSink, testSinkRunner, type StoreHandle } from './helpers.ts';

const stores: Array<[string, () => Promise<StoreHandle>]> = [
  ['LMDB', lmdbStore],
  ['Cassandra', () => cqlStore('bus_groups')],
];

/** More than the 10,000 messages the scanning report used to stop at. */
const GROUP_SIZE = 12_000;
/** Messages of the held groups (send_at in a few seconds). */
const HELD = 50;
/** Every REFUSE_EVERY-th message is refused by the provider (failed); the others get a delivered receipt. */
const REFUSE_EVERY = 40;

describe.each(stores)('group counts and cancellation on %s', (_kind, openHandle) => {
  let handle: StoreHandle;
  let store: Store;
  let producer: Producer;
  let app: FastifyInstance;
  const signals = new ShardSignals();
  const runners: SinkRunner[] = [];
  const suffix = Date.now().toString(36);

  beforeAll(async () => {
    handle = await openHandle();
    store = handle.store;
    producer = new Producer({ store, signals });
    app = await buildServer({ logger: pino({ level: 'silent' }), routes: [dataPlaneRoutes({ store, producer, signals })], bodyLimit: 1024 * 1024 });
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await app?.close();
    await handle?.close();
  });

  const request = async (method: 'GET' | 'DELETE', url: string) => {
    const response = await app.inject({ method, url });
    return { status: response.statusCode, body: response.json() as Record<string, unknown> };
  };

  async function connect(connector: SinkConnector, config: Record<string, string>): Promise<SinkRunner> {
    const now = Date.now();
    await store.putConnector({ name: config.name!, config: { 'connector.class': connector.className, ...config }, targetState: 'STARTED', taskConfigs: [], generation: 1, createdAt: now, updatedAt: now });
    const r = testSinkRunner(connector, config, { store, producer, signals }, { leaseTtlMs: 10_000, heartbeatMs: 1000 });
    runners.push(r);
    return r;
  }

  it(`counts a ${GROUP_SIZE.toLocaleString('en')}-message group exactly, by state per connector, through sends, failures and receipts`, async () => {
    const topic = `campaign-${suffix}`;
    const group = `spring-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 4 }));
    const ids: string[] = [];
    for (let start = 0; start < GROUP_SIZE; start += 500) {
      const batch = Array.from({ length: Math.min(500, GROUP_SIZE - start) }, (_, i) => ({
        key: `+1555${start + i}`,
        value: { text: 'sale', ...((start + i) % REFUSE_EVERY === 0 ? { refuse: true } : {}) },
      }));
      ids.push(...(await producer.produce(topic, batch, { group })).map((p) => p.id));
    }
    const before = await request('GET', `/groups/${group}`);
    expect(before.body).toEqual({ group, messages: GROUP_SIZE, truncated: false, connectors: {} });

    await connect(receiptingSink, { name: 'campaign-sms', topics: topic, 'batch.size': '500' }).then((r) => r.start());
    const refused = GROUP_SIZE / REFUSE_EVERY;
    const expected = { delivered: GROUP_SIZE - refused, failed: refused };
    const report = await eventually(
      async () => {
        const { body } = await request('GET', `/groups/${group}`);
        return isDeepStrictEqual((body.connectors as Record<string, unknown>)['campaign-sms'], expected) ? body : undefined;
      },
      'every message delivered or failed in the counts',
      240_000,
    );
    expect(report).toEqual({ group, messages: GROUP_SIZE, truncated: false, connectors: { 'campaign-sms': expected } });

    // The same writes again (a retried store call, a receipt sent twice) count once.
    const some = await deliveriesById(store, 'campaign-sms', ids.slice(0, 50));
    const rows = [...some.values()];
    expect(rows.every((d) => d.group === group)).toBe(true);
    await store.putReceiptStates(rows.filter((d) => d.state === 'delivered').map((d) => ({ ...d, state: 'delivered' as const, updatedAt: Date.now() })));
    const stored = (await store.getMessages([ids[1]!])).get(ids[1]!)!;
    await store.appendMessages([stored]);
    expect((await request('GET', `/groups/${group}`)).body).toEqual(report);
    // Unknown groups are 404, naming the group.
    const missing = await request('GET', `/groups/none-${suffix}`);
    expect(missing.status).toBe(404);
    expect(String(missing.body.message)).toContain(`none-${suffix}`);
  }, 300_000);

  it('cancels messages and groups not yet handed off; they end cancelled with events, and the answer says what was already sent', async () => {
    const topic = `promo-${suffix}`;
    const group = `promo-wave-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const early = (await producer.produce(topic, [{ key: 'a', value: 1 }], { group: `early-${suffix}` }))[0]!.id;
    const sink = recordingSink();
    const runner = await connect(sink.connector, { name: 'promo', topics: topic });
    await runner.start();
    await eventually(async () => (await deliveriesById(store, 'promo', [early])).get(early)?.state === 'sent', 'the early message sent');
    await runner.stop();

    const [alone, kept] = (await producer.produce(topic, [{ key: 'b', value: 2 }, { key: 'c', value: 3 }])).map((p) => p.id) as [string, string];
    const wave = (await producer.produce(topic, [{ key: 'd', value: 4 }, { key: 'e', value: 5 }, { key: 'f', value: 6 }], { group })).map((p) => p.id);

    const cancelOne = await request('DELETE', `/messages/${alone}`);
    expect(cancelOne).toEqual({ status: 200, body: { id: alone, connectors: { promo: { cancelled: 1, in_flight: 0, already: {} } } } });
    const cancelWave = await request('DELETE', `/groups/${group}`);
    expect(cancelWave).toEqual({ status: 200, body: { group, messages: 3, connectors: { promo: { cancelled: 3, in_flight: 0, already: {} } } } });
    const cancelSent = await request('DELETE', `/messages/${early}`);
    expect(cancelSent.body).toEqual({ id: early, connectors: { promo: { cancelled: 0, in_flight: 0, already: { sent: 1 } } } });
    const unknown = await request('DELETE', `/messages/no-such-${suffix}`);
    expect(unknown.status).toBe(404);
    expect(String(unknown.body.message)).toContain(`no-such-${suffix}`);
    expect((await request('DELETE', `/groups/no-such-${suffix}`)).status).toBe(404);

    const again = await connect(sink.connector, { name: 'promo', topics: topic });
    await again.start();
    const all = [alone, kept, ...wave];
    const states = await eventually(async () => {
      const rows = await deliveriesById(store, 'promo', all);
      return all.every((id) => ['sent', 'cancelled'].includes(rows.get(id)?.state ?? '')) ? rows : undefined;
    }, 'every message settled');
    expect(all.map((id) => states.get(id)!.state)).toEqual(['cancelled', 'sent', 'cancelled', 'cancelled', 'cancelled']);
    expect(sink.received.map((r) => r.id).sort()).toEqual([early, kept].sort());
    expect((await store.listEvents(alone)).map((e) => e.type)).toContain('cancelled');
    expect((await request('GET', `/groups/${group}`)).body.connectors).toEqual({ promo: { cancelled: 3 } });
  }, 120_000);

  it('reports a message being handed off at that instant as in flight, and never cancels what it sends', async () => {
    const topic = `otp-race-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 1 }));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let handedOff = false;
    const sink = recordingSink(async () => {
      handedOff = true;
      await released;
      return { status: 'sent' };
    });
    await (await connect(sink.connector, { name: 'otp-race', topics: topic })).start();
    const id = (await producer.produce(topic, [{ key: '+1', value: 'code' }]))[0]!.id;
    await eventually(() => handedOff, 'the hand-off started');
    const cancel = await request('DELETE', `/messages/${id}`);
    expect(cancel.body).toEqual({ id, connectors: { 'otp-race': { cancelled: 0, in_flight: 1, already: {} } } });
    release();
    await eventually(async () => (await deliveriesById(store, 'otp-race', [id])).get(id)?.state === 'sent', 'the send recorded');
    expect(sink.received.map((r) => r.id)).toEqual([id]);
  }, 60_000);

  it('cancels a message still held for its send_at: released later, it ends cancelled and is never handed off', async () => {
    const topic = `held-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const sink = recordingSink();
    await (await connect(sink.connector, { name: 'held-sink', topics: topic })).start();
    const sendAt = Date.now() + 1500;
    const [held, kept] = (await producer.produce(topic, [
      { key: 'h', value: 'reminder', send_at: sendAt },
      { key: 'k', value: 'reminder', send_at: sendAt },
    ])).map((p) => p.id) as [string, string];
    expect((await store.getScheduled([held])).size).toBe(1);
    const cancel = await request('DELETE', `/messages/${held}`);
    expect(cancel).toEqual({ status: 200, body: { id: held, connectors: { 'held-sink': { cancelled: 1, in_flight: 0, already: {} } } } });

    const scheduler = new Scheduler({ store, producer, signals, workerId: `w-${suffix}`, leaseTtlMs: 3000, logger: quietLogger() });
    scheduler.start();
    try {
      const states = await eventually(async () => {
        const rows = await deliveriesById(store, 'held-sink', [held, kept]);
        return rows.get(held)?.state === 'cancelled' && rows.get(kept)?.state === 'sent' ? rows : undefined;
      }, 'the held messages released and settled', 30_000);
      expect(states.get(held)!.state).toBe('cancelled');
      expect(sink.received.map((r) => r.id)).toEqual([kept]);
    } finally {
      await scheduler.stop();
    }
  }, 60_000);

  it('counts a group held whole as scheduled from its produce, cancels it before anything is due, and none of it reaches the connector', async () => {
    const topic = `later-${suffix}`;
    const group = `next-week-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 4 }));
    const sink = recordingSink();
    await (await connect(sink.connector, { name: 'later-sink', topics: topic })).start();
    const sendAt = Date.now() + 3000;
    const ids = (await producer.produce(topic, Array.from({ length: HELD }, (_, i) => ({ key: `+1666${i}`, value: { text: 'launch' }, send_at: sendAt })), { group })).map((p) => p.id);
    expect((await store.getScheduled(ids)).size).toBe(HELD);

    expect(await request('GET', `/groups/${group}`)).toEqual({ status: 200, body: { group, messages: HELD, truncated: false, connectors: { 'later-sink': { scheduled: HELD } } } });
    expect(await request('DELETE', `/groups/${group}`)).toEqual({ status: 200, body: { group, messages: HELD, connectors: { 'later-sink': { cancelled: HELD, in_flight: 0, already: {} } } } });

    const scheduler = new Scheduler({ store, producer, signals, workerId: `w-later-${suffix}`, leaseTtlMs: 3000, logger: quietLogger() });
    scheduler.start();
    try {
      const states = await eventually(async () => {
        const rows = await deliveriesById(store, 'later-sink', ids);
        return ids.every((id) => rows.get(id)?.state === 'cancelled') ? rows : undefined;
      }, 'every held message released and settled cancelled', 60_000);
      expect(states.size).toBe(HELD);
      expect(scheduler.released).toBe(HELD);
    } finally {
      await scheduler.stop();
    }
    expect(sink.received).toEqual([]);
    expect(await request('GET', `/groups/${group}`)).toEqual({ status: 200, body: { group, messages: HELD, truncated: false, connectors: { 'later-sink': { cancelled: HELD } } } });
  }, 120_000);

  it('counts a group of held and immediate messages once each: scheduled until released, then sent', async () => {
    const topic = `mixed-${suffix}`;
    const group = `mixed-wave-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const sink = recordingSink();
    await (await connect(sink.connector, { name: 'mixed-sink', topics: topic })).start();
    const sendAt = Date.now() + 3000;
    const items = Array.from({ length: HELD }, (_, i) => ({ key: `+1777${i}`, value: { n: i }, ...(i % 5 < 3 ? { send_at: sendAt } : {}) }));
    const heldCount = items.filter((item) => 'send_at' in item).length;
    const ids = (await producer.produce(topic, items, { group })).map((p) => p.id);

    const before = await request('GET', `/groups/${group}`);
    expect(before.body.messages).toBe(HELD);
    expect((before.body.connectors as Record<string, Record<string, number>>)['mixed-sink']!.scheduled).toBe(heldCount);

    const scheduler = new Scheduler({ store, producer, signals, workerId: `w-mixed-${suffix}`, leaseTtlMs: 3000, logger: quietLogger() });
    scheduler.start();
    try {
      await eventually(async () => {
        const { body } = await request('GET', `/groups/${group}`);
        return isDeepStrictEqual(body.connectors, { 'mixed-sink': { sent: HELD } }) ? body : undefined;
      }, 'every message of the group sent in the counts', 60_000);
    } finally {
      await scheduler.stop();
    }
    expect(new Set(sink.received.map((r) => r.id))).toEqual(new Set(ids));
    expect(sink.received).toHaveLength(HELD);
    // A released message appended again (a retried write) counts nothing more.
    const released = ids[0]!;
    await store.appendMessages([(await store.getMessages([released])).get(released)!]);
    expect(await request('GET', `/groups/${group}`)).toEqual({ status: 200, body: { group, messages: HELD, truncated: false, connectors: { 'mixed-sink': { sent: HELD } } } });
  }, 120_000);
});
