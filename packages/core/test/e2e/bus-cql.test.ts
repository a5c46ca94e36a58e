// The bus end to end on Cassandra: two worker processes on one keyspace (see bus-e2e.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cqlUrl, freshKeyspace, type FreshKeyspace, type WorkerProcess } from '@omnibus/test-support';
import { openStore } from '../../src/store/open.ts';
import { checkAtLeastOnce, checkAtMostOnce, runScenario, type ScenarioResult } from './bus-e2e.ts';

let dir: string;
const workers: WorkerProcess[] = [];
let result: ScenarioResult | undefined;
let keyspace: FreshKeyspace | undefined;
const log = (line: string) => console.log(`[bus e2e cql] ${line}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-e2e-cql-'));
  keyspace = await freshKeyspace('bus_e2e');
  const url = cqlUrl(keyspace.keyspace);
  try {
    result = await runScenario({
      store: url,
      dir,
      workers,
      open: async () => {
        const store = openStore(url);
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
  await keyspace?.drop();
});

describe('the bus end to end on Cassandra: 2 worker processes, 20,000 messages, one worker SIGKILLed mid-run', () => {
  it('at-most-once (the default): no message is handed to the sink twice; each ends sent or unknown', () => {
    expect(result).toBeDefined();
    checkAtMostOnce(result!, log);
  });

  it('at-least-once: every message reaches the sink (duplicates counted)', () => {
    expect(result).toBeDefined();
    checkAtLeastOnce(result!, log);
  });
});
