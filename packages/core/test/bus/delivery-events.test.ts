import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkConnector } from '@omnibus/sdk';
import { deliveryEventId, DeliveryEventPublisher } from '../../src/bus/delivery-events.ts';
import { Producer } from '../../src/bus/producer.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import type { SinkRunner } from '../../src/bus/sink-runner.ts';
import { newTopic } from '../../src/bus/topics.ts';
import type { Store } from '../../src/store/port.ts';
import { expectSchema } from '../rest/openapi-check.ts';
import { cqlStore, deliveriesById, eventually, lmdbStore, receiptingSink, recordingSink, testSinkRunner, type StoreHandle } from './helpers.ts';

const stores: Array<[string, () => Promise<StoreHandle>]> = [
  ['LMDB', lmdbStore],
  ['Cassandra', () => cqlStore('bus_events')],
];

describe.each(stores)('delivery events on %s', (_kind, openHandle) => {
  let handle: StoreHandle;
  let store: Store;
  let producer: Producer;
  const signals = new ShardSignals();
  const runners: SinkRunner[] = [];
  const suffix = Date.now().toString(36);

  beforeAll(async () => {
    handle = await openHandle();
    store = handle.store;
    producer = new Producer({ store, signals });
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await handle?.close();
  });

  function runner(connector: SinkConnector, config: Record<string, string>): SinkRunner {
    const r = testSinkRunner(connector, config, { store, producer, signals });
    runners.push(r);
    return r;
  }

  it('publishes sent, failed and the receipts\' delivered to the events topic, once per state, keyed by message id', async () => {
    const topic = `sms-${suffix}`;
    const events = `events-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 4 }));
    const sms = runner(receiptingSink, { name: 'sms', topics: topic, 'delivery.events.topic': events });
    await sms.start();
    const produced = await producer.produce(
      topic,
      Array.from({ length: 40 }, (_, i) => ({ key: `+3361234${i}`, value: i % 10 === 9 ? { refuse: true } : { text: `hi ${i}` }, group: 'campaign-1' })),
    );
    const ids = produced.map((p) => p.id);
    const refused = new Set(ids.filter((_, i) => i % 10 === 9));

    // Any sink consumes the events topic (created by the bus on first use).
    const consumer = recordingSink();
    await eventually(() => store.getTopic(events), 'the events topic created');
    await runner(consumer.connector, { name: 'events-reader', topics: events }).start();
    const expected = ids.length + (ids.length - refused.size); // sent|failed per message, delivered per sent one
    await eventually(() => consumer.received.length >= expected, 'every event consumed');

    const byId = new Map(consumer.received.map((r) => [r.id, r]));
    expect(byId.size).toBe(expected);
    // What a WebhookSink posts is what the OpenAPI document describes.
    for (const event of byId.values()) expectSchema('DeliveryEvent', event.value);
    for (const id of ids) {
      const first = refused.has(id) ? 'failed' : 'sent';
      const event = byId.get(deliveryEventId(id, 'sms', first))!;
      expect(event.key).toBe(id);
      expect(event.value).toMatchObject({ event_id: event.id, state: first, message_id: id, topic, connector: 'sms', group: 'campaign-1', attempts: 1 });
      if (refused.has(id)) {
        expect(event.value).toMatchObject({ error: { code: 'OMNI_ERR_TEST_REFUSED' } });
        expect(byId.has(deliveryEventId(id, 'sms', 'delivered'))).toBe(false);
      } else {
        expect(event.value).toMatchObject({ provider_id: `p-${id}` });
        const delivered = byId.get(deliveryEventId(id, 'sms', 'delivered'))!;
        expect(delivered.value).toMatchObject({ state: 'delivered', receipt: true, provider_id: `p-${id}` });
        expect(delivered.headers).toMatchObject({ 'omnibus.event.state': 'delivered', 'omnibus.event.connector': 'sms' });
        // One key per message: its events stay in order.
        expect(delivered.shard).toBe(event.shard);
      }
    }
    // The events do not join the messages' group.
    expect((await store.listGroupMessages('campaign-1', 1000)).sort()).toEqual([...ids].sort());
  });

  it('keeps one event when the same change is published again', async () => {
    const events = `events-again-${suffix}`;
    const publisher = new DeliveryEventPublisher(store, producer);
    const change = { messageId: `m-${suffix}`, topic: 'sms', connector: 'sms', state: 'delivered', at: Date.now(), receipt: true };
    await publisher.publish(events, [change]);
    await publisher.publish(events, [change, { ...change, at: change.at + 5 }]);
    const topic = (await store.getTopic(events))!;
    let count = 0;
    for (let shard = 0; shard < topic.shards; shard++) count += (await store.scanBuffer(events, shard, 0, Date.now() + 1000, 100)).length;
    expect(count).toBe(1);
  });

  it('publishes nothing when the connector names no events topic', async () => {
    const topic = `quiet-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const sink = recordingSink();
    await runner(sink.connector, { name: 'quiet', topics: topic }).start();
    const id = (await producer.produce(topic, [{ key: 'k', value: 1 }]))[0]!.id;
    await eventually(async () => (await deliveriesById(store, 'quiet', [id])).get(id)?.state === 'sent', 'the send recorded');
    expect((await store.locateMessages([deliveryEventId(id, 'quiet', 'sent')])).size).toBe(0);
  });

  it('never hands a message to a sink after its expires_at: it ends expired, with its event', async () => {
    const topic = `otp-${suffix}`;
    const events = `events-otp-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const soon = Date.now() + 300;
    const produced = await producer.produce(topic, [
      { key: '+1', value: 'code 1', expires_at: soon },
      { key: '+2', value: 'code 2', expires_at: new Date(Date.now() + 3_600_000).toISOString() },
      { key: '+3', value: 'code 3' },
    ]);
    const [late, fresh, plain] = produced.map((p) => p.id) as [string, string, string];
    // The provider was down until after the first code expired.
    await eventually(() => Date.now() > soon + 50, 'the first code expired');
    const sink = recordingSink();
    await runner(sink.connector, { name: 'otp', topics: topic, 'delivery.events.topic': events }).start();
    await eventually(async () => {
      const rows = await deliveriesById(store, 'otp', [late, fresh, plain]);
      return [late, fresh, plain].every((id) => rows.get(id)?.state !== undefined && rows.get(id)?.state !== 'sending') ? rows : undefined;
    }, 'every message settled');
    const rows = await deliveriesById(store, 'otp', [late, fresh, plain]);
    expect([rows.get(late)?.state, rows.get(fresh)?.state, rows.get(plain)?.state]).toEqual(['expired', 'sent', 'sent']);
    expect(sink.received.map((r) => r.id).sort()).toEqual([fresh, plain].sort());
    expect((await store.listEvents(late)).map((e) => e.type)).toContain('expired');
    await eventually(async () => (await store.locateMessages([deliveryEventId(late, 'otp', 'expired')])).size === 1, 'the expired event published');
  });

  it('rejects an expires_at that is unreadable or past, naming the field', async () => {
    const topic = `otp-bad-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 1 }));
    const attempt = producer.produce(topic, [
      { key: 'a', value: 1, expires_at: 'tomorrow' },
      { key: 'b', value: 1, expires_at: Date.now() - 1000 },
      { key: 'c', value: 1, expires_at: '2026-12-07 14:00' },
    ]);
    await expect(attempt).rejects.toMatchObject({
      details: {
        errors: [
          { index: 0, field: 'expires_at', message: expect.stringContaining('RFC 3339') },
          { index: 1, field: 'expires_at', message: 'is in the past' },
          { index: 2, field: 'expires_at', message: expect.stringContaining('RFC 3339') },
        ],
      },
    });
  });
});
