/**
 * A table of a tablets keyspace: its own CDC stream sets (cdc_timestamps / cdc_streams), one
 * stream per tablet, renewed when its tablets split — written by the fixture as ScyllaDB lists
 * them, read on the run's real Cassandra.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSource, type SourceRecord } from '@omnibus/sdk';
import { ScyllaCdcSource, type Envelope } from '../src/index.ts';
import { cdcTestbed, pollChanges, type CdcTestbed } from './helpers.ts';

let bed: CdcTestbed;

// No cluster generation at all: a tablets table does not use them.
beforeAll(async () => {
  bed = await cdcTestbed('cdc_tablets');
});
afterAll(async () => bed?.drop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Change = SourceRecord & { value: Envelope };

describe('tablets keyspaces', () => {
  it('reads a table through its own stream sets, across a tablet split and a merge, each key in order and nothing twice', async () => {
    const firstSetMs = Date.now() - 60_000;
    const counters = await bed.fixture.createTabletsTable(
      { name: 'counters', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'n', type: 'int' }] },
      { tablets: 2, startMs: firstSetMs },
    );
    const keys = [1, 2, 3, 4, 5, 6, 7, 8];
    const source = await startSource(ScyllaCdcSource, bed.config(['counters'], { 'scylla.initial.lookback.ms': 30_000 }));
    const seen: Change[] = [];
    try {
      for (const id of keys) await counters.insert({ id, n: 0 });
      seen.push(...(await pollChanges(source, keys.length)));
      // One stream per tablet: the source partitions are the tablets of the first set.
      expect(new Set(seen.map((c) => c.sourcePartition.vnode_id)).size).toBeLessThanOrEqual(2);

      // The tablets split: a new stream set of 4, announced ahead of its start.
      const splitAt = Date.now() + 1_200;
      await counters.addTabletStreamSet(splitAt, 4);
      let round = 0;
      while (Date.now() < splitAt + 800) {
        round += 1;
        for (const id of keys) await counters.update({ id }, { n: round });
        await sleep(100);
      }
      seen.push(...(await pollChanges(source, keys.length * round, 20_000)));
      await source.restart();
      round += 1;
      for (const id of keys) await counters.update({ id }, { n: round });
      seen.push(...(await pollChanges(source, keys.length, 10_000)));
      const lastRoundOfSplit = seen.slice(-keys.length);

      // Should the cluster stop listing the first set, the others are still followed.
      await bed.ks.client.execute(`DELETE FROM ${bed.ks.keyspace}.cdc_timestamps WHERE keyspace_name = ? AND table_name = ? AND timestamp = ?`, [
        bed.ks.keyspace,
        'counters',
        new Date(firstSetMs),
      ]);

      // The tablets merge back into one: a third set, with a single stream.
      const mergeAt = Date.now() + 1_200;
      await counters.addTabletStreamSet(mergeAt, 1);
      await sleep(mergeAt + 100 - Date.now());
      round += 1;
      for (const id of keys) await counters.update({ id }, { n: round });
      seen.push(...(await pollChanges(source, keys.length, 15_000)));

      expect(seen).toHaveLength(keys.length * (round + 1));
      expect(new Set(seen.map((c) => c.id)).size).toBe(seen.length);
      const history: Record<string, number[]> = {};
      for (const c of seen) (history[c.key] ??= []).push(c.value.after?.n as number);
      const expected = Array.from({ length: round + 1 }, (_, i) => i);
      expect(history).toEqual(Object.fromEntries(keys.map((id) => [`{"id":${id}}`, expected])));
      // Changes came from the three stream sets; a round written in a set, from its streams only.
      expect(new Set(seen.map((c) => c.sourcePartition.generation_start))).toEqual(new Set([String(firstSetMs), String(splitAt), String(mergeAt)]));
      const streamOf = (c: Change) => c.id?.split('-')[2] ?? '';
      const splitStreams = new Set(counters.tabletSets![1]!.tablets.map((t) => t.stream.toString('hex')));
      for (const c of lastRoundOfSplit) expect(splitStreams.has(streamOf(c))).toBe(true);
      const merged = seen.slice(-keys.length);
      expect(new Set(merged.map(streamOf))).toEqual(new Set([counters.tabletSets![2]!.tablets[0]!.stream.toString('hex')]));
    } finally {
      await source.stop();
    }
  });
});
