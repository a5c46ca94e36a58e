import { afterAll, describe, expect, it } from 'vitest';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { createLogger } from '../../src/logging.ts';
import { UuidV7Generator } from '../../src/store/ids.ts';
import { BUCKET_MS, CqlStore, parseCqlUrl, positionSlot } from '../../src/store/cql.ts';
import { fetchSupportedOptions, shardingFromSupported } from '../../src/store/cql-sharding.ts';
import type { Delivery, Message } from '../../src/store/port.ts';
import { describeStoreConformance } from './conformance.ts';

const logger = createLogger({ level: 'warn' });
const keyspaces: FreshKeyspace[] = [];
const keyspace = async (prefix: string): Promise<FreshKeyspace> => {
  const ks = await freshKeyspace(prefix);
  keyspaces.push(ks);
  return ks;
};
afterAll(async () => {
  for (const ks of keyspaces) await ks.drop();
});

// The conformance suite's keyspace, reused below once its schema exists.
let conformanceKeyspace: FreshKeyspace | undefined;
describeStoreConformance('cql', async () => {
  conformanceKeyspace = await keyspace('store_cql');
  return new CqlStore({ ...parseCqlUrl(cqlUrl(conformanceKeyspace.keyspace)), logger });
});

/** Runs `work` with a store of its own on the conformance suite's keyspace, closed after. */
async function withConformanceStore(work: (store: CqlStore, ks: FreshKeyspace) => Promise<void>): Promise<void> {
  const ks = conformanceKeyspace!;
  const store = new CqlStore({ ...parseCqlUrl(cqlUrl(ks.keyspace)), logger });
  await store.init();
  try {
    await work(store, ks);
  } finally {
    await store.close();
  }
}

describe('CqlStore schema', () => {
  it('is created by several workers starting at once, each migration applied once', async () => {
    const ks = await keyspace('store_cql_init');
    await ks.client.execute(`DROP KEYSPACE ${ks.keyspace}`); // init creates the keyspace too
    const stores = Array.from({ length: 3 }, () => new CqlStore({ ...parseCqlUrl(`${cqlUrl(ks.keyspace)}&consistency=ONE`), logger }));
    try {
      await Promise.all(stores.map((store) => store.init()));
      const migrations = await ks.client.execute(`SELECT version, state FROM ${ks.keyspace}.schema_migrations`);
      const applied = migrations.rows.map((row) => [row.get('version') as number, row.get('state') as string]).sort((a, b) => Number(a[0]) - Number(b[0]));
      expect(applied.length).toBeGreaterThanOrEqual(2);
      expect(applied).toEqual(applied.map((_, i) => [i + 1, 'applied']));
      const tables = await ks.client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [ks.keyspace]);
      expect(tables.rows.map((row) => row.get('table_name') as string)).toEqual(
        expect.arrayContaining(['buffered_messages', 'buffer_buckets', 'message_positions', 'delivery_states', 'leases', 'connectors', 'statuses', 'schema_migrations']),
      );
      // Every store works against the one schema.
      expect(await stores[0]!.createTopic({ name: 't', shards: 2, retentionMs: 60_000, createdAt: 1 })).toBe(true);
      expect((await stores[2]!.getTopic('t'))?.shards).toBe(2);
      // And a restart finds the schema in place.
      const again = new CqlStore({ ...parseCqlUrl(cqlUrl(ks.keyspace)), logger });
      await again.init();
      await again.close();
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('writes no id index row for an id the bus generated, which says where its message is', () =>
    withConformanceStore(async (store, ks) => {
      await store.createTopic({ name: 'implied', shards: 4, retentionMs: 3_600_000, createdAt: 1 });
      const now = Date.now();
      const generated = new UuidV7Generator().next(now, 2);
      const own = `own-${now}`;
      const message = (id: string): Message => ({ id, topic: 'implied', key: 'k', token: '1', shard: 2, value: id, headers: {}, createdAt: now });
      await store.appendMessages([message(generated), message(own)]);
      const indexed = async (id: string) =>
        (await ks.client.execute(`SELECT id FROM ${ks.keyspace}.message_positions WHERE slot = ? AND id = ?`, [positionSlot(id), id], { prepare: true })).rowLength;
      expect(await indexed(generated)).toBe(0);
      expect(await indexed(own)).toBe(1);
      const found = await store.locateMessages([generated, own], ['implied']);
      expect(found.get(generated)).toEqual({ messageId: generated, topic: 'implied', shard: 2, ts: now });
      expect(found.get(own)).toEqual({ messageId: own, topic: 'implied', shard: 2, ts: now });
    }));

  it('finishes a migration whose worker died after its DDL and before marking it applied (a column added twice is taken as added)', async () => {
    const ks = await keyspace('store_cql_rerun');
    const first = new CqlStore({ ...parseCqlUrl(cqlUrl(ks.keyspace)), logger });
    await first.init();
    await first.close();
    const versions = (await ks.client.execute(`SELECT version FROM ${ks.keyspace}.schema_migrations`)).rows.map((row) => row.get('version') as number);
    const latest = Math.max(...versions);
    // As the dead worker left it: the DDL ran, the claim is stale, "applied" was never written.
    await ks.client.execute(`UPDATE ${ks.keyspace}.schema_migrations SET state = 'applying', owner = 'dead', claimed_at = 0 WHERE version = ?`, [latest], { prepare: true });
    const next = new CqlStore({ ...parseCqlUrl(cqlUrl(ks.keyspace)), logger });
    try {
      await next.init();
      const row = (await ks.client.execute(`SELECT state FROM ${ks.keyspace}.schema_migrations WHERE version = ?`, [latest], { prepare: true })).first();
      expect(row.get('state')).toBe('applied');
    } finally {
      await next.close();
    }
  });

  it('writes the buffer, the id index, delivery and receipt states, events and provider ids with the topic retention as TTL, the first three under time-window compaction', () =>
    withConformanceStore(async (store, ks) => {
      await store.createTopic({ name: 'ttl-mail', shards: 1, retentionMs: 3_600_000, createdAt: 1 });
      const now = Date.now();
      await store.appendMessages([{ id: 'ttl-m1', topic: 'ttl-mail', key: 'k', token: '1', shard: 0, value: 1, headers: {}, createdAt: now }]);
      const row = (
        await ks.client.execute(`SELECT TTL(message) AS ttl FROM ${ks.keyspace}.buffered_messages WHERE topic = 'ttl-mail' AND shard = 0 AND bucket = ?`, [
          Math.floor(now / 60_000),
        ], { prepare: true })
      ).first();
      await store.putDeliveries([{ connector: 'c', messageId: 'ttl-m1', topic: 'ttl-mail', shard: 0, ts: now, state: 'sent', attempts: 1, epoch: 1, workerId: 'w', updatedAt: now }]);
      const index = (await ks.client.execute(`SELECT TTL(position) AS ttl FROM ${ks.keyspace}.message_positions WHERE slot = '=ttl-m1' AND id = 'ttl-m1'`)).first();
      const state = (
        await ks.client.execute(`SELECT TTL(state) AS ttl FROM ${ks.keyspace}.delivery_states WHERE connector = 'c' AND topic = 'ttl-mail' AND shard = 0 AND bucket = ?`, [
          Math.floor(now / 60_000),
        ], { prepare: true })
      ).first();
      await store.putProviderIds([{ connector: 'c', providerId: 'ttl-p1', messageId: 'ttl-m1', topic: 'ttl-mail' }]);
      await store.appendEvents([{ messageId: 'ttl-m1', topic: 'ttl-mail', at: now, type: 'sent', connector: 'c' }]);
      await store.putReceiptStates([{ connector: 'c', messageId: 'ttl-m1', topic: 'ttl-mail', shard: 0, ts: now, state: 'delivered', workerId: 'w', updatedAt: now }]);
      const receipt = (
        await ks.client.execute(`SELECT TTL(receipt) AS ttl FROM ${ks.keyspace}.delivery_states WHERE connector = 'c' AND topic = 'ttl-mail' AND shard = 0 AND bucket = ?`, [
          Math.floor(now / 60_000),
        ], { prepare: true })
      ).first();
      const providerId = (await ks.client.execute(`SELECT TTL(message_id) AS ttl FROM ${ks.keyspace}.provider_ids WHERE connector = 'c' AND provider_id = 'ttl-p1'`)).first();
      const event = (await ks.client.execute(`SELECT TTL(event_type) AS ttl FROM ${ks.keyspace}.events WHERE message_id = 'ttl-m1'`)).first();
      for (const ttl of [row.get('ttl'), index.get('ttl'), state.get('ttl'), receipt.get('ttl'), providerId.get('ttl'), event.get('ttl')]) {
        expect(ttl).toBeGreaterThan(3_500);
        expect(ttl).toBeLessThanOrEqual(3_600);
      }
      for (const name of ['buffered_messages', 'message_positions', 'delivery_states']) {
        const table = (
          await ks.client.execute('SELECT compaction FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?', [ks.keyspace, name])
        ).first();
        expect(table.get('compaction').class).toMatch(/TimeWindowCompactionStrategy/);
      }
    }));
});

describe('CqlStore reads at scattered positions', () => {
  it('fetches the rows asked for, not every row between them (receipts, groups)', () =>
    withConformanceStore(async (store) => {
      await store.createTopic({ name: 'scatter', shards: 1, retentionMs: 3_600_000, createdAt: 1 });
      // 2,000 delivery states 10 ms apart, all in one partition (one shard, one bucket).
      const base = (Math.floor(Date.now() / BUCKET_MS) - 1) * BUCKET_MS + 1_000;
      const states: Delivery[] = Array.from({ length: 2_000 }, (_, i) => ({
        messageId: `m${i}`,
        topic: 'scatter',
        shard: 0,
        ts: base + i * 10,
        connector: 'sink',
        state: i % 2 === 0 ? 'sent' : 'delivered',
        attempts: 1,
        epoch: 1,
        workerId: 'w',
        updatedAt: base,
      }));
      await store.putDeliveries(states);
      // Counts the rows the node returns to the store's own reads.
      const client = (store as unknown as { client: { execute: (...args: unknown[]) => Promise<{ rows: unknown[] }> } }).client;
      const execute = client.execute.bind(client);
      let rowsFetched = 0;
      client.execute = async (...args: unknown[]) => {
        const result = await execute(...args);
        rowsFetched += result.rows.length;
        return result;
      };

      const sparse = [0, 1_000, 1_999].map((i) => states[i]!);
      const found = await store.getDeliveries('sink', sparse);
      expect([...found.keys()].sort()).toEqual(['m0', 'm1000', 'm1999']);
      expect(found.get('m1999')?.state).toBe('delivered');
      // One range read of the whole partition would have fetched all 2,000 rows.
      expect(rowsFetched).toBe(3);

      rowsFetched = 0;
      const window = states.slice(500, 600);
      expect((await store.getDeliveries('sink', window)).size).toBe(100);
      expect(rowsFetched).toBe(100);
    }));
});

describe('CqlStore limits and cluster discovery', () => {
  /** Appends `count` messages spread over two shards of a new topic in one call, reads both shards back, and hands both to `check`. */
  async function appendAndReadBack(
    topic: string,
    count: number,
    valueOf: (i: number) => string,
    check: (store: CqlStore, messages: Message[], read: Message[]) => Promise<void>,
  ): Promise<void> {
    await withConformanceStore(async (store) => {
      await store.createTopic({ name: topic, shards: 2, retentionMs: 60_000, createdAt: 1 });
      const now = Date.now();
      const messages: Message[] = Array.from({ length: count }, (_, i) => ({
        id: `${topic}-${i}`,
        topic,
        key: `k${i}`,
        token: '1',
        shard: i % 2,
        value: valueOf(i),
        headers: {},
        createdAt: now + i,
      }));
      await store.appendMessages(messages);
      const read = [...(await store.readBuffer(topic, 0, now, now + count + 100, 1_000)), ...(await store.readBuffer(topic, 1, now, now + count + 100, 1_000))];
      await check(store, messages, read);
    });
  }

  it('stores a produce far above Cassandra\'s default batch thresholds, in partition batches below them', async () => {
    // 300 messages of 4 KB on two shards (~600 KB a shard), and one of 2 MB.
    await appendAndReadBack('big', 301, (i) => 'x'.repeat(i === 300 ? 2_000_000 : 4_000), async (store, messages, read) => {
      expect(read.map((m) => m.id).sort()).toEqual(messages.map((m) => m.id).sort());
      expect((await store.getMessages(['big-300'])).get('big-300')?.value).toBe(messages[300]!.value);
    });
  });

  it('sizes its batches by UTF-8 bytes, so text beyond ASCII stays under the 50 KiB limit too', async () => {
    // 300 characters, 900 bytes: counted in characters, a 40 KiB batch would weigh 100 KiB.
    await appendAndReadBack('wide', 400, () => '通知'.repeat(150), async (_store, _messages, read) => {
      expect(read).toHaveLength(400);
    });
  });

  it('asks the node how it shards: Cassandra says nothing of shards, ScyllaDB would', async () => {
    const [host, port] = conformanceKeyspace!.contactPoint.split(':');
    const supported = await fetchSupportedOptions(host!, Number(port));
    expect(supported.get('CQL_VERSION')?.[0]).toMatch(/^3\./);
    expect(shardingFromSupported(supported)).toBeUndefined();
    // What a ScyllaDB node adds to the same answer (protocol-extensions.md, "Intranode sharding").
    supported.set('SCYLLA_NR_SHARDS', ['8']);
    supported.set('SCYLLA_SHARDING_IGNORE_MSB', ['12']);
    expect(shardingFromSupported(supported)).toEqual({ nrShards: 8, ignoreMsb: 12 });
  });
});
