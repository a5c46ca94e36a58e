// The read path of one shard on a virtual clock (every read is given its `now`): hot reads hand
// entries over once, the first re-read finds a write that landed out of order within moments,
// the last sweep finds one that landed later still, and no entry is read more than three times
// (plus page boundaries) however many reads there are.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSUMER_OPTIONS, ShardConsumer, type ConsumerOptions } from '../../src/bus/consumer.ts';
import { routeKey } from '../../src/bus/shard.ts';
import { positionOf, type Message, type Store } from '../../src/store/port.ts';
import { lmdbStore, quietLogger, type StoreHandle } from './helpers.ts';

const T0 = 1_700_000_000_000;
const OPTIONS: ConsumerOptions = {
  ...DEFAULT_CONSUMER_OPTIONS,
  overlapMs: 1000,
  confidenceMs: 100,
  recheckAfterMs: 250,
  recheckIntervalMs: 100,
  sweepIntervalMs: 200,
  fetchLimit: 10,
};

describe('shard consumer', () => {
  let handle: StoreHandle;
  /** How many times each id came back from readBuffer. */
  const reads = new Map<string, number>();
  let store: Store;

  beforeAll(async () => {
    handle = await lmdbStore();
    store = new Proxy(handle.store, {
      get(target, property, receiver) {
        // Hot reads read messages whole; sweeps read positions only.
        if (property === 'readBuffer') {
          return async (...args: Parameters<Store['readBuffer']>) => {
            const entries: Message[] = await target.readBuffer(...args);
            for (const e of entries) reads.set(e.id, (reads.get(e.id) ?? 0) + 1);
            return entries;
          };
        }
        if (property === 'scanBuffer') {
          return async (...args: Parameters<Store['scanBuffer']>) => {
            const positions = await target.scanBuffer(...args);
            for (const p of positions) reads.set(p.messageId, (reads.get(p.messageId) ?? 0) + 1);
            return positions;
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    await store.createTopic({ name: 'late', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    await store.createTopic({ name: 'backlog', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    await store.createTopic({ name: 'short', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    await store.createTopic({ name: 'probed', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    await store.createTopic({ name: 'woken', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
  });
  afterAll(async () => handle?.close());

  const message = (id: string, ts: number, topic = 'late'): Message => {
    const key = `user-${id}`;
    return { id, topic, key, ...routeKey(key, 1), value: { id }, headers: {}, createdAt: ts };
  };

  it('hands every entry over once, finds late writes with its re-reads, and reads each entry about three times', async () => {
    const topic = (await store.getTopic('late'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, OPTIONS, quietLogger());
    await consumer.open(0, T0);
    await store.appendMessages(Array.from({ length: 25 }, (_, i) => message(`m${String(i).padStart(2, '0')}`, T0 + i)));

    const handedOver: string[] = [];
    const foundLate = new Map<string, string>();
    const readAt = async (now: number) => {
      // Pages of 10: read until a page is not full, as the runner does when it polls again at once.
      for (let page = 0; page < 20; page++) {
        const found = await consumer.read(now);
        for (const { message: m, late } of found) {
          handedOver.push(m.id);
          if (late) foundLate.set(m.id, late);
          consumer.complete(m.id);
        }
        if (consumer.nextPollAt > now) return;
      }
    };
    await readAt(T0 + 200);
    expect(handedOver).toEqual(Array.from({ length: 25 }, (_, i) => `m${String(i).padStart(2, '0')}`));

    // A write stamped T0 + 50 lands after the hot reads have passed that time: the first re-read
    // finds it once it is 250 ms old.
    await store.appendMessages([message('soon', T0 + 50)]);
    await readAt(T0 + 260);
    expect(handedOver).not.toContain('soon');
    await readAt(T0 + 400);
    expect(handedOver.filter((id) => id === 'soon')).toEqual(['soon']);

    // A write stamped T0 + 600 lands at T0 + 1200, after the first re-read passed T0 + 600: the
    // last sweep finds it once it is `overlap` (1000 ms) old.
    for (let now = T0 + 550; now <= T0 + 1150; now += 150) await readAt(now);
    await store.appendMessages([message('late', T0 + 600)]);
    await readAt(T0 + 1250);
    await readAt(T0 + 1450);
    expect(handedOver).not.toContain('late');
    for (let now = T0 + 1600; now <= T0 + 4000; now += 150) await readAt(now);
    expect(handedOver.filter((id) => id === 'late')).toEqual(['late']);
    expect(handedOver).toHaveLength(27);
    // Each is said to be late, and by which re-read (the runner counts them: omnibus_bus_late_entries_total).
    expect(Object.fromEntries(foundLate)).toEqual({ soon: 'recheck', late: 'sweep' });

    // Three times each (hot read, first re-read, last sweep), plus the last millisecond of a full page, read again by the next page.
    const total = [...reads.values()].reduce((sum, n) => sum + n, 0);
    expect(total).toBeLessThanOrEqual(3 * reads.size + 8);
    expect([...reads.keys()].sort()).toEqual([...handedOver].sort());
  });

  it('reads a backlog older than the sweeps look at once (but for page boundaries)', async () => {
    const topic = (await store.getTopic('backlog'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, OPTIONS, quietLogger());
    await consumer.open(0, T0);
    const ids = Array.from({ length: 95 }, (_, i) => `b${String(i).padStart(2, '0')}`);
    await store.appendMessages(ids.map((id, i) => message(id, T0 - 30_000 + i * 100, 'backlog')));
    reads.clear();
    const handedOver: string[] = [];
    for (let now = T0; now <= T0 + 3000; now += 100) {
      for (let page = 0; page < 30; page++) {
        for (const { message: m } of await consumer.read(now)) {
          handedOver.push(m.id);
          consumer.complete(m.id);
        }
        if (consumer.nextPollAt > now) break;
      }
    }
    expect(handedOver).toEqual(ids);
    // Once each, but for the last entry of each full page, which starts the next one (paging is by time).
    const total = [...reads.values()].reduce((sum, n) => sum + n, 0);
    expect(total).toBeLessThanOrEqual(ids.length + Math.ceil(ids.length / OPTIONS.fetchLimit));
    expect(Math.max(...reads.values())).toBeLessThanOrEqual(2);
  });

  it('reads no more than a hot read is asked for, and carries on where it stopped', async () => {
    const topic = (await store.getTopic('short'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, OPTIONS, quietLogger());
    await consumer.open(0, T0);
    const ids = Array.from({ length: 9 }, (_, i) => `s${i}`);
    await store.appendMessages(ids.map((id, i) => message(id, T0 + 10 + i, 'short')));
    const handedOver = async (limit: number) => (await consumer.read(T0 + 200, limit)).map((d) => d.message.id);
    expect(await handedOver(4)).toEqual(['s0', 's1', 's2', 's3']);
    expect(consumer.nextPollAt).toBe(T0 + 200); // a full page: poll again at once
    // Paging is by time: the next page starts at the last one's millisecond (s3, known already).
    expect(await handedOver(4)).toEqual(['s4', 's5', 's6']);
    expect(await handedOver(4)).toEqual(['s7', 's8']);
    expect(consumer.nextPollAt).toBeGreaterThan(T0 + 200);
    // Six entries in one millisecond fill a page of 4 by themselves: it is widened, not cut.
    const crowd = Array.from({ length: 6 }, (_, i) => `c${i}`);
    await store.appendMessages(crowd.map((id) => message(id, T0 + 100, 'short')));
    expect(await handedOver(4)).toEqual(crowd);
    // That shard's hot reads stay widened: the next asks for 16, not 4 then 16 again.
    await store.appendMessages(Array.from({ length: 10 }, (_, i) => message(`d${i}`, T0 + 110 + i, 'short')));
    expect(await handedOver(4)).toEqual(Array.from({ length: 10 }, (_, i) => `d${i}`));
  });

  it('a wake carrying where a slow local write landed hands it over at the next hot read, not at a re-read, and never twice', async () => {
    const topic = (await store.getTopic('woken'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, OPTIONS, quietLogger());
    await consumer.open(0, T0);
    // As the sink runner does: an entry counts as finished once its outcome is stored.
    const handOver = async (now: number) => {
      const found = await consumer.read(now);
      await store.putDeliveries(found.map(({ message: m }) => ({ ...positionOf(m), connector: 'c', state: 'sent', attempts: 1, epoch: 1, workerId: 'w', updatedAt: now })));
      for (const { message: m } of found) consumer.complete(m.id);
      return found.map((d) => d.message.id);
    };
    await store.appendMessages([message('first', T0 + 10, 'woken')]);
    expect(await handOver(T0 + 100)).toEqual(['first']);
    expect(await handOver(T0 + 200)).toEqual([]);
    // Stamped T0 + 50, acknowledged only now (150 ms later, past `confidence`): the hot reads
    // have moved on to T0 + 100. Without a wake, only the first re-read would find it (at 250 ms old).
    await store.appendMessages([message('slow', T0 + 50, 'woken')]);
    expect(await handOver(T0 + 210)).toEqual([]);
    consumer.wake(T0 + 50);
    const found = await consumer.read(T0 + 220);
    expect(found.map((d) => d.message.id)).toEqual(['slow']);
    expect(found[0]!.late).toBeUndefined();
    await store.putDeliveries([{ ...positionOf(found[0]!.message), connector: 'c', state: 'sent', attempts: 1, epoch: 1, workerId: 'w', updatedAt: T0 + 220 }]);
    consumer.complete('slow');
    for (let now = T0 + 300; now <= T0 + 3000; now += 100) expect(await handOver(now)).toEqual([]);
    // The watermark write forgets the ids handled long ago (their entries are below every read
    // to come); a wake from far back reads them again and finds them handled in the deliveries
    // table: nothing twice.
    await consumer.flush(T0 + 3000, true);
    consumer.wake(T0 - 50_000);
    expect(await handOver(T0 + 3100)).toEqual([]);
  });

  it('a write acknowledged seconds after its stamp (a node paused mid-write) is handed over once, however far behind the reads it lands', async () => {
    await store.createTopic({ name: 'paused', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    const topic = (await store.getTopic('paused'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, { ...OPTIONS, fetchLimit: 4 }, quietLogger());
    await consumer.open(0, T0);
    const handedOver: string[] = [];
    const handOver = async (now: number, limit?: number) => {
      const found = await consumer.read(now, limit);
      await store.putDeliveries(found.map(({ message: m }) => ({ ...positionOf(m), connector: 'c', state: 'sent', attempts: 1, epoch: 1, workerId: 'w', updatedAt: now })));
      for (const { message: m } of found) {
        handedOver.push(m.id);
        consumer.complete(m.id);
      }
      await consumer.flush(now);
    };
    // A steady stream, one entry every 100 ms, read as it comes.
    let now = T0;
    let n = 0;
    const stream = async (until: number) => {
      for (; now < until; now += 100) {
        await store.appendMessages([message(`steady-${n++}`, now, 'paused')]);
        await handOver(now + 150);
      }
    };
    await stream(T0 + 3000);
    // Ten entries stamped T0 + 3000, acknowledged 5 s later (longer than the overlap): the
    // watermark and the sweeps are past them when the producer's wake says where they landed.
    await stream(T0 + 8000);
    await store.appendMessages(Array.from({ length: 10 }, (_, i) => message(`slow-${i}`, T0 + 3000, 'paused')));
    consumer.wake(T0 + 3000);
    // The rewound read pages through 5 s of entries already handed over, 4 at a time, while the
    // stream goes on and the watermark is written (which forgets old ids).
    for (let i = 0; i < 40; i++) {
      await store.appendMessages([message(`steady-${n++}`, now, 'paused')]);
      await handOver(now + 150, 4);
      now += 100;
    }
    await consumer.flush(now, true);
    for (let i = 0; i < 40; i++, now += 100) await handOver(now + 150);
    const counts = new Map<string, number>();
    for (const id of handedOver) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts].filter(([, c]) => c > 1)).toEqual([]);
    expect(Array.from({ length: 10 }, (_, i) => counts.get(`slow-${i}`))).toEqual(Array(10).fill(1));
    expect(counts.size).toBe(n + 10);
    // The watermark never passed the late entries before they were read.
    expect(consumer.position).toBeGreaterThan(T0 + 3000);
  });

  it("a write another worker acknowledged late is overtaken by its key's next message unless that worker's hint says where it landed", async () => {
    await store.createTopic({ name: 'relayed', shards: 1, retentionMs: 3600_000, createdAt: T0 - 60_000 });
    const topic = (await store.getTopic('relayed'))!;
    const keyed = (id: string, ts: number): Message => ({ ...message(id, ts, 'relayed'), key: 'customer-1', ...routeKey('customer-1', 1) });
    // Two consumers of the shard (two connectors): one gets the producer's hint without where the write landed, one with it.
    const [unhinted, hinted] = [new ShardConsumer(store, 'unhinted', topic, 0, OPTIONS, quietLogger()), new ShardConsumer(store, 'hinted', topic, 0, OPTIONS, quietLogger())];
    for (const consumer of [unhinted, hinted]) {
      await consumer.open(0, T0);
      expect(await consumer.read(T0 + 180)).toEqual([]);
    }
    // Stamped T0 + 50 on another worker, acknowledged at T0 + 190: the reads at T0 + 180 passed it.
    await store.appendMessages([keyed('first', T0 + 50)]);
    hinted.wake(T0 + 50);
    unhinted.wake();
    // The client then produces the key's next message.
    await store.appendMessages([keyed('second', T0 + 200)]);
    const handedOver = async (consumer: ShardConsumer, now: number) => (await consumer.read(now)).map((d) => d.message.id);
    expect(await handedOver(hinted, T0 + 210)).toEqual(['first', 'second']);
    // Without where it landed, only the first re-read finds it: after the key's next message.
    expect(await handedOver(unhinted, T0 + 210)).toEqual(['second']);
    expect(await handedOver(unhinted, T0 + 400)).toEqual(['first']);
  });

  it('a probe of a shard without a lease still sees a write that lands late, then the read hands it over', async () => {
    const topic = (await store.getTopic('probed'))!;
    const consumer = new ShardConsumer(store, 'c', topic, 0, OPTIONS, quietLogger());
    await consumer.open(0, T0);
    expect(await consumer.probe(T0 + 100)).toBe(false);
    expect(await consumer.probe(T0 + 400)).toBe(false);
    // Stamped T0 + 200, visible only now (a slow write): later than `confidence`, within `overlap`.
    await store.appendMessages([message('slow', T0 + 200, 'probed')]);
    expect(await consumer.probe(T0 + 900)).toBe(true);
    expect((await consumer.read(T0 + 900)).map((d) => d.message.id)).toEqual(['slow']);
  });
});
