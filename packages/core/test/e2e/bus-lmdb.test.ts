// The bus end to end on LMDB: two worker processes on one LMDB directory (see bus-e2e.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkerProcess } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/store/lmdb.ts';
import { checkAtLeastOnce, checkAtMostOnce, runScenario, type ScenarioResult } from './bus-e2e.ts';

let dir: string;
const workers: WorkerProcess[] = [];
let result: ScenarioResult | undefined;
const log = (line: string) => console.log(`[bus e2e lmdb] ${line}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-e2e-lmdb-'));
  const data = join(dir, 'data');
  try {
    result = await runScenario({
      store: `lmdb:${data}`,
      dir,
      workers,
      open: async () => {
        const store = new LmdbStore(data, { sweepIntervalMs: 0 });
        await store.init();
        return store;
      },
      log,
    });
  } catch (error) {
    for (const w of workers) log(`output of worker ${w.name}:\n${w.output()}`);
    throw error;
  }
}, 180_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe('the bus end to end on LMDB: 2 worker processes, 20,000 messages, one worker SIGKILLed mid-run', () => {
  it('at-most-once (the default): no message is handed to the sink twice; each ends sent or unknown', () => {
    expect(result).toBeDefined();
    checkAtMostOnce(result!, log);
  });

  it('at-least-once: every message reaches the sink (duplicates counted)', () => {
    expect(result).toBeDefined();
    checkAtLeastOnce(result!, log);
  });
});
