// Held messages across a SIGKILL: two worker processes on one LMDB store, messages held with
// send_at a few seconds ahead, and the worker running the scheduler killed while it releases
// them. The other takes the scheduler's lease over; every message is appended to the buffer
// exactly once, and none is handed to the sink twice.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkerProcess } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEDULER_LEASE } from '../../src/bus/scheduler.ts';
import { LmdbStore } from '../../src/store/lmdb.ts';
import { eventually } from './helpers.ts';
import { startWorkerProcess } from './processes.ts';

/** Messages held; a constant so that a faster machine may raise it. */
const HELD = 1000;
const TOPIC = 'held';

let dir: string;
const processes: WorkerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-scheduled-kill-'));
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await rm(dir, { recursive: true, force: true });
});

describe('send_at with the scheduler SIGKILLed mid-release (LMDB, 2 processes)', () => {
  it('every held message is released once and handed to the sink at most once', async () => {
    const storeUrl = `lmdb:${join(dir, 'data')}`;
    const file = join(dir, 'out.jsonl');
    const [a, b] = await Promise.all([startWorkerProcess(storeUrl), startWorkerProcess(storeUrl)]);
    processes.push(a!, b!);
    await a!.requestExpecting('POST', '/topics', { name: TOPIC, shards: 8 }, 201);
    await a!.requestExpecting('POST', '/connectors', { name: 'out', config: { 'connector.class': 'FileSink', 'tasks.max': '2', topics: TOPIC, file } }, 201);

    // Due over 4 s, starting 6 s from now.
    const start = Date.now() + 6000;
    const ids: string[] = [];
    for (let n = 0; n < HELD; n += 250) {
      const messages = Array.from({ length: 250 }, (_, i) => ({ key: `r${n + i}`, value: { n: n + i }, id: `held-${n + i}`, send_at: start + Math.floor(((n + i) * 4000) / HELD) }));
      const answer = (await (n % 500 === 0 ? a! : b!).requestExpecting('POST', `/topics/${TOPIC}/messages`, { messages }, 202)) as { messages: Array<{ id: string; send_at?: number }> };
      expect(answer.messages.every((m) => m.send_at !== undefined)).toBe(true);
      ids.push(...answer.messages.map((m) => m.id));
    }

    const store = new LmdbStore(join(dir, 'data'), { sweepIntervalMs: 0 });
    await store.init();
    try {
      const holder = await eventually(
        async () => (await store.listLeases(SCHEDULER_LEASE)).find((l) => l.owner !== '')?.owner,
        (owner) => owner === a!.id || owner === b!.id,
        'a scheduler holder',
      );
      const [victim, survivor] = holder === a!.id ? [a!, b!] : [b!, a!];
      // Kill it once it has released some of them.
      await eventually(
        async () => (await store.getScheduled(ids)).size,
        (held) => held < HELD * 0.9,
        'the release under way',
        60_000,
      );
      await victim.kill();

      await eventually(async () => (await store.getScheduled(ids)).size, (held) => held === 0, 'every message released by the survivor', 120_000);
      expect((await store.listLeases(SCHEDULER_LEASE))[0]?.owner).toBe(survivor.id);
      // Each in the buffer exactly once.
      const counts = new Map<string, number>();
      for (let shard = 0; shard < 8; shard++) {
        for (const m of await store.readBuffer(TOPIC, shard, 0, Date.now() + 60_000, 100_000)) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
      }
      expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
      // Every message ends sent or, where the killed worker was sending it, unknown (at-most-once); none is written twice.
      await eventually(
        async () => {
          const states = await Promise.all(ids.map(async (id) => (await survivor.request('GET', `/messages/${id}`)).body as { deliveries?: Array<{ state: string }> }));
          return states.filter((s) => !['sent', 'unknown'].includes(s.deliveries?.[0]?.state ?? '')).length;
        },
        (unsettled) => unsettled === 0,
        'every message settled',
        120_000,
      );
      const written = (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { id: string }).id);
      expect(written.length).toBe(new Set(written).size);
      expect(written.length).toBeGreaterThan(HELD / 2);
    } finally {
      await store.close();
    }
  }, 300_000);
});
