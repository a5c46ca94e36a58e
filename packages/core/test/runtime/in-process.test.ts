// Several workers in one process (each with its own container, store client and metrics), and
// the task lease as the only right to run a task: a worker that loses it stops the task, and
// takes it back only once the lease is free again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS } from '../../src/worker/di.ts';
import { taskLeaseName } from '../../src/runtime/reconciler.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { eventually, startWorker } from './helpers.ts';

let dir: string;
let keyspace: FreshKeyspace;
const workers: Worker[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-in-process-'));
  keyspace = await freshKeyspace('runtime_in_process');
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await keyspace?.drop();
  await rm(dir, { recursive: true, force: true });
});

const runningOn = (worker: Worker) => worker.reconciler.localTasks().filter((t) => t.state === 'RUNNING');

describe('workers in one process', () => {
  it('two workers on one keyspace split a connector, each with its own metrics; a graceful stop hands over at once', async () => {
    const store = cqlUrl(keyspace.keyspace);
    const a = await startWorker(store);
    workers.push(a);
    const b = await startWorker(store);
    workers.push(b);

    await b.herder.createConnector('pair', { 'connector.class': 'FileSink', 'tasks.max': '4', topics: 'pair-topic', file: join(dir, 'pair.jsonl') });
    await eventually(
      async () => [runningOn(a).length, runningOn(b).length],
      ([onA, onB]) => onA === 2 && onB === 2,
      'two tasks on each worker',
    );
    const status = await a.herder.connectorStatus('pair');
    expect(new Set(status.tasks.map((t) => t.worker_id))).toEqual(new Set([a.workerId, b.workerId]));

    // Each worker's registry reports its own tasks only.
    const runningGauge = async (worker: Worker) =>
      (await worker.container.resolve(TOKENS.metrics).taskState.get()).values.filter((v) => v.labels.state === 'RUNNING' && v.value === 1).length;
    expect(await runningGauge(a)).toBe(2);
    expect(await runningGauge(b)).toBe(2);

    // A graceful stop releases the leases: no waiting for them to expire.
    await a.stop();
    const handedOver = await eventually(
      () => b.herder.connectorStatus('pair'),
      (s) => s.tasks.every((t) => t.state === 'RUNNING' && t.worker_id === b.workerId),
      'every task on the remaining worker',
    );
    expect(handedOver.tasks).toHaveLength(4);
    expect((await b.store.readCluster()).members).toEqual([expect.objectContaining({ id: b.workerId })]);
  });
});

describe('task leases', () => {
  it('a worker whose task lease was taken stops that task at its next check, and runs it again once the lease is free', async () => {
    const worker = await startWorker(`lmdb:${join(dir, 'fenced')}`);
    workers.push(worker);
    await worker.herder.createConnector('fenced', { 'connector.class': 'FileSink', 'tasks.max': '2', topics: 'fenced-topic', file: join(dir, 'fenced.jsonl') });
    await eventually(async () => runningOn(worker).length, (n) => n === 2, 'both tasks running');

    const name = taskLeaseName('fenced', 1);
    const [held] = await worker.store.listLeases(name);
    expect(held).toMatchObject({ name, owner: worker.workerId });
    // Nobody takes the lease of a live member, unless its view of the cluster is wrong: an
    // intruder that does not see this worker takes it once it is no longer fresh, for a minute.
    const intruder = await eventually(
      () => worker.store.acquireSessionLease(name, 'intruder:1', ['intruder:1'], 60_000),
      (lease) => lease !== undefined,
      'the intruder to hold the lease',
    );
    expect(intruder).toMatchObject({ owner: 'intruder:1', epoch: held!.epoch + 1 });

    await eventually(async () => worker.reconciler.localTasks().map((t) => t.task), (tasks) => !tasks.includes(1), 'task 1 to stop on the worker');
    expect(runningOn(worker).map((t) => t.task)).toEqual([0]);
    expect((await worker.store.listLeases(name))[0]).toMatchObject({ owner: 'intruder:1', epoch: intruder!.epoch });

    // The intruder lets go: the planned owner takes the lease, at a new epoch, and runs the task again.
    await worker.store.releaseLease(name, 'intruder:1', intruder!.epoch);
    const [retaken] = await eventually(
      () => worker.store.listLeases(name),
      (leases) => leases[0]?.owner === worker.workerId,
      'the worker to hold the lease again',
    );
    expect(retaken!.epoch).toBeGreaterThan(intruder!.epoch);
    await eventually(async () => runningOn(worker).map((t) => t.task).sort(), (tasks) => tasks.join() === '0,1', 'task 1 running again');
  });

  it('a worker whose heartbeats stop going through stops its tasks, and takes them back at new epochs once they go through again', async () => {
    const worker = await startWorker(`lmdb:${join(dir, 'lapse')}`);
    workers.push(worker);
    await worker.herder.createConnector('lapse', { 'connector.class': 'FileSink', 'tasks.max': '2', topics: 'lapse-topic', file: join(dir, 'lapse.jsonl') });
    await eventually(async () => runningOn(worker).length, (n) => n === 2, 'both tasks running');
    const before = await worker.store.listLeases(taskLeaseName('lapse', 0).slice(0, -1));
    expect(before.map((l) => l.owner)).toEqual([worker.workerId, worker.workerId]);

    // The store out of reach: no heartbeat goes through, so the membership (which keeps the task leases) lapses.
    await worker.store.close();
    await eventually(async () => worker.reconciler.localTasks().length, (n) => n === 0, 'every task stopped');

    await worker.store.init();
    await eventually(async () => runningOn(worker).length, (n) => n === 2, 'both tasks running again');
    const after = await worker.store.listLeases(taskLeaseName('lapse', 0).slice(0, -1));
    expect(after.map((l) => l.owner)).toEqual([worker.workerId, worker.workerId]);
    for (const [i, lease] of after.entries()) expect(lease.epoch).toBeGreaterThan(before[i]!.epoch);
  });
});
