// A source's chain on LMDB: Debezium-style change events through ExtractNewRecordState and a
// RegexRouter before they are published. A delete is dropped (Debezium's default) yet its
// offset is committed; the routed topic is where the rows land.
import { ConfigSpec, defineSourceConnector, type SourceRecord } from '@omnibus/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../src/bus/producer.ts';
import { SourceRunner } from '../../src/bus/source-runner.ts';
import { Metrics } from '../../src/metrics.ts';
import { eventually, lmdbStore, quietLogger, type StoreHandle } from '../bus/helpers.ts';

const source = { version: '0.1.0', connector: 'scylla', name: 'shop', ts_ms: 1, ts_us: 1000, snapshot: false, db: 'shop', keyspace_name: 'shop', table_name: 'orders' };

/** Three changes of one row, published once, in the envelope the CDC source produces. */
const changeEvents: SourceRecord[] = [
  { op: 'c', before: null, after: { id: 1, total: 10 } },
  { op: 'u', before: { id: 1, total: 10 }, after: { id: 1, total: 12 } },
  { op: 'd', before: { id: 1, total: 12 }, after: null },
].map((envelope, n) => ({
  sourcePartition: { table: 'orders' },
  sourceOffset: { position: n + 1 },
  topic: 'shop.shop.orders',
  key: '{"id":1}',
  value: { ...envelope, ts_ms: 2, source },
  id: `orders:${n}`,
}));

const ChangeSource = defineSourceConnector({
  className: 'ChangeSource',
  version: '0.0.0',
  description: 'test source',
  config: ConfigSpec.builder(),
  createTask: () => {
    let done = false;
    return {
      async start() {},
      async poll(): Promise<SourceRecord[]> {
        if (done) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return [];
        }
        done = true;
        return changeEvents;
      },
      async stop() {},
    };
  },
});

describe("a source connector's chain", () => {
  let handle: StoreHandle;
  beforeAll(async () => {
    handle = await lmdbStore();
  });
  afterAll(async () => handle.close());

  it('unwraps change events, drops the delete, routes to the renamed topic, and commits every offset', async () => {
    const runner = new SourceRunner(
      {
        connectorName: 'cdc',
        taskId: 0,
        taskCount: 1,
        connector: ChangeSource,
        config: {
          name: 'cdc',
          'connector.class': 'ChangeSource',
          'topic.creation.default.partitions': '2',
          transforms: 'unwrap,route',
          'transforms.unwrap.type': 'io.debezium.transforms.ExtractNewRecordState',
          'transforms.unwrap.add.fields': 'op',
          'transforms.route.type': 'org.apache.kafka.connect.transforms.RegexRouter',
          'transforms.route.regex': '([^.]+)\\.([^.]+)\\.([^.]+)',
          'transforms.route.replacement': '$3-changes',
        },
      },
      { store: handle.store, producer: new Producer({ store: handle.store }), metrics: new Metrics({ defaultMetrics: false }), logger: quietLogger(), workerId: 'w', leaseTtlMs: 2000, heartbeatMs: 200 },
    );
    await runner.start();
    const offsets = await eventually(async () => {
      const stored = await handle.store.getSourceOffsets('cdc');
      return stored[0]?.offset.position === 3 ? stored : undefined;
    }, 'the offset of the delete too');
    await runner.stop();
    expect(offsets).toHaveLength(1);

    expect(await handle.store.getTopic('shop.shop.orders')).toBeUndefined();
    expect((await handle.store.getTopic('orders-changes'))?.shards).toBe(2);
    const published = await handle.store.getMessages(['orders:0', 'orders:1', 'orders:2']);
    expect([...published.keys()].sort()).toEqual(['orders:0', 'orders:1']);
    expect(published.get('orders:0')).toMatchObject({ topic: 'orders-changes', key: '{"id":1}', value: { id: 1, total: 10, __op: 'c' } });
    expect(published.get('orders:1')).toMatchObject({ topic: 'orders-changes', value: { id: 1, total: 12, __op: 'u' } });
  });
});
