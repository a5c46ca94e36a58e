// Shared pieces of the bus tests: real stores (LMDB in a temp dir, Cassandra in a fresh
// keyspace), a quiet logger, and a sink connector that records what it is handed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSpec, defineSinkConnector, type SinkConnector, type SinkOutcome, type SinkRecord, type SinkTaskContext } from '@omnibus/sdk';
import { memoryLogger } from '@omnibus/sdk';
import type { Producer } from '../../src/bus/producer.ts';
import { expect } from 'vitest';
import { CoreError } from '../../src/errors.ts';
import { routeKey } from '../../src/bus/shard.ts';
import type { ShardSignals } from '../../src/bus/signals.ts';
import { SinkRunner } from '../../src/bus/sink-runner.ts';
import { Metrics } from '../../src/metrics.ts';
import { LmdbStore } from '../../src/store/lmdb.ts';
import type { Delivery, Store } from '../../src/store/port.ts';

export interface StoreHandle {
  store: Store;
  close(): Promise<void>;
}

export async function lmdbStore(): Promise<StoreHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'omnibus-bus-'));
  const store = new LmdbStore(join(dir, 'data'), { sweepIntervalMs: 0 });
  await store.init();
  return {
    store,
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function cqlStore(prefix: string): Promise<StoreHandle> {
  const { freshKeyspace, cqlUrl } = await import('@omnibus/test-support');
  const { openStore } = await import('../../src/store/open.ts');
  const keyspace = await freshKeyspace(prefix);
  const store = await openStore(cqlUrl(keyspace.keyspace));
  await store.init();
  return {
    store,
    close: async () => {
      await store.close();
      await keyspace.drop();
    },
  };
}

export const quietLogger = () => memoryLogger();

/** Resolves once `check` returns a truthy value; fails with `what` after `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a scripted sink decides for a record on a given attempt. */
export type Script = (record: SinkRecord) => SinkOutcome | 'throw' | 'fatal' | Promise<SinkOutcome | 'throw' | 'fatal'>;

/**
 * A real sink connector whose "provider" is an in-memory list: every record handed to `put`
 * is appended (with the task that got it), and the outcome comes from `script`.
 */
export function recordingSink(script: Script = () => ({ status: 'sent' })): {
  connector: SinkConnector;
  received: Array<SinkRecord & { taskLabel: string }>;
  setScript(next: Script): void;
} {
  const received: Array<SinkRecord & { taskLabel: string }> = [];
  let current = script;
  let tasks = 0;
  const connector = defineSinkConnector({
    className: 'RecordingSink',
    version: '0.0.0',
    description: 'records what it is handed',
    config: ConfigSpec.builder(),
    createTask: () => {
      const taskLabel = `task-${tasks++}`;
      return {
        start: async () => undefined,
        put: async (records: SinkRecord[]) => {
          const outcomes: SinkOutcome[] = [];
          for (const record of records) {
            const decision = await current(record);
            if (decision === 'throw') throw new Error('provider connection reset mid-send');
            if (decision === 'fatal') {
              const { FatalConnectorError } = await import('@omnibus/sdk');
              throw new FatalConnectorError('OMNI_ERR_TEST_REVOKED', 'credentials revoked');
            }
            received.push({ ...record, taskLabel });
            outcomes.push(decision);
          }
          return outcomes;
        },
        stop: async () => undefined,
      };
    },
  }) as unknown as SinkConnector;
  return { connector, received, setScript: (next) => void (current = next) };
}

/** The connector's delivery states of these messages, found by id (the store keeps them by buffer position). */
export async function deliveriesById(store: Store, connector: string, ids: readonly string[]): Promise<Map<string, Delivery>> {
  return store.getDeliveries(connector, [...(await store.locateMessages(ids)).values()]);
}

/** Stores a message with this id (on a one-shard topic, created if absent) and the connector's delivery state of it. */
export async function storeDelivered(
  store: Store,
  delivery: Omit<Delivery, 'topic' | 'shard' | 'ts'>,
  topic = 'receipts',
): Promise<void> {
  if (!(await store.getTopic(topic))) await store.createTopic({ name: topic, shards: 1, retentionMs: 3_600_000, createdAt: Date.now() - 1000 });
  if (!(await store.locateMessages([delivery.messageId])).has(delivery.messageId)) {
    const key = `key-${delivery.messageId}`;
    await store.appendMessages([{ id: delivery.messageId, topic, key, ...routeKey(key, 1), value: null, headers: {}, createdAt: Date.now() }]);
  }
  const position = (await store.locateMessages([delivery.messageId])).get(delivery.messageId)!;
  await store.putDeliveries([{ ...delivery, ...position }]);
}

/** A provider that confirms every message it takes with a receipt, and refuses those whose value says so. */
export const receiptingSink = defineSinkConnector({
  className: 'ReceiptingSink',
  version: '0.0.0',
  description: 'sends, then reports a delivered receipt; a value {refuse: true} fails permanently',
  config: ConfigSpec.builder(),
  createTask: () => {
    let context: SinkTaskContext;
    return {
      start: async (_config: unknown, taskContext: SinkTaskContext) => void (context = taskContext),
      put: async (records: SinkRecord[]) => {
        const outcomes = records.map((r) =>
          (r.value as { refuse?: boolean }).refuse
            ? { status: 'failed' as const, error: { code: 'OMNI_ERR_TEST_REFUSED', message: 'number barred' } }
            : { status: 'sent' as const, providerId: `p-${r.id}` },
        );
        const sent = records.filter((r) => !(r.value as { refuse?: boolean }).refuse);
        // After put answers, as an SMSC's deliver_sm follows its submit_sm_resp.
        setTimeout(() => void context.reportDeliveries(sent.map((r) => ({ providerId: `p-${r.id}`, state: 'delivered' as const, at: Date.now() }))), 20);
        return outcomes;
      },
      stop: async () => undefined,
    };
  },
}) as unknown as SinkConnector;

/** A single-task sink runner on this store, as a worker would start it (not started). */
export function testSinkRunner(
  connector: SinkConnector,
  config: Record<string, string>,
  deps: { store: Store; producer: Producer; signals: ShardSignals; metrics?: Metrics },
  timing: { leaseTtlMs: number; heartbeatMs: number } = { leaseTtlMs: 5000, heartbeatMs: 500 },
): SinkRunner {
  return new SinkRunner(
    { connectorName: config.name!, taskId: 0, taskCount: 1, connector, config: { 'connector.class': connector.className, ...config } },
    { ...deps, ...timing, metrics: deps.metrics ?? new Metrics({ defaultMetrics: false }), logger: quietLogger(), workerId: '127.0.0.1:8083', consumer: { pollIdleMs: 100 } },
  );
}

/** The registry error a call rejects with (failing the test when it resolves or throws something else). */
export async function rejection(promise: Promise<unknown>): Promise<CoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CoreError);
  return error as CoreError;
}
