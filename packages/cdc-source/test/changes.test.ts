/**
 * Change events read from CDC log tables that the fixture writes as ScyllaDB would, on the
 * run's real Cassandra.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSource } from '@omnibus/sdk';
import { ScyllaCdcSource } from '../src/index.ts';
import { cdcTestbed, pollChanges, type CdcTestbed } from './helpers.ts';

let bed: CdcTestbed;

beforeAll(async () => {
  bed = await cdcTestbed('cdc_changes');
  // One generation, started a while ago: 4 vnodes of 2 shards each.
  await bed.fixture.addGeneration(Date.now() - 15 * 60_000, { vnodes: 4, shards: 2 });
});
afterAll(async () => bed?.drop());

describe('ScyllaCdcSource', () => {
  it('emits inserts, updates and deletes of each key in write order, with the key and topic of the table', async () => {
    const users = await bed.fixture.createTable({
      name: 'users',
      partitionKey: [{ name: 'id', type: 'int' }],
      columns: [
        { name: 'name', type: 'text' },
        { name: 'score', type: 'bigint' },
        { name: 'tags', type: 'set<text>' },
      ],
    });
    const source = await startSource(ScyllaCdcSource, bed.config(['users'], { 'scylla.initial.lookback.ms': 60_000 }));
    try {
      // Interleaved writes on several keys; each key's own history is what must come out in order.
      for (let round = 0; round < 3; round++) {
        for (const id of [1, 2, 3, 4, 5]) {
          if (round === 0) await users.insert({ id, name: `user${id}`, score: '9007199254740993', tags: ['a'] });
          if (round === 1) await users.update({ id }, { name: `renamed${id}`, tags: { add: ['b'] } });
          if (round === 2 && id % 2 === 1) await users.deleteRow({ id });
        }
      }
      const changes = await pollChanges(source, 13);
      expect(changes).toHaveLength(13);
      expect(new Set(changes.map((c) => c.id)).size).toBe(13);
      for (const change of changes) expect(change.topic).toBe(`db.${bed.ks.keyspace}.users`);

      const byKey = new Map<string, string[]>();
      for (const change of changes) byKey.set(change.key, [...(byKey.get(change.key) ?? []), change.value.op]);
      expect(Object.fromEntries(byKey)).toEqual({
        '{"id":1}': ['c', 'u', 'd'],
        '{"id":2}': ['c', 'u'],
        '{"id":3}': ['c', 'u', 'd'],
        '{"id":4}': ['c', 'u'],
        '{"id":5}': ['c', 'u', 'd'],
      });
      const ofKey2 = changes.filter((c) => c.key === '{"id":2}').map((c) => c.value);
      expect(ofKey2[0]!.after).toEqual({ id: 2, name: 'user2', score: '9007199254740993', tags: ['a'] });
      expect(ofKey2[1]!.after).toEqual({ id: 2, name: 'renamed2' });
      expect(ofKey2[1]!.collection_changes).toEqual({ tags: { added: ['b'] } });
      expect(ofKey2[0]!.source).toMatchObject({ connector: 'scylla', name: 'db', snapshot: false, db: bed.ks.keyspace, table_name: 'users' });
      expect(ofKey2[0]!.source.ts_us).toBeLessThan(ofKey2[1]!.source.ts_us);
      const deleted = changes.find((c) => c.key === '{"id":1}' && c.value.op === 'd')!;
      expect(deleted.value).toMatchObject({ before: { id: 1 }, after: null });
    } finally {
      await source.stop();
    }
  });

  it('fills before and after from pre- and post-images when the table has them', async () => {
    const accounts = await bed.fixture.createTable({
      name: 'accounts',
      partitionKey: [{ name: 'id', type: 'text' }],
      columns: [
        { name: 'owner', type: 'text' },
        { name: 'balance', type: 'int' },
        { name: 'note', type: 'text' },
      ],
      preimage: true,
      postimage: true,
    });
    const source = await startSource(ScyllaCdcSource, bed.config(['accounts'], { 'scylla.initial.lookback.ms': 60_000 }));
    try {
      await accounts.insert({ id: 'a1', owner: 'ann', balance: 10 });
      await accounts.update({ id: 'a1' }, { balance: 25 });
      await accounts.update({ id: 'a1' }, { note: 'vip', balance: null });
      await accounts.deleteRow({ id: 'a1' });
      const changes = (await pollChanges(source, 4)).map((c) => c.value);
      expect(changes.map((c) => c.op)).toEqual(['c', 'u', 'u', 'd']);
      // No pre-image for a row that did not exist; the post-image has every column.
      expect(changes[0]).toMatchObject({ before: null, after: { id: 'a1', owner: 'ann', balance: 10, note: null } });
      // The pre-image holds the columns the write touched.
      expect(changes[1]!.before).toEqual({ id: 'a1', balance: 10 });
      expect(changes[1]!.after).toEqual({ id: 'a1', owner: 'ann', balance: 25, note: null });
      expect(changes[2]!.before).toEqual({ id: 'a1', balance: 25, note: null });
      expect(changes[2]!.after).toEqual({ id: 'a1', owner: 'ann', balance: null, note: 'vip' });
      // A delete's pre-image is the whole row; there is no post-image.
      expect(changes[3]).toMatchObject({ before: { id: 'a1', owner: 'ann', balance: null, note: 'vip' }, after: null });
    } finally {
      await source.stop();
    }
  });

  it('emits a partition delete keyed by the partition key, and row changes by the full primary key', async () => {
    const events = await bed.fixture.createTable({
      name: 'events',
      partitionKey: [{ name: 'tenant', type: 'text' }],
      clusteringKey: [{ name: 'seq', type: 'int' }],
      columns: [{ name: 'body', type: 'text' }],
    });
    const source = await startSource(ScyllaCdcSource, bed.config(['events'], { 'scylla.initial.lookback.ms': 60_000 }));
    try {
      await events.insert({ tenant: 't1', seq: 1, body: 'one' });
      await events.insert({ tenant: 't1', seq: 2, body: 'two' });
      await events.deletePartition({ tenant: 't1' });
      const changes = await pollChanges(source, 3);
      expect(changes.map((c) => [c.key, c.value.op])).toEqual([
        ['{"tenant":"t1","seq":1}', 'c'],
        ['{"tenant":"t1","seq":2}', 'c'],
        ['{"tenant":"t1"}', 'd'],
      ]);
      expect(changes[2]!.value).toMatchObject({ before: { tenant: 't1' }, after: null });
    } finally {
      await source.stop();
    }
  });

  it('a partition delete of a table without clustering key carries the pre-image ScyllaDB 2026.1 writes before it', async () => {
    const wallets = await bed.fixture.createTable({
      name: 'wallets',
      partitionKey: [{ name: 'id', type: 'text' }],
      columns: [
        { name: 'owner', type: 'text' },
        { name: 'balance', type: 'int' },
        { name: 'note', type: 'text' },
      ],
      preimage: true,
    });
    const source = await startSource(ScyllaCdcSource, bed.config(['wallets'], { 'scylla.initial.lookback.ms': 60_000 }));
    try {
      await wallets.insert({ id: 'w1', owner: 'ann', balance: 10 });
      await wallets.deletePartition({ id: 'w1' });
      const changes = await pollChanges(source, 2);
      expect(changes.map((c) => [c.key, c.value.op])).toEqual([
        ['{"id":"w1"}', 'c'],
        ['{"id":"w1"}', 'd'],
      ]);
      expect(changes[1]!.value).toMatchObject({ before: { id: 'w1', owner: 'ann', balance: 10, note: null }, after: null });
    } finally {
      await source.stop();
    }
  });

  it('a batch of TTL\'d INSERTs setting a null column gives one event per row, under one message id each', async () => {
    const sessions = await bed.fixture.createTable({
      name: 'sessions',
      partitionKey: [{ name: 'user', type: 'text' }],
      clusteringKey: [{ name: 'device', type: 'int' }],
      columns: [
        { name: 'token', type: 'text' },
        { name: 'note', type: 'text' },
      ],
    });
    const source = await startSource(ScyllaCdcSource, bed.config(['sessions'], { 'scylla.initial.lookback.ms': 60_000 }));
    try {
      await sessions.insertBatch(
        [
          { user: 'u1', device: 1, token: 't1', note: null },
          { user: 'u1', device: 2, token: 't2', note: null },
        ],
        { ttl: 600 },
      );
      // Nothing else arrives after the two events (no second event per row).
      const changes = [...(await pollChanges(source, 2)), ...(await pollChanges(source, 1, 1_500))];
      expect(changes.map((c) => [c.key, c.value.op, c.value.after])).toEqual([
        ['{"user":"u1","device":1}', 'c', { user: 'u1', device: 1, token: 't1', note: null }],
        ['{"user":"u1","device":2}', 'c', { user: 'u1', device: 2, token: 't2', note: null }],
      ]);
      expect(new Set(changes.map((c) => c.id)).size).toBe(2);
    } finally {
      await source.stop();
    }
  });

  it('cdc.output.format legacy and advanced: the events of ScyllaDB\'s connector for the same writes', async () => {
    const t = await bed.fixture.createTable({
      name: 't',
      partitionKey: [{ name: 'pk', type: 'int' }],
      clusteringKey: [{ name: 'ck', type: 'int' }],
      columns: [
        { name: 'v', type: 'text' },
        { name: 'w', type: 'text' },
      ],
      preimage: true,
      postimage: true,
    });
    await t.insert({ pk: 1, ck: 1, v: 'example row', w: 'kept' });
    await t.update({ pk: 1, ck: 1 }, { v: null });
    await t.deleteRow({ pk: 1, ck: 1 });
    const shapes = (changes: Awaited<ReturnType<typeof pollChanges>>) =>
      changes.map((c) => `${c.key} ${c.value.op as string} ${JSON.stringify(c.value.before)} ${JSON.stringify(c.value.after)}`);

    const legacy = await startSource(
      ScyllaCdcSource,
      bed.config(['t'], { 'scylla.initial.lookback.ms': 60_000, 'cdc.output.format': 'legacy', 'experimental.preimages.enabled': true }),
      { name: 'legacy' },
    );
    try {
      const changes = await pollChanges(legacy, 3);
      expect(shapes(changes)).toEqual([
        '{"ck":1,"pk":1} c null {"ck":1,"pk":1,"v":{"value":"example row"},"w":{"value":"kept"}}',
        '{"ck":1,"pk":1} u {"ck":1,"pk":1,"v":{"value":"example row"},"w":null} {"ck":1,"pk":1,"v":{"value":null},"w":null}',
        '{"ck":1,"pk":1} d {"ck":1,"pk":1,"v":null,"w":{"value":"kept"}} null',
      ]);
      expect(Object.keys(changes[0]!.value)).toEqual(['source', 'before', 'after', 'op', 'ts_ms', 'transaction', 'ts_us', 'ts_ns']);
      expect(changes[0]!.value.source).toMatchObject({ connector: 'scylla', name: 'db', snapshot: 'false', sequence: null, keyspace_name: bed.ks.keyspace, table_name: 't' });
    } finally {
      await legacy.stop();
    }

    const advanced = await startSource(
      ScyllaCdcSource,
      bed.config(['t'], { 'scylla.initial.lookback.ms': 60_000, 'cdc.output.format': 'advanced', 'cdc.include.before': 'full', 'cdc.include.after': 'full' }),
      { name: 'advanced' },
    );
    try {
      expect(shapes(await pollChanges(advanced, 3))).toEqual([
        '{"ck":1,"pk":1} c null {"ck":1,"pk":1,"v":"example row","w":"kept"}',
        '{"ck":1,"pk":1} u {"ck":1,"pk":1,"v":"example row","w":"kept"} {"ck":1,"pk":1,"v":null,"w":"kept"}',
        '{"ck":1,"pk":1} d {"ck":1,"pk":1,"v":null,"w":"kept"} null',
      ]);
    } finally {
      await advanced.stop();
    }
  });

  it('picks up a column added by ALTER TABLE without a restart', async () => {
    const profiles = await bed.fixture.createTable({
      name: 'profiles',
      partitionKey: [{ name: 'id', type: 'int' }],
      columns: [{ name: 'name', type: 'text' }],
    });
    const source = await startSource(ScyllaCdcSource, bed.config(['profiles'], { 'scylla.initial.lookback.ms': 60_000 }));
    try {
      await profiles.insert({ id: 1, name: 'before' });
      expect((await pollChanges(source, 1)).map((c) => c.value.after)).toEqual([{ id: 1, name: 'before' }]);
      await profiles.addColumn({ name: 'email', type: 'text' });
      await profiles.addColumn({ name: 'labels', type: 'map<text, int>' });
      await profiles.insert({ id: 2, name: 'after', email: 'a@example.org', labels: { x: 1 } });
      const [added] = await pollChanges(source, 1);
      expect(added!.value.after).toEqual({ id: 2, name: 'after', email: 'a@example.org', labels: { x: 1 } });
    } finally {
      await source.stop();
    }
  });

  it('on a first start reads back no further than scylla.initial.lookback.ms; with 0, from the generation start', async () => {
    const audit = await bed.fixture.createTable({ name: 'audit', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'what', type: 'text' }] });
    const now = Date.now();
    await audit.insert({ id: 1, what: 'ten minutes ago' }, { timestampUs: (now - 10 * 60_000) * 1000 });
    await audit.insert({ id: 2, what: 'two minutes ago' }, { timestampUs: (now - 2 * 60_000) * 1000 });
    await audit.insert({ id: 3, what: 'just now' });

    const recent = await startSource(ScyllaCdcSource, bed.config(['audit'], { 'scylla.initial.lookback.ms': 5 * 60_000 }), { name: 'recent' });
    try {
      const changes = await pollChanges(recent, 2);
      expect(changes.map((c) => c.value.after?.what)).toEqual(['two minutes ago', 'just now']);
      // Nothing older arrives later either.
      expect(await pollChanges(recent, 1, 1_500)).toEqual([]);
    } finally {
      await recent.stop();
    }

    const everything = await startSource(ScyllaCdcSource, bed.config(['audit'], { 'scylla.initial.lookback.ms': 0 }), { name: 'everything' });
    try {
      const changes = await pollChanges(everything, 3, 30_000);
      expect(changes.map((c) => c.value.after?.what)).toEqual(['ten minutes ago', 'two minutes ago', 'just now']);
    } finally {
      await everything.stop();
    }
  });
});
