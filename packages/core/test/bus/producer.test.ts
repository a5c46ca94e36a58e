import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../src/bus/producer.ts';
import { routeKey } from '../../src/bus/shard.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import { newTopic } from '../../src/bus/topics.ts';
import { lmdbStore, rejection, type StoreHandle } from './helpers.ts';

const schema = {
  type: 'object',
  required: ['to', 'subject'],
  properties: { to: { type: 'string', format: 'email' }, subject: { type: 'string', maxLength: 20 } },
  additionalProperties: false,
};

describe('Producer', () => {
  let handle: StoreHandle;
  let producer: Producer;
  const signals = new ShardSignals();

  beforeAll(async () => {
    handle = await lmdbStore();
    await handle.store.createTopic(newTopic({ name: 'mail', shards: 8, schema }));
    await handle.store.createTopic(newTopic({ name: 'plain', shards: 4 }));
    producer = new Producer({ store: handle.store, signals, limits: { maxBatchBytes: 64 * 1024 } });
  });
  afterAll(async () => handle.close());

  it('writes a batch and answers {id, shard} per message, the shard being the key route', async () => {
    const keys = ['a@example.org', 'b@example.org', 'c@example.org'];
    const produced = await producer.produce(
      'mail',
      keys.map((to) => ({ key: to, value: { to, subject: 'hi' }, headers: { 'x-campaign': 'spring' } })),
      { group: 'spring-2025' },
    );
    expect(produced.map((p) => p.shard)).toEqual(keys.map((k) => routeKey(k, 8).shard));
    const stored = await handle.store.getMessages(produced.map((p) => p.id));
    expect([...stored.values()].map((m) => [m.key, m.token, m.headers['x-campaign'], m.group])).toEqual(
      keys.map((k) => [k, routeKey(k, 8).token, 'spring', 'spring-2025']),
    );
    // Generated ids are uuid v7: time-ordered, so the buffer order is the produce order.
    expect(produced.map((p) => p.id)).toEqual([...produced.map((p) => p.id)].sort());
    expect(produced[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('rejects the whole batch, naming every failing item, and writes nothing', async () => {
    const before = await handle.store.readBuffer('mail', 0, 0, Date.now() + 1000, 10_000);
    const error = await rejection(
      producer.produce('mail', [
        { key: 'ok@example.org', value: { to: 'ok@example.org', subject: 'fine' }, id: 'valid-1' },
        { key: '', value: { to: 'x@example.org', subject: 'hi' } },
        { key: 'k', value: { to: 'not-an-email', subject: 'a subject far too long for the schema' } },
        { key: 'k2' },
        { key: 'k3', value: { to: 'z@example.org', subject: 's' }, headers: { h: 1 }, id: 'bad id!' },
        'not an object',
        { key: 'x'.repeat(1025), value: { to: 'y@example.org', subject: 's', extra: true } },
      ]),
    );
    expect(error.status).toBe(422);
    expect(error.message).toBe('6 of 7 messages are invalid; none was accepted');
    const errors = (error.details as { errors: Array<{ index: number; field: string; message: string }> }).errors;
    expect(errors.map((e) => [e.index, e.field])).toEqual([
      [1, 'key'],
      [2, 'value/to'],
      [2, 'value/subject'],
      [3, 'value'],
      [4, 'headers.h'],
      [4, 'id'],
      [5, ''],
      [6, 'key'],
      [6, 'value'],
    ]);
    expect(errors.find((e) => e.index === 2 && e.field === 'value/to')!.message).toContain('format "email"');
    expect(errors.find((e) => e.index === 6 && e.field === 'value')!.message).toBe('must not have property "extra"');
    // The valid item was not written either.
    expect((await handle.store.getMessages(['valid-1'])).size).toBe(0);
    const after = await handle.store.readBuffer('mail', 0, 0, Date.now() + 1000, 10_000);
    expect(after.length).toBe(before.length);
  });

  it('answers 404 for an unknown topic, 400 for a malformed body, 413 for too many or too large messages', async () => {
    expect((await rejection(producer.produce('nope', [{ key: 'k', value: 1 }]))).status).toBe(404);
    expect((await rejection(producer.produce('plain', []))).status).toBe(400);
    expect((await rejection(producer.produce('plain', { key: 'k', value: 1 }))).status).toBe(400);
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ key: `k${i}`, value: i }));
    expect((await rejection(producer.produce('plain', tooMany))).status).toBe(413);
    const big = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: 'x'.repeat(10_000) }));
    const tooLarge = await rejection(producer.produce('plain', big));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.message).toContain('65536 bytes');
  });

  it('is idempotent for supplied ids: a second produce returns the first result and writes nothing', async () => {
    const first = await producer.produce('plain', [
      { key: 'alice', value: { n: 1 }, id: 'order-42:confirmation' },
      { key: 'bob', value: { n: 2 } },
    ]);
    const bufferBefore = await handle.store.readBuffer('plain', first[0]!.shard, 0, Date.now() + 1000, 10_000);
    const second = await producer.produce('plain', [
      { key: 'alice', value: { n: 1 }, id: 'order-42:confirmation' },
      { key: 'carol', value: { n: 3 }, id: 'order-43:confirmation' },
    ]);
    expect(second[0]).toEqual(first[0]);
    expect(second[1]!.id).toBe('order-43:confirmation');
    const bufferAfter = await handle.store.readBuffer('plain', first[0]!.shard, 0, Date.now() + 1000, 10_000);
    expect(bufferAfter.filter((e) => e.id === 'order-42:confirmation')).toHaveLength(1);
    expect(bufferAfter.length - bufferBefore.length).toBe(second[1]!.shard === first[0]!.shard ? 1 : 0);
    // The same id inside one batch, or an id of another topic's message, is refused.
    const twice = await rejection(
      producer.produce('plain', [
        { key: 'a', value: 1, id: 'dup' },
        { key: 'b', value: 2, id: 'dup' },
      ]),
    );
    expect((twice.details as { errors: unknown[] }).errors).toEqual([{ index: 1, field: 'id', message: 'repeats the id of message 0 in this batch' }]);
    const mailId = (await producer.produce('mail', [{ key: 'm@example.org', value: { to: 'm@example.org', subject: 's' } }]))[0]!.id;
    const crossTopic = await rejection(producer.produce('plain', [{ key: 'a', value: 1, id: mailId }]));
    expect((crossTopic.details as { errors: Array<{ message: string }> }).errors[0]!.message).toBe('is already the id of a message of topic mail');
  });

  it('keeps the produce order of one key in the buffer even when supplied ids sort the other way', async () => {
    const produced = await producer.produce('plain', [
      { key: 'dora', value: 1, id: 'z-first' },
      { key: 'dora', value: 2, id: 'm-second' },
      { key: 'dora', value: 3, id: 'a-third' },
    ]);
    const entries = await handle.store.readBuffer('plain', produced[0]!.shard, 0, Date.now() + 1000, 10_000);
    expect(entries.filter((e) => e.key === 'dora').map((e) => e.id)).toEqual(['z-first', 'm-second', 'a-third']);
  });

  it('keeps one key in produce order across batches of generated and supplied ids in quick succession', async () => {
    const ids: string[] = [];
    for (let round = 0; round < 20; round++) {
      const supplied = round % 3 === 1;
      // "0…" sorts before every generated (time-based) id of today.
      const produced = await producer.produce('plain', [{ key: 'erin', value: round, ...(supplied ? { id: `0-erin-${round}` } : {}) }]);
      ids.push(produced[0]!.id);
    }
    const entries = await handle.store.readBuffer('plain', routeKey('erin', 4).shard, 0, Date.now() + 1000, 10_000);
    expect(entries.filter((e) => e.key === 'erin').map((e) => e.id)).toEqual(ids);
  });

  it('measures sizes whenever the source text could hold an oversized batch', async () => {
    const big = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: 'x'.repeat(10_000) }));
    const error = await rejection(producer.produce('plain', big, { sourceBytes: JSON.stringify({ messages: big }).length }));
    expect(error.status).toBe(413);
  });

  it('wakes the consumers of each written shard, telling them from which timestamp the write landed', async () => {
    const route = routeKey('wake-me', 4);
    const landed: Array<number | undefined> = [];
    const unsubscribe = signals.subscribe('plain', route.shard, (landedFrom) => landed.push(landedFrom));
    const before = Date.now();
    const [produced] = await producer.produce('plain', [{ key: 'wake-me', value: 1 }]);
    unsubscribe();
    await producer.produce('plain', [{ key: 'wake-me', value: 2 }]);
    expect(landed).toHaveLength(1);
    const stored = (await handle.store.readBuffer('plain', route.shard, before - 1000, Date.now() + 1000, 10)).find((m) => m.id === produced!.id)!;
    expect(landed[0]).toBeGreaterThanOrEqual(before);
    expect(landed[0]).toBeLessThanOrEqual(stored.createdAt);
  });

  it('answers a write acknowledged later than the confidence delay only once the peers were told where it landed', async () => {
    const slowSignals = new ShardSignals();
    const announced: Array<{ writes: unknown; answer: () => void }> = [];
    slowSignals.onSlowWrites((writes) => new Promise<void>((answer) => announced.push({ writes, answer })));
    // A store whose writes become visible 150 ms after they were stamped (a networked store under load).
    const delayMs = 150;
    const slowStore = new Proxy(handle.store, {
      get(target, property, receiver) {
        if (property === 'appendMessages') {
          return async (...args: Parameters<typeof target.appendMessages>) => {
            await new Promise((resolve) => setTimeout(resolve, delayMs));
            return target.appendMessages(...args);
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const slow = new Producer({ store: slowStore, signals: slowSignals, slowWriteMs: 100 });
    const before = Date.now();
    let answered = false;
    const produced = slow.produce('plain', [{ key: 'late-1', value: 1 }, { key: 'late-2', value: 2 }]).then((result) => ((answered = true), result));
    for (let i = 0; i < 400 && announced.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(announced).toHaveLength(1);
    const shards = [...new Set(['late-1', 'late-2'].map((key) => routeKey(key, 4).shard))].sort();
    const writes = announced[0]!.writes as Array<{ topic: string; shard: number; landedFrom: number }>;
    expect(writes.map((w) => w.shard).sort()).toEqual(shards);
    for (const w of writes) {
      expect(w.topic).toBe('plain');
      expect(w.landedFrom).toBeGreaterThanOrEqual(before);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(false);
    announced[0]!.answer();
    expect(await produced).toHaveLength(2);
    // A write acknowledged within the bound needs no announcement (a bound no write here reaches).
    const patient = new Producer({ store: slowStore, signals: slowSignals, slowWriteMs: 60_000 });
    expect(await patient.produce('plain', [{ key: 'in-time', value: 3 }])).toHaveLength(1);
    expect(announced).toHaveLength(1);
  });
});
