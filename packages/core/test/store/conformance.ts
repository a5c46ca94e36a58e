/**
 * The one conformance suite every store adapter must pass. Each adapter's runner calls
 * `describeStoreConformance` with a factory; tests share one store and keep apart through
 * unique names, and pass `now` explicitly wherever time matters, so nothing sleeps.
 */
import { randomUUID } from 'node:crypto';
import { UuidV7Generator } from '../../src/store/ids.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { positionOf, PRIORITY_HEADER, type ConnectorRecord, type Delivery, type Lease, type Message, type MessagePosition, type ReceiptState, type Store, type Suppression, type TemplateVersion, type Topic } from '../../src/store/port.ts';

const unique = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;
const MINUTE = 60_000;

export function describeStoreConformance(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;

    beforeAll(async () => {
      store = await makeStore();
      await store.init();
    });
    afterAll(async () => {
      await store?.close();
    });

    const topic = (overrides: Partial<Topic> = {}): Topic => ({
      name: unique('topic'),
      shards: 4,
      retentionMs: 24 * 60 * MINUTE,
      createdAt: Date.now(),
      ...overrides,
    });
    const message = (t: Topic, overrides: Partial<Message> & { createdAt: number }): Message => ({
      id: unique('msg'),
      topic: t.name,
      key: 'alice@example.com',
      token: '-3758069500696749310',
      shard: 0,
      value: { subject: 'hi', n: 1 },
      headers: {},
      ...overrides,
    });

    it('init is idempotent and the store describes itself', async () => {
      await store.init();
      expect(store.description).toMatch(/^(lmdb:|cql:\/\/)/);
    });

    describe('topics', () => {
      it('creates a topic once; a second create changes nothing and answers false', async () => {
        const first = topic({ schema: { type: 'object', required: ['to'], properties: { to: { type: 'string' } } } });
        expect(await store.createTopic(first)).toBe(true);
        expect(await store.createTopic({ ...first, shards: 99, schema: undefined })).toBe(false);
        expect(await store.getTopic(first.name)).toEqual(first);
        const second = topic({ shards: 1 });
        await store.createTopic(second);
        const names = (await store.listTopics()).map((t) => t.name);
        expect(names).toEqual(expect.arrayContaining([first.name, second.name]));
        expect(await store.getTopic(unique('missing'))).toBeUndefined();
      });

      it("raises a topic's shard count only from the count it was read with, and then takes messages in the new shards", async () => {
        const t = topic({ shards: 4 });
        await store.createTopic(t);
        const grown: Topic = { ...t, shards: 12, reshards: [{ at: Date.now() + 10_000, from: 4, to: 12 }] };
        // The store cached the topic with 4 shards when it checked a message (both stores do).
        await store.appendMessages([message(t, { id: unique('before'), shard: 3, createdAt: Date.now() })]);
        expect(await store.reshardTopic(grown, 4)).toBe(true);
        expect(await store.reshardTopic({ ...grown, shards: 16, reshards: [...grown.reshards!, { at: Date.now() + 20_000, from: 12, to: 16 }] }, 4)).toBe(false);
        expect(await store.reshardTopic({ ...grown, name: unique('missing') }, 4)).toBe(false);
        expect(await store.getTopic(t.name)).toEqual(grown);
        expect((await store.listTopics()).find((x) => x.name === t.name)).toEqual(grown);
        await store.appendMessages([message(t, { id: unique('after'), shard: 11, createdAt: Date.now() })]);
        expect((await store.readBuffer(t.name, 11, 0, Date.now() + 1000, 10)).map((m) => m.id)).toEqual([expect.stringContaining('after')]);
      });
    });

    describe('messages and the buffer', () => {
      let t: Topic;
      // A bucket boundary of every plausible bucket size (1 s … 1 h) lies at `base`.
      const base = Math.floor(Date.now() / (60 * MINUTE)) * 60 * MINUTE;

      beforeAll(async () => {
        t = topic();
        await store.createTopic(t);
      });

      it('appends messages, reads them back by id and from the buffer, and locates them', async () => {
        const messages = [
          message(t, { createdAt: base - 1, shard: 1, key: '+33612345678', group: 'campaign-1', headers: { 'x-trace': 'abc' } }),
          message(t, { createdAt: base, shard: 1, value: { nested: { list: [1, 'two', null, true] }, text: 'é😀' } }),
          message(t, { createdAt: base + 1, shard: 2, value: 'a plain string' }),
        ];
        await store.appendMessages(messages);
        const found = await store.getMessages([...messages.map((m) => m.id), 'no-such-id']);
        expect(found.size).toBe(3);
        for (const m of messages) expect(found.get(m.id)).toEqual(m);
        expect(found.has('no-such-id')).toBe(false);
        expect(await store.readBuffer(t.name, 1, base - 10, base + 10, 100)).toEqual([messages[0], messages[1]]);
        expect(await store.readBuffer(t.name, 2, base - 10, base + 10, 100)).toEqual([messages[2]]);
        const positions = await store.locateMessages([messages[2]!.id, 'no-such-id', messages[0]!.id]);
        expect([...positions.values()]).toEqual(expect.arrayContaining([positionOf(messages[0]!), positionOf(messages[2]!)]));
        expect(positions.size).toBe(2);
      });

      it('orders entries by time then id, with inclusive bounds and a limit, across bucket boundaries', async () => {
        const shard = 3;
        const times = [base + 2 * MINUTE + 500, base - 1, base + MINUTE, base + MINUTE - 1, base, base + 90 * MINUTE, base + MINUTE];
        const ids = ['m-c', 'm-a', 'm-e', 'm-b', 'm-d', 'm-z', 'm-f'].map((id) => `${id}-${randomUUID().slice(0, 4)}`);
        const appended = times.map((createdAt, i) => message(t, { id: ids[i]!, createdAt, shard }));
        await store.appendMessages(appended);
        const expected = [...appended].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));

        expect(await store.readBuffer(t.name, shard, base - 1, base + 90 * MINUTE, 100)).toEqual(expected);
        // Inclusive at both ends.
        expect((await store.readBuffer(t.name, shard, base, base + MINUTE, 100)).map((e) => e.createdAt)).toEqual([
          base,
          base + MINUTE - 1,
          base + MINUTE,
          base + MINUTE,
        ]);
        // The limit keeps the oldest, even when they span buckets.
        expect(await store.readBuffer(t.name, shard, base - 1, base + 90 * MINUTE, 3)).toEqual(expected.slice(0, 3));
        // A long window with empty stretches, read from far back.
        expect(await store.readBuffer(t.name, shard, base - 20 * 60 * MINUTE, base + 3 * 60 * MINUTE, 100)).toEqual(expected);
        expect(await store.readBuffer(t.name, shard, base + 2 * MINUTE + 501, base + 90 * MINUTE - 1, 100)).toEqual([]);
        expect(await store.readBuffer(t.name, shard, base + 3 * MINUTE, base + 90 * MINUTE, 1)).toEqual([expected.at(-1)]);
        expect(await store.readBuffer(t.name, 0, base - 1, base + 90 * MINUTE, 100)).toEqual([]);
      });

      it('finds by id the messages of a produce with bus ids (time-ordered UUIDs) and with ids of the producer', async () => {
        const ids = new UuidV7Generator();
        const start = base + 11 * 60 * MINUTE;
        // Bus ids over a minute and a half (several index slots), made as the producer makes them
        // (at the message's time, for its shard: they say where the message is), with ids among
        // them that say nothing or something wrong: the producer's own, a bus id whose millisecond
        // was moved on (a spent counter, per-key order), one made for another shard, and one
        // without a shard.
        const odd = [
          () => unique('producer'),
          (i: number) => ids.next(start + i * 300 - 1, i % 4),
          (i: number) => ids.next(start + i * 300, (i % 4) + 1),
          (i: number) => ids.next(start + i * 300),
        ];
        const messages = Array.from({ length: 300 }, (_, i) =>
          message(t, { id: i % 10 < odd.length ? odd[i % 10]!(i) : ids.next(start + i * 300, i % 4), createdAt: start + i * 300, shard: i % 4 }),
        );
        await store.appendMessages(messages);
        // Missing: ids that say a place where no message is, or nothing.
        const asked = [...messages.map((m) => m.id), ids.next(start, 1), ids.next(start + 300, 0), unique('missing')];
        const positions = await store.locateMessages(asked);
        expect(positions.size).toBe(300);
        for (const m of messages) expect(positions.get(m.id)).toEqual(positionOf(m));
        // Told the topic they are in, or a wrong one (a sink whose topics changed since): the same answer.
        expect(await store.locateMessages(asked, [t.name])).toEqual(positions);
        expect(await store.locateMessages(asked, [unique('elsewhere')])).toEqual(positions);
        const some = messages.filter((_, i) => i % 7 === 3);
        expect([...(await store.getMessagesAt(some.map(positionOf))).values()].sort((a, b) => a.createdAt - b.createdAt)).toEqual(some);
        // A position must match exactly: the same id at another time or shard is no message.
        expect((await store.getMessagesAt([{ ...positionOf(some[0]!), ts: some[0]!.createdAt + 1 }, { ...positionOf(some[1]!), shard: 3 - some[1]!.shard }])).size).toBe(0);
        expect(await store.scanBuffer(t.name, 1, start, start + 300 * 300, 1_000)).toEqual(messages.filter((m) => m.shard === 1).map(positionOf));
      });

      it('reads a large batch back in order', async () => {
        const shard = 0;
        const start = base + 5 * 60 * MINUTE;
        const messages = Array.from({ length: 600 }, (_, i) =>
          message(t, { id: `bulk-${String(i).padStart(4, '0')}-${randomUUID().slice(0, 4)}`, createdAt: start + i * 250, shard }),
        );
        await store.appendMessages(messages);
        const entries = await store.readBuffer(t.name, shard, start, start + 600 * 250, 1_000);
        expect(entries.map((e) => e.id)).toEqual(messages.map((m) => m.id));
        expect((await store.getMessages(messages.map((m) => m.id))).size).toBe(600);
      });

      it('rejects a batch with a message for an unknown topic or shard, writing none of it', async () => {
        const good = message(t, { createdAt: base + 7 * 60 * MINUTE });
        await expect(store.appendMessages([good, message({ ...t, name: unique('nope') }, { createdAt: base })])).rejects.toThrow(/does not exist/);
        await expect(store.appendMessages([good, message(t, { createdAt: base, shard: 4 })])).rejects.toThrow(/shard/);
        expect((await store.getMessages([good.id])).size).toBe(0);
        expect(await store.readBuffer(t.name, 0, base + 7 * 60 * MINUTE, base + 7 * 60 * MINUTE, 10)).toEqual([]);
      });

      it('lists the messages of a group', async () => {
        const group = unique('group');
        const inGroup = Array.from({ length: 5 }, (_, i) => message(t, { createdAt: base + i, group }));
        await store.appendMessages([...inGroup, message(t, { createdAt: base, group: unique('other') }), message(t, { createdAt: base })]);
        expect((await store.listGroupMessages(group, 100)).sort()).toEqual(inGroup.map((m) => m.id).sort());
        expect(await store.listGroupMessages(group, 2)).toHaveLength(2);
        expect(await store.listGroupMessages(unique('empty'), 10)).toEqual([]);
      });

      it('counts a held message of a group from its hold, as scheduled, and only once: not again at its release, nor when a write is repeated', async () => {
        const group = unique('held-group');
        const now = Date.now();
        const held = [0, 1, 2].map(() => message(t, { createdAt: now, shard: 3, group }));
        const entries = held.map((m) => ({ message: m, dueAt: now + 60 * MINUTE, reason: 'send_at' as const }));
        const tallies = async () => (await store.readGroupTallies(group)).map(({ topic, shard, messages, scheduled }) => ({ topic, shard, messages, scheduled }));
        const counted = (messages: number, scheduled?: number) => [{ topic: t.name, shard: 3, messages, scheduled }];

        await store.putScheduled(entries);
        expect(await tallies()).toEqual(counted(3, 3));
        // Held again (a retried write), and a fallback of the group held: neither counts.
        const fallback = { message: message(t, { createdAt: now, shard: 3, group }), dueAt: now + 2 * 60 * MINUTE, reason: 'fallback' as const, fallback: { of: held[0]!.id, topic: t.name, unless: ['delivered' as const] } };
        await store.putScheduled([entries[0]!, fallback]);
        expect(await tallies()).toEqual(counted(3, 3));

        // Released: in the buffer, no longer scheduled, not counted twice; repeated, nothing moves.
        await store.appendMessages([held[0]!, held[1]!]);
        expect(await tallies()).toEqual(counted(3, 1));
        await store.appendMessages([held[0]!]);
        await store.putScheduled([entries[1]!]);
        expect(await tallies()).toEqual(counted(3, 1));
        await store.appendMessages([held[2]!]);
        expect(await tallies()).toEqual(counted(3));
        // The fallback counts when it is released, as any produced message.
        await store.appendMessages([fallback.message]);
        expect(await tallies()).toEqual(counted(4));
        await store.removeScheduled([...entries, fallback].map((e) => ({ id: e.message.id, dueAt: e.dueAt })));
      });
    });

    describe('watermarks', () => {
      it('are absent until set, then hold the last value per consumer, topic and shard', async () => {
        const consumer = unique('sink');
        expect(await store.getWatermark(consumer, 'mail', 0)).toBeUndefined();
        await store.setWatermark(consumer, 'mail', 0, 1_000);
        await store.setWatermark(consumer, 'mail', 1, 2_000);
        await store.setWatermark(consumer, 'mail', 0, 1_500);
        expect(await store.getWatermark(consumer, 'mail', 0)).toBe(1_500);
        expect(await store.getWatermark(consumer, 'mail', 1)).toBe(2_000);
        expect(await store.getWatermark(consumer, 'sms', 0)).toBeUndefined();
        expect(await store.getWatermark(unique('other'), 'mail', 0)).toBeUndefined();
      });
    });

    describe('source offsets', () => {
      it('keep one offset per partition map, whatever its key order, until deleted', async () => {
        const connector = unique('cdc');
        const other = unique('cdc');
        await store.putSourceOffsets(connector, [
          { partition: { table: 'ks.t', vnode: 1 }, offset: { window_start: 'a' } },
          { partition: { table: 'ks.t', vnode: 2 }, offset: { window_start: 'b' } },
        ]);
        await store.putSourceOffsets(other, [{ partition: { table: 'ks.u' }, offset: { n: 1 } }]);
        await store.putSourceOffsets(connector, [{ partition: { vnode: 1, table: 'ks.t' }, offset: { window_start: 'c', change: { id: 7 } } }]);
        const offsets = await store.getSourceOffsets(connector);
        expect(offsets).toHaveLength(2);
        const byVnode = new Map(offsets.map((o) => [o.partition.vnode, o.offset]));
        expect(byVnode.get(1)).toEqual({ window_start: 'c', change: { id: 7 } });
        expect(byVnode.get(2)).toEqual({ window_start: 'b' });
        await store.deleteSourceOffsets(connector);
        expect(await store.getSourceOffsets(connector)).toEqual([]);
        expect(await store.getSourceOffsets(other)).toEqual([{ partition: { table: 'ks.u' }, offset: { n: 1 } }]);
      });
    });

    describe('deliveries and provider ids', () => {
      const bucketStart = Math.floor(Date.now() / (60 * MINUTE)) * 60 * MINUTE;
      const at = (messageId: string, ts: number, shard = 0, topic = 'mail'): MessagePosition => ({ messageId, topic, shard, ts });
      const delivery = (overrides: Partial<Delivery> & MessagePosition & { connector: string }): Delivery => ({
        state: 'sending',
        attempts: 1,
        epoch: 3,
        workerId: '127.0.0.1:8083',
        updatedAt: 1_700_000_000_000,
        ...overrides,
      });

      it('upserts a delivery per (connector, message position) and reads it back by position', async () => {
        const email = unique('email');
        const sms = unique('sms');
        const [m1, m2, m3] = [at(unique('m'), bucketStart - 1), at(unique('m'), bucketStart), at(unique('m'), bucketStart + 5)];
        await store.putDeliveries([
          delivery({ connector: email, ...m1, state: 'retrying', lastError: { code: 'SMTP_421', message: 'try later' }, nextAttemptAt: 1_700_000_060_000 }),
          delivery({ connector: email, ...m2 }),
          delivery({ connector: sms, ...m1, state: 'sent', providerId: 'SM123' }),
        ]);
        let found = await store.getDeliveries(email, [m1, m2, m3]);
        expect([...found.keys()].sort()).toEqual([m1.messageId, m2.messageId].sort());
        expect(found.get(m1.messageId)).toMatchObject({ state: 'retrying', lastError: { code: 'SMTP_421', message: 'try later' }, nextAttemptAt: 1_700_000_060_000 });

        // A put replaces the whole record: what the new state does not carry is gone.
        const sent = delivery({ connector: email, ...m1, state: 'sent', attempts: 2, providerId: '<id@mx>', updatedAt: 1_700_000_070_000 });
        await store.putDeliveries([sent]);
        found = await store.getDeliveries(email, [m1]);
        expect(found.get(m1.messageId)).toEqual(sent);

        expect((await store.getDeliveries(sms, [m1, m2])).get(m1.messageId)).toEqual(delivery({ connector: sms, ...m1, state: 'sent', providerId: 'SM123' }));
        expect((await store.getDeliveries(sms, [m2, m3])).size).toBe(0);
        // The same message id at another position is another message.
        expect((await store.getDeliveries(email, [{ ...m1, shard: 1 }, { ...m1, topic: 'sms' }, { ...m1, ts: m1.ts + 1 }])).size).toBe(0);
      });

      it("keeps a receipt's state beside the sink's own: neither write replaces the other", async () => {
        const connector = unique('receipts');
        const [early, only, dead, bounced] = ['early', 'only', 'dead', 'bounced'].map((name, i) => at(`${name}-${randomUUID().slice(0, 8)}`, bucketStart + i, i % 2)) as [
          MessagePosition,
          MessagePosition,
          MessagePosition,
          MessagePosition,
        ];
        const receipt = (p: MessagePosition, state: ReceiptState['state'], extra: Partial<ReceiptState> = {}): ReceiptState => ({
          connector, ...p, state, workerId: 'receiver', updatedAt: 1_700_000_200_000, ...extra,
        });
        await store.putDeliveries([delivery({ connector, ...early }), delivery({ connector, ...dead, state: 'dead' }), delivery({ connector, ...bounced, state: 'sent', providerId: 'P-B' })]);
        await store.putReceiptStates([
          receipt(early, 'delivered'),
          receipt(only, 'read', { providerId: 'P-O' }),
          receipt(dead, 'delivered'),
          receipt(bounced, 'failed', { lastError: { code: 'UNDELIV', message: 'unreachable' } }),
        ]);
        // The sink's `sent`, written after the receipt (it read `sending` a moment before).
        await store.putDeliveries([delivery({ connector, ...early, state: 'sent', providerId: 'P-E', updatedAt: 1_700_000_100_000 })]);
        const found = await store.getDeliveries(connector, [early, only, dead, bounced]);
        expect(found.get(early.messageId)).toEqual(delivery({ connector, ...early, state: 'delivered', providerId: 'P-E', updatedAt: 1_700_000_200_000 }));
        // A receipt alone: no sink state was written (or it is gone).
        expect(found.get(only.messageId)).toEqual({ connector, ...only, state: 'read', attempts: 0, epoch: 0, workerId: 'receiver', providerId: 'P-O', updatedAt: 1_700_000_200_000 });
        // A final outcome of our own is not moved.
        expect(found.get(dead.messageId)!.state).toBe('dead');
        expect(found.get(bounced.messageId)).toMatchObject({ state: 'failed', providerId: 'P-B', lastError: { code: 'UNDELIV', message: 'unreachable' } });
      });

      it('answers only the positions asked for, however the rows between them lie', async () => {
        const connector = unique('window');
        const window = Array.from({ length: 40 }, (_, i) => at(`w-${String(i).padStart(2, '0')}-${randomUUID().slice(0, 4)}`, bucketStart - 10 * MINUTE + i * 30_000, i % 2));
        await store.putDeliveries(window.map((p, i) => delivery({ connector, ...p, state: i % 3 === 0 ? 'sent' : 'sending' })));
        const asked = window.filter((_, i) => i % 4 === 1);
        const found = await store.getDeliveries(connector, asked);
        expect([...found.keys()].sort()).toEqual(asked.map((p) => p.messageId).sort());
        for (const p of asked) expect(found.get(p.messageId)).toMatchObject({ ...p, connector });
      });

      it("follows a sink's batches: sending for all, then each message's outcome, then a later attempt's sending", async () => {
        const connector = unique('batches');
        const batch = Array.from({ length: 12 }, (_, i) => at(`b-${i}-${randomUUID().slice(0, 6)}`, bucketStart + i, i % 3));
        const sentAt = 1_700_000_100_000;
        await store.putDeliveries(batch.map((p) => delivery({ connector, ...p, attempts: 1, epoch: 4, updatedAt: sentAt })));
        let found = await store.getDeliveries(connector, batch);
        for (const p of batch) expect(found.get(p.messageId)).toEqual(delivery({ connector, ...p, attempts: 1, epoch: 4, updatedAt: sentAt }));
        // Outcomes for the first eight (written with the next batch's sending rows in one call, as a sink does).
        const outcome = (p: MessagePosition, i: number): Delivery =>
          i % 4 === 3
            ? delivery({ connector, ...p, state: 'retrying', attempts: 1, epoch: 4, updatedAt: sentAt + 5, nextAttemptAt: sentAt + 1000, lastError: { code: 'BUSY', message: 'later' } })
            : delivery({ connector, ...p, state: 'sent', attempts: 1, epoch: 4, updatedAt: sentAt + 5 });
        const next = at(`b-next-${randomUUID().slice(0, 6)}`, bucketStart + 20, 1);
        await store.putDeliveries([...batch.slice(0, 8).map(outcome), delivery({ connector, ...next, attempts: 1, epoch: 4, updatedAt: sentAt + 5 })]);
        found = await store.getDeliveries(connector, [...batch, next]);
        batch.slice(0, 8).forEach((p, i) => expect(found.get(p.messageId)).toEqual(outcome(p, i)));
        for (const p of batch.slice(8)) expect(found.get(p.messageId)).toMatchObject({ state: 'sending', attempts: 1, updatedAt: sentAt });
        expect(found.get(next.messageId)).toMatchObject({ state: 'sending', attempts: 1, updatedAt: sentAt + 5 });
        // The retried message is sent again: its second attempt is in flight, newer than the retrying state.
        const retried = batch[3]!;
        await store.putDeliveries([delivery({ connector, ...retried, attempts: 2, epoch: 4, updatedAt: sentAt + 1000 })]);
        expect((await store.getDeliveries(connector, [retried])).get(retried.messageId)).toEqual(delivery({ connector, ...retried, attempts: 2, epoch: 4, updatedAt: sentAt + 1000 }));
        // A send taken back before it went out puts the earlier state back.
        await store.putDeliveries([outcome(retried, 3)]);
        expect((await store.getDeliveries(connector, [retried])).get(retried.messageId)).toEqual(outcome(retried, 3));
        // Another connector's deliveries of the same messages are its own.
        expect((await store.getDeliveries(unique('other'), batch)).size).toBe(0);
      });

      it('writes a large batch of deliveries', async () => {
        const connector = unique('bulk');
        const positions = Array.from({ length: 500 }, (_, i) => at(`bulk-${i}-${randomUUID().slice(0, 6)}`, bucketStart + i * 7, i % 4));
        await store.putDeliveries(positions.map((p) => delivery({ connector, ...p, state: 'sent' })));
        const found = await store.getDeliveries(connector, positions);
        expect(found.size).toBe(500);
        expect([...found.values()].every((d) => d.state === 'sent')).toBe(true);
      });

      it('maps a provider id back to the message, per connector', async () => {
        const connector = unique('smpp');
        await store.putProviderIds([
          { connector, providerId: 'abc-1', messageId: 'm-1', topic: 'mail' },
          { connector, providerId: 'abc-2', messageId: 'm-2', topic: 'mail' },
        ]);
        expect(await store.findByProviderId(connector, 'abc-2')).toBe('m-2');
        expect(await store.findByProviderId(connector, 'abc-3')).toBeUndefined();
        expect(await store.findByProviderId(unique('other'), 'abc-1')).toBeUndefined();
      });
    });

    describe('events', () => {
      it('lists a message’s events in time order, keeping events that share a millisecond', async () => {
        const messageId = unique('m');
        const topic = 'mail';
        await store.appendEvents([
          { messageId, topic, at: 3_000, type: 'sent', connector: 'email', workerId: 'w1', detail: { providerId: '<x@y>' } },
          { messageId, topic, at: 1_000, type: 'accepted' },
        ]);
        await store.appendEvents([
          { messageId, topic, at: 2_000, type: 'fetched', workerId: 'w1' },
          { messageId, topic, at: 2_000, type: 'sending', connector: 'email', workerId: 'w1' },
          { messageId: unique('other'), topic, at: 1_500, type: 'accepted' },
        ]);
        const events = await store.listEvents(messageId);
        expect(events.map((e) => e.type)).toEqual(['accepted', 'fetched', 'sending', 'sent']);
        expect(events[3]).toEqual({ messageId, at: 3_000, type: 'sent', connector: 'email', workerId: 'w1', detail: { providerId: '<x@y>' } });
        expect(events[0]).toEqual({ messageId, at: 1_000, type: 'accepted' });
        expect(await store.listEvents(unique('none'))).toEqual([]);
      });
    });

    describe('leases', () => {
      const T = 1_800_000_000_000;

      it('are acquired when free, refused to another owner while valid, renewed only with the current epoch', async () => {
        const name = unique('sink:email/mail/0');
        const first = await store.acquireLease(name, 'w1', 10_000, T);
        expect(first).toEqual<Lease>({ name, owner: 'w1', epoch: 1, expiresAt: T + 10_000 });
        expect(await store.acquireLease(name, 'w2', 10_000, T + 5_000)).toBeUndefined();
        // The owner taking it again keeps the epoch and extends it.
        expect(await store.acquireLease(name, 'w1', 10_000, T + 5_000)).toEqual({ name, owner: 'w1', epoch: 1, expiresAt: T + 15_000 });
        expect(await store.renewLease(name, 'w1', 1, 10_000, T + 9_000)).toBe(true);
        expect(await store.renewLease(name, 'w1', 0, 10_000, T + 9_000)).toBe(false);
        expect(await store.renewLease(name, 'w2', 1, 10_000, T + 9_000)).toBe(false);
        expect(await store.acquireLease(name, 'w2', 10_000, T + 18_999)).toBeUndefined();
      });

      it('are taken over after expiry with a new epoch, fencing out the old owner', async () => {
        const name = unique('sink:sms/sms/1');
        await store.acquireLease(name, 'w1', 10_000, T);
        const taken = await store.acquireLease(name, 'w2', 10_000, T + 10_000);
        expect(taken).toEqual({ name, owner: 'w2', epoch: 2, expiresAt: T + 20_000 });
        expect(await store.renewLease(name, 'w1', 1, 10_000, T + 10_001)).toBe(false);
        expect(await store.renewLease(name, 'w2', 2, 10_000, T + 15_000)).toBe(true);
        expect(await store.acquireLease(name, 'w1', 10_000, T + 20_000)).toBeUndefined(); // renewed until T + 25 s
      });

      it('are released only by their holder, and the next owner still gets a higher epoch', async () => {
        const name = unique('sink:wa/wa/2');
        await store.acquireLease(name, 'w1', 10_000, T);
        await store.releaseLease(name, 'w1', 7); // wrong epoch: no effect
        expect(await store.acquireLease(name, 'w2', 10_000, T + 1)).toBeUndefined();
        await store.releaseLease(name, 'w1', 1);
        expect(await store.renewLease(name, 'w1', 1, 10_000, T + 2)).toBe(false);
        expect(await store.acquireLease(name, 'w2', 10_000, T + 2)).toEqual({ name, owner: 'w2', epoch: 2, expiresAt: T + 10_002 });
        await store.releaseLease(name, 'w2', 2);
        expect((await store.acquireLease(name, 'w1', 10_000, T + 3))?.epoch).toBe(3);
      });

      it('go to exactly one of many owners racing for the same free lease', async () => {
        const name = unique('race');
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.acquireLease(name, `w${i}`, 10_000, T)));
        const winners = results.filter((lease) => lease !== undefined);
        expect(winners).toHaveLength(1);
        expect(winners[0]!.epoch).toBe(1);
        expect((await store.listLeases(name))[0]?.owner).toBe(winners[0]!.owner);
      });

      it('are listed by name prefix, held ones only', async () => {
        const prefix = `${unique('sink:list')}/`;
        await store.acquireLease(`${prefix}0`, 'w1', 10_000, T);
        await store.acquireLease(`${prefix}1`, 'w2', 10_000, T);
        await store.acquireLease(`${prefix}2`, 'w2', 10_000, T);
        await store.releaseLease(`${prefix}2`, 'w2', 1);
        await store.acquireLease(`${prefix.slice(0, -1)}x/0`, 'w3', 10_000, T);
        const leases = await store.listLeases(prefix);
        expect(leases.map((l) => [l.name, l.owner]).sort()).toEqual([
          [`${prefix}0`, 'w1'],
          [`${prefix}1`, 'w2'],
        ]);
      });

      it('session leases hold while their owner is a live member, or while fresh, and pass on with a new epoch', async () => {
        const name = unique('task:mail/0');
        const first = await store.acquireSessionLease(name, 'w1', ['w1'], 10_000, T);
        expect(first).toEqual<Lease>({ name, owner: 'w1', epoch: 1, expiresAt: T + 10_000 });
        // Fresh: held even by a taker who has not seen w1 join yet.
        expect(await store.acquireSessionLease(name, 'w2', ['w2'], 10_000, T + 5_000)).toBeUndefined();
        // Expired, but its owner is a live member: held, with no renewal.
        expect(await store.acquireSessionLease(name, 'w2', ['w1', 'w2'], 10_000, T + 60_000)).toBeUndefined();
        // Expired and its owner gone from the cluster: taken, with the next epoch.
        const taken = await store.acquireSessionLease(name, 'w2', ['w2'], 10_000, T + 60_000);
        expect(taken).toEqual<Lease>({ name, owner: 'w2', epoch: 2, expiresAt: T + 70_000 });
        expect(await store.renewLease(name, 'w1', 1, 10_000, T + 60_001)).toBe(false);
        // The old owner back: refused while the new one holds it, fresh or live.
        expect(await store.acquireSessionLease(name, 'w1', ['w1'], 10_000, T + 61_000)).toBeUndefined();
        expect(await store.acquireSessionLease(name, 'w1', ['w1', 'w2'], 10_000, T + 90_000)).toBeUndefined();
        expect((await store.listLeases(name)).map((l) => [l.owner, l.epoch])).toEqual([['w2', 2]]);
      });

      it('session leases taken again by their own owner get a new epoch; released ones go to anyone, at the next epoch', async () => {
        const name = unique('task:sms/1');
        await store.acquireSessionLease(name, 'w1', ['w1'], 10_000, T);
        // w1 comes back after a lapse (or a restart with the same id): the lease is its own, at a new epoch.
        const again = await store.acquireSessionLease(name, 'w1', ['w1'], 10_000, T + 1_000);
        expect(again).toEqual<Lease>({ name, owner: 'w1', epoch: 2, expiresAt: T + 11_000 });
        // Released: anyone takes it, at the next epoch still.
        await store.releaseLease(name, 'w1', 2);
        expect(await store.acquireSessionLease(name, 'w2', ['w1', 'w2'], 10_000, T + 2_000)).toEqual<Lease>({ name, owner: 'w2', epoch: 3, expiresAt: T + 12_000 });
      });

      it('a free session lease goes to exactly one of many racing takers', async () => {
        const name = unique('task:race/0');
        const takers = Array.from({ length: 6 }, (_, i) => `w${i}`);
        const results = await Promise.all(takers.map((owner) => store.acquireSessionLease(name, owner, takers, 10_000, T)));
        const winners = results.filter((lease) => lease !== undefined);
        expect(winners).toHaveLength(1);
        expect((await store.listLeases(name))[0]).toEqual(winners[0]);
      });
    });

    describe('members and the cluster view', () => {
      it('are live until their heartbeat expires, and can be removed', async () => {
        const T = Date.now();
        const a = { id: unique('w'), url: 'http://127.0.0.1:8083', startedAt: T - 1_000, heartbeatAt: T };
        const b = { id: unique('w'), url: 'http://127.0.0.1:8084', startedAt: T - 1_000, heartbeatAt: T + 5_000 };
        await store.heartbeat(a, 10_000);
        await store.heartbeat(b, 10_000);
        const ids = async (now: number) => (await store.readCluster(now)).members.map((m) => m.id).filter((id) => id === a.id || id === b.id).sort();
        expect(await ids(T + 1_000)).toEqual([a.id, b.id].sort());
        expect((await store.readCluster(T + 1_000)).members.find((m) => m.id === a.id)).toEqual(a);
        expect(await ids(T + 12_000)).toEqual([b.id]);
        expect(await ids(T + 16_000)).toEqual([]);
        await store.heartbeat({ ...a, heartbeatAt: T + 20_000 }, 10_000);
        expect(await ids(T + 25_000)).toEqual([a.id]);
        await store.removeMember(a.id);
        expect(await ids(T + 1_000)).toEqual([b.id]);
      });

      it("keep each member's worker groups, and change them at its next heartbeat", async () => {
        const T = Date.now();
        const member = { id: unique('w'), url: 'http://127.0.0.1:8085', startedAt: T, heartbeatAt: T, groups: ['sms', 'sms-eu'] };
        await store.heartbeat(member, 10_000);
        const read = async () => (await store.readCluster(T + 1_000)).members.find((m) => m.id === member.id);
        expect(await read()).toEqual(member);
        const { groups: _dropped, ...ungrouped } = member;
        await store.heartbeat(ungrouped, 10_000);
        expect(await read()).toEqual(ungrouped);
        await store.removeMember(member.id);
      });

      it('shows a new connectors version after every bump, and the same one without', async () => {
        const before = (await store.readCluster()).connectorsVersion;
        expect(typeof before).toBe('string');
        expect((await store.readCluster()).connectorsVersion).toBe(before);
        await store.bumpConnectorsVersion();
        const once = (await store.readCluster()).connectorsVersion;
        expect(once).not.toBe(before);
        expect(once).not.toBe('');
        // Bumps racing each other are all seen: the version still changes, and ends on one value.
        await Promise.all(Array.from({ length: 4 }, () => store.bumpConnectorsVersion()));
        const raced = (await store.readCluster()).connectorsVersion;
        expect([before, once]).not.toContain(raced);
        expect((await store.readCluster()).connectorsVersion).toBe(raced);
      });
    });

    describe('connectors and statuses', () => {
      const record = (name: string, overrides: Partial<ConnectorRecord> = {}): ConnectorRecord => ({
        name,
        config: { 'connector.class': 'EmailSink', 'tasks.max': '2', 'smtp.password': '${env:SMTP_PASSWORD}' },
        targetState: 'STARTED',
        taskConfigs: [{ task: '0' }, { task: '1' }],
        generation: 1,
        createdAt: 1_700_000_000_000,
        updatedAt: 1_700_000_000_000,
        ...overrides,
      });

      it('creates a connector only once, then updates, lists and deletes it', async () => {
        const name = unique('mail');
        expect(await store.createConnector(record(name))).toBe(true);
        expect(await store.createConnector(record(name, { config: { 'connector.class': 'Other' } }))).toBe(false);
        expect(await store.getConnector(name)).toEqual(record(name));
        const updated = record(name, { targetState: 'PAUSED', generation: 2, taskConfigs: [{ task: '0' }], updatedAt: 1_700_000_001_000 });
        await store.putConnector(updated);
        expect(await store.getConnector(name)).toEqual(updated);
        const other = unique('sms');
        await store.putConnector(record(other));
        expect((await store.listConnectors()).filter((c) => c.name === name || c.name === other)).toHaveLength(2);
        await store.deleteConnector(name);
        expect(await store.getConnector(name)).toBeUndefined();
        expect((await store.listConnectors()).some((c) => c.name === name)).toBe(false);
        expect(await store.createConnector(record(name))).toBe(true);
      });

      it('keeps the connector’s and each task’s status, replaced on update, until deleted', async () => {
        const connector = unique('mail');
        const base = { connector, workerId: '127.0.0.1:8083', generation: 1, updatedAt: 1 };
        await store.putStatus({ ...base, task: null, state: 'RUNNING' });
        await store.putStatus({ ...base, task: 0, state: 'RUNNING' });
        await store.putStatus({ ...base, task: 1, state: 'RUNNING' });
        await store.putStatus({ ...base, task: 1, state: 'FAILED', trace: 'Error: boom\n    at x', updatedAt: 2 });
        await store.putStatus({ ...base, connector: unique('other'), task: null, state: 'PAUSED' });
        const statuses = await store.listStatuses(connector);
        expect(statuses).toHaveLength(3);
        expect(statuses.find((s) => s.task === null)).toEqual({ ...base, task: null, state: 'RUNNING' });
        expect(statuses.find((s) => s.task === 1)).toEqual({ ...base, task: 1, state: 'FAILED', trace: 'Error: boom\n    at x', updatedAt: 2 });
        await store.deleteStatuses(connector);
        expect(await store.listStatuses(connector)).toEqual([]);
      });
    });

    describe('templates', () => {
      const version = (name: string, n: number, body: string): TemplateVersion => ({
        name,
        version: n,
        channel: 'email',
        defaultLocale: 'en',
        locales: { en: { subject: `Code ${n}`, text: body }, fr: { subject: `Code ${n} (fr)`, text: `${body} (fr)` } },
        createdAt: 1_700_000_000_000 + n,
      });

      it('creates a template once, writes each version once, and moves the live version only from the state it was read in', async () => {
        const name = unique('otp');
        const record = { name, liveVersion: 1, latestVersion: 1, createdAt: 1, updatedAt: 1 };
        expect(await store.createTemplate(record)).toBe(true);
        expect(await store.createTemplate({ ...record, liveVersion: 9 })).toBe(false);
        expect(await store.getTemplate(name)).toEqual(record);
        expect(await store.createTemplateVersion(version(name, 1, 'Your code is {{ code }}'))).toBe(true);
        expect(await store.createTemplateVersion(version(name, 1, 'another body'))).toBe(false);
        expect(await store.getTemplateVersion(name, 1)).toEqual(version(name, 1, 'Your code is {{ code }}'));
        expect(await store.createTemplateVersion(version(name, 2, 'Code: {{ code }}'))).toBe(true);
        expect((await store.listTemplateVersions(name)).map((v) => v.version)).toEqual([1, 2]);

        const moved = { ...record, latestVersion: 2, liveVersion: 2, updatedAt: 2 };
        expect(await store.updateTemplate(moved, { latestVersion: 1, liveVersion: 1 })).toBe(true);
        // A writer that read the record before that change loses.
        expect(await store.updateTemplate({ ...record, latestVersion: 2, liveVersion: 1, updatedAt: 3 }, { latestVersion: 1, liveVersion: 1 })).toBe(false);
        expect(await store.getTemplate(name)).toEqual(moved);
        expect(await store.getTemplateVersion(name, 3)).toBeUndefined();
        expect(await store.updateTemplate({ ...record, name: unique('absent') }, { latestVersion: 1, liveVersion: 1 })).toBe(false);
      });

      it('lists templates and deletes one with all its versions', async () => {
        const kept = unique('welcome');
        const removed = unique('reset');
        for (const name of [kept, removed]) {
          await store.createTemplate({ name, liveVersion: 1, latestVersion: 1, createdAt: 1, updatedAt: 1 });
          await store.createTemplateVersion(version(name, 1, 'hello'));
        }
        const names = (await store.listTemplates()).map((t) => t.name);
        expect(names).toEqual(expect.arrayContaining([kept, removed]));
        await store.deleteTemplate(removed);
        expect(await store.getTemplate(removed)).toBeUndefined();
        expect(await store.listTemplateVersions(removed)).toEqual([]);
        expect(await store.getTemplateVersion(removed, 1)).toBeUndefined();
        expect(await store.getTemplateVersion(kept, 1)).toEqual(version(kept, 1, 'hello'));
        // A name deleted can be created again from scratch.
        expect(await store.createTemplate({ name: removed, liveVersion: 1, latestVersion: 1, createdAt: 2, updatedAt: 2 })).toBe(true);
        expect(await store.createTemplateVersion(version(removed, 1, 'again'))).toBe(true);
      });
    });

    describe('suppression list', () => {
      const phone = () => `+3361${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
      const entry = (address: string, category: string, overrides: Partial<Suppression> = {}): Suppression => ({
        channel: 'sms',
        address,
        category,
        reason: 'manual',
        createdAt: 1_000,
        ...overrides,
      });

      it('keeps one entry per channel, address and category, finds an address\'s entries and removes one or all', async () => {
        const [a, b] = [phone(), phone()];
        await store.putSuppressions([entry(a, 'all', { reason: 'stop', code: 'STOP', connector: 'sms' }), entry(a, 'marketing'), entry(b, 'marketing')]);
        await store.putSuppressions([entry(a, 'marketing', { note: 'asked by phone', createdAt: 2_000 })]);
        await store.putSuppressions([{ ...entry(a, 'all'), channel: 'whatsapp' }]);
        const found = await store.findSuppressions('sms', [a, b, phone()]);
        expect(found.sort((x, y) => `${x.address}${x.category}`.localeCompare(`${y.address}${y.category}`))).toEqual(
          [
            entry(a, 'all', { reason: 'stop', code: 'STOP', connector: 'sms' }),
            entry(a, 'marketing', { note: 'asked by phone', createdAt: 2_000 }),
            entry(b, 'marketing'),
          ].sort((x, y) => `${x.address}${x.category}`.localeCompare(`${y.address}${y.category}`)),
        );
        expect(await store.findSuppressions('sms', [])).toEqual([]);
        expect(await store.deleteSuppressions('sms', a, 'marketing')).toBe(1);
        expect(await store.deleteSuppressions('sms', a, 'marketing')).toBe(0);
        expect((await store.findSuppressions('sms', [a])).map((e) => e.category)).toEqual(['all']);
        await store.putSuppressions([entry(b, 'transactional')]);
        expect(await store.deleteSuppressions('sms', b)).toBe(2);
        expect(await store.findSuppressions('sms', [b])).toEqual([]);
        // Another channel's entry is its own.
        expect(await store.findSuppressions('whatsapp', [a])).toEqual([{ ...entry(a, 'all'), channel: 'whatsapp' }]);
      });

      it('lists the whole list page by page, each entry once', async () => {
        const addresses = Array.from({ length: 7 }, phone);
        await store.putSuppressions(addresses.map((address) => entry(address, 'all', { channel: 'email-paging' })));
        const seen: Suppression[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.listSuppressions(3, cursor);
          expect(page.entries.length).toBeLessThanOrEqual(3);
          seen.push(...page.entries);
          cursor = page.cursor;
          pages += 1;
        } while (cursor !== undefined && pages < 1000);
        const ours = seen.filter((e) => e.channel === 'email-paging').map((e) => e.address);
        expect(ours.sort()).toEqual([...addresses].sort());
        const keys = seen.map((e) => `${e.channel}|${e.address}|${e.category}`);
        expect(new Set(keys).size).toBe(keys.length);
        await expect(store.listSuppressions(3, 'not a cursor!')).rejects.toThrow(/cursor/);
      });
    });

    describe('priority lanes', () => {
      it('enters high and low messages in their lane of (topic, shard), in (ts, id) order, as far as asked', async () => {
        const t = topic();
        const other = topic();
        await store.createTopic(t);
        await store.createTopic(other);
        // Hours apart: a long window walks its non-empty minutes only.
        const base = Math.floor(Date.now() / MINUTE) * MINUTE - 180 * MINUTE;
        const lane = (priority: string) => ({ [PRIORITY_HEADER]: priority });
        const messages = [
          message(t, { createdAt: base, shard: 1, headers: lane('high') }),
          message(t, { createdAt: base + 1, shard: 1 }),
          message(t, { createdAt: base + 2, shard: 1, headers: { ...lane('low'), 'x-trace': 'abc' } }),
          message(t, { createdAt: base + 120 * MINUTE, shard: 1, headers: lane('high') }),
          message(t, { createdAt: base + 2, shard: 2, headers: lane('high') }),
          message(other, { createdAt: base + 3, shard: 1, headers: lane('high') }),
          // Not a priority: no lane.
          message(t, { createdAt: base + 4, shard: 1, headers: lane('urgent') }),
        ];
        await store.appendMessages(messages);
        const at = (m: Message) => ({ messageId: m.id, topic: m.topic, shard: m.shard, ts: m.createdAt });
        const end = base + 200 * MINUTE;
        expect(await store.scanPriorityLane(t.name, 1, 'high', base - 1, end, 100)).toEqual([at(messages[0]!), at(messages[3]!)]);
        expect(await store.scanPriorityLane(t.name, 1, 'high', base - 1, end, 1)).toEqual([at(messages[0]!)]);
        expect(await store.scanPriorityLane(t.name, 1, 'high', base + 1, end, 100)).toEqual([at(messages[3]!)]);
        expect(await store.scanPriorityLane(t.name, 1, 'low', base - 1, end, 100)).toEqual([at(messages[2]!)]);
        expect(await store.scanPriorityLane(t.name, 2, 'high', base - 1, end, 100)).toEqual([at(messages[4]!)]);
        expect(await store.scanPriorityLane(t.name, 2, 'low', base - 1, end, 100)).toEqual([]);
        expect(await store.scanPriorityLane(other.name, 1, 'high', base - 1, end, 100)).toEqual([at(messages[5]!)]);
        // Every message stays in the buffer itself, lane or not.
        expect((await store.readBuffer(t.name, 1, base - 1, end, 100)).map((m) => m.id)).toEqual([messages[0], messages[1], messages[2], messages[6], messages[3]].map((m) => m!.id));
        expect((await store.getMessagesAt([at(messages[2]!)])).get(messages[2]!.id)).toEqual(messages[2]);
      });
    });
  });
}
