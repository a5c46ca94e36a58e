// A consumer's backlog on a virtual clock, on both stores: what it has read and not finished
// is counted in memory, what lies past its read position is counted (positions only) once it
// falls behind, each entry once, and everything is 0 again once it has caught up and finished.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSUMER_OPTIONS, PollBudget, ShardConsumer, type ConsumerOptions } from '../../src/bus/consumer.ts';
import { routeKey } from '../../src/bus/shard.ts';
import { LanedConsumer, laneView } from '../../src/bus/priority-lanes.ts';
import { UnreadCount } from '../../src/bus/shard-backlog.ts';
import { PRIORITY_HEADER, type Message, type Store } from '../../src/store/port.ts';
import { cqlStore, lmdbStore, quietLogger, type StoreHandle } from './helpers.ts';

const OPTIONS: ConsumerOptions = { ...DEFAULT_CONSUMER_OPTIONS, fetchLimit: 10, backlogCountEveryMs: 1000 };

const stores: Array<[string, () => Promise<StoreHandle>]> = [
  ['LMDB', lmdbStore],
  ['Cassandra', () => cqlStore('bus_backlog')],
];

describe.each(stores)('a shard consumer on %s knows its backlog', (_kind, openHandle) => {
  let handle: StoreHandle;
  let store: Store;
  /** Entries counted by the counts themselves: positions read, or counted by the store (LMDB counts natively). */
  let scanned = 0;
  // Recent enough for the CQL store's TTLs (the topic's retention from the write).
  const T0 = Math.floor(Date.now() / 1000) * 1000 - 600_000;

  beforeAll(async () => {
    handle = await openHandle();
    store = new Proxy(handle.store, {
      get(target, property, receiver) {
        if (property === 'scanBuffer') {
          return async (...args: Parameters<Store['scanBuffer']>) => {
            const positions = await target.scanBuffer(...args);
            scanned += positions.length;
            return positions;
          };
        }
        if (property === 'countBuffer' && target.countBuffer) {
          return async (...args: Parameters<NonNullable<Store['countBuffer']>>) => {
            const entries = await target.countBuffer!(...args);
            scanned += entries;
            return entries;
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
  });
  afterAll(async () => handle?.close());

  const message = (topic: string, id: string, ts: number): Message => {
    const key = `user-${id}`;
    return { id, topic, key, ...routeKey(key, 1), value: { id }, headers: {}, createdAt: ts };
  };
  const append = (topic: string, from: number, count: number, at: (i: number) => number) =>
    store.appendMessages(Array.from({ length: count }, (_, i) => message(topic, `${topic}-${String(from + i).padStart(3, '0')}`, at(from + i))));

  it('counts what it read and what it has not read yet, each entry once, until it has caught up', async () => {
    await store.createTopic({ name: 'behind', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    const topic = (await store.getTopic('behind'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, OPTIONS, quietLogger());
    await consumer.open(-Infinity, T0);
    await append('behind', 0, 40, (i) => T0 + i);
    expect(consumer.backlog()).toEqual({ waiting: 0, oldestTs: undefined });

    // A full first page: behind. What it read waits in memory; the rest is counted once.
    let now = T0 + 1000;
    const first = await consumer.read(now, 10);
    expect(first).toHaveLength(10);
    expect(consumer.backlog()).toEqual({ waiting: 10, oldestTs: T0 });
    scanned = 0;
    await consumer.countBacklog(now);
    expect(consumer.backlog()).toEqual({ waiting: 40, oldestTs: T0 });
    expect(scanned).toBe(30);

    // Ten finished, nine more read out of the counted range (a page starts at the last one read, inclusive).
    for (const { message: m } of first) consumer.complete(m.id);
    const second = await consumer.read(now, 10);
    expect(second.map((d) => d.message.createdAt)).toEqual(Array.from({ length: 9 }, (_, i) => T0 + 10 + i));
    expect(consumer.backlog()).toEqual({ waiting: 30, oldestTs: T0 + 10 });

    // New arrivals are counted at the next count (not sooner than backlogCountEveryMs), and only they.
    await append('behind', 40, 5, (i) => T0 + 1500 + i);
    scanned = 0;
    await consumer.countBacklog(now + 500);
    expect(consumer.backlog().waiting).toBe(30);
    now = T0 + 2100;
    await consumer.countBacklog(now);
    expect(consumer.backlog()).toEqual({ waiting: 35, oldestTs: T0 + 10 });
    expect(scanned).toBe(5);

    // Read and finish everything: caught up, nothing waits.
    for (let round = 0; round < 10; round++) {
      const found = await consumer.read(now, 10);
      for (const d of found) consumer.complete(d.message.id);
      for (const d of second) consumer.complete(d.message.id);
      if (found.length === 0) break;
    }
    expect(consumer.backlog()).toEqual({ waiting: 0, oldestTs: undefined });
    scanned = 0;
    await consumer.countBacklog(now + 5000);
    expect(scanned).toBe(0);
  });

  it('counts what arrives at a paused consumer, which reads nothing', async () => {
    await store.createTopic({ name: 'paused', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    const topic = (await store.getTopic('paused'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, OPTIONS, quietLogger());
    await consumer.open(-Infinity, T0);
    expect(await consumer.read(T0 + 100, 10)).toEqual([]);
    await append('paused', 0, 7, (i) => T0 + 200 + i);
    await consumer.countBacklog(T0 + 1000, true);
    const { waiting, oldestTs } = consumer.backlog();
    expect(waiting).toBe(7);
    // Not read: dated by the read position, no later than the oldest of them.
    expect(oldestTs).toBeLessThanOrEqual(T0 + 200);
    expect(oldestTs).toBeGreaterThanOrEqual(T0);
    // Resumed: it reads them, and once they are finished nothing waits.
    const found = await consumer.read(T0 + 1100, 10);
    expect(found).toHaveLength(7);
    expect(consumer.backlog()).toEqual({ waiting: 7, oldestTs: T0 + 200 });
    for (const d of found) consumer.complete(d.message.id);
    expect(consumer.backlog()).toEqual({ waiting: 0, oldestTs: undefined });
  });

  it('counts over pages that end inside a millisecond, each entry once', async () => {
    await store.createTopic({ name: 'paged', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    const counter = new UnreadCount((from, to, limit) => store.scanBuffer('paged', 0, from, to, limit), {
      countEveryMs: 0,
      countPageLimit: 4,
      countPagesPerRound: 100,
    });
    // Three entries per millisecond: pages of four end inside a millisecond.
    await append('paged', 0, 60, (i) => T0 + Math.floor(i / 3));
    counter.afterHotRead(true, T0 - 1, []);
    await counter.refresh(T0 + 1000, T0 + 1000, T0 - 1);
    expect(counter.count).toBe(60);
    // Nine in one millisecond fill a page of four whole: it is read again, larger.
    await append('paged', 60, 9, () => T0 + 1500);
    await counter.refresh(T0 + 2000, T0 + 2000, T0 - 1);
    expect(counter.count).toBe(69);
    // A hot read takes 20 of the counted ones.
    counter.afterHotRead(true, T0 + 6, Array.from({ length: 20 }, (_, i) => T0 + Math.floor(i / 3)));
    expect(counter.count).toBe(49);
  });

  it('counts while hot reads go on: what they take meanwhile is subtracted, and a count they outran is dropped', async () => {
    await store.createTopic({ name: 'racing', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    await append('racing', 0, 30, (i) => T0 + 100 + i);
    // The store's own count (native on LMDB, positions on Cassandra), held back until the test lets it land.
    let release: (() => void) | undefined;
    const held = async <T>(result: Promise<T>): Promise<T> => {
      const value = await result;
      await new Promise<void>((resolve) => (release = resolve));
      return value;
    };
    /** Lets the count under way land, once the store has answered it. */
    const land = async () => {
      while (!release) await new Promise((resolve) => setTimeout(resolve, 5));
      release();
      release = undefined;
    };
    const counter = new UnreadCount(
      (from, to, limit) => held(store.scanBuffer('racing', 0, from, to, limit)),
      { countEveryMs: 0, countPageLimit: 1000, countPagesPerRound: 1 },
      store.countBuffer ? (from, to) => held(store.countBuffer!('racing', 0, from, to)) : undefined,
    );
    const times = (from: number, count: number) => Array.from({ length: count }, (_, i) => T0 + from + i);
    counter.afterHotRead(true, T0, []);

    // Ten of the thirty are taken while they are being counted.
    let counting = counter.refresh(T0 + 1000, T0 + 1000, T0);
    counter.afterHotRead(true, T0 + 109, times(100, 10));
    await land();
    await counting;
    expect(counter.count).toBe(20);
    counter.afterHotRead(true, T0 + 119, times(110, 10));
    expect(counter.count).toBe(10);

    // The consumer catches up while a count runs: it is dropped, nothing waits.
    await append('racing', 30, 5, (i) => T0 + 1100 + i);
    counting = counter.refresh(T0 + 2000, T0 + 2000, T0 + 119);
    counter.afterHotRead(false, T0 + 1900, times(120, 10).concat(times(1100, 5)));
    await land();
    await counting;
    expect(counter.count).toBe(0);
    expect(counter.isBehind).toBe(false);
  });

  it("counts a priority lane's backlog from the lane's own entries, not the whole buffer's", async () => {
    // A lane's view must not offer the store's native count: that counts the buffer, normal messages and all.
    expect(laneView(store, 'high', OPTIONS.overlapMs).countBuffer).toBeUndefined();
    await store.createTopic({ name: 'laned', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    const topic = (await store.getTopic('laned'))!;
    const consumer = new LanedConsumer(store, 'c', topic, 0, OPTIONS, quietLogger(), new PollBudget());
    await consumer.open(-Infinity, T0);
    // Thirty normal messages, and twelve high ones among them (every third millisecond from T0 + 1).
    await store.appendMessages(
      Array.from({ length: 42 }, (_, i) => {
        const high = i % 3 === 1 && i < 36;
        return { ...message('laned', `laned-${String(i).padStart(3, '0')}`, T0 + i), headers: high ? { [PRIORITY_HEADER]: 'high' } : ({} as Record<string, string>) };
      }),
    );
    // The high lane reads a full page of five: it is behind, and the seven after them are counted from its lane.
    const now = T0 + 1000;
    const { found } = await consumer.read(now, ['high'], () => 5);
    expect(found.map((d) => d.message.headers[PRIORITY_HEADER])).toEqual(Array(5).fill('high'));
    await consumer.countBacklog(now);
    expect(consumer.backlog()).toEqual({ waiting: 12, oldestTs: T0 + 1 });
  });
});
