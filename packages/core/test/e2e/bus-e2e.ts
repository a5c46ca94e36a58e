// The bus end to end, as an operator runs it: two worker processes (`omnibus start`) on one
// store, a 16-shard topic, two FileSink connectors registered with POST /connectors (one
// at-most-once, the default; one at-least-once), 20,000 messages produced through REST
// batches to both workers, and one worker killed with SIGKILL mid-run and started again.
//
// Both connectors append to their own file, with 4 tasks spread over both processes: every
// task appends whole batches to the one file (O_APPEND, one write per batch), so a line cut
// by another process's append would fail to parse.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerProcess } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Store } from '../../src/store/port.ts';

export const E2E = {
  messages: 20_000,
  batch: 500,
  shards: 16,
  tasks: 4,
  /** Short leases, so that a killed worker's shards move within seconds. */
  leaseTtlMs: 2000,
  heartbeatMs: 250,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One `omnibus start` process; warnings only, so that its last lines in a failure are the ones that matter. */
function startWorker(name: string, store: string): Promise<WorkerProcess> {
  return WorkerProcess.start({
    name,
    store,
    logLevel: 'warn',
    env: { OMNIBUS_LEASE_TTL_MS: String(E2E.leaseTtlMs), OMNIBUS_HEARTBEAT_INTERVAL_MS: String(E2E.heartbeatMs) },
  });
}

export interface ScenarioResult {
  ids: string[];
  /** Final delivery state per message, per connector. */
  states: Record<'amo' | 'alo', Map<string, Delivery | undefined>>;
  /** Message ids in each connector's file, in file order (with repeats). */
  lines: Record<'amo' | 'alo', string[]>;
  /** GET /groups/{g} of each produce group, from the surviving worker. */
  groups: Array<{ connectors: Record<string, Record<string, number>>; messages: number }>;
}

/**
 * Runs the whole story on a store; `open` gives the test its own connection to the same store,
 * to read the outcome directly. Every process started is pushed to `workers` for cleanup.
 */
async function runScenario(options: {
  store: string;
  dir: string;
  workers: WorkerProcess[];
  open: () => Promise<Store & { close(): Promise<void> }>;
  log: (line: string) => void;
}): Promise<ScenarioResult> {
  const { store, dir, workers, log } = options;
  const topic = 'e2e-orders';
  const started = Date.now();
  const a = await startWorker('a', store);
  workers.push(a);
  let b = await startWorker('b', store);
  workers.push(b);
  log(`two workers up in ${Date.now() - started} ms`);

  expect((await a.request('POST', '/topics', { name: topic, shards: E2E.shards })).status).toBe(201);
  const files = { amo: join(dir, 'amo.jsonl'), alo: join(dir, 'alo.jsonl') };
  for (const [name, guarantee] of [
    ['amo', 'at-most-once'],
    ['alo', 'at-least-once'],
  ] as const) {
    const created = await a.request('POST', '/connectors', {
      name,
      config: {
        'connector.class': 'FileSink',
        'tasks.max': String(E2E.tasks),
        topics: topic,
        file: files[name],
        // Each put waits for the disk: a worker killed while busy is likely caught between `sending` and `sent`.
        'file.fsync': 'true',
        'delivery.guarantee': guarantee,
        'batch.size': '100',
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }
  // Both workers run tasks of both connectors before the traffic starts.
  await eventually(
    async () => {
      for (const name of ['amo', 'alo']) {
        const { status, body } = await b.request('GET', `/connectors/${name}/status`);
        const tasks = (body as { tasks?: Array<{ state: string; worker_id: string }> }).tasks ?? [];
        if (status !== 200 || tasks.length !== E2E.tasks || !tasks.every((t) => t.state === 'RUNNING')) return false;
        if (new Set(tasks.map((t) => t.worker_id)).size !== 2) return false;
      }
      return true;
    },
    'both connectors running on both workers',
    60_000,
  );

  // Producer-supplied ids make a produce safe to repeat: a batch whose answer was lost with a killed worker is sent again.
  const ids = Array.from({ length: E2E.messages }, (_, i) => `order-${String(i).padStart(5, '0')}`);
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += E2E.batch) batches.push(ids.slice(i, i + E2E.batch));
  const groupOf = (batchIndex: number) => `e2e-group-${Math.floor((batchIndex * E2E.batch) / 5000)}`;
  const produce = async (batchIndex: number, preferred: WorkerProcess) => {
    const body = {
      group: groupOf(batchIndex),
      messages: batches[batchIndex]!.map((id, i) => ({ id, key: `customer-${(batchIndex * 37 + i) % 997}`, value: { order: id, total: i } })),
    };
    for (let attempt = 0; ; attempt++) {
      const via = preferred.alive && attempt === 0 ? preferred : a;
      const answer = await via.request('POST', `/topics/${topic}/messages`, body).catch((error: unknown) => ({ status: 0, body: String(error) }));
      if (answer.status === 202) return;
      if (attempt >= 5) throw new Error(`produce of batch ${batchIndex} failed: ${answer.status} ${JSON.stringify(answer.body)}`);
      await sleep(200);
    }
  };

  const killAt = Math.floor(batches.length * 0.4);
  const restartAt = Math.floor(batches.length * 0.7);
  let restarting: Promise<WorkerProcess> | undefined;
  // The first 40% as fast as both workers take them, so that the sinks have a backlog when b
  // is killed: it dies in the middle of its sends, leaving some of them in doubt.
  await Promise.all([0, 1].map(async (parity) => {
    for (let i = parity; i < killAt; i += 2) await produce(i, parity === 0 ? a : b);
  }));
  await b.kill();
  log(`worker b killed with SIGKILL after ${killAt * E2E.batch} messages produced`);
  for (let i = killAt; i < batches.length; i++) {
    if (i === restartAt) restarting = startWorker('b2', store);
    await produce(i, i % 2 === 0 ? a : b);
    await sleep(20);
  }
  log(`${ids.length} messages produced in ${Date.now() - started} ms since the start`);
  b = await restarting!;
  workers.push(b);
  log('worker b started again');

  // Wait for every message to reach a final state at both connectors (read from the store itself).
  const reader = await options.open();
  try {
    const finalStates = new Set(['sent', 'unknown', 'failed', 'dead']);
    let states: ScenarioResult['states'] = { amo: new Map(), alo: new Map() };
    await eventually(
      async () => {
        const positions = [...(await reader.locateMessages(ids)).values()];
        states = { amo: await reader.getDeliveries('amo', positions), alo: await reader.getDeliveries('alo', positions) };
        const done = (m: Map<string, Delivery>) => ids.filter((id) => finalStates.has(m.get(id)?.state ?? '')).length;
        log(`final: at-most-once ${done(states.amo as Map<string, Delivery>)}, at-least-once ${done(states.alo as Map<string, Delivery>)} of ${ids.length}`);
        return done(states.amo as Map<string, Delivery>) === ids.length && done(states.alo as Map<string, Delivery>) === ids.length;
      },
      'every message in a final state at both connectors',
      120_000,
      2000,
    );
    const lines = { amo: await idsInFile(files.amo), alo: await idsInFile(files.alo) };
    const groups = [];
    for (let g = 0; g < E2E.messages / 5000; g++) {
      const { status, body } = await a.request('GET', `/groups/e2e-group-${g}`);
      expect(status).toBe(200);
      groups.push(body as ScenarioResult['groups'][number]);
    }
    log(`done in ${Date.now() - started} ms`);
    return { ids, states, lines, groups };
  } finally {
    await reader.close();
  }
}

/** The message id of every line of a FileSink file; a line that is not whole JSON fails the test. */
async function idsInFile(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line, n) => {
      let parsed: { id?: unknown };
      try {
        parsed = JSON.parse(line) as { id?: unknown };
      } catch {
        throw new Error(`line ${n + 1} of ${file} is not one whole JSON record (interleaved appends?): ${line.slice(0, 200)}`);
      }
      expect(typeof parsed.id).toBe('string');
      return parsed.id as string;
    });
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs: number, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Counts of each value. */
export function countBy<T>(items: Iterable<T>): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** The assertions of both guarantees on one scenario's outcome. */
function checkAtMostOnce(result: ScenarioResult, log: (line: string) => void): void {
  const { ids, states, lines } = result;
  const seen = countBy(lines.amo);
  const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  const byState = countBy(ids.map((id) => states.amo.get(id)?.state ?? 'missing'));
  log(`at-most-once: ${lines.amo.length} lines, ${seen.size} distinct ids, states ${JSON.stringify(Object.fromEntries(byState))}`);
  expect(twice).toEqual([]);
  expect([...byState.keys()].every((state) => state === 'sent' || state === 'unknown')).toBe(true);
  // Every message recorded sent is in the file; one in the file that is not recorded sent is one whose outcome was lost with the killed worker.
  const inFile = new Set(lines.amo);
  expect(ids.filter((id) => states.amo.get(id)?.state === 'sent' && !inFile.has(id))).toEqual([]);
  expect(lines.amo.every((id) => ['sent', 'unknown'].includes(states.amo.get(id)?.state ?? ''))).toBe(true);
  // The group reports agree: every message of each group is sent or unknown at this connector.
  for (const group of result.groups) {
    const counts = group.connectors.amo ?? {};
    expect((counts.sent ?? 0) + (counts.unknown ?? 0)).toBe(group.messages);
  }
}

function checkAtLeastOnce(result: ScenarioResult, log: (line: string) => void): void {
  const { ids, states, lines } = result;
  const seen = countBy(lines.alo);
  const duplicates = lines.alo.length - seen.size;
  log(`at-least-once: ${lines.alo.length} lines for ${ids.length} messages, ${duplicates} duplicates (${[...seen.values()].filter((n) => n > 1).length} ids sent more than once)`);
  expect(ids.filter((id) => !seen.has(id))).toEqual([]);
  expect(seen.size).toBe(ids.length);
  expect(ids.filter((id) => states.alo.get(id)?.state !== 'sent')).toEqual([]);
  for (const group of result.groups) expect(group.connectors.alo?.sent).toBe(group.messages);
}

/** The store a run of the scenario works on: its URL, a way to open it from the test, and what to remove afterwards. */
export interface ScenarioStore {
  url: string;
  open: () => Promise<Store & { close(): Promise<void> }>;
  drop?: () => Promise<void>;
}

/**
 * The scenario as a test file: runs it once on the store `prepare` gives (in a scratch
 * directory), then checks both guarantees. `label` names the store in the test names and logs.
 */
export function describeBusEndToEnd(label: string, description: string, prepare: (dir: string) => Promise<ScenarioStore>): void {
  let dir: string | undefined;
  let store: ScenarioStore | undefined;
  const workers: WorkerProcess[] = [];
  let result: ScenarioResult | undefined;
  const log = (line: string) => console.log(`[bus e2e ${label}] ${line}`);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `omnibus-e2e-${label}-`));
    store = await prepare(dir);
    try {
      result = await runScenario({ store: store.url, dir, workers, open: store.open, log });
    } catch (error) {
      for (const w of workers) log(`output of worker ${w.name}:\n${w.output()}`);
      throw error;
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
    await store?.drop?.();
  });

  describe(`the bus end to end on ${description}: 2 worker processes, 20,000 messages, one worker SIGKILLed mid-run`, () => {
    it('at-most-once (the default): no message is handed to the sink twice; each ends sent or unknown', () => {
      expect(result).toBeDefined();
      checkAtMostOnce(result!, log);
    });

    it('at-least-once: every message reaches the sink (duplicates counted)', () => {
      expect(result).toBeDefined();
      checkAtLeastOnce(result!, log);
    });
  });
}
