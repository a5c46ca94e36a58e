// The distributed-mode story the cluster tests run on each store: worker processes on one
// store form one cluster. A connector POSTed to any of them runs spread over all; a killed
// worker's tasks move to the survivors once its leases expire; a new worker takes its share.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { eventually } from './helpers.ts';
import type { WorkerProcess } from '@omnibus/test-support';
import { balancedOver, connectorStatus, PROCESS_CLUSTER, startWorkerProcess, tasksPerWorker } from './processes.ts';

const TASKS = 6;

async function startWorkers(processes: WorkerProcess[], store: string, count: number): Promise<WorkerProcess[]> {
  // The first one creates the schema; the others then start together.
  const first = await startWorkerProcess(store);
  processes.push(first);
  const others = await Promise.all(Array.from({ length: count - 1 }, () => startWorkerProcess(store)));
  processes.push(...others);
  return [first, ...others];
}

/** Produces `count` messages through `via` and waits until the sink's file holds every one of them. */
async function deliverThrough(via: WorkerProcess, topic: string, file: string, label: string, count = 30): Promise<void> {
  const messages = Array.from({ length: count }, (_, i) => ({ key: `${label}-key-${i}`, value: { n: i, label } }));
  const produced = await via.request('POST', `/topics/${topic}/messages`, { messages });
  expect(produced.status).toBe(202);
  const expected = new Set((produced.body as { messages: Array<{ id: string }> }).messages.map((m) => m.id));
  expect(expected.size).toBe(count);
  await eventually(
    async () => {
      const text = await readFile(file, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { id: string }).id)
        .filter((id) => expected.has(id));
    },
    (seen) => new Set(seen).size === count,
    `the ${label} messages in ${file}`,
    30_000,
  );
}

/**
 * The whole story on one store: spread, SIGKILL and takeover, a newcomer's share, a graceful
 * stop. Every process it starts is pushed to `processes`, for the caller to kill after a failure.
 */
export async function clusterScenario(options: { store: string; label: string; workers: number; dir: string; processes: WorkerProcess[] }): Promise<void> {
  const { store, label, dir, processes } = options;
  const initialWorkers = options.workers;
  const workers = await startWorkers(processes, store, initialWorkers);
  const [a, b] = workers as [WorkerProcess, WorkerProcess];
  const topic = `${label}-topic`;
  const file = join(dir, `${label}.jsonl`);
  expect((await a.request('POST', '/topics', { name: topic, shards: 12 })).status).toBe(201);

  // A config POSTed to one worker runs on all of them: every worker reads the store.
  const created = await a.request('POST', '/connectors', {
    name: label,
    config: { 'connector.class': 'FileSink', 'tasks.max': String(TASKS), topics: topic, file },
  });
  expect(created.status).toBe(201);
  const spread = await eventually(() => connectorStatus(b, label), (s) => balancedOver(s, workers.map((w) => w.id), TASKS), `${label} spread over ${initialWorkers} workers`, 60_000);
  expect(spread.connector.state).toBe('RUNNING');
  expect(workers.map((w) => w.id)).toContain(spread.connector.worker_id);
  await deliverThrough(b, topic, file, `${label}-before`);

  // A crash: the victim's tasks come back on the survivors once its leases expire.
  const victim = workers[workers.length - 1]!;
  const survivors = workers.filter((w) => w !== victim);
  const victimTasks = tasksPerWorker(spread).get(victim.id) ?? 0;
  expect(victimTasks).toBeGreaterThan(0);
  const killedAt = Date.now();
  await victim.kill();
  const takenOver = await eventually(() => connectorStatus(a, label), (s) => balancedOver(s, survivors.map((w) => w.id), TASKS), `${label} tasks on the survivors`, 60_000);
  const takeoverMs = Date.now() - killedAt;
  console.log(
    `[${label}] ${victimTasks} tasks of a SIGKILLed worker RUNNING on ${survivors.length} survivors after ${takeoverMs} ms ` +
      `(lease.ttl.ms=${PROCESS_CLUSTER.leaseTtlMs}, heartbeat.interval.ms=${PROCESS_CLUSTER.heartbeatMs})`,
  );
  expect(takenOver.connector.state).toBe('RUNNING');
  expect(survivors.map((w) => w.id)).toContain(takenOver.connector.worker_id);
  await deliverThrough(a, topic, file, `${label}-after-kill`);

  // A newcomer takes its share; the others hand those tasks over.
  const newcomer = await startWorkerProcess(store);
  processes.push(newcomer);
  const live = [...survivors, newcomer];
  const joinedAt = Date.now();
  const rebalanced = await eventually(() => connectorStatus(newcomer, label), (s) => balancedOver(s, live.map((w) => w.id), TASKS), `${label} rebalanced onto the newcomer`, 60_000);
  console.log(`[${label}] newcomer took ${tasksPerWorker(rebalanced).get(newcomer.id)} of ${TASKS} tasks ${Date.now() - joinedAt} ms after it was up`);
  await deliverThrough(newcomer, topic, file, `${label}-after-join`);

  // A graceful stop hands the tasks over at once (released leases) and leaves no member behind.
  const leaving = survivors[0]!;
  expect(await leaving.stop()).toBe(0);
  const remaining = live.filter((w) => w !== leaving);
  await eventually(() => connectorStatus(newcomer, label), (s) => balancedOver(s, remaining.map((w) => w.id), TASKS), `${label} tasks after a graceful stop`, 60_000);
  await Promise.all(remaining.map((w) => w.stop()));
}

