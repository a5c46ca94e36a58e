/**
 * End to end and backlog drain on LMDB with one or more worker processes sharing one directory
 * (LMDB's multi-process mode, which the store supports), and what the consumers do meanwhile:
 * how many messages have been handed over every 100 ms of the end-to-end phase (do they keep up
 * while the produces run?), and each store operation's count and mean time. Not part of
 * `pnpm bench`: a tool to see where end-to-end time goes, measured with it for the README.
 *
 *   node --conditions=omnibus-source --import tsx scripts/bench/shared-lmdb.ts \
 *     [--workers N | --split] [--rounds N] [--messages N] [--batch-size N]
 *
 * With several workers the producing clients spread their requests over them in turn, as a
 * load balancer would, and the connector's 2 tasks run where the cluster's plan puts them (one
 * per worker with two; the clock of the drain so includes the plan's settling on both workers).
 * Each round creates its own topics and connectors.
 *
 * `--split`: two workers with the work divided instead: the first takes every produce and runs
 * no task, the second (worker.groups=sinks, the connectors' group) runs every task, so ingest
 * and delivery each have a process (and a main thread) of their own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WorkerProcess } from '../test-support/src/worker-process.ts';
import { createConnector, createTopic, describeOperations, fmt, handedOver, preciseNow, storeOperations, whenHandedOver } from './omnibus.ts';
import { batches, CLIENTS, sleep, until, withClients } from './workload.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    messages: { type: 'string', default: '100000' },
    'batch-size': { type: 'string', default: '500' },
    split: { type: 'boolean', default: false },
  },
});
const split = values.split;
const workerCount = split ? 2 : Number(values.workers);
/** The workers the producing clients send to, and the number that run the tasks. */
const ingestCount = split ? 1 : workerCount;
const taskWorkers = split ? 1 : Math.min(2, workerCount);
const rounds = Number(values.rounds);
const messages = Number(values.messages);
const TASKS = Number(process.env.TASKS ?? 2);
const NULL_SINK_PLUGIN = fileURLToPath(new URL('./null-sink/', import.meta.url));

const scratch = await mkdtemp(join(tmpdir(), 'omnibus-shared-lmdb-'));
const workers: WorkerProcess[] = [];
try {
  for (let i = 0; i < workerCount; i++) {
    workers.push(
      await WorkerProcess.start({
        name: `worker ${i + 1}`,
        store: `lmdb:${join(scratch, 'data')}`,
        logLevel: 'warn',
        args: ['--plugin-path', NULL_SINK_PLUGIN],
        ...(split && i === 1 ? { env: { OMNIBUS_WORKER_GROUPS: 'sinks' } } : {}),
      }),
    );
  }
  const first = workers[0]!;
  let turn = 0;
  /** Produces [0, messages) into `topic`, the clients' requests spread over the workers in turn. */
  const produce = (topic: string) =>
    withClients(
      batches(0, messages).map((items) => JSON.stringify({ messages: items })),
      CLIENTS,
      async (body) => void (await workers[turn++ % ingestCount]!.requestExpecting('POST', `/topics/${topic}/messages`, body, 202)),
    );
  const cpu = async () => ({
    all: await Promise.all(workers.map((w) => w.cpuSeconds())),
    main: await Promise.all(workers.map((w) => w.mainThreadCpuSeconds())),
  });
  const perMessage = (after: number[], before: number[]) => after.map((seconds, i) => (((seconds - before[i]!) * 1e6) / messages).toFixed(1)).join(' + ');
  const connectorConfig = (topic: string, progress: string) => ({
    topics: topic,
    'tasks.max': String(TASKS),
    'progress.file': progress,
    'batch.size': values['batch-size'],
    ...(split ? { 'worker.groups': 'sinks' } : {}),
  });
  /**
   * Creates the connector and waits until its tasks run on as many workers as they can: a task
   * first started by the worker that took the request and then moved to another starts its
   * progress file again, which would lose the count of what it had handed over.
   */
  const createSpreadConnector = async (name: string, progress: string) => {
    await createConnector(first, name, connectorConfig(name, progress));
    await until(
      async () => {
        const { body } = await first.request('GET', `/connectors/${name}/status`);
        const tasks = (body as { tasks?: Array<{ state: string; worker_id: string }> }).tasks ?? [];
        return tasks.length === TASKS && tasks.every((t) => t.state === 'RUNNING') && new Set(tasks.map((t) => t.worker_id)).size === taskWorkers;
      },
      `the tasks of ${name} to run on ${taskWorkers} worker(s)`,
      60_000,
    );
  };

  /** "<ms since start> ms <handed over so far>" every `everyMs` until every message has been handed over. */
  const sampleHandedOver = async (progress: string, start: number, everyMs: number): Promise<string[]> => {
    const timeline: string[] = [];
    for (;;) {
      const { count } = await handedOver(progress, TASKS);
      timeline.push(`${Math.round(preciseNow() - start)} ms ${count}`);
      if (count >= messages) return timeline;
      await sleep(everyMs);
    }
  };

  for (let round = 1; round <= rounds; round++) {
    const topic = `e2e-${round}`;
    const progress = join(scratch, `${topic}-progress`);
    await createTopic(first, topic);
    await createSpreadConnector(topic, progress);
    const cpuBefore = await cpu();
    const operationsBefore = await storeOperations(first);
    const started = preciseNow();
    const sampling = sampleHandedOver(progress, started, 100);
    await produce(topic);
    const producedAt = preciseNow() - started;
    const doneAt = await whenHandedOver(progress, TASKS, messages);
    const timeline = await sampling;
    const cpuAfter = await cpu();
    console.log(
      `round ${round}, ${split ? '2 workers split (ingest | tasks)' : `${workerCount} worker(s)`}: end to end ${fmt(messages / ((doneAt - started) / 1000))} msg/s; produced in ${Math.round(producedAt)} ms; worker CPU ${perMessage(cpuAfter.all, cpuBefore.all)} µs/msg, main thread ${perMessage(cpuAfter.main, cpuBefore.main)}`,
    );
    console.log(`  handed over: ${timeline.join(', ')}`);
    console.log(`  store operations of worker 1 (count × mean ms = total s): ${describeOperations(operationsBefore, await storeOperations(first))}`);

    const backlog = `drain-${round}`;
    const drainProgress = join(scratch, `${backlog}-progress`);
    await createTopic(first, backlog);
    await produce(backlog);
    const drainStarted = preciseNow();
    const drainSampling = sampleHandedOver(drainProgress, drainStarted, 50);
    await createSpreadConnector(backlog, drainProgress);
    const drainedAt = await whenHandedOver(drainProgress, TASKS, messages);
    console.log(`  backlog drain ${fmt(messages / ((drainedAt - drainStarted) / 1000))} msg/s (the clock starts before the connector is created)`);
    console.log(`  handed over: ${(await drainSampling).join(', ')}`);
    for (const name of [topic, backlog]) await first.requestExpecting('DELETE', `/connectors/${name}`, undefined, 204);
  }
} finally {
  for (const worker of workers) await worker.stop();
  await rm(scratch, { recursive: true, force: true });
}
