/**
 * `pnpm bench`: Omnibus on LMDB and on Cassandra, BullMQ with Redis and Apache Kafka with Kafka
 * Connect on the same workload, and each store's raw single-row insert rate as the ceiling, in
 * one run on this machine; then a table of the figures and of the targets, each MET or MISSED.
 *
 *   pnpm bench [--only lmdb|cql|bullmq|kafka|transforms|webhook|scheduling|priorities[,…]] [--messages N] [--rounds N] [--quick] [--json] [--cluster]
 *
 * --only kafka runs the LMDB section too: Kafka's figures are compared with Omnibus's of the
 * same run (scripts/bench/kafka.ts).
 *
 * --cluster also runs the Cassandra section on a three-node cluster with RF=3 and quorum
 * (scripts/bench/cluster.ts), started and stopped here unless one already runs, and prints it
 * beside the single node's figures; without --quick, also the SMS connector scaled from 1 to 4
 * tasks over 2 workers against an SMSC capped per bind (scripts/bench/sms-scaling.ts).
 *
 * The produce, end-to-end and drain phases run `--rounds` times on each store (3; 1 with
 * --quick), each round on fresh topics, and each figure is the median of the rounds: on this
 * 2-core machine one round can land in a slow minute (see machine.ts), and a single round
 * varied by ±30 % from run to run.
 *
 * --quick runs only the produce, end-to-end and drain phases of each store (no latency, idle
 * or memory phases, no channels), for a fast look after a change.
 *
 * Cassandra is the one of `pnpm cassandra:start` (started here with 1 GiB of heap if none answers,
 * and then stopped at the end). The channel connectors (scripts/bench/channels.ts) and the CDC source
 * (packages/cdc-source/bench/cdc-bench.ts) add their sections when those modules exist.
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { ensureCassandra, stopCassandra } from '../cassandra.mjs';
import { processCpuSeconds } from '../test-support/src/worker-process.ts';
import { benchBullMq, type BullMqFigures } from './bullmq.ts';
import { benchCluster, formatClusterComparison, type ClusterFigures } from './cluster.ts';
import { benchHttpFloor, type HttpFloorFigures } from './http-floor.ts';
import { benchKafka, type KafkaFigures } from './kafka.ts';
import { kafkaComparison, kafkaTargets } from './kafka-report.ts';
import { benchOmnibus, fmt, type OmnibusFigures } from './omnibus.ts';
import { rawCqlInserts, rawLmdbPuts } from './raw.ts';
import { benchSmsScaling, type SmsScalingFigures } from './sms-scaling.ts';
import { describeSpeed, probeMachine, type MachineSpeed } from './machine.ts';
import { benchTokens, type TokenFigures } from './tokens.ts';
import { benchTransforms, type TransformsFigures } from './transforms.ts';
import { benchWebhookEvents, describeWebhookEvents, WEBHOOK_BATCHES, type WebhookEventFigures } from './webhook-events.ts';
import { BATCH, CLIENTS, median } from './workload.ts';

type Section = 'lmdb' | 'cql' | 'bullmq' | 'kafka' | 'transforms' | 'webhook' | 'scheduling' | 'priorities';
/** Most raw-insert measurements spent warming Cassandra up before the rounds. */
const MAX_WARM_UP_MEASUREMENTS = 6;
/** The heap of a Cassandra node the bench starts (OMNIBUS_CASSANDRA_HEAP overrides it). */
const BENCH_CASSANDRA_HEAP = '1g';
const SECTIONS: readonly Section[] = ['lmdb', 'cql', 'bullmq', 'kafka', 'transforms', 'webhook', 'scheduling', 'priorities'];

const { values } = parseArgs({
  options: {
    only: { type: 'string', multiple: true },
    messages: { type: 'string' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    cluster: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('usage: pnpm bench [--only lmdb|cql|bullmq|kafka|transforms|webhook|scheduling|priorities[,…]] [--messages N] [--rounds N] [--quick] [--json] [--cluster]');
  process.exit(0);
}
const only = new Set((values.only ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean));
for (const section of only) {
  if (!SECTIONS.includes(section as Section)) {
    console.error(`bench: unknown section "${section}" for --only (use ${SECTIONS.join(', ')})`);
    process.exit(2);
  }
}
// Kafka's figures are read beside Omnibus-on-LMDB's of the same run.
const runs = (section: Section) => only.size === 0 || only.has(section) || (section === 'lmdb' && only.has('kafka'));
const messages = values.messages === undefined ? 100_000 : Number(values.messages);
if (!Number.isSafeInteger(messages) || messages < BATCH) {
  console.error(`bench: --messages must be a whole number of at least ${BATCH}`);
  process.exit(2);
}
const rounds = values.rounds === undefined ? (values.quick ? 1 : 3) : Number(values.rounds);
if (!Number.isSafeInteger(rounds) || rounds < 1) {
  console.error('bench: --rounds must be a whole number of at least 1');
  process.exit(2);
}
// With --json, stdout carries the JSON only; progress goes to stderr.
const log = (line: string) => (values.json ? console.error(line) : console.log(line));

interface Results {
  machine: { cpus: number; model: string; loadAverage: number[]; node: string };
  /** The machine's speed at the start and just before each store's section (see machine.ts). */
  speed: Record<string, MachineSpeed>;
  messages: number;
  /** Rounds of each store's throughput phases; their figures are the medians. */
  rounds: number;
  tokens?: TokenFigures;
  transforms?: TransformsFigures;
  /** One per events-per-POST setting (WEBHOOK_BATCHES). */
  webhook?: WebhookEventFigures[];
  /** The same produce requests to a server that only parses and answers them (http-floor.ts). */
  httpFloor?: HttpFloorFigures;
  lmdb?: OmnibusFigures & { rawInsertsPerSec: number };
  /**
   * rawInsertsMeasured: the raw insert rate before each round and after the last;
   * rawInsertsPerSec, the highest. e2eShareOfRawRounds: each round's end-to-end rate over the
   * higher of the raw rates measured around it; e2eShareOfRaw, their median.
   */
  cql?: OmnibusFigures & { rawInsertsPerSec: number; rawInsertsMeasured: number[]; e2eShareOfRaw: number; e2eShareOfRawRounds: number[] };
  bullmq?: BullMqFigures;
  kafka?: KafkaFigures;
  channels?: unknown;
  scheduling?: unknown;
  priorities?: unknown;
  cdc?: unknown;
  /** The Cassandra section on the three-node cluster (--cluster), and the SMS connector scaled over capped binds. */
  cluster?: ClusterFigures;
  smsScaling?: SmsScalingFigures;
  notes: string[];
}

const results: Results = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', loadAverage: loadavg(), node: process.version },
  speed: {},
  messages,
  rounds,
  notes: [],
};

log(
  `Omnibus benchmark: ${messages.toLocaleString('en-US')} messages per phase, REST batches of ${BATCH}, ${CLIENTS} clients, 16 shards; throughput figures are medians of ${rounds} round${rounds === 1 ? '' : 's'}`,
);
log(`machine: ${results.machine.cpus} CPUs (${results.machine.model}), load average ${results.machine.loadAverage.map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`);

/** Measures and logs the machine's speed now, under `label`. */
const checkSpeed = (label: string) => {
  const speed = probeMachine();
  results.speed[label] = speed;
  log(`${label === 'start' ? 'machine speed' : `${label}: machine speed now`}: ${describeSpeed(speed)}`);
};
checkSpeed('start');

results.tokens = benchTokens();
log(`routing: token() ${fmt(results.tokens.tokensPerSec)}/s, shardOf() ${fmt(results.tokens.shardsPerSec)}/s, routeKey() ${fmt(results.tokens.routesPerSec)}/s`);
if (runs('transforms')) results.transforms = await benchTransforms({ quick: values.quick, log });
if (runs('webhook')) {
  results.webhook = [];
  for (const batch of WEBHOOK_BATCHES) {
    const figures = await benchWebhookEvents({ events: values.quick ? 3_000 : 10_000, batch, log });
    results.webhook.push(figures);
    log(`webhook: ${describeWebhookEvents(figures)}`);
  }
}

if (runs('lmdb') || runs('cql')) {
  results.httpFloor = await benchHttpFloor({ messages, clients: CLIENTS });
  const floor = results.httpFloor;
  log(
    `HTTP floor (REST produce to a server that only parses and answers): ${fmt(floor.msgPerSec)} msg/s; server CPU ${floor.serverCpuMicros.toFixed(1)} µs/msg, client CPU ${floor.clientCpuMicros.toFixed(1)} µs/msg`,
  );
}

if (runs('lmdb')) {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  checkSpeed('lmdb');
  const rawInsertsPerSec = await rawLmdbPuts(Math.max(100_000, messages));
  log(`lmdb: raw put of 300-byte rows ${fmt(rawInsertsPerSec)}/s`);
  const dir = await mkdtemp(join(tmpdir(), 'omnibus-bench-lmdb-'));
  try {
    results.lmdb = { ...(await benchOmnibus({ store: `lmdb:${join(dir, 'data')}`, label: 'lmdb', messages, rounds, quick: values.quick, log })), rawInsertsPerSec };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Right after LMDB's section, so that the two are measured in as close a minute as can be.
if (runs('kafka')) {
  checkSpeed('kafka');
  try {
    results.kafka = await benchKafka({ messages, rounds, quick: values.quick, log: (line) => log(`kafka: ${line}`) });
  } catch (error) {
    results.notes.push(`Kafka: the section failed: ${(error as Error).message}`);
    log(`kafka: the section failed: ${(error as Error).stack ?? error}`);
  }
}

let cassandraStartedHere = false;
try {
  if (runs('cql')) {
    // A node started here gets 1 GiB of heap: with the tests' 512 MiB, one bench run's node
    // died of OutOfMemoryError (256 raw inserts in flight after a million buffered rows).
    process.env.OMNIBUS_CASSANDRA_HEAP ||= BENCH_CASSANDRA_HEAP;
    const cassandra = await ensureCassandra({ log: (line) => log(`[cassandra] ${line}`) });
    cassandraStartedHere = cassandra.startedHere;
    checkSpeed('cql');
    const rawInserts = async (when: string) => {
      const rows = Math.max(50_000, messages);
      const nodeCpuBefore = cassandra.pid === undefined ? NaN : await processCpuSeconds(cassandra.pid);
      const rate = await rawCqlInserts(cassandra.contactPoint, rows, 256);
      const nodeCpu = cassandra.pid === undefined ? '' : `, Cassandra node CPU ${((((await processCpuSeconds(cassandra.pid)) - nodeCpuBefore) * 1e6) / rows).toFixed(1)} µs/row`;
      log(`cql: raw prepared single-row INSERT (300 bytes, 256 in flight) ${when}: ${fmt(rate)}/s${nodeCpu}`);
      return rate;
    };
    const keyspace = `omnibus_bench_${Date.now().toString(36)}`;
    const store = `cql://${cassandra.contactPoint}/${keyspace}?dc=${cassandra.localDataCenter}`;
    try {
      // The raw rate is measured before every round and after the last. A node just started, or
      // the machine in a slow minute, gives a ceiling far too low, which would flatter the ratio:
      // each round is held to the higher of the two measurements around it.
      const rawInsertsMeasured: number[] = [];
      // A node's rate keeps climbing for minutes after it starts (6k → 20k rows/s over four
      // measurements in one run here): warm it until the rate stops climbing, so that rounds and
      // ceiling alike are measured on a warm node.
      let settled = await rawInserts('warming the node up');
      for (let attempt = 1; attempt < MAX_WARM_UP_MEASUREMENTS; attempt++) {
        const next = await rawInserts('warming the node up');
        const climbing = next > settled * 1.1;
        settled = Math.max(settled, next);
        if (!climbing) break;
      }
      const figures = await benchOmnibus({
        store,
        label: 'cql',
        messages,
        rounds,
        quick: values.quick,
        log,
        storePid: cassandra.pid,
        beforeRound: async (round) => void rawInsertsMeasured.push(await rawInserts(`before round ${round + 1}`)),
      });
      rawInsertsMeasured.push(await rawInserts('after the last round'));
      const e2eShareOfRaw = figures.throughputRounds.e2e.map((e2e, round) => e2e / Math.max(rawInsertsMeasured[round]!, rawInsertsMeasured[round + 1]!));
      results.cql = { ...figures, rawInsertsPerSec: Math.max(...rawInsertsMeasured), rawInsertsMeasured, e2eShareOfRaw: median(e2eShareOfRaw), e2eShareOfRawRounds: e2eShareOfRaw };
    } finally {
      await dropKeyspace(cassandra.contactPoint, cassandra.localDataCenter, keyspace);
    }
    if (!values.quick) await cdcSection(cassandra.contactPoint, cassandra.localDataCenter);
    if (values.cluster && !values.quick) await smsScalingSection(cassandra.contactPoint, cassandra.localDataCenter);
  }
  if (values.cluster && runs('cql')) await clusterSection();
  if (runs('bullmq')) {
    checkSpeed('bullmq');
    results.bullmq = await benchBullMq({ messages, log });
  }
  if (only.size === 0 && !values.quick) await channelsSection();
  // Not in a quick full run (it holds 20,000 messages); asked for by name, always.
  if (only.has('scheduling') || (only.size === 0 && !values.quick)) await schedulingSection();
  // A 100,000-message backlog drained at 1,000/s for 30 s: not in a quick full run.
  if (only.has('priorities') || (only.size === 0 && !values.quick)) await prioritiesSection();
} finally {
  if (cassandraStartedHere) await stopCassandra({ log: (line) => log(`[cassandra] ${line}`) });
}

if (values.json) {
  console.log(JSON.stringify(results, null, 2));
} else {
  console.log('');
  console.log(report(results));
}

async function dropKeyspace(contactPoint: string, localDataCenter: string, keyspace: string): Promise<void> {
  const { default: cassandra } = await import('cassandra-driver');
  const client = new cassandra.Client({ contactPoints: [contactPoint], localDataCenter });
  try {
    await client.connect();
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  } catch (error) {
    log(`could not drop keyspace ${keyspace}: ${(error as Error).message}`);
  } finally {
    await client.shutdown();
  }
}

/** The CDC source's own benchmark, when its package provides one. */
async function cdcSection(contactPoint: string, localDataCenter: string): Promise<void> {
  const module = new URL('../../packages/cdc-source/bench/cdc-bench.ts', import.meta.url);
  if (!existsSync(module)) {
    results.notes.push('CDC: packages/cdc-source/bench/cdc-bench.ts not found; section skipped');
    log('cdc: packages/cdc-source/bench/cdc-bench.ts not found; section skipped');
    return;
  }
  try {
    const { benchCdc } = (await import(module.href)) as { benchCdc: (options: Record<string, unknown>) => Promise<Record<string, number>> };
    const figures = await benchCdc({ contactPoint, localDataCenter, log: (line: string) => log(`cdc: ${line}`) });
    results.cdc = figures;
    log(`cdc: ${fmt(figures.changesPerSecond ?? NaN)} changes/s, lag p50 ${figures.lagMsP50} ms, p99 ${figures.lagMsP99} ms`);
  } catch (error) {
    results.notes.push(`CDC: the section failed: ${(error as Error).message}`);
    log(`cdc: the section failed: ${(error as Error).stack ?? error}`);
  }
}

/** The Cassandra section on the three-node cluster (RF=3, quorum), printed beside the single node's. */
async function clusterSection(): Promise<void> {
  checkSpeed('cql cluster');
  try {
    results.cluster = await benchCluster({ messages, rounds, quick: values.quick, log });
    if (!values.json) log(formatClusterComparison(results.cql, results.cluster));
  } catch (error) {
    results.notes.push(`cql cluster: the section failed: ${(error as Error).message}`);
    log(`cql cluster: the section failed: ${(error as Error).stack ?? error}`);
  }
}

/** The SMS connector from 1 to 4 tasks over 2 workers against an SMSC capped per bind. */
async function smsScalingSection(contactPoint: string, localDataCenter: string): Promise<void> {
  try {
    results.smsScaling = await benchSmsScaling({ contactPoint, localDataCenter, log });
  } catch (error) {
    results.notes.push(`sms scaling: the section failed: ${(error as Error).message}`);
    log(`sms scaling: the section failed: ${(error as Error).stack ?? error}`);
  }
}

/** The cost of scheduling (scripts/bench/scheduling.ts): messages held, hand-off lateness. */
async function schedulingSection(): Promise<void> {
  try {
    const { benchScheduling } = await import('./scheduling.ts');
    results.scheduling = await benchScheduling({ log });
  } catch (error) {
    results.notes.push(`scheduling: the section failed: ${(error as Error).message}`);
    log(`scheduling: the section failed: ${(error as Error).stack ?? error}`);
  }
}

/** High-priority messages behind a rate-limited backlog (scripts/bench/priorities.ts). */
async function prioritiesSection(): Promise<void> {
  try {
    const { benchPriorities } = await import('./priorities.ts');
    results.priorities = await benchPriorities({ log });
  } catch (error) {
    results.notes.push(`priorities: the section failed: ${(error as Error).message}`);
    log(`priorities: the section failed: ${(error as Error).stack ?? error}`);
  }
}

/** The channel connectors' throughput, when scripts/bench/channels.ts exists. */
async function channelsSection(): Promise<void> {
  const module = new URL('./channels.ts', import.meta.url);
  if (!existsSync(module)) {
    results.notes.push('channels: scripts/bench/channels.ts not found; section skipped');
    return;
  }
  try {
    const channels = (await import(module.href)) as {
      benchChannels: (options: { log?: (line: string) => void }) => Promise<unknown[]>;
      formatChannelTable?: (figures: unknown[]) => string;
    };
    const figures = await channels.benchChannels({ log: (line) => log(`channels: ${line}`) });
    results.channels = figures;
    if (channels.formatChannelTable && !values.json) log(channels.formatChannelTable(figures));
  } catch (error) {
    results.notes.push(`channels: the section failed: ${(error as Error).message}`);
    log(`channels: the section failed: ${(error as Error).stack ?? error}`);
  }
}

function report(r: Results): string {
  const lines: string[] = [];
  const table = (rows: string[][]) => {
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    for (const [i, row] of rows.entries()) {
      lines.push(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
      if (i === 0) lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
    }
  };
  const num = (n: number | undefined, unit = '') => (n === undefined || !Number.isFinite(n) ? '—' : `${fmt(n)}${unit}`);
  const dec = (n: number | undefined, unit = '', digits = 1) => (n === undefined || !Number.isFinite(n) ? '—' : `${n.toFixed(digits)}${unit}`);
  const rssPartsCell = (figures: OmnibusFigures) => `${dec(figures.anonRssMiB, '', 0)} / ${dec(figures.fileRssMiB, '', 0)}`;
  const { lmdb, cql, bullmq } = r;
  lines.push(
    `Figures (${r.messages.toLocaleString('en-US')} messages per phase; throughput: medians of ${r.rounds} round${r.rounds === 1 ? '' : 's'}; ${r.machine.cpus} CPUs, load average at start ${r.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')})`,
  );
  table([
    ['', 'Omnibus LMDB', 'Omnibus Cassandra', 'BullMQ + Redis'],
    ['produce, msg/s (REST batches of 500 / addBulk)', num(lmdb?.produceMsgPerSec), num(cql?.produceMsgPerSec), num(bullmq?.produceMsgPerSec)],
    ['end to end to a no-op sink, msg/s', num(lmdb?.e2eMsgPerSec), num(cql?.e2eMsgPerSec), bullmq ? `${num(bullmq.e2eMsgPerSec)} (c=${bullmq.concurrency})` : '—'],
    ['backlog drain, msg/s', num(lmdb?.drainMsgPerSec), num(cql?.drainMsgPerSec), '—'],
    ...(r.rounds > 1 ? [['  end to end in each round', roundsCell(lmdb?.throughputRounds.e2e), roundsCell(cql?.throughputRounds.e2e), '—']] : []),
    ['latency produce → hand-off, p50 / p99', lmdb ? `${dec(lmdb.latencyP50Ms)} / ${dec(lmdb.latencyP99Ms)} ms` : '—', cql ? `${dec(cql.latencyP50Ms)} / ${dec(cql.latencyP99Ms)} ms` : '—', '—'],
    ['  at msg/s (half the end-to-end peak)', num(lmdb?.latencyRatePerSec), num(cql?.latencyRatePerSec), '—'],
    ['worker CPU µs/msg: produce / e2e / drain', cpuCell(lmdb?.cpuMicrosPerMessage), cpuCell(cql?.cpuMicrosPerMessage), '—'],
    ['… of it on the main thread', cpuCell(lmdb?.mainThreadCpuMicrosPerMessage), cpuCell(cql?.mainThreadCpuMicrosPerMessage), '—'],
    ['Cassandra node CPU µs/msg: produce / e2e / drain', '—', cpuCell(cql?.storeCpuMicrosPerMessage), '—'],
    ['LMDB records / KiB of pages written per msg, e2e', lmdb?.lmdbWritesPerMessage ? `${dec(lmdb.lmdbWritesPerMessage.e2e.puts, '', 2)} / ${dec(lmdb.lmdbWritesPerMessage.e2e.pageKiB, '', 2)}` : '—', '—', '—'],
    ['worker RSS after the e2e run / peak, MiB', lmdb ? `${dec(lmdb.rssMiB, '', 0)} / ${dec(lmdb.peakRssMiB, '', 0)}` : '—', cql ? `${dec(cql.rssMiB, '', 0)} / ${dec(cql.peakRssMiB, '', 0)}` : '—', '—'],
    ['  after the e2e run: anonymous / file-backed, MiB', lmdb ? rssPartsCell(lmdb) : '—', cql ? rssPartsCell(cql) : '—', '—'],
    ['idle store queries/s (1 connector, 16 shards)', dec(lmdb?.idleQueriesPerSec, '', 2), dec(cql?.idleQueriesPerSec, '', 2), '—'],
    ['raw single-row insert, rows/s (ceiling)', num(lmdb?.rawInsertsPerSec), cql ? `${num(cql.rawInsertsPerSec)} (${cql.rawInsertsMeasured.map((rate) => num(rate)).join(', ')})` : '—', '—'],
  ]);
  if (r.kafka) {
    const comparison = kafkaComparison(r.kafka, lmdb);
    lines.push('');
    lines.push(comparison.title);
    table(comparison.rows);
    lines.push(...comparison.notes);
  }
  lines.push('');
  lines.push('Machine speed (JSON round trips, lower is faster; writing new / already touched memory):');
  for (const [label, speed] of Object.entries(r.speed)) {
    lines.push(`  ${label.padEnd(7)} ${speed.jsonRoundTripsMs.toFixed(0)} ms; ${fmt(speed.freshMemoryMiBPerSec)} / ${fmt(speed.touchedMemoryMiBPerSec)} MiB/s`);
  }
  if (r.httpFloor) {
    const floor = r.httpFloor;
    lines.push('');
    lines.push(
      `HTTP floor: ${num(floor.msgPerSec)} msg/s through REST to a server that only parses and answers; server ${dec(floor.serverCpuMicros)} + client ${dec(floor.clientCpuMicros)} µs of CPU per message.`,
    );
    lines.push(
      `  ${r.machine.cpus} CPUs at 50,000 msg/s leave ${dec((r.machine.cpus * 1e6) / 50_000, '', 0)} µs of CPU per message for everything: client, ingest, store, consumer and sink.`,
    );
  }
  if (r.tokens) {
    lines.push('');
    lines.push(`Routing: token() ${num(r.tokens.tokensPerSec)}/s · shardOf() ${num(r.tokens.shardsPerSec)}/s · routeKey() (both, no BigInt) ${num(r.tokens.routesPerSec)}/s`);
  }
  if (r.transforms) {
    const { chain, templates } = r.transforms;
    lines.push('');
    lines.push(
      `Transforms (CPU per message): three-transform chain ${dec(chain.chainCpuMicros, ' µs', 2)} · template at produce, e-mail ${dec(templates.emailAtProduce, ' µs')}, SMS ${dec(templates.smsAtProduce, ' µs')} · CDC event unwrapped and rendered on a sink ${dec(templates.cdcChainAtSink, ' µs')}`,
    );
  }
  if (r.webhook) {
    lines.push('');
    for (const figures of r.webhook) lines.push(`Events: ${describeWebhookEvents(figures)}`);
  }
  lines.push('');
  lines.push('Targets');
  const target = (name: string, met: boolean | undefined, figures: string) => [name, met === undefined ? 'NOT MEASURED' : met ? 'MET' : 'MISSED', figures];
  /** Whether `figure` meets `test`; undefined when the figure was not measured (absent, or NaN after --quick). */
  const check = (figure: number | undefined, test: (value: number) => boolean) => (figure === undefined || Number.isNaN(figure) ? undefined : test(figure));
  const rows: string[][] = [['', 'result', 'figures']];
  rows.push(target('LMDB end to end ≥ 50,000 msg/s', lmdb && lmdb.e2eMsgPerSec >= 50_000, lmdb ? `${num(lmdb.e2eMsgPerSec)} msg/s` : ''));
  rows.push(
    target(
      'LMDB end to end ≥ 2× BullMQ',
      lmdb && bullmq ? lmdb.e2eMsgPerSec >= 2 * bullmq.e2eMsgPerSec : undefined,
      lmdb && bullmq ? `${num(lmdb.e2eMsgPerSec)} vs 2 × ${num(bullmq.e2eMsgPerSec)} = ${num(2 * bullmq.e2eMsgPerSec)} (${dec(lmdb.e2eMsgPerSec / bullmq.e2eMsgPerSec)}×)` : '',
    ),
  );
  rows.push(
    target(
      'Cassandra end to end ≥ 40% of raw insert rate',
      cql ? cql.e2eShareOfRaw >= 0.4 : undefined,
      cql
        ? `${dec(100 * cql.e2eShareOfRaw)}% (median; each round's end to end over the higher raw rate around it: ${cql.e2eShareOfRawRounds.map((share) => `${dec(100 * share)}%`).join(', ')})`
        : '',
    ),
  );
  if (r.kafka) rows.push(...kafkaTargets(r.kafka, lmdb).map(({ name, met, figures }) => target(name, met, figures)));
  rows.push(target('LMDB p99 produce → hand-off ≤ 50 ms', check(lmdb?.latencyP99Ms, (p99) => p99 <= 50), lmdb ? `${dec(lmdb.latencyP99Ms)} ms at ${num(lmdb.latencyRatePerSec)} msg/s` : ''));
  rows.push(
    target(
      'Cassandra produce → hand-off p50 ≤ 100 ms, p99 ≤ 250 ms',
      cql && check(cql.latencyP99Ms, (p99) => p99 <= 250 && cql.latencyP50Ms <= 100),
      cql ? `p50 ${dec(cql.latencyP50Ms)} ms, p99 ${dec(cql.latencyP99Ms)} ms at ${num(cql.latencyRatePerSec)} msg/s` : '',
    ),
  );
  for (const [label, figures] of [
    ['LMDB', lmdb],
    ['Cassandra', cql],
  ] as const) {
    rows.push(
      target(
        `idle ≤ 2 store queries/s per worker (${label})`,
        check(figures?.idleQueriesPerSec, (rate) => rate <= 2),
        figures ? `${dec(figures.idleQueriesPerSec, '/s', 2)} (${Object.entries(figures.idleBreakdown).map(([op, rate]) => `${op} ${rate.toFixed(2)}`).join(', ') || 'none'})` : '',
      ),
    );
  }
  table(rows);
  if (r.notes.length > 0) {
    lines.push('');
    for (const note of r.notes) lines.push(`note: ${note}`);
  }
  return lines.join('\n');
}

function roundsCell(values: number[] | undefined): string {
  return values && values.length > 0 ? values.map((value) => fmt(value)).join(' · ') : '—';
}

function cpuCell(cpu: OmnibusFigures['cpuMicrosPerMessage'] | undefined): string {
  if (!cpu) return '—';
  const { produce, e2e, drain } = cpu;
  return `${produce.toFixed(0)} / ${e2e.toFixed(0)} / ${drain.toFixed(0)}`;
}
