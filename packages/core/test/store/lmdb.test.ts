import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { UuidV7Generator } from '../../src/store/ids.ts';
import { LmdbStore } from '../../src/store/lmdb.ts';
import { PRIORITY_HEADER, type Delivery } from '../../src/store/port.ts';
import { describeStoreConformance } from './conformance.ts';

const directories: string[] = [];
const freshDirectory = (): string => {
  const directory = mkdtempSync(join(tmpdir(), 'omnibus-lmdb-'));
  directories.push(directory);
  return directory;
};
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

describeStoreConformance('lmdb', async () => new LmdbStore(freshDirectory()));

describe('LmdbStore across processes', () => {
  const CONTENDER = fileURLToPath(new URL('./lmdb-lease-contender.ts', import.meta.url));

  /**
   * Starts contender processes, waits until each has opened the store, then lets them all go
   * at once; resolves with the lease names each one won.
   */
  const contend = (directory: string, owners: string[], leases: number): Promise<string[][]> => {
    let ready = 0;
    const children = owners.map((owner) =>
      fork(CONTENDER, [directory, owner, String(leases)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    return Promise.all(
      children.map(
        (child, i) =>
          new Promise<string[]>((resolve, reject) => {
            let won: string[] | undefined;
            child.on('message', (message) => {
              if (message === 'ready') {
                ready += 1;
                if (ready === children.length) for (const each of children) each.send('go');
              } else won = message as string[];
            });
            child.on('error', reject);
            child.on('exit', (code) => (code === 0 && won ? resolve(won) : reject(new Error(`contender ${owners[i]} exited with ${code}`))));
          }),
      ),
    );
  };

  it('gives each lease to exactly one of two processes racing for it', async () => {
    const directory = freshDirectory();
    const setup = new LmdbStore(directory);
    await setup.init(); // both children then open an existing environment
    const leases = 300;
    const [a, b] = (await contend(directory, ['process-a', 'process-b'], leases)) as [string[], string[]];
    // Every lease has exactly one winner...
    expect(a.length + b.length).toBe(leases);
    expect(new Set([...a, ...b]).size).toBe(leases);
    // ...and the store agrees with what each process was told.
    const held = await setup.listLeases('race/');
    expect(held).toHaveLength(leases);
    const owners = new Map(held.map((lease) => [lease.name, lease.owner]));
    for (const name of a) expect(owners.get(name)).toBe('process-a');
    for (const name of b) expect(owners.get(name)).toBe('process-b');
    expect(held.every((lease) => lease.epoch === 1)).toBe(true);
    // Records each process encoded with structures the other never saw decode intact.
    const at = (i: number) => ({ messageId: `m-${i}`, topic: 't', shard: 0, ts: i });
    const fromA = await setup.getDeliveries('process-a', [at(3)]);
    const fromB = await setup.getDeliveries('process-b', [at(3)]);
    expect(fromA.get('m-3')).toMatchObject({ workerId: 'process-a', attempts: 3, lastError: { code: 'process-a', message: 'try 3' } });
    expect(fromB.get('m-3')).toMatchObject({ workerId: 'process-b', attempts: 3, providerId: 'process-b-3', nextAttemptAt: 3 });
    expect((await setup.getDeliveries('process-a', [at(19)])).get('m-19')?.connector).toBe('process-a');
    expect((await setup.getDeliveries('process-b', [at(19)])).get('m-19')?.connector).toBe('process-b');
    await setup.close();
  });

  it('sees what another process wrote, without reopening', async () => {
    const directory = freshDirectory();
    const reader = new LmdbStore(directory);
    await reader.init();
    expect(await reader.getWatermark('c', 't', 0)).toBeUndefined();
    await contend(directory, ['writer'], 1);
    expect((await reader.listLeases('race/'))[0]?.owner).toBe('writer');
    expect(await reader.getWatermark('c', 't', 0)).toBe(42);
    expect((await reader.getDeliveries('writer', [{ messageId: 'm-7', topic: 't', shard: 0, ts: 7 }])).get('m-7')).toMatchObject({ providerId: 'writer-7', nextAttemptAt: 7 });
    await reader.close();
  });
});

describe('LmdbStore retention', () => {
  it('sweeps messages older than their topic retention, with their index, group entries, delivery and receipt states, events and provider ids', async () => {
    const store = new LmdbStore(freshDirectory(), { sweepIntervalMs: 0 });
    await store.init();
    const now = Date.now();
    await store.createTopic({ name: 'short', shards: 2, retentionMs: 60_000, createdAt: now });
    const message = (id: string, createdAt: number) => ({
      id, topic: 'short', key: 'k', token: '0', shard: 1, value: null, headers: {}, group: 'g', createdAt,
    });
    await store.appendMessages([message('old', now - 120_000), message('new', now - 1_000)]);
    const state = (id: string, ts: number) => ({ connector: 'c', messageId: id, topic: 'short', shard: 1, ts, state: 'sent' as const, attempts: 1, epoch: 1, workerId: 'w', providerId: `p-${id}`, updatedAt: now });
    await store.putDeliveries([state('old', now - 120_000), state('new', now - 1_000)]);
    await store.putProviderIds(['old', 'new'].map((id) => ({ connector: 'c', providerId: `p-${id}`, messageId: id, topic: 'short' })));
    await store.putReceiptStates([
      { ...state('old', now - 120_000), state: 'delivered' },
      { ...state('new', now - 1_000), state: 'delivered' },
    ]);
    await store.appendEvents(['old', 'new'].flatMap((id) => [
      { messageId: id, topic: 'short', at: now - 500, type: 'sent', connector: 'c' },
      { messageId: id, topic: 'short', at: now, type: 'delivered', connector: 'c' },
    ]));
    expect(await store.sweepExpired(now)).toBe(1);
    // What was written for the expired message goes with it: a message has several events and a provider id.
    expect(await store.listEvents('old')).toEqual([]);
    expect((await store.listEvents('new')).map((e) => e.type)).toEqual(['sent', 'delivered']);
    expect(await store.findByProviderId('c', 'p-old')).toBeUndefined();
    expect(await store.findByProviderId('c', 'p-new')).toBe('new');
    expect([...(await store.locateMessages(['old', 'new'])).keys()]).toEqual(['new']);
    const states = await store.getDeliveries('c', [{ messageId: 'old', topic: 'short', shard: 1, ts: now - 120_000 }, { messageId: 'new', topic: 'short', shard: 1, ts: now - 1_000 }]);
    expect([...states.keys()]).toEqual(['new']);
    expect([...(await store.getMessages(['old', 'new'])).keys()]).toEqual(['new']);
    expect((await store.readBuffer('short', 1, 0, now, 10)).map((e) => e.id)).toEqual(['new']);
    expect(await store.listGroupMessages('g', 10)).toEqual(['new']);
    await store.close();
  });

  it('removes an expired message from its priority lane with it', async () => {
    const store = new LmdbStore(freshDirectory(), { sweepIntervalMs: 0 });
    await store.init();
    const now = Date.now();
    await store.createTopic({ name: 'urgent', shards: 1, retentionMs: 60_000, createdAt: now - 300_000 });
    const message = (id: string, createdAt: number) => ({ id, topic: 'urgent', key: 'k', token: '0', shard: 0, value: null, headers: { [PRIORITY_HEADER]: 'high' }, createdAt });
    await store.appendMessages([message('old', now - 120_000), message('new', now - 1_000)]);
    expect(await store.sweepExpired(now)).toBe(1);
    expect((await store.scanPriorityLane('urgent', 0, 'high', 0, now, 10)).map((p) => p.messageId)).toEqual(['new']);
    await store.close();
  });

  it('forgets members whose heartbeat expired long ago', async () => {
    const store = new LmdbStore(freshDirectory(), { sweepIntervalMs: 0 });
    await store.init();
    const now = Date.now();
    await store.heartbeat({ id: 'gone', url: 'http://127.0.0.1:1', startedAt: 0, heartbeatAt: now - 3_600_000 }, 10_000);
    await store.heartbeat({ id: 'late', url: 'http://127.0.0.1:2', startedAt: 0, heartbeatAt: now - 60_000 }, 10_000);
    await store.sweepExpired(now);
    expect((await store.readCluster(0)).members.map((m) => m.id)).toEqual(['late']);
    await store.close();
  });
});

describe('LmdbStore write figures', () => {
  it("counts this process's write transactions, puts and pages, and reports nothing once closed", async () => {
    const store = new LmdbStore(freshDirectory(), { sweepIntervalMs: 0 });
    await store.init();
    await store.createTopic({ name: 'counted', shards: 4, retentionMs: 60_000, createdAt: Date.now() });
    const batch = (suffix: string) =>
      Array.from({ length: 100 }, (_, n) => ({
        id: `m${n}${suffix}`, topic: 'counted', key: `k${n}`, token: '0', shard: n % 4, value: { n }, headers: {}, createdAt: Date.now(),
      }));
    // The first batch also saves the value encoder's shared structures (a transaction of their own).
    await store.appendMessages(batch('a'));
    const before = store.writeStats()!;
    await store.appendMessages(batch('b'));
    const after = store.writeStats()!;
    // One transaction for the whole append: a buffer row and an id index row per message.
    expect(after.transactions - before.transactions).toBe(1);
    expect(after.puts - before.puts).toBe(200);
    expect(after.pagesWritten).toBeGreaterThan(before.pagesWritten);
    expect(after.transactionSeconds).toBeGreaterThan(before.transactionSeconds);
    expect(after.usedBytes).toBeGreaterThanOrEqual(before.usedBytes);
    await store.close();
    expect(store.writeStats()).toBeUndefined();
  });
});

describe('LmdbStore id index', () => {
  it('writes no index row for a message whose id says where it is, and still finds it by id, in its own topic', async () => {
    const store = new LmdbStore(freshDirectory(), { sweepIntervalMs: 0 });
    await store.init();
    const now = Date.now();
    // Two topics with the same shards: an implied position names no topic.
    for (const name of ['first', 'second']) await store.createTopic({ name, shards: 4, retentionMs: 60_000, createdAt: now });
    const ids = new UuidV7Generator();
    const message = (id: string, topic: string, shard: number, createdAt: number) => ({ id, topic, key: 'k', token: '0', shard, value: null, headers: {}, createdAt });
    const warmUp = message('warm-up', 'first', 0, now); // saves the encoder's shared structures
    await store.appendMessages([warmUp]);
    const implied = [message(ids.next(now, 1), 'first', 1, now), message(ids.next(now + 1, 3), 'second', 3, now + 1)];
    const indexed = [message(ids.next(now + 2, 2), 'second', 1, now + 2), message(ids.next(now + 3, 0), 'first', 0, now + 2), message('mine', 'first', 2, now + 3)];
    const before = store.writeStats()!;
    await store.appendMessages([...implied, ...indexed]);
    // A buffer row each, and an index row for the three whose id does not say where they are.
    expect(store.writeStats()!.puts - before.puts).toBe(implied.length + 2 * indexed.length);
    const all = [warmUp, ...implied, ...indexed];
    const found = await store.locateMessages(all.map((m) => m.id));
    for (const m of all) expect(found.get(m.id)).toEqual({ messageId: m.id, topic: m.topic, shard: m.shard, ts: m.createdAt });
    expect((await store.getMessages([implied[1]!.id])).get(implied[1]!.id)).toEqual(implied[1]);
    // Expired, they are gone by id too.
    expect(await store.sweepExpired(now + 120_000)).toBe(all.length);
    expect((await store.locateMessages(all.map((m) => m.id))).size).toBe(0);
    await store.close();
  });
});

describe('LmdbStore send records', () => {
  const at = (i: number, shard: number, ts: number) => ({ messageId: `s-${i}`, topic: 'sends', shard, ts });
  const row = (p: ReturnType<typeof at>, state: Delivery['state'], attempts: number, updatedAt: number): Delivery => ({
    connector: 'sink', ...p, state, attempts, epoch: 2, workerId: 'w1', updatedAt,
  });

  it("keeps a batch's sending states as a row per shard, removed once every outcome is written, and its sent states the same way", async () => {
    const store = new LmdbStore(freshDirectory(), { sweepIntervalMs: 0 });
    await store.init();
    // On a second's edge: the batch's messages (from a second before, over 100 ms) all fall in one slot of time.
    const now = Math.floor(Date.now() / 1000) * 1000;
    const batch = Array.from({ length: 100 }, (_, i) => at(i, i % 4, now - 1000 + i));
    // Saves the encoders' shared structures of both tables first.
    await store.putDeliveries([row(at(999, 0, now - 2000), 'sending', 1, now)]);
    await store.putDeliveries([row(at(999, 0, now - 2000), 'sent', 1, now)]);
    let before = store.writeStats()!;
    await store.putDeliveries(batch.map((p) => row(p, 'sending', 1, now)));
    // One record per shard of the batch, not one row per message.
    expect(store.writeStats()!.puts - before.puts).toBe(4);
    before = store.writeStats()!;
    await store.putDeliveries(batch.map((p) => row(p, 'sent', 1, now + 1)));
    const after = store.writeStats()!;
    // One sent batch per shard (and slot of time) of the batch too.
    expect(after.puts - before.puts).toBe(4);
    expect(after.deletes - before.deletes).toBe(4);
    expect([...(await store.getDeliveries('sink', batch)).values()].every((d) => d.state === 'sent')).toBe(true);
    await store.close();
  });

  it('reads sent states from their batches with their provider ids, across slots, and lets a newer row or send win', async () => {
    const store = new LmdbStore(freshDirectory(), { sweepIntervalMs: 0 });
    await store.init();
    const second = Math.floor(Date.now() / 1000) * 1000;
    // Ten messages either side of a second's edge (a slot's too), on two shards.
    const batch = Array.from({ length: 20 }, (_, i) => at(i, i % 2, second - 10 + i));
    // Saves the encoder's shared structure of a batch with provider ids first.
    await store.putDeliveries([{ ...row(at(999, 0, second - 2000), 'sent', 1, second), providerId: 'warm-up' }]);
    await store.putDeliveries(batch.map((p) => row(p, 'sending', 1, second + 5)));
    const before = store.writeStats()!;
    await store.putDeliveries(batch.map((p, i) => ({ ...row(p, 'sent', 1, second + 6), ...(i % 3 === 0 ? { providerId: `provider-${i}` } : {}) })));
    // A batch per shard and slot.
    expect(store.writeStats()!.puts - before.puts).toBe(4);
    const found = await store.getDeliveries('sink', batch);
    batch.forEach((p, i) => expect(found.get(p.messageId)).toEqual({ ...row(p, 'sent', 1, second + 6), ...(i % 3 === 0 ? { providerId: `provider-${i}` } : {}) }));
    // Another connector's batches are not this one's.
    expect((await store.getDeliveries('other-sink', batch)).size).toBe(0);

    // A row of the same attempt written later (a state set by hand) is the newer state; one of an earlier time is not.
    await store.putDeliveries([row(batch[0]!, 'delivered', 1, second + 7)]);
    await store.putDeliveries([row(batch[3]!, 'unknown', 1, second + 1)]);
    // A later attempt's row (an at-least-once redelivery failing) is the newer state.
    await store.putDeliveries([{ ...row(batch[1]!, 'retrying', 2, second + 8), nextAttemptAt: second + 60_000 }]);
    // And a later attempt's `sending` too.
    await store.putDeliveries([row(batch[2]!, 'sending', 2, second + 9)]);
    const after = await store.getDeliveries('sink', batch.slice(0, 4));
    expect([0, 1, 2, 3].map((i) => [after.get(batch[i]!.messageId)?.state, after.get(batch[i]!.messageId)?.attempts])).toEqual([
      ['delivered', 1],
      ['retrying', 2],
      ['sending', 2],
      ['sent', 1],
    ]);

    // They expire with their messages, provider ids with them.
    await store.putProviderIds([{ connector: 'sink', providerId: 'provider-3', messageId: batch[3]!.messageId, topic: 'sends' }]);
    expect(await store.findByProviderId('sink', 'provider-3')).toBe(batch[3]!.messageId);
    await store.createTopic({ name: 'sends', shards: 2, retentionMs: 60_000, createdAt: second - 5000 });
    await store.sweepExpired(second + 120_000);
    expect((await store.getDeliveries('sink', batch)).size).toBe(0);
    expect(await store.findByProviderId('sink', 'provider-3')).toBeUndefined();
    await store.close();
  });

  it('shows the next process what a crashed one left in flight, until its outcome is written', async () => {
    const directory = freshDirectory();
    const crashed = new LmdbStore(directory, { sweepIntervalMs: 0 });
    await crashed.init();
    const now = Date.now();
    const batch = Array.from({ length: 10 }, (_, i) => at(i, i % 2, now - 1000 + i));
    await crashed.putDeliveries(batch.map((p) => row(p, 'sending', 1, now)));
    await crashed.putDeliveries(batch.slice(0, 4).map((p) => row(p, 'sent', 1, now + 1)));
    await crashed.close(); // no outcome for the other six

    const next = new LmdbStore(directory, { sweepIntervalMs: 0 });
    await next.init();
    const found = await next.getDeliveries('sink', batch);
    expect(batch.map((p) => found.get(p.messageId)?.state)).toEqual([...Array(4).fill('sent'), ...Array(6).fill('sending')]);
    expect(found.get(batch[9]!.messageId)).toEqual(row(batch[9]!, 'sending', 1, now));
    // The next owner records them unknown (same attempt): that state is theirs from then on.
    await next.putDeliveries(batch.slice(4).map((p) => row(p, 'unknown', 1, now + 2)));
    expect([...(await next.getDeliveries('sink', batch)).values()].filter((d) => d.state === 'unknown')).toHaveLength(6);
    // The records left behind go with the messages' retention.
    await next.createTopic({ name: 'sends', shards: 2, retentionMs: 60_000, createdAt: now - 5000 });
    await next.sweepExpired(now + 120_000);
    expect((await next.getDeliveries('sink', batch)).size).toBe(0);
    await next.close();
  });
});
