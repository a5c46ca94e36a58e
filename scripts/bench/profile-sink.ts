/**
 * A CPU profile of a worker's end-to-end and drain phases on LMDB: the same workload as
 * `pnpm bench --only lmdb` (REST batches into 16 shards, a NullSink connector with 2 tasks),
 * with the worker run under `node --cpu-prof`. The profile is written when the worker stops.
 *
 *   node --conditions=omnibus-source --import tsx scripts/bench/profile-sink.ts [--messages N] [--dir DIR] [--drain-only]
 *
 * It prints each phase's rate and the worker's CPU per message (under the profiler, so higher
 * than the bench's). One profile per JavaScript thread goes to DIR (a folder of the system's
 * temporary directory by default; the main thread's is the one numbered 0): open it in Chrome
 * DevTools, or summarise it with scripts/bench/profile-summary.ts, giving it --messages 2N (the
 * two phases produce and hand over N messages each). The module code runs transpiled by tsx, so
 * a profile names functions but not their lines. `--drain-only` profiles the drain alone: the
 * backlog is produced by a worker without the profiler, which stops before the profiled one
 * starts on the same store (give the summary --messages N).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WorkerProcess } from '../test-support/src/worker-process.ts';
import { createConnector, createTopic, fmt, preciseNow, produceAll, whenHandedOver } from './omnibus.ts';
import { CLIENTS } from './workload.ts';

const { values } = parseArgs({ options: {
    messages: { type: 'string', default: '100000' },
    dir: { type: 'string', default: join(tmpdir(), 'omnibus-profiles') },
    'drain-only': { type: 'boolean', default: false },
  },
});
const messages = Number(values.messages);
const TASKS = 2;
const NULL_SINK_PLUGIN = fileURLToPath(new URL('./null-sink/', import.meta.url));
const scratch = await mkdtemp(join(tmpdir(), 'omnibus-profile-'));
const store = `lmdb:${join(scratch, 'data')}`;
const startWorker = (profiled: boolean) =>
  WorkerProcess.start({
    name: profiled ? 'profiled worker' : 'producing worker',
    store,
    logLevel: 'warn',
    args: ['--plugin-path', NULL_SINK_PLUGIN],
    ...(profiled ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${values.dir}`] } : {}),
  });
let worker: WorkerProcess | undefined;
try {
  if (values['drain-only']) {
    // The backlog comes from a worker without the profiler, on the same store: the profile holds the drain alone.
    const producer = await startWorker(false);
    try {
      await createTopic(producer, 'profile-drain');
      await produceAll(producer, 'profile-drain', 0, messages, CLIENTS);
    } finally {
      await producer.stop();
    }
  }
  const profiled = (worker = await startWorker(true));
  const cpu = async () => ({ all: await profiled.cpuSeconds(), main: await profiled.mainThreadCpuSeconds() });
  const perMessage = (before: { all: number; main: number }, after: { all: number; main: number }) =>
    `worker CPU ${(((after.all - before.all) * 1e6) / messages).toFixed(1)} µs/msg, main thread ${(((after.main - before.main) * 1e6) / messages).toFixed(1)}`;

  if (!values['drain-only']) {
    await createTopic(profiled, 'profile-e2e');
    await createConnector(profiled, 'profile-null-e2e', { topics: 'profile-e2e', 'tasks.max': String(TASKS), 'progress.file': join(scratch, 'e2e-progress') });
    const before = await cpu();
    const started = preciseNow();
    const producing = produceAll(profiled, 'profile-e2e', 0, messages, CLIENTS);
    const handedOver = await whenHandedOver(join(scratch, 'e2e-progress'), TASKS, messages);
    await producing;
    console.log(`end to end ${fmt(messages / ((handedOver - started) / 1000))} msg/s; ${perMessage(before, await cpu())}`);

    await createTopic(profiled, 'profile-drain');
    await produceAll(profiled, 'profile-drain', 0, messages, CLIENTS);
  }

  const before = await cpu();
  const drainStarted = preciseNow();
  await createConnector(profiled, 'profile-null-drain', { topics: 'profile-drain', 'tasks.max': String(TASKS), 'progress.file': join(scratch, 'drain-progress') });
  const drained = await whenHandedOver(join(scratch, 'drain-progress'), TASKS, messages);
  console.log(`drain ${fmt(messages / ((drained - drainStarted) / 1000))} msg/s; ${perMessage(before, await cpu())}`);
} finally {
  await worker?.stop();
  await rm(scratch, { recursive: true, force: true });
}
console.log(`profiles in ${values.dir}`);
