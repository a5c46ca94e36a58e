/**
 * Generation switches, restarts and task splits: nothing lost, nothing published twice, each
 * key's changes in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stableJson, startSource, type SourceRecord } from '@omnibus/sdk';
import { ScyllaCdcSource, type Envelope } from '../src/index.ts';
import { cdcTestbed, changesOf, pollChanges, type CdcTestbed } from './helpers.ts';

let bed: CdcTestbed;

beforeAll(async () => {
  bed = await cdcTestbed('cdc_generations');
  await bed.fixture.addGeneration(Date.now() - 60_000, { vnodes: 4, shards: 2 });
});
afterAll(async () => bed?.drop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Change = SourceRecord & { value: Envelope };

/** Each key's `n` values in the order their changes arrived. */
function historyByKey(changes: Change[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const c of changes) (out[c.key] ??= []).push(c.value.after?.n as number);
  return out;
}

describe('generations and restarts', () => {
  it('follows a generation switch, across a restart, with no change lost, repeated or out of order', async () => {
    const counters = await bed.fixture.createTable({ name: 'counters', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'n', type: 'int' }] });
    const keys = [1, 2, 3, 4, 5, 6, 7, 8];
    const source = await startSource(ScyllaCdcSource, bed.config(['counters'], { 'scylla.initial.lookback.ms': 30_000 }));
    const seen: Change[] = [];
    try {
      for (const id of keys) await counters.insert({ id, n: 0 });
      seen.push(...(await pollChanges(source, keys.length)));
      await source.restart();

      // A new generation (a topology change), announced ahead of its start as ScyllaDB does.
      const switchAt = Date.now() + 1_200;
      await bed.fixture.addGeneration(switchAt, { vnodes: 3, shards: 3 });
      let round = 0;
      while (Date.now() < switchAt + 800) {
        round += 1;
        for (const id of keys) await counters.update({ id }, { n: round });
        await sleep(100);
      }
      seen.push(...(await pollChanges(source, keys.length * round, 20_000)));
      await source.restart();
      round += 1;
      for (const id of keys) await counters.update({ id }, { n: round });
      seen.push(...(await pollChanges(source, keys.length, 10_000)));

      expect(seen).toHaveLength(keys.length * (round + 1));
      expect(new Set(seen.map((c) => c.id)).size).toBe(seen.length);
      const expected = Array.from({ length: round + 1 }, (_, i) => i);
      expect(historyByKey(seen)).toEqual(Object.fromEntries(keys.map((id) => [`{"id":${id}}`, expected])));
      // Changes came from both generations.
      const generations = new Set(seen.map((c) => c.sourcePartition.generation_start));
      expect(generations).toEqual(new Set([String(bed.fixture.generations[0]!.startMs), String(switchAt)]));
    } finally {
      await source.stop();
    }
  });

  it('resumes a window from the last committed change: re-publishes only what follows, under the same ids', async () => {
    const items = await bed.fixture.createTable({ name: 'items', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'n', type: 'int' }] });
    const source = await startSource(ScyllaCdcSource, bed.config(['items'], { 'scylla.initial.lookback.ms': 30_000 }));
    try {
      for (let id = 1; id <= 12; id++) await items.insert({ id, n: 0 });
      const first = await pollChanges(source, 12);
      expect(first).toHaveLength(12);

      // As if the worker crashed after committing only the first change of one partition.
      const byPartition = new Map<string, Change[]>();
      for (const c of first) byPartition.set(stableJson(c.sourcePartition), [...(byPartition.get(stableJson(c.sourcePartition)) ?? []), c]);
      const [partition, ofPartition] = [...byPartition.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
      expect(ofPartition.length).toBeGreaterThan(1);
      source.offsets.set(partition, ofPartition[0]!.sourceOffset);
      await source.restart();

      for (let id = 1; id <= 3; id++) await items.update({ id }, { n: 1 });
      const second = await pollChanges(source, ofPartition.length - 1 + 3);
      const replayed = second.filter((c) => c.value.after?.n === 0);
      expect(replayed.map((c) => c.id)).toEqual(ofPartition.slice(1).map((c) => c.id));
      expect(second.filter((c) => c.value.after?.n === 1).map((c) => c.key).sort()).toEqual(['{"id":1}', '{"id":2}', '{"id":3}']);
      expect(second).toHaveLength(ofPartition.length - 1 + 3);
    } finally {
      await source.stop();
    }
  });

  it('splits vnodes over tasks; a task enters the next generation only once every task finished the previous one', async () => {
    const orders = await bed.fixture.createTable({ name: 'orders', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'n', type: 'int' }] });
    const offsets = new Map<string, Record<string, unknown>>();
    const config = bed.config(['orders'], { 'scylla.initial.lookback.ms': 30_000 });
    const even = await startSource(ScyllaCdcSource, config, { name: 'split', taskIndex: 0, maxTasks: 2, offsets });
    const odd = await startSource(ScyllaCdcSource, config, { name: 'split', taskIndex: 1, maxTasks: 2, offsets });
    const pollBoth = async (count: number, timeoutMs: number): Promise<{ even: Change[]; odd: Change[] }> => {
      const got = { even: [] as Change[], odd: [] as Change[] };
      const deadline = Date.now() + timeoutMs;
      while (got.even.length + got.odd.length < count && Date.now() < deadline) {
        got.even.push(...changesOf(await even.pollUntil(1, 500)));
        got.odd.push(...changesOf(await odd.pollUntil(1, 500)));
      }
      return got;
    };
    try {
      const keys = Array.from({ length: 20 }, (_, i) => i + 1);
      for (const id of keys) await orders.insert({ id, n: 0 });
      const first = await pollBoth(keys.length, 15_000);
      expect(first.even.length + first.odd.length).toBe(keys.length);
      expect(first.even.length).toBeGreaterThan(0);
      expect(first.odd.length).toBeGreaterThan(0);
      for (const c of first.even) expect(Number(c.sourcePartition.vnode_id) % 2).toBe(0);
      for (const c of first.odd) expect(Number(c.sourcePartition.vnode_id) % 2).toBe(1);

      const switchAt = Date.now() + 800;
      await bed.fixture.addGeneration(switchAt, { vnodes: 4, shards: 2 });
      await sleep(switchAt + 100 - Date.now());
      for (const id of keys) await orders.update({ id }, { n: 1 });

      // The odd task is stalled in the old generation: the even one must wait for it.
      const alone = await pollChanges(even, 1, 3_000);
      expect(alone).toEqual([]);

      const second = await pollBoth(keys.length, 20_000);
      const all = [...second.even, ...second.odd];
      expect(all).toHaveLength(keys.length);
      expect(all.every((c) => c.value.after?.n === 1 && c.sourcePartition.generation_start === String(switchAt))).toBe(true);
      expect(new Set(all.map((c) => c.key)).size).toBe(keys.length);
    } finally {
      await even.stop();
      await odd.stop();
    }
  });
});
