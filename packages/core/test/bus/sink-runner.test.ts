import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSpec, defineSinkConnector, type SinkConnector, type SinkRecord, type SinkTaskContext } from '@omnibus/sdk';
import { Producer } from '../../src/bus/producer.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import { routeKey } from '../../src/bus/shard.ts';
import { SinkRunner } from '../../src/bus/sink-runner.ts';
import { NeverHandedOff } from '../../src/bus/sink-reads.ts';
import type { ConsumerOptions } from '../../src/bus/consumer.ts';
import { newTopic } from '../../src/bus/topics.ts';
import FileSink from '../../src/connectors/file-sink.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Store } from '../../src/store/port.ts';
import { cqlStore, deliveriesById, eventually, lmdbStore, quietLogger, recordingSink, type StoreHandle } from './helpers.ts';

const stores: Array<[string, () => Promise<StoreHandle>]> = [
  ['LMDB', lmdbStore],
  ['Cassandra', () => cqlStore('bus_sink')],
];

describe.each(stores)('sink runner on %s', (_kind, openHandle) => {
  let handle: StoreHandle;
  let store: Store;
  let producer: Producer;
  let dir: string;
  const signals = new ShardSignals();
  const runners: SinkRunner[] = [];
  let serial = 0;

  beforeAll(async () => {
    handle = await openHandle();
    store = handle.store;
    producer = new Producer({ store, signals });
    dir = await mkdtemp(join(tmpdir(), 'omnibus-sink-'));
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await handle?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A topic and connector name of the test's own, so tests sharing the store never meet. */
  async function fixture(shards = 4) {
    serial += 1;
    const topic = `t${serial}-${Date.now().toString(36)}`;
    await store.createTopic(newTopic({ name: topic, shards }));
    return { topic, connector: `c${serial}` };
  }

  function runner(
    connector: SinkConnector,
    config: Record<string, string>,
    options: {
      taskId?: number;
      taskCount?: number;
      leaseTtlMs?: number;
      heartbeatMs?: number;
      consumer?: Partial<ConsumerOptions>;
      metrics?: Metrics;
      store?: Store;
      neverHandedOff?: NeverHandedOff;
    } = {},
  ): SinkRunner {
    const r = new SinkRunner(
      { connectorName: config.name!, taskId: options.taskId ?? 0, taskCount: options.taskCount ?? 1, connector, config: { 'connector.class': connector.className, ...config } },
      {
        store: options.store ?? store,
        producer,
        signals,
        metrics: options.metrics ?? new Metrics({ defaultMetrics: false }),
        logger: quietLogger(),
        workerId: '127.0.0.1:8083',
        leaseTtlMs: options.leaseTtlMs ?? 5000,
        heartbeatMs: options.heartbeatMs ?? 500,
        consumer: { pollIdleMs: 200, ...options.consumer },
        ...(options.neverHandedOff ? { neverHandedOff: options.neverHandedOff } : {}),
      },
    );
    runners.push(r);
    return r;
  }

  const produceOne = async (topic: string, item: { key: string; value: unknown; headers?: Record<string, string> }) =>
    (await producer.produce(topic, [item]))[0]!.id;

  const deliveryOf = async (connector: string, id: string) => (await deliveriesById(store, connector, [id])).get(id);

  it('hands every message to FileSink exactly once, in produce order per key, across tasks', async () => {
    const { topic, connector } = await fixture(8);
    const file = join(dir, `${connector}.jsonl`);
    const config = { name: connector, topics: topic, file, 'batch.size': '50' };
    // Some messages exist before the connector starts: a new sink delivers what is still buffered.
    const keys = Array.from({ length: 12 }, (_, i) => `user-${i}@example.org`);
    const ids: string[] = [];
    const produceRound = async (round: number) => {
      const produced = await producer.produce(
        topic,
        keys.map((key) => ({ key, value: { round } })),
      );
      ids.push(...produced.map((p) => p.id));
    };
    await produceRound(0);
    const tasks = [runner(FileSink as SinkConnector, config, { taskId: 0, taskCount: 2 }), runner(FileSink as SinkConnector, config, { taskId: 1, taskCount: 2 })];
    await Promise.all(tasks.map((t) => t.start()));
    for (let round = 1; round < 10; round++) await produceRound(round);

    const lines = await eventually(async () => {
      const text = await readFile(file, 'utf8').catch(() => '');
      const parsed = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: string; key: string; value: { round: number }; topic: string; shard: number });
      return parsed.length >= ids.length ? parsed : undefined;
    }, 'every message in the file');
    await Promise.all(tasks.map((t) => t.stop()));
    expect(lines.map((l) => l.id).sort()).toEqual([...ids].sort());
    for (const key of keys) {
      expect(lines.filter((l) => l.key === key).map((l) => l.value.round)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    expect(new Set(lines.map((l) => l.topic))).toEqual(new Set([topic]));
    const states = await deliveriesById(store, connector, ids);
    expect([...states.values()].every((d) => d.state === 'sent' && d.attempts === 1)).toBe(true);
    // Each shard went to the task that owns it (shard % 2).
    const leases = await store.listLeases(`sink:${connector}/`);
    expect(leases).toEqual([]);
    for (let shard = 0; shard < 8; shard++) {
      const watermark = await store.getWatermark(connector, topic, shard);
      expect(watermark).toBeGreaterThan(0);
    }
  });

  it('wakes at once on a local produce, without waiting for a poll', async () => {
    const { topic, connector } = await fixture(2);
    const sink = recordingSink();
    // Polls so rare that only the produce's wake-up can explain a prompt delivery.
    const r = runner(sink.connector, { name: connector, topics: topic }, { consumer: { pollMinMs: 60_000, pollIdleMs: 120_000, sweepIntervalMs: 120_000 } });
    await r.start();
    await eventually(async () => (await store.getWatermark(connector, topic, 0)) !== undefined || sink.received.length === 0, 'start');
    const id = await produceOne(topic, { key: 'k', value: 'hello' });
    await eventually(() => sink.received.find((rec) => rec.id === id), 'the woken delivery', 10_000);
    await r.stop();
  });

  it('reads about two batches ahead of what it sends, not a whole page per shard', async () => {
    const { topic, connector } = await fixture(2);
    // 1,200 messages a millisecond apart from the topic's creation (produced at once, a batch would share one millisecond).
    const start = (await store.getTopic(topic))!.createdAt;
    await store.appendMessages(
      Array.from({ length: 1200 }, (_, i) => {
        const key = `k${i}`;
        return { id: `${topic}-${i}`, topic, key, ...routeKey(key, 2), value: i, headers: {}, createdAt: start + i };
      }),
    );
    const readLimits: number[] = [];
    const counting = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'readBuffer') {
          return (...args: Parameters<Store['readBuffer']>) => {
            readLimits.push(args[4]);
            return target.readBuffer(...args);
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const sink = recordingSink();
    // Batches of 100 over 2 shards: 50 per shard per batch, so a hot read asks for at most 100 (the page size is 1,000).
    const r = runner(sink.connector, { name: connector, topics: topic, 'batch.size': '100' }, { store: counting });
    await r.start();
    await eventually(() => sink.received.length >= 1200, 'the backlog delivered', 20_000);
    await r.stop();
    expect(new Set(sink.received.map((rec) => rec.id)).size).toBe(1200);
    expect(readLimits.length).toBeGreaterThan(0);
    expect(Math.max(...readLimits)).toBeLessThanOrEqual(100);
  });

  it('a store read that fails for one shard (a node killed mid-request) costs the other shards nothing: every message is sent once', async () => {
    const { topic, connector } = await fixture(4);
    // One in seven reads of shard 1, and one in five lookups of a late write's body or delivery
    // state, fails as a killed coordinator's socket does; the other shards' reads of the same
    // step succeed.
    let shardReads = 0;
    let lookups = 0;
    const socketClosed = () => Object.assign(new Error('Socket was closed'), { name: 'DriverError' });
    const flaky = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'readBuffer' || property === 'scanBuffer') {
          return async (...args: Parameters<Store['readBuffer']>) => {
            if (args[1] === 1 && ++shardReads % 7 === 0) throw socketClosed();
            return (target[property] as (...a: Parameters<Store['readBuffer']>) => Promise<unknown>)(...args);
          };
        }
        if (property === 'getMessagesAt' || property === 'getDeliveries') {
          return async (...args: unknown[]) => {
            if (++lookups % 5 === 0) throw socketClosed();
            return (target[property] as (...a: unknown[]) => Promise<unknown>)(...args);
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const sink = recordingSink();
    const r = runner(sink.connector, { name: connector, topics: topic, 'batch.size': '20' }, { store: flaky });
    await r.start();
    const ids: string[] = [];
    for (let round = 0; round < 20; round++) {
      const produced = await producer.produce(
        topic,
        Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: { round, i } })),
      );
      ids.push(...produced.map((p) => p.id));
    }
    await eventually(() => new Set(sink.received.map((rec) => rec.id)).size >= ids.length || undefined, 'every message sent', 30_000).catch((error: Error) => {
      throw new Error(`${error.message}: ${new Set(sink.received.map((rec) => rec.id)).size} of ${ids.length} sent`);
    });
    await r.stop();
    expect(shardReads).toBeGreaterThanOrEqual(3);
    const counts = new Map<string, number>();
    for (const rec of sink.received) counts.set(rec.id, (counts.get(rec.id) ?? 0) + 1);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect([...counts.keys()].sort()).toEqual([...ids].sort());
  });

  it('a `sending` write that timed out but landed, then the task stopped: its next runner on this worker sends those records (not `unknown`)', async () => {
    const { topic, connector } = await fixture(1);
    let sendingWrites = 0;
    const failing = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'putDeliveries') {
          return async (rows: Parameters<Store['putDeliveries']>[0]) => {
            await target.putDeliveries(rows);
            // Every `sending` write lands, then times out, as behind a node that lost quorum.
            if (rows.some((row) => row.state === 'sending')) {
              sendingWrites++;
              throw Object.assign(new Error('Operation timed out'), { name: 'OperationTimedOutError' });
            }
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const shared = new NeverHandedOff();
    const sink = recordingSink();
    const first = runner(sink.connector, { name: connector, topics: topic }, { store: failing, neverHandedOff: shared });
    await first.start();
    const ids = (await producer.produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: i })))).map((p) => p.id);
    await eventually(() => sendingWrites > 0 || undefined, 'a sending write');
    // The task stops (its membership lapsed), as the store comes back; the rows say `sending`.
    await first.stop();
    expect(sink.received).toEqual([]);
    expect([...(await deliveriesById(store, connector, ids)).values()].map((d) => d.state)).toEqual(Array(ids.length).fill('sending'));
    const second = runner(sink.connector, { name: connector, topics: topic }, { neverHandedOff: shared });
    await second.start();
    await eventually(() => new Set(sink.received.map((rec) => rec.id)).size >= ids.length || undefined, 'every message sent by the next runner');
    await second.stop();
    expect(sink.received.map((rec) => rec.id).sort()).toEqual([...ids].sort());
    expect([...(await deliveriesById(store, connector, ids)).values()].map((d) => d.state)).toEqual(Array(ids.length).fill('sent'));
  });

  it('keeps a receipt that arrives before the send is recorded (an SMSC answers at once)', async () => {
    const { topic, connector } = await fixture(2);
    // The provider confirms each message while `put` is still running, as an SMSC's
    // deliver_sm can beat our own `sent` write.
    const receiptFirst = defineSinkConnector({
      className: 'ReceiptFirstSink',
      version: '0.0.0',
      description: 'reports delivered before put returns',
      config: ConfigSpec.builder(),
      createTask: () => {
        let context: SinkTaskContext;
        return {
          start: async (_config: unknown, taskContext: SinkTaskContext) => void (context = taskContext),
          put: async (records: SinkRecord[]) => {
            await context.reportDeliveries(records.map((r) => ({ messageId: r.id, state: 'delivered' as const, at: Date.now() })));
            return records.map((r) => ({ status: 'sent' as const, providerId: `p-${r.id}` }));
          },
          stop: async () => undefined,
        };
      },
    }) as unknown as SinkConnector;
    const r = runner(receiptFirst, { name: connector, topics: topic });
    await r.start();
    const ids = (await producer.produce(topic, Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: i })))).map((m) => m.id);
    await eventually(async () => {
      const rows = await deliveriesById(store, connector, ids);
      return ids.every((id) => rows.get(id)?.providerId !== undefined) ? rows : undefined;
    }, 'every send recorded');
    await r.stop();
    const rows = await deliveriesById(store, connector, ids);
    expect(ids.map((id) => rows.get(id)?.state)).toEqual(ids.map(() => 'delivered'));
  });

  it('retries a retriable outcome with backoff, then records it sent', async () => {
    const { topic, connector } = await fixture(2);
    const attempts = new Map<string, number>();
    const sink = recordingSink((record) => {
      attempts.set(record.id, (attempts.get(record.id) ?? 0) + 1);
      return record.attempt < 3 ? { status: 'retry', error: { code: 'OMNI_ERR_PROVIDER_THROTTLED', message: '429' }, retryAfterMs: 30 } : { status: 'sent', providerId: `p-${record.id}` };
    });
    const metrics = new Metrics({ defaultMetrics: false });
    const r = runner(sink.connector, { name: connector, topics: topic, 'errors.retry.delay.initial.ms': '10', 'errors.retry.delay.max.ms': '40' }, { metrics });
    await r.start();
    const id = await produceOne(topic, { key: 'k', value: 1 });
    const sent = await eventually(async () => {
      const d = await deliveryOf(connector, id);
      return d?.state === 'sent' ? d : undefined;
    }, 'sent after retries');
    await r.stop();
    expect(sent.attempts).toBe(3);
    expect(sent.providerId).toBe(`p-${id}`);
    expect(attempts.get(id)).toBe(3);
    expect(sink.received.filter((rec) => rec.id === id).map((rec) => rec.attempt)).toEqual([1, 2, 3]);
    expect(await store.findByProviderId(connector, `p-${id}`)).toBe(id);
    const events = await store.listEvents(id);
    expect(events.filter((e) => e.type === 'retrying').map((e) => (e.detail as { attempt: number }).attempt)).toEqual([1, 2]);
    expect((await metrics.recordsRetried.get()).values[0]!.value).toBe(2);
    expect((await metrics.recordsSent.get()).values[0]!.value).toBe(1);
  });

  it('keeps later messages of a key behind one that is being retried', async () => {
    const { topic, connector } = await fixture(1);
    let failedOnce = false;
    const sink = recordingSink((record) => {
      if ((record.value as { n: number }).n === 1 && !failedOnce) {
        failedOnce = true;
        return { status: 'retry', error: { code: 'OMNI_ERR_PROVIDER_TIMEOUT', message: 'timeout' }, retryAfterMs: 150 };
      }
      return { status: 'sent' };
    });
    const r = runner(sink.connector, { name: connector, topics: topic, 'batch.size': '1', 'errors.retry.delay.initial.ms': '10' });
    await r.start();
    await producer.produce(topic, [
      { key: 'same', value: { n: 1 } },
      { key: 'other', value: { n: 2 } },
    ]);
    await producer.produce(topic, [{ key: 'same', value: { n: 3 } }]);
    await eventually(() => sink.received.filter((rec) => (rec.value as { n: number }).n === 3).length > 0, 'the third message');
    await r.stop();
    const order = sink.received.map((rec) => (rec.value as { n: number }).n);
    // n=1 is tried, waits 150 ms; n=2 (another key) goes meanwhile; n=3 waits for n=1's retry.
    expect(order).toEqual([1, 2, 1, 3]);
  });

  it("retries a key's records in order when a later one was held back with it (each retry's jitter notwithstanding)", async () => {
    const { topic, connector } = await fixture(1);
    const sent: string[] = [];
    const retry = { status: 'retry' as const, error: { code: 'OMNI_ERR_PROVIDER_TIMEOUT', message: 'timeout' } };
    // As WebhookSink does: once a record of a key is to be retried, the later ones of its key in the batch are too.
    const holding = defineSinkConnector({
      className: 'HoldingSink',
      version: '0.0.0',
      description: 'holds a key behind its retried record',
      config: ConfigSpec.builder(),
      createTask: () => ({
        start: async () => undefined,
        stop: async () => undefined,
        put: async (records: SinkRecord[]) => {
          const held = new Set<string>();
          return records.map((record) => {
            const n = (record.value as { n: number }).n;
            if (held.has(record.key) || (n === 1 && record.attempt <= 2)) {
              held.add(record.key);
              return retry;
            }
            sent.push(`${record.key}:${n}`);
            return { status: 'sent' as const };
          });
        },
      }),
    });
    const r = runner(holding, { name: connector, topics: topic, 'errors.retry.delay.initial.ms': '20', 'errors.retry.delay.max.ms': '300' });
    await r.start();
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    await producer.produce(topic, keys.flatMap((key) => [{ key, value: { n: 1 } }, { key, value: { n: 2 } }]));
    await eventually(() => sent.length === keys.length * 2, 'every record sent', 30_000);
    await r.stop();
    expect(keys.filter((key) => sent.indexOf(`${key}:1`) > sent.indexOf(`${key}:2`))).toEqual([]);
  });

  it('fails a permanent failure at once, and exhausted retries after the last attempt', async () => {
    const { topic, connector } = await fixture(2);
    const sink = recordingSink((record) =>
      (record.value as { kind: string }).kind === 'invalid'
        ? { status: 'failed', error: { code: 'OMNI_ERR_SMS_INVALID_NUMBER', message: 'not a phone number' } }
        : { status: 'retry', error: { code: 'OMNI_ERR_PROVIDER_UNAVAILABLE', message: '503' } },
    );
    const metrics = new Metrics({ defaultMetrics: false });
    const r = runner(sink.connector, { name: connector, topics: topic, 'errors.retry.max.attempts': '3', 'errors.retry.delay.initial.ms': '5', 'errors.retry.delay.max.ms': '20' }, { metrics });
    await r.start();
    const [invalid, flaky] = await producer.produce(topic, [
      { key: '+100', value: { kind: 'invalid' } },
      { key: '+200', value: { kind: 'flaky' } },
    ]);
    const failedInvalid = await eventually(async () => ((await deliveryOf(connector, invalid!.id))?.state === 'failed' ? deliveryOf(connector, invalid!.id) : undefined), 'permanent failure');
    const failedFlaky = await eventually(async () => ((await deliveryOf(connector, flaky!.id))?.state === 'failed' ? deliveryOf(connector, flaky!.id) : undefined), 'exhausted');
    await r.stop();
    expect(failedInvalid).toMatchObject({ attempts: 1, lastError: { code: 'OMNI_ERR_SMS_INVALID_NUMBER' } });
    expect(failedFlaky).toMatchObject({ attempts: 3, lastError: { code: 'OMNI_ERR_PROVIDER_UNAVAILABLE' } });
    expect(sink.received.filter((rec) => rec.id === flaky!.id)).toHaveLength(3);
    const flakyEvents = await store.listEvents(flaky!.id);
    expect(flakyEvents.map((e) => e.type)).toEqual(['retrying', 'retrying', 'failed']);
    expect((await metrics.recordsFailed.get()).values[0]!.value).toBe(2);
  });

  it('dead-letters failures to the configured topic, with headers naming connector and error', async () => {
    const { topic, connector } = await fixture(3);
    const dlq = `${topic}-dlq`;
    const sink = recordingSink(() => ({ status: 'failed', error: { code: 'OMNI_ERR_EMAIL_REJECTED', message: '550 mailbox unavailable' } }));
    const r = runner(sink.connector, { name: connector, topics: topic, 'errors.deadletterqueue.topic.name': dlq });
    await r.start();
    const id = await produceOne(topic, { key: 'gone@example.org', value: { subject: 'hi' }, headers: { trace: 't1' } });
    const dead = await eventually(async () => ((await deliveryOf(connector, id))?.state === 'dead' ? deliveryOf(connector, id) : undefined), 'dead');
    await r.stop();
    expect(dead.lastError).toEqual({ code: 'OMNI_ERR_EMAIL_REJECTED', message: '550 mailbox unavailable' });
    const dlqTopic = await store.getTopic(dlq);
    expect(dlqTopic?.shards).toBe(3);
    const deadEvent = (await store.listEvents(id)).find((e) => e.type === 'dead')!;
    const letterId = (deadEvent.detail as { deadLetterId: string }).deadLetterId;
    const letter = (await store.getMessages([letterId])).get(letterId)!;
    expect(letter).toMatchObject({ topic: dlq, key: 'gone@example.org', value: { subject: 'hi' } });
    expect(letter.headers).toMatchObject({
      trace: 't1',
      'omnibus.errors.connector.name': connector,
      'omnibus.errors.topic': topic,
      'omnibus.errors.message.id': id,
      'omnibus.errors.code': 'OMNI_ERR_EMAIL_REJECTED',
      'omnibus.errors.message': '550 mailbox unavailable',
    });
  });

  it('at-most-once: a send left in doubt by a crashed task is marked unknown and never sent again', async () => {
    const { topic, connector } = await fixture(1);
    const crashing = recordingSink(() => 'throw');
    const first = runner(crashing.connector, { name: connector, topics: topic });
    await first.start();
    const id = await produceOne(topic, { key: 'k', value: 'maybe sent' });
    const failure = await first.failure;
    expect(failure.message).toBe('provider connection reset mid-send');
    expect((await deliveryOf(connector, id))?.state).toBe('sending');

    const healthy = recordingSink();
    const second = runner(healthy.connector, { name: connector, topics: topic });
    await second.start();
    const unknown = await eventually(async () => ((await deliveryOf(connector, id))?.state === 'unknown' ? deliveryOf(connector, id) : undefined), 'unknown');
    // A later message on the same shard goes through: the shard is not stuck behind the doubtful one.
    const later = await produceOne(topic, { key: 'k', value: 'later' });
    await eventually(() => healthy.received.find((rec) => rec.id === later), 'the later message');
    await second.stop();
    expect(unknown.attempts).toBe(1);
    expect(healthy.received.map((rec) => rec.id)).toEqual([later]);
    expect((await store.listEvents(id)).map((e) => e.type)).toEqual(['unknown']);
  });

  it('at-least-once: a send left in doubt is sent again', async () => {
    const { topic, connector } = await fixture(1);
    const config = { name: connector, topics: topic, 'delivery.guarantee': 'at-least-once' };
    const first = runner(recordingSink(() => 'throw').connector, config);
    await first.start();
    const id = await produceOne(topic, { key: 'k', value: 'again' });
    await first.failure;
    const healthy = recordingSink();
    const second = runner(healthy.connector, config);
    await second.start();
    const sent = await eventually(async () => ((await deliveryOf(connector, id))?.state === 'sent' ? deliveryOf(connector, id) : undefined), 'resent');
    await second.stop();
    expect(sent.attempts).toBe(2);
    expect(healthy.received.map((rec) => [rec.id, rec.attempt])).toEqual([[id, 2]]);
  });

  it('a FatalConnectorError fails the task and leaves its records pending for the next run', async () => {
    const { topic, connector } = await fixture(1);
    const first = runner(recordingSink(() => 'fatal').connector, { name: connector, topics: topic });
    await first.start();
    const id = await produceOne(topic, { key: 'k', value: 'not yet' });
    const failure = await first.failure;
    expect(failure.message).toBe('credentials revoked');
    expect((await deliveryOf(connector, id))?.state).toBe('pending');
    const healthy = recordingSink();
    const second = runner(healthy.connector, { name: connector, topics: topic });
    await second.start();
    await eventually(async () => (await deliveryOf(connector, id))?.state === 'sent', 'sent by the next run');
    await second.stop();
    expect(healthy.received.map((rec) => rec.id)).toEqual([id]);
  });

  it('two runners of one task: only the lease holder sends, the other takes over when it stops, nothing twice', async () => {
    const { topic, connector } = await fixture(1);
    const sink = recordingSink();
    const options = { leaseTtlMs: 600, heartbeatMs: 100 };
    const a = runner(sink.connector, { name: connector, topics: topic }, options);
    const b = runner(sink.connector, { name: connector, topics: topic }, options);
    await a.start();
    await b.start();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(...(await producer.produce(topic, [{ key: `k${i % 5}`, value: i }])).map((p) => p.id));
    await eventually(() => sink.received.length >= 20, 'first half');
    const firstSenders = new Set(sink.received.map((rec) => rec.taskLabel));
    expect(firstSenders.size).toBe(1);
    // Task labels follow start order: task-0 is a's, task-1 is b's.
    const holderIsA = firstSenders.has('task-0');
    await (holderIsA ? a : b).stop();
    for (let i = 20; i < 40; i++) ids.push(...(await producer.produce(topic, [{ key: `k${i % 5}`, value: i }])).map((p) => p.id));
    await eventually(() => sink.received.length >= 40, 'second half');
    await (holderIsA ? b : a).stop();
    expect(sink.received.map((rec) => rec.id).sort()).toEqual([...ids].sort());
    expect(new Set(sink.received.slice(20).map((rec) => rec.taskLabel))).toEqual(new Set([holderIsA ? 'task-1' : 'task-0']));
  });

  it("gives an idle shard's lease back, and takes it again (next epoch, nobody in between) when work arrives", async () => {
    const { topic, connector } = await fixture(1);
    const sink = recordingSink();
    const r = runner(sink.connector, { name: connector, topics: topic }, { consumer: { overlapMs: 100, sweepIntervalMs: 50, confidenceMs: 20, releaseIdleAfterMs: 200 } });
    await r.start();
    const first = await produceOne(topic, { key: 'k', value: 1 });
    const firstDelivery = await eventually(async () => ((await deliveryOf(connector, first))?.state === 'sent' ? deliveryOf(connector, first) : undefined), 'first');
    await eventually(async () => (await store.listLeases(`sink:${connector}/`)).length === 0, 'the lease given back');
    const second = await produceOne(topic, { key: 'k', value: 2 });
    const secondDelivery = await eventually(async () => ((await deliveryOf(connector, second))?.state === 'sent' ? deliveryOf(connector, second) : undefined), 'second');
    expect((await store.listLeases(`sink:${connector}/`)).map((l) => l.epoch)).toEqual([firstDelivery.epoch + 1]);
    await r.stop();
    expect(secondDelivery.epoch).toBe(firstDelivery.epoch + 1);
    expect(sink.received.map((rec) => rec.id)).toEqual([first, second]);
  });
});
