/**
 * Omnibus on one store, measured from outside a real worker process: produce through REST
 * batches, end to end to a NullSink, produce → hand-off latency at half the peak rate, what
 * an idle worker costs its store, and the worker's memory.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// By path: scripts/bench is no workspace package, and the package's main entry loads vitest.
import { processCpuSeconds, WorkerProcess } from '../test-support/src/worker-process.ts';
import { BATCH, batches, CLIENTS, median, message, percentile, sleep, until, withClients } from './workload.ts';

export interface OmnibusFigures {
  store: string;
  messages: number;
  produceMsgPerSec: number;
  e2eMsgPerSec: number;
  drainMsgPerSec: number;
  /** Each round's figures, of which the three above are the medians. */
  throughputRounds: { produce: number[]; e2e: number[]; drain: number[] };
  /** Worker CPU time (all threads) per message: produce alone, end to end, drain (of the median end-to-end round). */
  cpuMicrosPerMessage: PhaseCpu;
  /** The part of it spent on the worker's main thread, the one that runs JavaScript. */
  mainThreadCpuMicrosPerMessage: PhaseCpu;
  /** CPU time per message of the store's server (the Cassandra node), when it runs on this machine. */
  storeCpuMicrosPerMessage?: PhaseCpu;
  /** On LMDB, what each message of a phase cost the store's writer (from the worker's omnibus_lmdb_* metrics). */
  lmdbWritesPerMessage?: { produce: LmdbWrites; e2e: LmdbWrites; drain: LmdbWrites };
  latencyRatePerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  idleQueriesPerSec: number;
  idleBreakdown: Record<string, number>;
  rssMiB: number;
  peakRssMiB: number;
  /** What the RSS after the end-to-end run is made of: anonymous memory (heap, buffers) and file-backed pages (LMDB's mapped store file, code). */
  anonRssMiB: number;
  fileRssMiB: number;
}

export interface OmnibusBenchOptions {
  /** The store URL the worker runs on. */
  store: string;
  label: string;
  messages: number;
  /** Sink tasks of the end-to-end connector. */
  tasks?: number;
  clients?: number;
  /** Seconds of the latency phase and of the idle measurement. */
  latencySeconds?: number;
  idleSeconds?: number;
  /** Node flags of the worker process (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Produce and end to end only (no latency, idle or memory phases). */
  quick?: boolean;
  /** Rounds of the produce, end-to-end and drain phases, each on fresh topics; figures are their medians (1). */
  rounds?: number;
  /** The store's server process on this machine (the Cassandra node), whose CPU per message is measured beside the worker's. */
  storePid?: number;
  /** Runs before each round (e.g. to measure the store's raw rate beside it). */
  beforeRound?: (round: number) => Promise<void>;
  log: (line: string) => void;
}

/** Per message of a phase: records written, KiB of pages written, write-thread time in transactions (µs), transactions. */
export interface LmdbWrites {
  puts: number;
  pageKiB: number;
  writeMicros: number;
  transactions: number;
}

const SHARDS = 16;

interface PhaseCpu {
  produce: number;
  e2e: number;
  drain: number;
}

/** One round of the throughput phases: msg/s of each, and what each message cost the worker. */
interface ThroughputRound {
  produce: number;
  e2e: number;
  drain: number;
  cpu: PhaseCpu;
  mainThreadCpu: PhaseCpu;
  storeCpu: PhaseCpu | undefined;
  writes: OmnibusFigures['lmdbWritesPerMessage'];
}

const NULL_SINK_PLUGIN = fileURLToPath(new URL('./null-sink/', import.meta.url));
const EMPTY: OmnibusFigures = {
  store: '',
  messages: 0,
  produceMsgPerSec: NaN,
  e2eMsgPerSec: NaN,
  drainMsgPerSec: NaN,
  throughputRounds: { produce: [], e2e: [], drain: [] },
  cpuMicrosPerMessage: { produce: NaN, e2e: NaN, drain: NaN },
  mainThreadCpuMicrosPerMessage: { produce: NaN, e2e: NaN, drain: NaN },
  latencyRatePerSec: NaN,
  latencyP50Ms: NaN,
  latencyP99Ms: NaN,
  idleQueriesPerSec: NaN,
  idleBreakdown: {},
  rssMiB: NaN,
  peakRssMiB: NaN,
  anonRssMiB: NaN,
  fileRssMiB: NaN,
};

export async function benchOmnibus(options: OmnibusBenchOptions): Promise<OmnibusFigures> {
  const { messages, log } = options;
  const clients = options.clients ?? CLIENTS;
  const tasks = options.tasks ?? 2;
  const rounds = Math.max(1, options.rounds ?? 1);
  const scratch = await mkdtemp(join(tmpdir(), 'omnibus-bench-'));
  // Warnings only: the figures are of the runtime, not of its info logging.
  const worker = await WorkerProcess.start({
    name: `${options.label} worker`,
    store: options.store,
    logLevel: 'warn',
    args: ['--plugin-path', NULL_SINK_PLUGIN],
    nodeFlags: options.nodeFlags,
  });
  try {
    const { storePid } = options;
    const cpuNow = async () => ({
      all: await worker.cpuSeconds(),
      main: await worker.mainThreadCpuSeconds(),
      store: storePid === undefined ? NaN : await processCpuSeconds(storePid),
    });
    let cpu = await cpuNow();
    /** CPU µs per message since the last call: the worker's (all threads, and the main thread's part) and the store server's. */
    const cpuPerMessage = async () => {
      const before = cpu;
      cpu = await cpuNow();
      const per = (seconds: number) => (seconds * 1e6) / messages;
      return { all: per(cpu.all - before.all), main: per(cpu.main - before.main), store: per(cpu.store - before.store) };
    };
    const describeCpu = ({ all, main, store }: { all: number; main: number; store: number }) =>
      `worker CPU ${all.toFixed(1)} µs/msg, ${main.toFixed(1)} of them on the main thread${Number.isNaN(store) ? '' : `; Cassandra node CPU ${store.toFixed(1)} µs/msg`}`;
    let writes = await lmdbWriteTotals(worker);
    const writesPerMessage = async (): Promise<LmdbWrites | undefined> => {
      const before = writes;
      writes = await lmdbWriteTotals(worker);
      if (!before || !writes) return undefined;
      const per = (name: string) => ((writes!.get(name) ?? 0) - (before.get(name) ?? 0)) / messages;
      return {
        puts: per('omnibus_lmdb_puts_total'),
        pageKiB: (per('omnibus_lmdb_pages_written_total') * LMDB_PAGE_BYTES) / 1024,
        writeMicros: per('omnibus_lmdb_write_seconds_total') * 1e6,
        transactions: per('omnibus_lmdb_write_transactions_total'),
      };
    };

    /** One round of the throughput phases, on topics and connectors of its own. */
    const throughputRound = async (round: number): Promise<ThroughputRound> => {
      const label = rounds > 1 ? `${options.label} (round ${round + 1} of ${rounds})` : options.label;
      const name = (phase: string) => (rounds > 1 ? `bench-${phase}-${round + 1}` : `bench-${phase}`);

      // Produce alone: the topic has no consumer.
      await createTopic(worker, name('produce'));
      await cpuPerMessage();
      await writesPerMessage();
      const { msgPerSec: produce, clientCpuMicros } = await produceAll(worker, name('produce'), 0, messages, clients);
      const produceCpu = await cpuPerMessage();
      const produceWrites = await writesPerMessage();
      log(
        `${label}: produce ${fmt(produce)} msg/s (${messages} messages, REST batches of ${BATCH}, ${clients} clients; ${describeCpu(produceCpu)}, client CPU ${clientCpuMicros.toFixed(1)} µs/msg${describeWrites(produceWrites)})`,
      );

      // End to end: produce while a NullSink connector consumes, until it has been handed every message.
      await createTopic(worker, name('e2e'));
      const e2eProgress = join(scratch, `${name('e2e')}-progress`);
      await createConnector(worker, name('null'), { topics: name('e2e'), 'tasks.max': String(tasks), 'progress.file': e2eProgress });
      const started = preciseNow();
      const producing = produceAll(worker, name('e2e'), 0, messages, clients);
      const handedOverAt = await whenHandedOver(e2eProgress, tasks, messages);
      const e2e = messages / ((handedOverAt - started) / 1000);
      const producedIn = (await producing).msgPerSec;
      await sleep(100); // the last progress write comes just after the put
      const e2eCpu = await cpuPerMessage();
      const e2eWrites = await writesPerMessage();
      const late = await lateEntries(worker, name('null'));
      log(
        `${label}: end to end ${fmt(e2e)} msg/s (produce alone during it: ${fmt(producedIn)} msg/s; ${tasks} sink tasks; ${describeCpu(e2eCpu)}${describeWrites(e2eWrites)}; found late: ${late.recheck} by the first re-read, ${late.sweep} by the last)`,
      );
      // The last round's connector stays: the idle phase measures a worker with one connector.
      if (round < rounds - 1) await worker.requestExpecting('DELETE', `/connectors/${name('null')}`, undefined, 204);

      // Drain: a backlog already in the buffer, consumed by a new connector.
      await createTopic(worker, name('drain'));
      await produceAll(worker, name('drain'), 0, messages, clients);
      await cpuPerMessage();
      await writesPerMessage();
      const drainProgress = join(scratch, `${name('drain')}-progress`);
      const drainStarted = preciseNow();
      await createConnector(worker, name('drain'), { topics: name('drain'), 'tasks.max': String(tasks), 'progress.file': drainProgress });
      const drain = messages / (((await whenHandedOver(drainProgress, tasks, messages)) - drainStarted) / 1000);
      const drainCpu = await cpuPerMessage();
      const drainWrites = await writesPerMessage();
      log(`${label}: backlog drain ${fmt(drain)} msg/s (connector created with ${messages} messages waiting; ${describeCpu(drainCpu)}${describeWrites(drainWrites)})`);
      await worker.requestExpecting('DELETE', `/connectors/${name('drain')}`, undefined, 204);
      return {
        produce,
        e2e,
        drain,
        cpu: { produce: produceCpu.all, e2e: e2eCpu.all, drain: drainCpu.all },
        mainThreadCpu: { produce: produceCpu.main, e2e: e2eCpu.main, drain: drainCpu.main },
        storeCpu: storePid === undefined ? undefined : { produce: produceCpu.store, e2e: e2eCpu.store, drain: drainCpu.store },
        writes: produceWrites && e2eWrites && drainWrites ? { produce: produceWrites, e2e: e2eWrites, drain: drainWrites } : undefined,
      };
    };
    const measured: ThroughputRound[] = [];
    for (let round = 0; round < rounds; round++) {
      await options.beforeRound?.(round);
      measured.push(await throughputRound(round));
    }
    // Each figure is the median of the rounds: one round can land in a slow minute of the machine.
    const produceMsgPerSec = median(measured.map((m) => m.produce));
    const e2eMsgPerSec = median(measured.map((m) => m.e2e));
    const drainMsgPerSec = median(measured.map((m) => m.drain));
    const throughputRounds = { produce: measured.map((m) => m.produce), e2e: measured.map((m) => m.e2e), drain: measured.map((m) => m.drain) };
    if (rounds > 1) {
      const spread = (runs: number[]) => `${fmt(median(runs))} msg/s (rounds: ${runs.map(fmt).join(', ')})`;
      log(`${options.label}: medians of ${rounds} rounds: produce ${spread(throughputRounds.produce)}, end to end ${spread(throughputRounds.e2e)}, drain ${spread(throughputRounds.drain)}`);
    }
    // CPU and writes per message: those of the round whose end-to-end figure is the median.
    const typical = measured.find((m) => m.e2e === e2eMsgPerSec) ?? measured[0]!;
    const afterLoad = await worker.memory();
    const throughput = {
      store: options.label,
      messages,
      produceMsgPerSec,
      e2eMsgPerSec,
      drainMsgPerSec,
      throughputRounds,
      cpuMicrosPerMessage: typical.cpu,
      mainThreadCpuMicrosPerMessage: typical.mainThreadCpu,
      storeCpuMicrosPerMessage: typical.storeCpu,
      lmdbWritesPerMessage: typical.writes,
    };
    const afterLoadFigures = { rssMiB: afterLoad.rssMiB, anonRssMiB: afterLoad.anonMiB, fileRssMiB: afterLoad.fileMiB };
    if (options.quick) return { ...EMPTY, ...throughput, ...afterLoadFigures, peakRssMiB: afterLoad.peakMiB };

    // Latency at half the peak end-to-end rate.
    const latencyRatePerSec = Math.max(100, Math.round(e2eMsgPerSec / 2));
    const latencyFile = join(scratch, 'latency.txt');
    await createTopic(worker, 'bench-latency');
    await createConnector(worker, 'bench-latency', {
      topics: 'bench-latency',
      'tasks.max': String(tasks),
      'latency.file': latencyFile,
      'progress.file': join(scratch, 'latency-progress'),
    });
    const { handOff: latencies } = await measureLatency(worker, 'bench-latency', join(scratch, 'latency-progress'), tasks, latencyFile, latencyRatePerSec, (options.latencySeconds ?? 5) * 1000);
    const latencyP50Ms = percentile(latencies, 50);
    const latencyP99Ms = percentile(latencies, 99);
    log(
      `${options.label}: latency at ${fmt(latencyRatePerSec)} msg/s: p50 ${latencyP50Ms.toFixed(1)} ms, p99 ${latencyP99Ms.toFixed(1)} ms, max ${(latencies.at(-1) ?? NaN).toFixed(1)} ms (${latencies.length} messages measured after a 1 s warm-up)`,
    );

    // Idle: one connector left, nothing produced; let the shards back off and give their leases back first.
    await worker.requestExpecting('DELETE', '/connectors/bench-latency', undefined, 204);
    const idleSeconds = options.idleSeconds ?? 10;
    log(`${options.label}: waiting 25 s for the worker to settle into idleness, then counting store queries for ${idleSeconds} s`);
    await sleep(25_000);
    const before = await storeCounts(worker);
    await sleep(idleSeconds * 1000);
    const after = await storeCounts(worker);
    const idleBreakdown: Record<string, number> = {};
    let idleTotal = 0;
    for (const [operation, count] of after) {
      const delta = count - (before.get(operation) ?? 0);
      if (delta > 0) idleBreakdown[operation] = delta / idleSeconds;
      idleTotal += delta;
    }
    const idleQueriesPerSec = idleTotal / idleSeconds;
    log(
      `${options.label}: idle ${idleQueriesPerSec.toFixed(2)} store queries/s (${Object.entries(idleBreakdown)
        .map(([op, rate]) => `${op} ${rate.toFixed(2)}/s`)
        .join(', ')})`,
    );
    const memory = await worker.memory();
    const parts = (m: typeof memory) => `${m.anonMiB.toFixed(0)} anonymous, ${m.fileMiB.toFixed(0)} file-backed`;
    log(
      `${options.label}: worker RSS ${memory.rssMiB.toFixed(0)} MiB (${parts(memory)}; ${afterLoad.rssMiB.toFixed(0)} MiB after the end-to-end run: ${parts(afterLoad)}; peak ${memory.peakMiB.toFixed(0)} MiB)`,
    );
    return {
      ...throughput,
      latencyRatePerSec,
      latencyP50Ms,
      latencyP99Ms,
      idleQueriesPerSec,
      idleBreakdown,
      ...afterLoadFigures,
      peakRssMiB: memory.peakMiB,
    };
  } catch (error) {
    log(`${options.label}: worker output before the failure:\n${worker.output()}`);
    throw error;
  } finally {
    await worker.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

export async function createTopic(worker: WorkerProcess, name: string): Promise<void> {
  await worker.requestExpecting('POST', '/topics', { name, shards: SHARDS }, 201);
}

/** OMNIBUS_BENCH_EVENTS_TOPIC=<topic>: the NullSink publishes its delivery events there, to measure what they cost. */
const EVENTS_TOPIC = process.env.OMNIBUS_BENCH_EVENTS_TOPIC;

export async function createConnector(worker: WorkerProcess, name: string, config: Record<string, string>): Promise<void> {
  const events = EVENTS_TOPIC ? { 'delivery.events.topic': EVENTS_TOPIC } : {};
  await worker.requestExpecting('POST', '/connectors', { name, config: { 'connector.class': 'NullSink', ...events, ...config } }, 201);
  await until(
    async () => {
      const { status, body } = await worker.request('GET', `/connectors/${name}/status`);
      const state = body as { connector?: { state?: string }; tasks?: Array<{ state: string }> };
      return status === 200 && state.connector?.state === 'RUNNING' && (state.tasks?.length ?? 0) > 0 && state.tasks!.every((t) => t.state === 'RUNNING');
    },
    `connector ${name} to run`,
    60_000,
  );
}

export interface ProduceFigures {
  msgPerSec: number;
  /** This process's CPU time per message while producing: what the clients cost the machine. */
  clientCpuMicros: number;
}

/** Produce requests answered 503 and sent again after their Retry-After, since the process started. */
export const unavailableProduces = { retried: 0 };

/**
 * One produce as a client does it: a 503 (the store cannot serve it now; nothing was
 * acknowledged) is sent again after its Retry-After, a few times; anything else but 202 throws.
 * The waits count in the figures.
 */
async function produceRetryingUnavailable(worker: WorkerProcess, path: string, body: unknown): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const { status, body: answer, retryAfter } = await worker.request('POST', path, body);
    if (status === 202) return;
    if (status !== 503 || attempt >= 5) throw new Error(`produce answered ${status}: ${JSON.stringify(answer)}`);
    unavailableProduces.retried++;
    await sleep(Number(retryAfter ?? '1') * 1000);
  }
}

/** Produces messages [from, to) through REST; the bodies are serialised before the clock starts. */
export async function produceAll(worker: WorkerProcess, topic: string, from: number, to: number, clients: number): Promise<ProduceFigures> {
  const bodies = batches(from, to).map((items) => JSON.stringify({ messages: items }));
  const path = `/topics/${topic}/messages`;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await withClients(bodies, clients, (body) => produceRetryingUnavailable(worker, path, body));
  const cpu = process.cpuUsage(cpuBefore);
  return { msgPerSec: (to - from) / ((performance.now() - started) / 1000), clientCpuMicros: (cpu.user + cpu.system) / (to - from) };
}

/** The produce → hand-off latencies of a latency phase, each sorted (ms). */
export interface LatencySamples {
  /** From the client's send to the hand-off to the sink. */
  handOff: number[];
  /** From the worker's stamp on the message (its ingestion time, whole ms) to the hand-off. */
  ingestedToHandOff: number[];
  /** From the client's send to the produce's answer (per request of 50). */
  acknowledged: number[];
}

/**
 * Produces at a steady `rate` (batches of 50 sent on schedule, not waiting for earlier answers),
 * each value stamped with its client send time; returns the sorted produce → hand-off latencies.
 * The first second is a warm-up and is not measured: it pays for taking the new connector's
 * shard leases, which a steady flow does not.
 */
export async function measureLatency(worker: WorkerProcess, topic: string, progress: string, tasks: number, file: string, rate: number, durationMs: number): Promise<LatencySamples> {
  const batch = 50;
  const path = `/topics/${topic}/messages`;
  const warmUp = Math.round(rate / batch) * batch;
  const total = warmUp + Math.max(batch, Math.round((rate * durationMs) / 1000 / batch) * batch);
  const intervalMs = (batch / rate) * 1000;
  const inFlight: Array<Promise<void>> = [];
  const acknowledged: number[] = [];
  const started = performance.now();
  for (let sent = 0; sent < total; sent += batch) {
    const due = started + (sent / batch) * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const sentAt = preciseNow();
    const measured = sent >= warmUp;
    const items = Array.from({ length: batch }, (_, i) => {
      const m = message(sent + i);
      return measured ? { key: m.key, value: { ...m.value, sentAt } } : m;
    });
    inFlight.push(
      produceRetryingUnavailable(worker, path, { messages: items }).then(() => {
        if (measured) acknowledged.push(preciseNow() - sentAt);
      }),
    );
  }
  await Promise.all(inFlight);
  await whenHandedOver(progress, tasks, total, 120_000);
  const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  const sorted = (values: number[]) => values.sort((a, b) => a - b);
  return {
    handOff: sorted(lines.map((line) => Number(line.split(' ')[0]))),
    ingestedToHandOff: sorted(lines.map((line) => Number(line.split(' ')[1]))),
    acknowledged: sorted(acknowledged),
  };
}

export const preciseNow = (): number => performance.timeOrigin + performance.now();

/** How many records the NullSink's tasks have been handed in all, and when the last one was (read from their progress files). */
export async function handedOver(progress: string, tasks: number): Promise<{ count: number; lastAt: number }> {
  let count = 0;
  let lastAt = 0;
  for (let task = 0; task < tasks; task++) {
    const text = await readFile(`${progress}.${task}`, 'utf8').catch(() => '');
    const [records, at] = text.trim().split(/\s+/).map(Number);
    if (records && at) {
      count += records;
      lastAt = Math.max(lastAt, at);
    }
  }
  return { count, lastAt };
}

/** The time the NullSink's tasks had been handed `expected` records in all. */
export async function whenHandedOver(progress: string, tasks: number, expected: number, timeoutMs = 600_000): Promise<number> {
  let lastAt = 0;
  await until(
    async () => {
      const so = await handedOver(progress, tasks);
      lastAt = so.lastAt;
      return so.count >= expected;
    },
    `the NullSink to be handed ${expected} messages`,
    timeoutMs,
    10,
  );
  return lastAt;
}

/** Each store operation's count and total seconds so far (the worker's omnibus_store_operation_seconds histogram). */
export async function storeOperations(worker: WorkerProcess): Promise<Map<string, { count: number; sum: number }>> {
  const metrics = String(await worker.requestExpecting('GET', '/metrics', undefined, 200));
  const operations = new Map<string, { count: number; sum: number }>();
  for (const match of metrics.matchAll(/^omnibus_store_operation_seconds_(sum|count)\{operation="([^"]+)"\} (\S+)$/gm)) {
    const entry = operations.get(match[2]!) ?? { count: 0, sum: 0 };
    entry[match[1] as 'sum' | 'count'] = Number(match[3]);
    operations.set(match[2]!, entry);
  }
  return operations;
}

/** The store operations between two readings, busiest first: `name count × mean ms = total s`. */
export function describeOperations(before: Map<string, { count: number; sum: number }>, after: Map<string, { count: number; sum: number }>): string {
  return [...after.entries()]
    .map(([operation, { count, sum }]) => ({ operation, count: count - (before.get(operation)?.count ?? 0), sum: sum - (before.get(operation)?.sum ?? 0) }))
    .filter((op) => op.count > 0)
    .sort((a, b) => b.sum - a.sum)
    .map((op) => `${op.operation} ${op.count} × ${((op.sum / op.count) * 1000).toFixed(1)} = ${op.sum.toFixed(1)}`)
    .join('; ');
}

/** LMDB's page size here (lmdb-js's default, which the store keeps). */
const LMDB_PAGE_BYTES = 4096;

/** The worker's omnibus_lmdb_* counters, or undefined when its store is not LMDB. */
async function lmdbWriteTotals(worker: WorkerProcess): Promise<Map<string, number> | undefined> {
  const totals = new Map<string, number>();
  const metrics = String(await worker.requestExpecting('GET', '/metrics', undefined, 200));
  for (const match of metrics.matchAll(/^(omnibus_lmdb_\w+_total) (\S+)$/gm)) totals.set(match[1]!, Number(match[2]));
  return totals.size > 0 ? totals : undefined;
}

const describeWrites = (writes: LmdbWrites | undefined): string =>
  writes
    ? `; LMDB per message: ${writes.puts.toFixed(2)} records, ${writes.pageKiB.toFixed(2)} KiB of pages written, ${writes.writeMicros.toFixed(1)} µs in write transactions, ${writes.transactions.toFixed(3)} transactions`
    : '';

/** The messages the connector's consumers found only by re-reading (omnibus_bus_late_entries_total), by re-read. */
export async function lateEntries(worker: WorkerProcess, connector: string): Promise<{ recheck: number; sweep: number }> {
  const metrics = String(await worker.requestExpecting('GET', '/metrics', undefined, 200));
  const count = (by: string) => Number(new RegExp(`^omnibus_bus_late_entries_total\\{connector="${connector}",by="${by}"\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? 0);
  return { recheck: count('recheck'), sweep: count('sweep') };
}

/** Store operations so far, per operation (the instrumented store's histogram counts). */
async function storeCounts(worker: WorkerProcess): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const metrics = String(await worker.requestExpecting('GET', '/metrics', undefined, 200));
  for (const line of metrics.split('\n')) {
    const match = /^omnibus_store_operation_seconds_count\{operation="([^"]+)"\} (\S+)$/.exec(line);
    if (match) counts.set(match[1]!, Number(match[2]));
  }
  return counts;
}

export const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
