// Message priorities (bus/priority-lanes.ts) on LMDB and on Cassandra: a high message is read
// from its lane ahead of a normal backlog behind a slow sink, lanes keep their positions across
// a restart, nothing is handed over twice, and an unknown priority stores nothing. The sink is
// gated by the test (it takes a batch only when the test lets it), so what is asserted is the
// order of hand-offs, not how long anything took.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SinkRecord } from '@omnibus/sdk';
import { pickLanes } from '../../src/bus/priority-lanes.ts';
import { Producer } from '../../src/bus/producer.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import type { SinkRunner } from '../../src/bus/sink-runner.ts';
import { newTopic } from '../../src/bus/topics.ts';
import { laneName, PRIORITY_HEADER, type Priority, type Store } from '../../src/store/port.ts';
import { cqlStore, delay, eventually, lmdbStore, recordingSink, rejection, testSinkRunner, type StoreHandle } from './helpers.ts';

const BATCH = 10;
const SHARDS = 2;

/** A sink that hands each batch over only when the test releases it. */
function gatedSink() {
  let released = 0;
  let waiters: Array<() => void> = [];
  const sink = recordingSink(async () => {
    while (released === 0) await new Promise<void>((resolve) => waiters.push(resolve));
    return { status: 'sent' };
  });
  let batchOpen = false;
  return {
    ...sink,
    /** Lets one more batch through (the whole batch: records of one put pass together). */
    release(): void {
      released = 1;
      batchOpen = true;
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
      // Closed again once this turn's records have passed.
      setTimeout(() => {
        if (batchOpen) released = 0;
        batchOpen = false;
      }, 0);
    },
    open(): void {
      batchOpen = false;
      released = Number.POSITIVE_INFINITY;
      for (const wake of waiters.splice(0)) wake();
    },
  };
}

const priorityOfRecord = (record: SinkRecord): Priority => (record.headers[PRIORITY_HEADER] as Priority | undefined) ?? 'normal';

const stores: Array<[string, () => Promise<StoreHandle>]> = [
  ['lmdb', lmdbStore],
  ['cql', () => cqlStore('bus_priorities')],
];

describe('pickLanes', () => {
  it('takes the highest priority first and gives a waiting lower one one record in ten', () => {
    const skipped: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
    const picks = pickLanes(30, { high: 100, normal: 100, low: 100 }, skipped);
    expect(picks.slice(0, 9)).toEqual(Array(9).fill('high'));
    expect(picks[9]).toBe('normal');
    expect(picks.filter((p) => p === 'high').length).toBeGreaterThanOrEqual(22);
    // No eleven picks in a row leave out a lower lane that waits (two overdue at once go one after the other).
    for (let i = 0; i + 11 <= picks.length; i++) {
      expect(picks.slice(i, i + 11)).toContain('normal');
      expect(picks.slice(i, i + 11)).toContain('low');
    }
    // The runs carry over: a lower lane is not reset by a batch boundary.
    expect(pickLanes(3, { high: 0, normal: 5, low: 0 }, { high: 0, normal: 0, low: 0 })).toEqual(['normal', 'normal', 'normal']);
    expect(pickLanes(5, { high: 1, normal: 0, low: 1 }, { high: 0, normal: 0, low: 0 })).toEqual(['high', 'low']);
  });
});

describe.each(stores)('message priorities on %s', (_name, open) => {
  let handle: StoreHandle;
  let store: Store;
  let signals: ShardSignals;
  let producer: Producer;
  let counter = 0;
  const runners: SinkRunner[] = [];

  beforeAll(async () => {
    handle = await open();
    store = handle.store;
    signals = new ShardSignals();
    producer = new Producer({ store, signals });
  }, 120_000);
  afterAll(async () => {
    for (const runner of runners) await runner.stop().catch(() => undefined);
    await handle?.close();
  });

  const fresh = async () => {
    const topic = `prio-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    await store.createTopic({ ...newTopic({ name: topic, shards: SHARDS }), createdAt: Date.now() - 1000 });
    return topic;
  };
  const produce = async (topic: string, count: number, priority: Priority | undefined, tag: string) => {
    for (let from = 0; from < count; from += 500) {
      const items = Array.from({ length: Math.min(500, count - from) }, (_, i) => ({
        key: `k${(from + i) % 37}`,
        value: { tag, n: from + i },
        ...(priority ? { priority } : {}),
      }));
      await producer.produce(topic, items);
    }
  };
  const runner = async (topic: string, connector: ReturnType<typeof gatedSink>['connector'], name: string) => {
    const started = testSinkRunner(connector, { name, topics: topic, 'batch.size': String(BATCH) }, { store, producer, signals });
    runners.push(started);
    await started.start();
    return started;
  };
  /** Releases batches until `done` holds. */
  const drive = async (sink: ReturnType<typeof gatedSink>, done: () => boolean, what: string) => {
    await eventually(
      async () => {
        sink.release();
        await delay(5);
        return done();
      },
      what,
      120_000,
    );
  };

  /** Stops the runner, letting through the batch it may be waiting on. */
  const stopGated = async (started: SinkRunner, sink: ReturnType<typeof gatedSink>) => {
    let stopped = false;
    const stopping = started.stop().finally(() => void (stopped = true));
    while (!stopped) {
      sink.release();
      await delay(5);
    }
    await stopping;
  };

  it('hands high messages over before the rest of a normal backlog, and low ones mostly after it', async () => {
    const topic = await fresh();
    const sink = gatedSink();
    await produce(topic, 1000, undefined, 'backlog');
    await produce(topic, 20, 'low', 'late');
    const connector = `prio-sink-${counter}`;
    await runner(topic, sink.connector, connector);
    await drive(sink, () => sink.received.length >= 3 * BATCH, 'the first batches');

    const normalsBefore = sink.received.filter((r) => priorityOfRecord(r) === 'normal').length;
    await produce(topic, 20, 'high', 'otp');
    await drive(sink, () => sink.received.filter((r) => priorityOfRecord(r) === 'high').length === 20, 'every high message');
    const normalsAfter = sink.received.filter((r) => priorityOfRecord(r) === 'normal').length;
    // Behind 1,000 normal ones: what went between is what was in flight and queued (a few batches), not the backlog.
    expect(normalsAfter - normalsBefore).toBeLessThanOrEqual(12 * BATCH);
    expect(normalsAfter).toBeLessThan(500);

    sink.open();
    await eventually(() => sink.received.length === 1040, 'the whole backlog', 120_000);
    const ids = sink.received.map((r) => r.id);
    expect(new Set(ids).size).toBe(1040);
    // While normal ones waited, low ones had at most one record in ten (and so were not starved either).
    const lastNormal = sink.received.findLastIndex((r) => priorityOfRecord(r) === 'normal');
    let lows = 0;
    for (let i = 0; i <= lastNormal; i++) {
      if (priorityOfRecord(sink.received[i]!) === 'low') lows += 1;
      expect(lows).toBeLessThanOrEqual(Math.floor((i + 1) / 10) + 1);
    }
    expect(lows).toBe(20);
    // Per key, order holds within each priority.
    for (const priority of ['normal', 'high', 'low'] as const) {
      const lastByKey = new Map<string, number>();
      for (const r of sink.received.filter((x) => priorityOfRecord(x) === priority)) {
        const n = (r.value as { n: number }).n;
        expect(n).toBeGreaterThan(lastByKey.get(r.key) ?? -1);
        lastByKey.set(r.key, n);
      }
    }
  }, 240_000);

  it('keeps each lane where it was across a restart: the high ones produced meanwhile still go first, none twice', async () => {
    const topic = await fresh();
    const connector = `prio-restart-${counter}`;
    const first = gatedSink();
    await produce(topic, 600, undefined, 'backlog');
    await produce(topic, 10, 'high', 'otp-1');
    const runnerA = await runner(topic, first.connector, connector);
    await drive(first, () => first.received.filter((r) => priorityOfRecord(r) === 'high').length === 10 && first.received.length >= 5 * BATCH, 'the first highs');
    await stopGated(runnerA, first);
    const delivered = first.received.length;
    expect(delivered).toBeLessThan(610);
    for (let shard = 0; shard < SHARDS; shard++) {
      expect(await store.getWatermark(connector, laneName(topic, 'high'), shard)).toBeGreaterThan(0);
    }

    await produce(topic, 10, 'high', 'otp-2');
    const second = gatedSink();
    await runner(topic, second.connector, connector);
    await drive(second, () => second.received.filter((r) => (r.value as { tag: string }).tag === 'otp-2').length === 10, 'the highs produced while stopped');
    const normalsBeforeHighs = second.received.filter((r) => priorityOfRecord(r) === 'normal').length;
    expect(normalsBeforeHighs).toBeLessThanOrEqual(12 * BATCH);
    // The first highs were not handed over again.
    expect(second.received.filter((r) => (r.value as { tag: string }).tag === 'otp-1')).toEqual([]);

    second.open();
    await eventually(() => delivered + second.received.length === 620, 'the rest', 120_000);
    const ids = [...first.received, ...second.received].map((r) => r.id);
    expect(new Set(ids).size).toBe(620);
  }, 240_000);

  it('refuses an unknown priority with the field named, storing nothing of the batch', async () => {
    const topic = await fresh();
    const error = await rejection(
      producer.produce(topic, [
        { key: 'a', value: 1, priority: 'high' },
        { key: 'b', value: 2, priority: 'urgent' },
        { key: 'c', value: 3, headers: { [PRIORITY_HEADER]: 'HIGH' } },
      ]),
    );
    expect(error.code).toBe('OMNI_ERR_BUS_MESSAGES_INVALID');
    expect(error.status).toBe(422);
    expect(error.details).toMatchObject({
      errors: [
        { index: 1, field: 'priority', message: 'must be one of high, normal, low' },
        { index: 2, field: 'priority', message: 'must be one of high, normal, low' },
      ],
    });
    for (let shard = 0; shard < SHARDS; shard++) {
      expect(await store.readBuffer(topic, shard, 0, Date.now() + 60_000, 10)).toEqual([]);
      expect(await store.scanPriorityLane(topic, shard, 'high', 0, Date.now() + 60_000, 10)).toEqual([]);
    }
  });
});
