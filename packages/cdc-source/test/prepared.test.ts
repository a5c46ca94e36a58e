/**
 * Prepared statements across schema changes, on the run's real Cassandra: the source keeps
 * reading when a table's keyspace is dropped and re-created, its prepared statements recover
 * when the driver has lost track of one the server forgot, and the fixture (which the
 * benchmark writes its backlog through) does not prepare one statement per write.
 */
import cassandra from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSource } from '@omnibus/sdk';
import { uniqueKeyspaceName } from '@omnibus/test-support';
import { ScyllaCdcSource } from '../src/index.ts';
import { executePrepared } from '../src/prepared.ts';
import { ScyllaCdcFixture, type TableSpec } from './fixture/scylla-cdc.ts';
import { cdcTestbed, pollChanges, type CdcTestbed } from './helpers.ts';

let bed: CdcTestbed;
const SCHEMA_CHANGE = { readTimeout: 60_000 };

beforeAll(async () => {
  bed = await cdcTestbed('cdc_prepared');
  await bed.fixture.addGeneration(Date.now() - 15 * 60_000, { vnodes: 4, shards: 2 });
});
afterAll(async () => bed?.drop());

describe('prepared statements and schema changes', () => {
  it('keeps reading a table whose keyspace is dropped and re-created', async () => {
    const client = bed.ks.client;
    const keyspace = uniqueKeyspaceName('cdc_recreated');
    const spec = (): TableSpec => ({ name: 'items', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'label', type: 'text' }] });
    /** The base keyspace, with the generations of the testbed (ScyllaDB keeps those in system_distributed). */
    const baseKeyspace = async (): Promise<ScyllaCdcFixture> => {
      await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`, [], SCHEMA_CHANGE);
      const fixture = await ScyllaCdcFixture.create(client, keyspace);
      fixture.generations.push(...bed.fixture.generations);
      return fixture;
    };
    let base = await baseKeyspace();
    let items = await base.createTable(spec());
    const source = await startSource(ScyllaCdcSource, bed.config([], { 'scylla.table.names': `${keyspace}.items`, 'scylla.initial.lookback.ms': 60_000 }));
    try {
      await items.insert({ id: 1, label: 'first life' });
      expect((await pollChanges(source, 1)).map((c) => c.value.after)).toEqual([{ id: 1, label: 'first life' }]);

      await client.execute(`DROP KEYSPACE ${keyspace}`, [], SCHEMA_CHANGE);
      base = await baseKeyspace();
      items = await base.createTable(spec());
      await items.insert({ id: 2, label: 'second life' });
      expect((await pollChanges(source, 1, 30_000)).map((c) => c.value.after)).toEqual([{ id: 2, label: 'second life' }]);
    } finally {
      await source.stop();
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], SCHEMA_CHANGE);
    }
  });

  it('prepares a statement again when the driver no longer knows the id the server rejects', async () => {
    const { contactPoint, localDataCenter } = bed.ks;
    const client = new cassandra.Client({ contactPoints: [contactPoint], localDataCenter });
    await client.connect();
    try {
      const table = `${bed.ks.keyspace}.probe`;
      await client.execute(`CREATE TABLE ${table} (k int PRIMARY KEY, v int)`, [], SCHEMA_CHANGE);
      await client.execute(`INSERT INTO ${table} (k, v) VALUES (1, 10)`);
      const query = `SELECT v FROM ${table} WHERE k = ?`;
      expect((await executePrepared(client, query, [1])).first()?.get('v')).toBe(10);

      // The server forgets the statement when its table is dropped.
      await client.execute(`DROP TABLE ${table}`, [], SCHEMA_CHANGE);
      await client.execute(`CREATE TABLE ${table} (k int PRIMARY KEY, v int)`, [], SCHEMA_CHANGE);
      await client.execute(`INSERT INTO ${table} (k, v) VALUES (1, 20)`);
      // The state a bounded driver cache leaves when it evicts a statement while it runs: known
      // by its text, no longer by its id (cassandra-driver's PreparedQueries, maxPrepared).
      (client.metadata as unknown as { _preparedQueries: { _mapById: Map<string, unknown> } })._preparedQueries._mapById.clear();
      await expect(client.execute(query, [1], { prepare: true })).rejects.toThrow(/Unprepared response invalid/);

      expect((await executePrepared(client, query, [1])).first()?.get('v')).toBe(20);
    } finally {
      await client.shutdown();
    }
  });

  it('the fixture binds write timestamps and TTLs: hundreds of writes prepare a handful of statements', async () => {
    const { contactPoint, localDataCenter } = bed.ks;
    const client = new cassandra.Client({ contactPoints: [contactPoint], localDataCenter });
    await client.connect();
    try {
      const fixture = await ScyllaCdcFixture.create(client, bed.ks.keyspace);
      fixture.generations.push(...bed.fixture.generations);
      const counters = await fixture.createTable({ name: 'counters', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'n', type: 'int' }] });
      for (let i = 0; i < 200; i++) {
        await counters.insert({ id: i, n: i }, { ttl: 3600 });
        await counters.update({ id: i }, { n: i + 1 });
      }
      await counters.deleteRow({ id: 1 });
      // cassandra-driver lists its prepared statements (Metadata#getAllPrepared, not in its typings).
      const prepared = (client.metadata as unknown as { getAllPrepared(): unknown[] }).getAllPrepared();
      expect(prepared.length).toBeLessThan(10);
    } finally {
      await client.shutdown();
    }
  });
});
