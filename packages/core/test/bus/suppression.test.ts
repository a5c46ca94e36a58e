// The suppression gate (bus/suppression-gate.ts) in front of a sink task, on LMDB and Cassandra:
// records to suppressed recipients end `suppressed` and never reach the task; what providers
// say about addresses (outcomes' `suppress`) holds back the next message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSpec, defineSinkConnector, type SinkConnector, type SinkOutcome, type SinkRecord } from '@omnibus/sdk';
import { deliveryEventId } from '../../src/bus/delivery-events.ts';
import { Producer } from '../../src/bus/producer.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import type { SinkRunner } from '../../src/bus/sink-runner.ts';
import { newTopic } from '../../src/bus/topics.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Store } from '../../src/store/port.ts';
import { cqlStore, deliveriesById, eventually, lmdbStore, testSinkRunner, type StoreHandle } from './helpers.ts';

const stores: Array<[string, () => Promise<StoreHandle>]> = [
  ['LMDB', lmdbStore],
  ['Cassandra', () => cqlStore('bus_suppression')],
];

/** A text sink that declares its recipients; a value {optedOut: true} is refused as Twilio's 21610 refuses it. */
function textSink(received: SinkRecord[]): SinkConnector {
  return defineSinkConnector({
    className: 'TextSink',
    version: '0.0.0',
    description: 'records what it is handed; declares value.to as the recipient',
    config: ConfigSpec.builder(),
    recipients: { channel: 'sms', recipients: (record) => [(record.value as { to: string }).to] },
    createTask: () => ({
      start: async () => undefined,
      put: async (records: SinkRecord[]) =>
        records.map((record): SinkOutcome => {
          received.push(record);
          const value = record.value as { to: string; optedOut?: boolean };
          if (!value.optedOut) return { status: 'sent', providerId: `p-${record.id}` };
          return {
            status: 'failed',
            error: { code: 'OMNI_ERR_SMS_OPTED_OUT', message: 'Twilio error 21610' },
            suppress: [{ channel: 'sms', address: value.to, reason: 'opted-out', code: '21610' }],
          };
        }),
      stop: async () => undefined,
    }),
  }) as unknown as SinkConnector;
}

describe.each(stores)('suppression gate on %s', (_kind, openHandle) => {
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

  const metrics = new Metrics({ defaultMetrics: false });

  async function start(connector: SinkConnector, config: Record<string, string>): Promise<void> {
    const r = testSinkRunner(connector, config, { store, producer, signals, metrics });
    runners.push(r);
    await r.start();
  }

  async function settled(connector: string, ids: string[]) {
    return eventually(async () => {
      const rows = await deliveriesById(store, connector, ids);
      return ids.every((id) => rows.get(id) && rows.get(id)!.state !== 'sending') ? ids.map((id) => rows.get(id)!.state) : undefined;
    }, 'every message settled', 60_000);
  }

  it('keeps back messages to suppressed recipients: `all` holds every one, a category only the non-critical ones of it', async () => {
    const topic = `texts-${suffix}`;
    const events = `events-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const stopped = '+33611111111';
    const noMarketing = '+33622222222';
    await store.putSuppressions([
      { channel: 'sms', address: stopped, category: 'all', reason: 'stop', code: 'STOP', createdAt: Date.now() },
      { channel: 'sms', address: noMarketing, category: 'marketing', reason: 'manual', createdAt: Date.now() },
      // Another channel's suppression does not hold an SMS back.
      { channel: 'whatsapp', address: '+33633333333', category: 'all', reason: 'opted-out', createdAt: Date.now() },
    ]);
    const received: SinkRecord[] = [];
    await start(textSink(received), { name: 'texts', topics: topic, 'delivery.events.topic': events });
    const items = [
      { key: stopped, value: { to: '0033 6 11 11 11 11' }, category: 'transactional' },
      { key: stopped, value: { to: stopped }, category: 'security', critical: true },
      { key: noMarketing, value: { to: noMarketing }, category: 'marketing' },
      { key: noMarketing, value: { to: noMarketing }, category: 'marketing', critical: true },
      { key: noMarketing, value: { to: noMarketing }, category: 'transactional' },
      { key: noMarketing, value: { to: noMarketing } },
      { key: '+33633333333', value: { to: '+33633333333' }, category: 'marketing' },
    ];
    const ids = (await producer.produce(topic, items)).map((p) => p.id);
    expect(await settled('texts', ids)).toEqual(['suppressed', 'suppressed', 'suppressed', 'sent', 'sent', 'sent', 'sent']);
    expect(received.map((r) => r.id).sort()).toEqual(ids.slice(3).sort());
    const trace = await store.listEvents(ids[0]!);
    expect(trace.find((e) => e.type === 'suppressed')).toMatchObject({ connector: 'texts', detail: { channel: 'sms', category: 'all', reason: 'stop', code: 'STOP' } });
    expect((await store.listEvents(ids[2]!)).find((e) => e.type === 'suppressed')?.detail).toMatchObject({ category: 'marketing' });
    await eventually(async () => (await store.locateMessages([deliveryEventId(ids[0]!, 'texts', 'suppressed')])).size === 1, 'the suppressed event published');

    // Counted per connector, channel, scope and reason (once the runner has applied the outcomes); no address in any label.
    const counted = async () => (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('omnibus_messages_suppressed_total{')).sort();
    const expected = [
      'omnibus_messages_suppressed_total{connector="texts",channel="sms",scope="all",reason="stop"} 2',
      'omnibus_messages_suppressed_total{connector="texts",channel="sms",scope="marketing",reason="manual"} 1',
    ];
    await eventually(async () => (JSON.stringify(await counted()) === JSON.stringify(expected) ? true : undefined), 'the suppressed counted').catch(async () => {
      expect(await counted()).toEqual(expected);
    });
    const exposition = await metrics.registry.metrics();
    expect(exposition).not.toMatch(/3361|3362|3363/);
  });

  it("stores what the provider says about an address, so the next message to it is kept back", async () => {
    const topic = `optout-${suffix}`;
    await store.createTopic(newTopic({ name: topic, shards: 1 }));
    const received: SinkRecord[] = [];
    await start(textSink(received), { name: 'optout', topics: topic });
    const number = '+447700900123';
    const [first] = (await producer.produce(topic, [{ key: number, value: { to: number, optedOut: true } }])).map((p) => p.id);
    expect(await settled('optout', [first!])).toEqual(['failed']);
    expect(await store.findSuppressions('sms', [number])).toEqual([
      expect.objectContaining({ address: number, category: 'all', reason: 'opted-out', code: '21610', connector: 'optout' }),
    ]);
    const next = (await producer.produce(topic, [{ key: number, value: { to: number } }, { key: number, value: { to: number }, critical: true }])).map((p) => p.id);
    expect(await settled('optout', next)).toEqual(['suppressed', 'suppressed']);
    expect(received.map((r) => r.id)).toEqual([first]);
  });
});
