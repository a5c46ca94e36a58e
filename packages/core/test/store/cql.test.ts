import { afterAll, describe, expect, it } from 'vitest';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { createLogger } from '../../src/logging.ts';
import { CqlStore, MAX_APPEND_BATCH_BYTES, parseCqlUrl } from '../../src/store/cql.ts';
import { fetchSupportedOptions, shardingFromSupported } from '../../src/store/cql-sharding.ts';
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

describe('CqlStore schema', () => {
  it('is created by several workers starting at once, each migration applied once', async () => {
    const ks = await keyspace('store_cql_init');
    await ks.client.execute(`DROP KEYSPACE ${ks.keyspace}`); // init creates the keyspace too
    const stores = Array.from({ length: 3 }, () => new CqlStore({ ...parseCqlUrl(`${cqlUrl(ks.keyspace)}&consistency=ONE`), logger }));
    try {
      await Promise.all(stores.map((store) => store.init()));
      const migrations = await ks.client.execute(`SELECT version, state FROM ${ks.keyspace}.schema_migrations`);
      expect(migrations.rows.map((row) => [row.get('version'), row.get('state')])).toEqual([[1, 'applied']]);
      const tables = await ks.client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [ks.keyspace]);
      expect(tables.rows.map((row) => row.get('table_name') as string)).toEqual(
        expect.arrayContaining(['buffer', 'buffer_buckets', 'messages', 'deliveries', 'leases', 'connectors', 'statuses', 'schema_migrations']),
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

  it('writes the buffer with the topic retention as TTL, under time-window compaction', async () => {
    const ks = conformanceKeyspace!;
    const store = new CqlStore({ ...parseCqlUrl(cqlUrl(ks.keyspace)), logger });
    await store.init();
    try {
      await store.createTopic({ name: 'ttl-mail', shards: 1, retentionMs: 3_600_000, createdAt: 1 });
      const now = Date.now();
      await store.appendMessages([{ id: 'ttl-m1', topic: 'ttl-mail', key: 'k', token: '1', shard: 0, value: 1, headers: {}, createdAt: now }]);
      const row = (
        await ks.client.execute(`SELECT TTL(routing_key) AS ttl FROM ${ks.keyspace}.buffer WHERE topic = 'ttl-mail' AND shard = 0 AND bucket = ?`, [
          Math.floor(now / 60_000),
        ], { prepare: true })
      ).first();
      expect(row.get('ttl')).toBeGreaterThan(3_500);
      expect(row.get('ttl')).toBeLessThanOrEqual(3_600);
      const table = (
        await ks.client.execute('SELECT compaction FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?', [ks.keyspace, 'buffer'])
      ).first();
      expect(table.get('compaction').class).toMatch(/TimeWindowCompactionStrategy/);
    } finally {
      await store.close();
    }
  });
});

describe('CqlStore limits and cluster discovery', () => {
  it('refuses, before writing anything, a batch too large for one logged batch', async () => {
    const store = new CqlStore({ ...parseCqlUrl(cqlUrl(conformanceKeyspace!.keyspace)), logger });
    await store.init();
    try {
      await store.createTopic({ name: 'big', shards: 1, retentionMs: 60_000, createdAt: 1 });
      const value = 'x'.repeat(MAX_APPEND_BATCH_BYTES / 4);
      const message = (id: string) => ({ id, topic: 'big', key: 'k', token: '1', shard: 0, value, headers: {}, createdAt: Date.now() });
      await expect(store.appendMessages([message('big-1'), message('big-2'), message('big-3'), message('big-4')])).rejects.toMatchObject({
        code: 'OMNI_ERR_STORE_BATCH_TOO_LARGE',
      });
      expect((await store.getMessages(['big-1'])).size).toBe(0);
    } finally {
      await store.close();
    }
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
