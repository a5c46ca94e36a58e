// What the fault scenarios share: a replicated keyspace on the three-node cluster, two worker
// processes with a FileSink connector (its file records every delivery, so a message written
// twice shows), produce through plain HTTP (to see Retry-After), and the final reckoning.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { uniqueKeyspaceName, WorkerProcess, type LogLevel } from '@omnibus/test-support';
import { expect, inject } from 'vitest';

/** Short leases, so that a frozen worker loses its own within a test. */
export const LEASES = { heartbeatMs: 250, leaseTtlMs: 3000 };

export function clusterStoreUrl(keyspace: string): string {
  const { contactPoints, localDataCenter } = inject('cassandraCluster');
  return `cql://${contactPoints.join(',')}/${keyspace}?dc=${encodeURIComponent(localDataCenter)}&replication=3`;
}

export interface Scenario {
  store: string;
  workers: WorkerProcess[];
  topic: string;
  connector: string;
  file: string;
}

/** `leases`: heartbeat and lease TTL, or undefined for the workers' defaults (3 s and 10 s). */
export function startWorker(store: string, name: string, leases: typeof LEASES | undefined = LEASES): Promise<WorkerProcess> {
  return WorkerProcess.start({
    store,
    name,
    // OMNIBUS_TEST_WORKER_LOG_LEVEL (e.g. debug), with OMNIBUS_TEST_WORKER_LOGS, keeps a failed scenario's story.
    logLevel: (process.env.OMNIBUS_TEST_WORKER_LOG_LEVEL as LogLevel | undefined) ?? 'warn',
    env: leases ? { OMNIBUS_HEARTBEAT_INTERVAL_MS: String(leases.heartbeatMs), OMNIBUS_LEASE_TTL_MS: String(leases.leaseTtlMs) } : {},
  });
}

export interface ScenarioOptions {
  tasks?: number;
  shards?: number;
  /** The workers' leases: short ({@link LEASES}, the default), or their own defaults. */
  leases?: typeof LEASES | 'worker defaults';
}

/** Two workers on a fresh RF=3 keyspace, a topic and a FileSink with `tasks` tasks spread over both. */
export async function startScenario(label: string, dir: string, processes: WorkerProcess[], options: ScenarioOptions = {}): Promise<Scenario> {
  const { tasks = 4, shards = 8 } = options;
  const leases = options.leases === 'worker defaults' ? undefined : (options.leases ?? LEASES);
  const store = clusterStoreUrl(uniqueKeyspaceName(`cluster_${label}`));
  // The first creates the keyspace and schema; the second then joins.
  const first = await startWorker(store, `${label}-a`, leases);
  processes.push(first);
  const second = await startWorker(store, `${label}-b`, leases);
  processes.push(second);
  const topic = `${label}-topic`;
  const connector = `${label}-sink`;
  const file = join(dir, `${label}.jsonl`);
  await setUp(first, '/topics', { name: topic, shards });
  await setUp(first, '/connectors', { name: connector, config: { 'connector.class': 'FileSink', 'tasks.max': String(tasks), topics: topic, file } });
  await until(async () => {
    const status = (await second.requestExpecting('GET', `/connectors/${connector}/status`, undefined, 200)) as { tasks: Array<{ state: string; worker_id: string }> };
    return status.tasks.length === tasks && status.tasks.every((task) => task.state === 'RUNNING') && new Set(status.tasks.map((task) => task.worker_id)).size === 2;
  }, `${connector} running on both workers`, 60_000);
  return { store, workers: [first, second], topic, connector, file };
}

/**
 * Creates a topic or connector as an operator's script would: a 503 (the previous scenario's
 * node restart can leave the driver a connection closing under the first request) is retried
 * after its Retry-After; 409 after a retry means the first attempt had landed after all.
 */
async function setUp(worker: WorkerProcess, path: string, body: unknown): Promise<void> {
  const { answer, sends } = await retryingUnavailable(() => worker.request('POST', path, body), { withinMs: 60_000 });
  if (answer.status === 201 || (answer.status === 409 && sends > 1)) return;
  throw new Error(`POST ${path} on ${worker.name} answered ${answer.status}, not 201: ${JSON.stringify(answer.body)}`);
}

/**
 * Sends a request as a client does while the store cannot serve it: a 503 is sent again after
 * its Retry-After, until another answer comes or `withinMs` has passed. `onAnswer` sees every
 * answer, the 503s included. Returns the last answer and how many sends it took.
 */
export async function retryingUnavailable<A extends { status: number; retryAfter?: string | null }>(
  send: () => Promise<A>,
  { withinMs = Infinity, onAnswer }: { withinMs?: number; onAnswer?: (answer: A) => void } = {},
): Promise<{ answer: A; sends: number }> {
  const deadline = Date.now() + withinMs;
  for (let sends = 1; ; sends++) {
    const answer = await send();
    onAnswer?.(answer);
    if (answer.status !== 503 || Date.now() > deadline) return { answer, sends };
    await sleep(Number(answer.retryAfter ?? '1') * 1000);
  }
}

export interface ProduceAnswer {
  status: number;
  retryAfter: string | null;
  ids: string[];
  body: unknown;
}

/** One produce through HTTP as a client sees it: status, Retry-After, the acknowledged ids. */
export async function produce(worker: WorkerProcess, topic: string, messages: Array<{ key: string; value: unknown }>): Promise<ProduceAnswer> {
  const response = await fetch(`${worker.url}/topics/${topic}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await response.json()) as unknown;
  const ids = response.status === 202 ? (body as { messages: Array<{ id: string }> }).messages.map((m) => m.id) : [];
  return { status: response.status, retryAfter: response.headers.get('retry-after'), ids, body };
}

/** Every id the FileSink wrote, once per delivery. */
export async function delivered(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { id: string }).id);
}

export async function until(probe: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

/**
 * The reckoning: every acknowledged message delivered exactly once, or (a send in doubt when
 * its owner lost its lease) accounted as `unknown`; none delivered twice.
 */
export async function expectEachDeliveredOnce(scenario: Scenario, acknowledged: Set<string>, timeoutMs: number): Promise<{ sent: number; unknown: number; duplicates: number }> {
  const { file, workers, connector } = scenario;
  const accounted = new Set<string>();
  let unknown = 0;
  /** What the last look found of the messages not delivered, for the timeout's message. */
  let lastMissing = { count: 0, states: new Map<string, number>() };
  let lastSeen = -1;
  try {
    await until(async () => {
      const seen = new Set(await delivered(file));
      const missing = [...acknowledged].filter((id) => !seen.has(id) && !accounted.has(id));
      // A message not in the file must be `unknown` for the connector, never pending for ever:
      // once the file stops growing, the states of those missing are asked, 200 at a time.
      const stalled = seen.size === lastSeen;
      lastSeen = seen.size;
      const states = new Map<string, number>();
      const live = workers.find((worker) => worker.alive)!;
      for (const id of stalled ? missing.slice(0, 200) : []) {
        const answer = await live.request('GET', `/messages/${id}`);
        const deliveries = (answer.body as { deliveries?: Array<{ connector: string; state: string }> }).deliveries ?? [];
        const state = deliveries.find((d) => d.connector === connector)?.state ?? 'none';
        states.set(state, (states.get(state) ?? 0) + 1);
        if (state === 'unknown') {
          accounted.add(id);
          unknown++;
        }
      }
      if (stalled) lastMissing = { count: missing.length, states };
      return [...acknowledged].every((id) => seen.has(id) || accounted.has(id));
    }, `${acknowledged.size} acknowledged messages delivered or unknown`, timeoutMs);
  } catch (error) {
    const states = JSON.stringify(Object.fromEntries(lastMissing.states));
    throw new Error(`${(error as Error).message}: ${lastMissing.count} neither delivered nor unknown at the last look (states of up to 200 of them: ${states})`, { cause: error });
  }
  const lines = await delivered(file);
  const counts = new Map<string, number>();
  for (const id of lines) counts.set(id, (counts.get(id) ?? 0) + 1);
  const duplicates = [...counts.values()].filter((n) => n > 1).length;
  expect(duplicates).toBe(0);
  const sent = [...acknowledged].filter((id) => counts.has(id)).length;
  expect(sent + unknown).toBe(acknowledged.size);
  return { sent, unknown, duplicates };
}

export const batchOf = (label: string, from: number, count: number): Array<{ key: string; value: unknown }> =>
  Array.from({ length: count }, (_, i) => ({ key: `${label}-key-${(from + i) % 97}`, value: { n: from + i, label } }));

export interface LoadRun {
  acknowledged: Set<string>;
  /** Answers by status; a 503 batch is retried after its Retry-After, as a client does. */
  statuses: Map<number, number>;
  elapsedMs: number;
}

/**
 * Produces `total` messages in batches through the workers in turn, two batches in flight,
 * calling `onProgress` with the count acknowledged so far (where the scenario injects its fault).
 * Every answer must be 202, or 503 with Retry-After (then the batch is sent again); never 500.
 */
export async function produceSteadily(
  scenario: Scenario,
  total: number,
  onProgress: (acknowledgedCount: number) => void,
  batchSize = 100,
  /** The workers to produce through (default: both). */
  through: WorkerProcess[] = scenario.workers,
): Promise<LoadRun> {
  const began = Date.now();
  const acknowledged = new Set<string>();
  const statuses = new Map<number, number>();
  let next = 0;
  let turn = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      const from = next;
      const count = Math.min(batchSize, total - from);
      next += count;
      const { answer } = await retryingUnavailable(() => produce(through[turn++ % through.length]!, scenario.topic, batchOf(scenario.connector, from, count)), {
        onAnswer: ({ status, retryAfter, body }) => {
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === 202) return;
          expect(status, JSON.stringify(body)).toBe(503);
          expect(retryAfter).toMatch(/^\d+$/);
        },
      });
      for (const id of answer.ids) acknowledged.add(id);
      onProgress(acknowledged.size);
    }
  };
  await Promise.all([lane(), lane()]);
  return { acknowledged, statuses, elapsedMs: Date.now() - began };
}
