// Channel fallback on the due-time store, on LMDB and on Cassandra: checked at produce, held
// under an id derived from the original's, dropped when the original reached a cancelling
// state by its deadline, produced once otherwise, and at once when the original failed for good.
// The scheduler's clock is injected; the original's states are written as its sink would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expediteFallbacks, FALLBACK_ID_HEADER, FALLBACK_OF_HEADER, fallbackIdOf } from '../../src/bus/fallback.ts';
import { Producer } from '../../src/bus/producer.ts';
import { Scheduler } from '../../src/bus/scheduler.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import { Metrics } from '../../src/metrics.ts';
import { newTopic } from '../../src/bus/topics.ts';
import type { DeliveryState, Message, Store } from '../../src/store/port.ts';
import { positionOf } from '../../src/store/port.ts';
import { cqlStore, eventually, lmdbStore, quietLogger, rejection, type StoreHandle } from './helpers.ts';

const smsSchema = { type: 'object', required: ['text'], properties: { text: { type: 'string' } } };

describe.each([
  ['lmdb', lmdbStore],
  ['cql', () => cqlStore('bus_fallback')],
] as Array<[string, () => Promise<StoreHandle>]>)('channel fallback on %s', (_name, open) => {
  let handle: StoreHandle;
  let store: Store;
  let at = Date.now();
  const clock = () => at;
  const signals = new ShardSignals();
  let producer: Producer;
  let scheduler: Scheduler;
  const metrics = new Metrics({ defaultMetrics: false });
  const fallbacksCounted = async () =>
    Object.fromEntries((await metrics.fallbacks.get()).values.map((v) => [`${String(v.labels.topic)}/${String(v.labels.outcome)}`, v.value]));
  const wa = `wa-${Math.random().toString(36).slice(2, 8)}`;
  const sms = `sms-${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    handle = await open();
    store = handle.store;
    await store.createTopic(newTopic({ name: wa, shards: 4 }));
    await store.createTopic(newTopic({ name: sms, shards: 4, schema: smsSchema }));
    producer = new Producer({ store, signals, clock });
    scheduler = new Scheduler({ store, producer, signals, workerId: `w-${wa}`, leaseTtlMs: 3000, logger: quietLogger(), clock, metrics });
    scheduler.start();
    await eventually(() => scheduler.holding || undefined, 'the scheduler lease');
  }, 120_000);
  afterAll(async () => {
    await scheduler?.stop();
    await handle?.close();
  });

  /** Writes the original's state at connector `whatsapp`, as its sink (or a receipt) would. */
  async function setState(original: Message, state: DeliveryState): Promise<void> {
    await store.putDeliveries([{ ...positionOf(original), connector: 'whatsapp', state, attempts: 1, epoch: 1, workerId: 'test', updatedAt: Date.now() }]);
  }

  const fallback = (overrides: Record<string, unknown> = {}) => ({ topic: sms, value: { text: 'Your code is 1234' }, after_ms: 60_000, connector: 'whatsapp', ...overrides });

  it('refuses a fallback naming an unknown topic, or a value its topic refuses, with the field named; stores nothing', async () => {
    const error = await rejection(
      producer.produce(wa, [
        { key: '+33600000001', value: { t: 1 }, id: `bad-1-${wa}`, fallback: fallback({ topic: 'no-such-topic' }) },
        { key: '+33600000002', value: { t: 2 }, id: `bad-2-${wa}`, fallback: fallback({ value: { txt: 'typo' } }) },
        { key: '+33600000003', value: { t: 3 }, id: `bad-3-${wa}`, fallback: fallback({ after_ms: undefined }) },
        { key: '+33600000004', value: { t: 4 }, id: `bad-4-${wa}`, fallback: fallback({ unless: ['failed'] }) },
      ]),
    );
    expect(error.status).toBe(422);
    expect((error.details as { errors: Array<{ index: number; field: string }> }).errors.map((e) => [e.index, e.field])).toEqual([
      [0, 'fallback.topic'],
      [1, 'fallback.value'],
      [2, 'fallback.after_ms'],
      [3, 'fallback.unless'],
    ]);
    const ids = [1, 2, 3, 4].flatMap((n) => [`bad-${n}-${wa}`, fallbackIdOf(`bad-${n}-${wa}`)]);
    expect((await store.getMessages(ids)).size + (await store.getScheduled(ids)).size).toBe(0);
  });

  it('at the deadline: produced once for the originals not delivered, dropped for the delivered; the chain reads both ways', async () => {
    at = Date.now();
    const produced = await producer.produce(
      wa,
      Array.from({ length: 10 }, (_, i) => ({ key: `+3361000000${i}`, value: { i }, fallback: fallback({ key: `+3361000000${i}` }) })),
    );
    const originals = await store.getMessages(produced.map((p) => p.id));
    const fallbackIds = produced.map((p) => fallbackIdOf(p.id));
    expect((await store.getScheduled(fallbackIds)).size).toBe(10);
    for (const p of produced) expect(originals.get(p.id)!.headers[FALLBACK_ID_HEADER]).toBe(fallbackIdOf(p.id));
    // Seven delivered or read, three only sent.
    for (const [i, p] of produced.entries()) await setState(originals.get(p.id)!, i < 5 ? 'delivered' : i < 7 ? 'read' : 'sent');

    at += 60_000;
    scheduler.wake();
    await eventually(async () => ((await store.getScheduled(fallbackIds)).size === 0 ? true : undefined), 'every fallback decided');
    const sent = await store.getMessages(fallbackIds);
    expect([...sent.keys()].sort()).toEqual(fallbackIds.slice(7).sort());
    for (const [i, id] of fallbackIds.entries()) {
      if (i < 7) continue;
      const message = sent.get(id)!;
      expect(message).toMatchObject({ topic: sms, key: `+3361000000${i}`, value: { text: 'Your code is 1234' } });
      expect(message.headers[FALLBACK_OF_HEADER]).toBe(produced[i]!.id);
    }
    const cancelled = await eventually(async () => {
      const events = await store.listEvents(produced[0]!.id);
      return events.some((e) => e.type === 'fallback_cancelled') ? events : undefined;
    }, 'the cancellation event');
    expect(cancelled.find((e) => e.type === 'fallback_cancelled')!.detail).toMatchObject({ state: 'delivered', connector: 'whatsapp' });
    await eventually(async () => ((await store.listEvents(produced[9]!.id)).some((e) => e.type === 'fallback') ? true : undefined), 'the fallback event');

    // A late receipt on the first channel is still recorded, and changes nothing any more.
    await setState(originals.get(produced[9]!.id)!, 'delivered');
    expect((await store.getDeliveries('whatsapp', [positionOf(originals.get(produced[9]!.id)!)])).get(produced[9]!.id)!.state).toBe('delivered');
    // Held again (a stale worker's expedite, a retried write): found in the buffer by id, appended nothing twice.
    await store.putScheduled([{ message: { ...sent.get(fallbackIds[9]!)!, createdAt: at }, dueAt: at, reason: 'fallback', fallback: { of: produced[9]!.id, topic: wa, unless: ['delivered', 'read'] } }]);
    scheduler.wake();
    await eventually(async () => ((await store.getScheduled([fallbackIds[9]!])).size === 0 ? true : undefined), 'the repeat dropped');
    let copies = 0;
    for (let shard = 0; shard < 4; shard++) copies += (await store.readBuffer(sms, shard, 0, Date.now() + 3_600_000, 100_000)).filter((m) => m.id === fallbackIds[9]).length;
    expect(copies).toBe(1);
    // Counted once each, by the fallback's topic: the repeat found in the buffer is not counted again.
    expect(await fallbacksCounted()).toEqual({ [`${sms}/produced`]: 3, [`${sms}/cancelled`]: 7 });
  });

  it('a permanent failure of the original releases its fallback at once, before the deadline', async () => {
    // The clock only moves forward (the scheduler's cursor is where the previous test left it).
    at += 1000;
    const [original] = await producer.produce(wa, [{ key: '+33620000000', value: { x: 1 }, fallback: fallback({ after_ms: 3_600_000 }) }]);
    const message = (await store.getMessages([original!.id])).get(original!.id)!;
    await setState(message, 'failed');
    expect(await expediteFallbacks(store, [original!.id, 'no-such-message'], signals, at)).toBe(1);
    const fallbackId = fallbackIdOf(original!.id);
    await eventually(async () => ((await store.getMessages([fallbackId])).size === 1 ? true : undefined), 'the fallback released');
    expect(await expediteFallbacks(store, [original!.id], signals, at)).toBe(0);
  });
});
