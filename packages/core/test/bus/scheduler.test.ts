// Messages held until due (`send_at`): the store's due-time tables, the producer's checks, and
// the scheduler that moves due messages into the buffer, on LMDB and on Cassandra. Time is an
// injected clock wherever the test decides what is due; the release itself is real.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer, SEND_AT_HEADER } from '../../src/bus/producer.ts';
import { Scheduler, SCHEDULER_LEASE } from '../../src/bus/scheduler.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import { newTopic } from '../../src/bus/topics.ts';
import type { Message, Store } from '../../src/store/port.ts';
import { cqlStore, eventually, lmdbStore, quietLogger, rejection, type StoreHandle } from './helpers.ts';

const MINUTE = 60_000;

/** A clock the test moves by hand. */
function manualClock(start: number): { now: () => number; set(ms: number): void } {
  let at = start;
  return { now: () => at, set: (ms) => void (at = ms) };
}

/** Every buffer entry of the message with this id, over all shards of the topic. */
async function bufferEntries(store: Store, topic: string, shards: number, id: string): Promise<Message[]> {
  const out: Message[] = [];
  for (let shard = 0; shard < shards; shard++) out.push(...(await store.readBuffer(topic, shard, 0, Date.now() + MINUTE, 100_000)).filter((m) => m.id === id));
  return out;
}

const stores: Array<[string, () => Promise<StoreHandle>]> = [
  ['lmdb', lmdbStore],
  ['cql', () => cqlStore('bus_scheduled')],
];

describe.each(stores)('held messages on %s', (_name, open) => {
  let handle: StoreHandle;
  let store: Store;
  let counter = 0;
  const topicName = () => `sched-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    handle = await open();
    store = handle.store;
  }, 120_000);
  afterAll(async () => handle?.close());

  const message = (topic: string, id: string, createdAt: number): Message => ({
    id,
    topic,
    key: `k-${id}`,
    token: '0',
    shard: 0,
    value: { n: id },
    headers: {},
    createdAt,
  });

  it('the store holds entries by due time: reads only a due span, in (due, id) order, finds by id, removes', async () => {
    const topic = topicName();
    await store.createTopic(newTopic({ name: topic, shards: 1 }));
    const base = Math.floor(Date.now() / MINUTE) * MINUTE + 10 * MINUTE;
    const entries = [
      { message: message(topic, 'b', 1), dueAt: base + 5, reason: 'send_at' as const },
      { message: message(topic, 'a', 1), dueAt: base + 5, reason: 'send_at' as const },
      { message: message(topic, 'c', 1), dueAt: base - 1, reason: 'quiet_hours' as const },
      { message: message(topic, 'far', 1), dueAt: base + 365 * 24 * 60 * MINUTE, reason: 'send_at' as const },
    ];
    await store.putScheduled(entries);
    const due = await store.readDueScheduled(base - MINUTE, base + MINUTE, 10);
    expect(due.map((e) => [e.message.id, e.dueAt, e.reason])).toEqual([
      ['c', base - 1, 'quiet_hours'],
      ['a', base + 5, 'send_at'],
      ['b', base + 5, 'send_at'],
    ]);
    expect(due[0]!.message).toEqual(message(topic, 'c', 1));
    expect((await store.readDueScheduled(base - MINUTE, base + MINUTE, 2)).map((e) => e.message.id)).toEqual(['c', 'a']);
    const found = await store.getScheduled(['far', 'a', 'missing']);
    expect([...found.keys()].sort()).toEqual(['a', 'far']);
    expect(found.get('far')!.dueAt).toBe(base + 365 * 24 * 60 * MINUTE);

    await store.removeScheduled([
      { id: 'a', dueAt: base + 5 },
      { id: 'c', dueAt: base - 1 },
    ]);
    expect((await store.readDueScheduled(base - MINUTE, base + MINUTE, 10)).map((e) => e.message.id)).toEqual(['b']);
    expect([...(await store.getScheduled(['a', 'b', 'c'])).keys()]).toEqual(['b']);
    // Removing what is no longer held does nothing.
    await store.removeScheduled([{ id: 'a', dueAt: base + 5 }]);
    // Held again at another time: found at the new one only.
    await store.putScheduled([{ message: message(topic, 'b', 1), dueAt: base + 2 * MINUTE, reason: 'send_at' }]);
    expect(await store.readDueScheduled(base - MINUTE, base + MINUTE, 10)).toEqual([]);
    expect((await store.getScheduled(['b'])).get('b')!.dueAt).toBe(base + 2 * MINUTE);
  });

  it('the producer checks send_at and expires_at and stores nothing of a rejected batch', async () => {
    const topic = topicName();
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const producer = new Producer({ store });
    const future = Date.now() + 10 * MINUTE;
    const error = await rejection(
      producer.produce(topic, [
        { key: 'a', value: 1, id: 'ok-1', send_at: future },
        { key: 'b', value: 2, send_at: 'tomorrow at nine' },
        { key: 'c', value: 3, send_at: '2030-01-01T09:00:00' },
        { key: 'd', value: 4, send_at: new Date(future).toISOString(), expires_at: new Date(future - 1000).toISOString() },
        { key: 'e', value: 5, send_at: -5 },
      ]),
    );
    expect(error.status).toBe(422);
    expect((error.details as { errors: Array<{ index: number; field: string }> }).errors.map((e) => [e.index, e.field])).toEqual([
      [1, 'send_at'],
      [2, 'send_at'],
      [3, 'expires_at'],
      [4, 'send_at'],
    ]);
    expect((await store.getScheduled(['ok-1'])).size).toBe(0);
  });

  it('a future send_at is held, not buffered; a past one goes to the buffer; a repeated id answers from what is held', async () => {
    const topic = topicName();
    await store.createTopic(newTopic({ name: topic, shards: 2 }));
    const signals = new ShardSignals();
    const producer = new Producer({ store, signals });
    const sendAt = Date.now() + 5 * MINUTE;
    const [held, now] = await producer.produce(topic, [
      { key: 'a', value: 1, id: 'held-1', send_at: new Date(sendAt).toISOString() },
      { key: 'b', value: 2, send_at: Date.now() - 1000 },
    ]);
    expect(held).toMatchObject({ id: 'held-1', send_at: sendAt });
    expect(now!.send_at).toBeUndefined();
    expect((await store.getMessages(['held-1'])).size).toBe(0);
    expect((await store.getMessages([now!.id])).size).toBe(1);
    const entry = (await store.getScheduled(['held-1'])).get('held-1')!;
    expect(entry).toMatchObject({ dueAt: sendAt, reason: 'send_at' });
    expect(entry.message.headers[SEND_AT_HEADER]).toBe(String(sendAt));
    // Idempotent: the same id again answers the held message and holds nothing more.
    const [again] = await producer.produce(topic, [{ key: 'a', value: 1, id: 'held-1', send_at: sendAt + 999 }]);
    expect(again).toEqual(held);
    expect((await store.getScheduled(['held-1'])).get('held-1')!.dueAt).toBe(sendAt);
  });

  it('the scheduler releases a message when due, once, even after a holder died half-way; far-future messages stay held', async () => {
    const topic = topicName();
    await store.createTopic(newTopic({ name: topic, shards: 4 }));
    const clock = manualClock(Date.now());
    const signals = new ShardSignals();
    const producer = new Producer({ store, signals, clock: clock.now });
    const t0 = clock.now();
    const produced = await producer.produce(
      topic,
      Array.from({ length: 20 }, (_, i) => ({ key: `r${i}`, value: { i }, id: `m-${i}-${topic}`, send_at: t0 + 30_000 + i })),
    );
    await producer.produce(topic, [{ key: 'far', value: 'later', id: `far-${topic}`, send_at: t0 + 400 * 24 * 60 * MINUTE }]);
    const ids = produced.map((p) => p.id);

    // A previous holder released the first message and died before it stopped holding it.
    const first = (await store.getScheduled([ids[0]!])).get(ids[0]!)!;
    await producer.releaseScheduled([first]);

    const scheduler = new Scheduler({ store, producer, signals, workerId: `w1-${topic}`, leaseTtlMs: 3000, logger: quietLogger(), clock: clock.now, pageSize: 7 });
    try {
      scheduler.start();
      await eventually(() => scheduler.holding || undefined, 'the scheduler lease');
      // Not due yet: nothing moves.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await store.getScheduled(ids)).size).toBe(20);

      clock.set(t0 + 30_000 + 19);
      scheduler.wake();
      await eventually(async () => ((await store.getScheduled(ids)).size === 0 ? true : undefined), 'every due message released');
      const inBuffer = await store.getMessages(ids);
      expect(inBuffer.size).toBe(20);
      for (const id of ids) expect(await bufferEntries(store, topic, 4, id)).toHaveLength(1);
      expect(scheduler.released).toBe(19);
      const events = await eventually(async () => {
        const all = await store.listEvents(ids[5]!);
        return all.some((e) => e.type === 'released') ? all : undefined;
      }, 'the released event');
      expect(events.find((e) => e.type === 'released')).toMatchObject({ workerId: `w1-${topic}`, detail: { send_at: t0 + 30_000 + 5 } });
      expect((await store.getScheduled([`far-${topic}`])).size).toBe(1);
    } finally {
      await scheduler.stop();
    }
  });

  it('one scheduler at a time: a second worker takes over only when the first stops, and starts where it was', async () => {
    const topic = topicName();
    await store.createTopic(newTopic({ name: topic, shards: 1 }));
    // Ahead of the cursor the previous test's clock left in this store.
    const clock = manualClock(Date.now() + 10 * MINUTE);
    const producer = new Producer({ store, clock: clock.now });
    const make = (workerId: string) => new Scheduler({ store, producer, workerId, leaseTtlMs: 2000, logger: quietLogger(), clock: clock.now });
    const a = make(`a-${topic}`);
    const b = make(`b-${topic}`);
    try {
      a.start();
      await eventually(() => a.holding || undefined, 'a holds the lease');
      b.start();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(b.holding).toBe(false);
      const [held] = await producer.produce(topic, [{ key: 'x', value: 1, id: `x-${topic}`, send_at: clock.now() + 5000 }]);
      await a.stop();
      expect((await store.listLeases(SCHEDULER_LEASE))[0]?.owner).not.toBe(`a-${topic}`);
      clock.set(clock.now() + 6000);
      await eventually(() => b.holding || undefined, 'b takes the lease', 10_000);
      b.wake();
      const released = await eventually(async () => {
        const events = (await store.listEvents(held!.id)).filter((e) => e.type === 'released');
        return events.length > 0 ? events : undefined;
      }, 'b releases it');
      expect(released.map((e) => e.workerId)).toEqual([`b-${topic}`]);
      expect((await store.getMessages([held!.id])).size).toBe(1);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('quiet hours (the topic\'s, or the message\'s own) hold a message produced inside them until they end', async () => {
    const topic = topicName();
    await store.createTopic(newTopic({ name: topic, shards: 2, quietHours: { start: '21:00', end: '08:00', time_zone: 'Europe/Paris' } }));
    expect((await store.getTopic(topic))!.quietHours).toEqual({ start: '21:00', end: '08:00', timeZone: 'Europe/Paris' });
    // 22:30 in Paris, in winter.
    const clock = manualClock(Date.parse('2031-01-15T21:30:00Z'));
    const producer = new Producer({ store, clock: clock.now });
    const [byTopic, ownWindow, optedOut, sendAtInside] = await producer.produce(topic, [
      { key: 'a', value: 1 },
      { key: 'b', value: 2, quiet_hours: { start: '20:00', end: '23:00', time_zone: 'America/New_York' } },
      { key: 'c', value: 3, quiet_hours: false },
      { key: 'd', value: 4, send_at: '2031-01-16T05:00:00Z' },
    ]);
    expect(byTopic!.send_at).toBe(Date.parse('2031-01-16T07:00:00Z'));
    // 16:30 in New York: outside its own window, so it goes at once, the topic's notwithstanding.
    expect(ownWindow!.send_at).toBeUndefined();
    expect(optedOut!.send_at).toBeUndefined();
    // A send_at inside the quiet hours moves to their end.
    expect(sendAtInside!.send_at).toBe(Date.parse('2031-01-16T07:00:00Z'));
    const held = await store.getScheduled([byTopic!.id, sendAtInside!.id]);
    expect([...held.values()].map((e) => e.reason)).toEqual(['quiet_hours', 'quiet_hours']);
    expect((await store.getMessages([ownWindow!.id, optedOut!.id])).size).toBe(2);

    // At 09:00 Paris the same topic sends at once.
    clock.set(Date.parse('2031-01-16T08:00:00Z'));
    const [day] = await producer.produce(topic, [{ key: 'e', value: 5 }]);
    expect(day!.send_at).toBeUndefined();
  });

  it('bad quiet hours are refused with the field named, on a produce and on a topic', async () => {
    const topic = topicName();
    await store.createTopic(newTopic({ name: topic, shards: 1 }));
    const producer = new Producer({ store });
    const error = await rejection(producer.produce(topic, [{ key: 'a', value: 1, id: `qh-${topic}`, quiet_hours: { start: '21:00', end: '08:00', time_zone: 'Europe/Pariss' } }]));
    expect((error.details as { errors: Array<{ field: string }> }).errors.map((e) => e.field)).toEqual(['quiet_hours.time_zone']);
    expect((await store.getMessages([`qh-${topic}`])).size + (await store.getScheduled([`qh-${topic}`])).size).toBe(0);
    const topicError = await rejection(Promise.resolve().then(() => newTopic({ name: 'x', shards: 1, quietHours: { start: '9', end: '08:00', time_zone: 'UTC' } })));
    expect(topicError.status).toBe(400);
    expect(topicError.details).toEqual({ errors: { 'quiet_hours.start': expect.any(String) } });
  });
});
