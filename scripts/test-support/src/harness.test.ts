import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cassandraContactPoint, cqlUrl, freshKeyspace, uniqueKeyspaceName, type FreshKeyspace } from './index.ts';

describe('freshKeyspace', () => {
  let ks: FreshKeyspace;

  beforeAll(async () => {
    ks = await freshKeyspace('harness');
    await ks.client.execute(`CREATE TABLE ${ks.keyspace}.kv (k text PRIMARY KEY, v int)`);
  });
  afterAll(async () => {
    await ks?.drop();
  });

  it('creates a keyspace named after the prefix, replicated once', async () => {
    expect(ks.keyspace).toMatch(/^harness_[a-z0-9]+$/);
    const row = (
      await ks.client.execute('SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?', [ks.keyspace])
    ).first();
    expect(row.get('replication')).toMatchObject({ class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: '1' });
  });

  it('writes and reads a row', async () => {
    await ks.client.execute(`INSERT INTO ${ks.keyspace}.kv (k, v) VALUES (?, ?)`, ['a', 1], { prepare: true });
    const row = (await ks.client.execute(`SELECT v FROM ${ks.keyspace}.kv WHERE k = ?`, ['a'], { prepare: true })).first();
    expect(row.get('v')).toBe(1);
  });

  it('applies an INSERT ... IF NOT EXISTS once, not twice', async () => {
    const insert = `INSERT INTO ${ks.keyspace}.kv (k, v) VALUES (?, ?) IF NOT EXISTS`;
    const first = await ks.client.execute(insert, ['lwt', 1], { prepare: true });
    const second = await ks.client.execute(insert, ['lwt', 2], { prepare: true });
    expect(first.wasApplied()).toBe(true);
    expect(second.wasApplied()).toBe(false);
    // A refused LWT returns the row that won.
    expect(second.first().get('v')).toBe(1);
  });

  it('drop removes the keyspace', async () => {
    const other = await freshKeyspace('harness_drop');
    const probe = ks.client;
    const exists = async () =>
      (await probe.execute('SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?', [other.keyspace]))
        .rowLength === 1;
    expect(await exists()).toBe(true);
    await other.drop();
    expect(await exists()).toBe(false);
    await other.drop(); // idempotent
  });
});

describe('contact point and store URL', () => {
  it('point at the run’s Cassandra', () => {
    expect(cassandraContactPoint()).toMatch(/^[\w.-]+:\d+$/);
    expect(cqlUrl('ks1')).toBe(`cql://${cassandraContactPoint()}/ks1?dc=datacenter1`);
  });

  it('keyspace names are valid, unique CQL identifiers of at most 48 chars', () => {
    const names = new Set([uniqueKeyspaceName('a'), uniqueKeyspaceName('a')]);
    expect(names.size).toBe(2);
    expect(uniqueKeyspaceName('9 Bus-Cassandra!')).toMatch(/^bus_cassandra_[a-z0-9]+$/);
    expect(uniqueKeyspaceName('x'.repeat(100))).toHaveLength(48);
  });
});
