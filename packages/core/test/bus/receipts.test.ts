import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../src/bus/producer.ts';
import { applyDeliveryUpdates } from '../../src/bus/receipts.ts';
import { newTopic } from '../../src/bus/topics.ts';
import { deliveriesById, lmdbStore, type StoreHandle } from './helpers.ts';

describe('delivery receipts', () => {
  let handle: StoreHandle;
  let ids: string[];
  beforeAll(async () => {
    handle = await lmdbStore();
    await handle.store.createTopic(newTopic({ name: 'sms', shards: 2 }));
    ids = (await new Producer({ store: handle.store }).produce('sms', [{ key: '+1', value: 'a' }, { key: '+2', value: 'b' }, { key: '+3', value: 'c' }])).map((p) => p.id);
    const now = Date.now();
    const positions = await handle.store.locateMessages(ids);
    await handle.store.putDeliveries(ids.map((messageId, i) => ({ ...positions.get(messageId)!, connector: 'smpp', state: i === 2 ? 'dead' : 'sent', attempts: 1, epoch: 3, workerId: 'w1', providerId: `smsc-${i}`, updatedAt: now })));
    await handle.store.putProviderIds(ids.map((messageId, i) => ({ connector: 'smpp', providerId: `smsc-${i}`, messageId, topic: 'sms' })));
  });
  afterAll(async () => handle.close());

  it('moves sent on to delivered and read, matches provider ids, and never moves a state backwards', async () => {
    const [a, b, c] = ids as [string, string, string];
    const t = Date.now();
    const result = await applyDeliveryUpdates(
      handle.store,
      'smpp',
      [
        { providerId: 'smsc-0', state: 'read', at: t + 2 },
        { providerId: 'smsc-0', state: 'delivered', at: t + 1 },
        { messageId: b, state: 'failed', at: t, error: { code: 'UNDELIV', message: 'handset unreachable' } },
        { messageId: c, state: 'delivered', at: t },
        { providerId: 'no-such-id', state: 'delivered', at: t },
      ],
      'w2',
    );
    expect(result).toEqual({ applied: 3, ignored: 1, unmatched: 1 });
    const rows = await deliveriesById(handle.store, 'smpp', ids);
    expect(rows.get(a)).toMatchObject({ state: 'read', attempts: 1, epoch: 3, providerId: 'smsc-0' });
    expect(rows.get(b)).toMatchObject({ state: 'failed', lastError: { code: 'UNDELIV', message: 'handset unreachable' } });
    expect(rows.get(c)!.state).toBe('dead');
    // A late `delivered` after `read` changes nothing.
    await applyDeliveryUpdates(handle.store, 'smpp', [{ messageId: a, state: 'delivered', at: t + 5 }], 'w2');
    expect((await deliveriesById(handle.store, 'smpp', [a])).get(a)!.state).toBe('read');
    const events = await handle.store.listEvents(a);
    expect(events.map((e) => [e.type, (e.detail as { ignored?: string }).ignored])).toEqual([
      ['delivered', undefined],
      ['read', undefined],
      ['delivered', 'already read'],
    ]);
  });

  it('keeps a receipt that lands before or while the sink writes its own `sent` (an SMSC answers submit_sm, then sends the receipt at once)', async () => {
    const produced = await new Producer({ store: handle.store }).produce('sms', Array.from({ length: 20 }, (_, i) => ({ key: `+9${i}`, value: i })));
    const ids = produced.map((p) => p.id);
    const positions = await handle.store.locateMessages(ids);
    const row = (messageId: string, state: 'sending' | 'sent') => ({ ...positions.get(messageId)!, connector: 'smpp', state, attempts: 1, epoch: 3, workerId: 'w1', providerId: `p-${messageId}`, updatedAt: Date.now() });
    await handle.store.putDeliveries(ids.map((id) => row(id, 'sending')));
    const receipts = (slice: string[]) => slice.map((id) => ({ messageId: id, state: 'delivered' as const, at: Date.now() }));
    // Half: the receipts and the sink's write of `sent` at once, as on one worker.
    const [together, after] = [ids.slice(0, 10), ids.slice(10)];
    await Promise.all([applyDeliveryUpdates(handle.store, 'smpp', receipts(together), 'w1'), handle.store.putDeliveries(together.map((id) => row(id, 'sent')))]);
    // The other half: the receipts first, the sink's `sent` after, as from a worker that read `sending` a moment before.
    await applyDeliveryUpdates(handle.store, 'smpp', receipts(after), 'w2');
    await handle.store.putDeliveries(after.map((id) => row(id, 'sent')));
    const states = await deliveriesById(handle.store, 'smpp', ids);
    expect(ids.map((id) => states.get(id)?.state)).toEqual(ids.map(() => 'delivered'));
    // The sink's own fields stay: its attempt, epoch and provider id.
    expect(states.get(ids[0]!)).toMatchObject({ attempts: 1, epoch: 3, providerId: `p-${ids[0]}` });
  });
});
