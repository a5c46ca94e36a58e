import { describe, expect, it } from 'vitest';
import { BUCKET_MS, MAX_READ_GAP_MS, rangeReads } from './cql.ts';
import type { MessagePosition } from './port.ts';

const at = (ts: number, shard = 0, topic = 't'): MessagePosition => ({ messageId: `${topic}/${shard}/${ts}`, topic, shard, ts });
const spans = (reads: MessagePosition[][]) => reads.map((run) => [run[0]!.ts, run[run.length - 1]!.ts]);

describe('rangeReads: the range reads that fetch positions on CQL', () => {
  const minute = 100 * BUCKET_MS;

  it('reads a dense window as one range', () => {
    const window = Array.from({ length: 1000 }, (_, i) => at(minute + i * 3));
    expect(spans(rangeReads(window))).toEqual([[minute, minute + 2997]]);
  });

  it('splits a sparse set where positions lie more than the gap apart, so no read spans the rows between them', () => {
    const sparse = [at(minute + 30_000), at(minute), at(minute + 520), at(minute + 50), at(minute + 500)];
    expect(spans(rangeReads(sparse))).toEqual([
      [minute, minute + 50],
      [minute + 500, minute + 520],
      [minute + 30_000, minute + 30_000],
    ]);
    // Exactly the gap stays in one read; one millisecond more starts another.
    expect(rangeReads([at(minute), at(minute + MAX_READ_GAP_MS)])).toHaveLength(1);
    expect(rangeReads([at(minute), at(minute + MAX_READ_GAP_MS + 1)])).toHaveLength(2);
  });

  it('never lets a read cross a partition: shard, topic or time bucket', () => {
    const reads = rangeReads([at(minute + 10, 0), at(minute + 11, 1), at(minute + 12, 0, 'u'), at(minute + BUCKET_MS - 1), at(minute + BUCKET_MS + 1)]);
    expect(reads).toHaveLength(5);
    for (const run of reads) expect(new Set(run.map((p) => `${p.topic}/${p.shard}/${Math.floor(p.ts / BUCKET_MS)}`)).size).toBe(1);
  });

  it('reads every position once, whatever the order given', () => {
    const positions = Array.from({ length: 500 }, (_, i) => at(minute + ((i * 7919) % 50_000), i % 3));
    const reads = rangeReads(positions);
    const read = reads.flat();
    expect(read).toHaveLength(positions.length);
    expect(new Set(read.map((p) => p.messageId)).size).toBe(positions.length);
    for (const run of reads) {
      for (let i = 1; i < run.length; i++) expect(run[i]!.ts - run[i - 1]!.ts).toBeGreaterThanOrEqual(0);
      for (let i = 1; i < run.length; i++) expect(run[i]!.ts - run[i - 1]!.ts).toBeLessThanOrEqual(MAX_READ_GAP_MS);
    }
  });
});
