/**
 * Where produce → hand-off time goes on one store, at a given rate: the latency phase of
 * `pnpm bench` alone, with its parts. Not part of `pnpm bench`; a tool to find and check the
 * causes of a latency tail (the README's findings on Cassandra were measured with it).
 *
 *   node --conditions=omnibus-source --import tsx scripts/bench/latency-breakdown.ts \
 *     [--store cql|lmdb] [--rate MSG_PER_SEC] [--seconds N] [--tasks N] [--runs N]
 *
 * It prints, per run: the latency from the client's send to the hand-off to the sink, the part
 * of it before the worker stamped the message and the part after (the consumer's: from the
 * ingestion stamp to the hand-off), the produce's answer time, how many messages the consumers
 * found only by re-reading (and so late), each store operation's count and mean time during the
 * phase, and the CPU per message of the worker and of the Cassandra node. Cassandra is the
 * one of `pnpm cassandra:start` (started if none answers, and then left running).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureCassandra } from '../cassandra.mjs';
import { processCpuSeconds, WorkerProcess } from '../test-support/src/worker-process.ts';
import { createConnector, createTopic, describeOperations, lateEntries, measureLatency, storeOperations } from './omnibus.ts';
import { percentile } from './workload.ts';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'cql' },
    rate: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '10' },
    tasks: { type: 'string', default: '2' },
    runs: { type: 'string', default: '1' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const tasks = Number(values.tasks);
const runs = Number(values.runs);

const scratch = await mkdtemp(join(tmpdir(), 'omnibus-latency-'));
let store: string;
let nodePid: number | undefined;
let dropKeyspace = async () => {};
if (values.store === 'cql') {
  const cassandra = await ensureCassandra({ log: (line) => console.log(`[cassandra] ${line}`) });
  nodePid = cassandra.pid;
  const keyspace = `omnibus_latency_${Date.now().toString(36)}`;
  store = `cql://${cassandra.contactPoint}/${keyspace}?dc=${cassandra.localDataCenter}`;
  dropKeyspace = async () => {
    const { default: driver } = await import('cassandra-driver');
    const client = new driver.Client({ contactPoints: [cassandra.contactPoint], localDataCenter: cassandra.localDataCenter });
    await client.connect();
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await client.shutdown();
  };
} else {
  store = `lmdb:${join(scratch, 'data')}`;
}

const worker = await WorkerProcess.start({
  name: 'latency worker',
  store,
  logLevel: 'warn',
  args: ['--plugin-path', fileURLToPath(new URL('./null-sink/', import.meta.url))],
});
try {
  for (let run = 1; run <= runs; run++) {
    const topic = `latency-${run}`;
    const progress = join(scratch, `${topic}-progress`);
    const file = join(scratch, `${topic}.txt`);
    await createTopic(worker, topic);
    await createConnector(worker, topic, { topics: topic, 'tasks.max': String(tasks), 'latency.file': file, 'progress.file': progress });
    const opsBefore = await storeOperations(worker);
    const cpuBefore = { worker: await worker.cpuSeconds(), main: await worker.mainThreadCpuSeconds(), node: nodePid ? await processCpuSeconds(nodePid) : NaN };
    const samples = await measureLatency(worker, topic, progress, tasks, file, rate, seconds * 1000);
    const ops = await storeOperations(worker);
    const total = Math.round(rate * (seconds + 1));
    const perMessage = (after: number, before: number) => (((after - before) * 1e6) / total).toFixed(1);
    const late = await lateEntries(worker, topic);
    const parts = (values: number[]) => `p50 ${percentile(values, 50).toFixed(1)}, p90 ${percentile(values, 90).toFixed(1)}, p99 ${percentile(values, 99).toFixed(1)}, max ${(values.at(-1) ?? NaN).toFixed(1)} ms`;
    console.log(`run ${run} on ${values.store} at ${rate} msg/s for ${seconds} s (+1 s warm-up), ${tasks} tasks, ${samples.handOff.length} messages measured:`);
    console.log(`  send → hand-off:            ${parts(samples.handOff)}`);
    console.log(`  ingestion stamp → hand-off: ${parts(samples.ingestedToHandOff)}`);
    console.log(`  send → produce answered:    ${parts(samples.acknowledged)}`);
    console.log(`  found late (of all messages): ${late.recheck} by the first re-read, ${late.sweep} by the last`);
    console.log(
      `  CPU per message: worker ${perMessage(await worker.cpuSeconds(), cpuBefore.worker)} µs (main thread ${perMessage(await worker.mainThreadCpuSeconds(), cpuBefore.main)})${nodePid ? `, Cassandra node ${perMessage(await processCpuSeconds(nodePid), cpuBefore.node)} µs` : ''}`,
    );
    console.log(`  store operations during the phase (count, mean ms, total s): ${describeOperations(opsBefore, ops)}`);
    await worker.requestExpecting('DELETE', `/connectors/${topic}`, undefined, 204);
  }
} finally {
  await worker.stop();
  await dropKeyspace().catch((error) => console.error(`could not drop the keyspace: ${(error as Error).message}`));
  await rm(scratch, { recursive: true, force: true });
}
