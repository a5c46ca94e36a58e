/**
 * Apache Kafka with Kafka Connect on the benchmark's workload, beside Omnibus: one KRaft broker
 * (16 partitions, as Omnibus's 16 shards), Kafka Connect standalone with a no-op sink connector
 * (2 tasks, JsonConverter without schemas, as Omnibus's 2 NullSink tasks), the same 100,000
 * JSON values keyed by recipient. The same phases as omnibus.ts: produce alone, end to end
 * (produce while the connector consumes, until it has been handed every message), drain (a
 * backlog consumed by a new connector) and produce → hand-off latency at half the end-to-end
 * peak; each in two variants: the broker's defaults (an acknowledgement means the broker has the
 * message in its page cache) and `flush.messages=1` on the topic (the broker fsyncs before it
 * acknowledges, as Omnibus does): the durability-matched comparison.
 *
 * The producer is Kafka's Java client with its defaults (kafka/src/omnibus/bench/BenchClient.java),
 * one producer pipelining every send; Omnibus's figures come from 8 REST clients posting batches
 * of 500. Messages are loaded into the client before each clock starts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processCpuSeconds } from '../test-support/src/worker-process.ts';
import { KAFKA_VERSION, NO_OP_SINK_CLASS, startKafka, type KafkaStack } from './kafka-process.ts';
import { fmt, preciseNow, whenHandedOver } from './omnibus.ts';
import { median, message, percentile, until } from './workload.ts';

const PARTITIONS = 16;
const TASKS = 2;
/** Messages per scheduled send in the latency phase, as in omnibus.ts. */
const LATENCY_BATCH = 50;

export type KafkaVariant = 'defaults' | 'flushEachMessage';
export const KAFKA_VARIANTS: Record<KafkaVariant, { label: string; flushMessages: number }> = {
  defaults: { label: 'Kafka', flushMessages: 0 },
  flushEachMessage: { label: 'Kafka flush.messages=1', flushMessages: 1 },
};

/** CPU µs per message of each Kafka process in a phase. */
export interface KafkaCpu {
  broker: number;
  connect: number;
  /** The producing client (the counterpart of the REST clients, which Omnibus's figures leave out). */
  client: number;
}

export interface KafkaVariantFigures {
  produceMsgPerSec: number;
  e2eMsgPerSec: number;
  drainMsgPerSec: number;
  throughputRounds: { produce: number[]; e2e: number[]; drain: number[] };
  /** Of the round whose end-to-end figure is the median. */
  cpuMicrosPerMessage: { produce: KafkaCpu; e2e: KafkaCpu; drain: KafkaCpu };
  latencyRatePerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

export interface KafkaFigures {
  version: string;
  messages: number;
  variants: Record<KafkaVariant, KafkaVariantFigures>;
}

interface Round {
  produce: number;
  e2e: number;
  drain: number;
  cpu: KafkaVariantFigures['cpuMicrosPerMessage'];
}

export async function benchKafka(options: { messages: number; rounds: number; quick: boolean; latencySeconds?: number; log: (line: string) => void }): Promise<KafkaFigures> {
  const { messages, rounds, log } = options;
  const kafka = await startKafka({ log, partitions: PARTITIONS });
  try {
    const bench = new KafkaBench(kafka, messages, log);
    await bench.warmUp();
    const measured: Record<KafkaVariant, Round[]> = { defaults: [], flushEachMessage: [] };
    // The variants take turns within each round, so that a slow minute of the machine falls on both.
    for (let round = 0; round < rounds; round++) {
      for (const variant of Object.keys(KAFKA_VARIANTS) as KafkaVariant[]) {
        measured[variant].push(await bench.throughputRound(variant, round, rounds));
      }
    }
    const variants = {} as Record<KafkaVariant, KafkaVariantFigures>;
    for (const variant of Object.keys(KAFKA_VARIANTS) as KafkaVariant[]) {
      const runs = measured[variant];
      const e2eMsgPerSec = median(runs.map((r) => r.e2e));
      const typical = runs.find((r) => r.e2e === e2eMsgPerSec) ?? runs[0]!;
      variants[variant] = {
        produceMsgPerSec: median(runs.map((r) => r.produce)),
        e2eMsgPerSec,
        drainMsgPerSec: median(runs.map((r) => r.drain)),
        throughputRounds: { produce: runs.map((r) => r.produce), e2e: runs.map((r) => r.e2e), drain: runs.map((r) => r.drain) },
        cpuMicrosPerMessage: typical.cpu,
        latencyRatePerSec: NaN,
        latencyP50Ms: NaN,
        latencyP99Ms: NaN,
      };
      if (rounds > 1) {
        const spread = (values: number[]) => `${fmt(median(values))} msg/s (rounds: ${values.map(fmt).join(', ')})`;
        const { throughputRounds: r } = variants[variant];
        log(`${KAFKA_VARIANTS[variant].label}: medians of ${rounds} rounds: produce ${spread(r.produce)}, end to end ${spread(r.e2e)}, drain ${spread(r.drain)}`);
      }
    }
    if (!options.quick) {
      for (const variant of Object.keys(KAFKA_VARIANTS) as KafkaVariant[]) {
        Object.assign(variants[variant], await bench.latency(variant, variants[variant].e2eMsgPerSec, (options.latencySeconds ?? 5) * 1000));
      }
    }
    await kafka.stop();
    return { version: KAFKA_VERSION, messages, variants };
  } catch (error) {
    const kept = await kafka.stop({ keepLogs: true });
    throw new Error(`${(error as Error).message}\n(the Kafka processes' logs: ${kept})`);
  }
}

/** The phases, on one running broker and Connect worker. */
class KafkaBench {
  private cpu = { broker: 0, connect: 0, client: 0 };

  constructor(
    private readonly kafka: KafkaStack,
    private readonly messages: number,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Messages through the whole path before the measured ones: the producer's first send pays
   * for its id and connections, and the three JVMs compile their hot paths in the first seconds.
   */
  async warmUp(): Promise<void> {
    const topic = 'bench-warm-up';
    const progress = join(this.kafka.runDir, `${topic}-progress`);
    const count = Math.min(this.messages, 20_000);
    await this.createTopic(topic, 0);
    await this.createConnector(topic, { topics: topic, 'progress.file': progress });
    await this.load(0, count);
    await this.kafka.client.command(`produce ${topic}`);
    await whenHandedOver(progress, TASKS, count);
    await this.deleteConnector(topic);
  }

  async throughputRound(variant: KafkaVariant, round: number, rounds: number): Promise<Round> {
    const { label: variantLabel, flushMessages } = KAFKA_VARIANTS[variant];
    const label = rounds > 1 ? `${variantLabel} (round ${round + 1} of ${rounds})` : variantLabel;
    const name = (phase: string) => `bench-${phase}-${variant}-${round + 1}`;
    const { messages, log } = this;
    const describeCpu = (cpu: KafkaCpu) =>
      `CPU per message: broker ${cpu.broker.toFixed(1)} µs + Connect ${cpu.connect.toFixed(1)} µs = ${(cpu.broker + cpu.connect).toFixed(1)} µs, producing client ${cpu.client.toFixed(1)} µs`;

    // Produce alone: the topic has no consumer.
    await this.createTopic(name('produce'), flushMessages);
    await this.load(0, messages);
    await this.cpuPerMessage();
    const { seconds } = await this.kafka.client.command(`produce ${name('produce')}`);
    const produce = messages / seconds!;
    const produceCpu = await this.cpuPerMessage();
    log(`${label}: produce ${fmt(produce)} msg/s (${messages} messages, one producer, acks=all; ${describeCpu(produceCpu)})`);

    // End to end: produce while the connector consumes, until it has been handed every message.
    await this.createTopic(name('e2e'), flushMessages);
    const e2eProgress = join(this.kafka.runDir, `${name('e2e')}-progress`);
    await this.createConnector(name('e2e'), { topics: name('e2e'), 'progress.file': e2eProgress });
    await this.load(0, messages);
    await this.cpuPerMessage();
    const started = preciseNow();
    const producing = this.kafka.client.command(`produce ${name('e2e')}`);
    const e2e = messages / (((await whenHandedOver(e2eProgress, TASKS, messages)) - started) / 1000);
    const producedIn = messages / (await producing).seconds!;
    const e2eCpu = await this.cpuPerMessage();
    log(`${label}: end to end ${fmt(e2e)} msg/s (produce alone during it: ${fmt(producedIn)} msg/s; ${TASKS} sink tasks; ${describeCpu(e2eCpu)})`);
    await this.deleteConnector(name('e2e'));

    // Drain: a backlog already in the topic, consumed by a new connector.
    await this.createTopic(name('drain'), flushMessages);
    await this.load(0, messages);
    await this.kafka.client.command(`produce ${name('drain')}`);
    await this.cpuPerMessage();
    const drainProgress = join(this.kafka.runDir, `${name('drain')}-progress`);
    const drainStarted = preciseNow();
    await this.createConnector(name('drain'), { topics: name('drain'), 'progress.file': drainProgress }, false);
    const drain = messages / (((await whenHandedOver(drainProgress, TASKS, messages)) - drainStarted) / 1000);
    const drainCpu = await this.cpuPerMessage();
    log(`${label}: backlog drain ${fmt(drain)} msg/s (connector created with ${messages} messages waiting; ${describeCpu(drainCpu)})`);
    await this.deleteConnector(name('drain'));
    return { produce, e2e, drain, cpu: { produce: produceCpu, e2e: e2eCpu, drain: drainCpu } };
  }

  /**
   * Produces at half `peak` (batches of 50 on schedule, each value stamped with its send time
   * after a 1 s warm-up) and returns the produce → hand-off percentiles, as omnibus.ts measures.
   */
  async latency(variant: KafkaVariant, peak: number, durationMs: number): Promise<Pick<KafkaVariantFigures, 'latencyRatePerSec' | 'latencyP50Ms' | 'latencyP99Ms'>> {
    const { label, flushMessages } = KAFKA_VARIANTS[variant];
    const rate = Math.max(100, Math.round(peak / 2));
    const topic = `bench-latency-${variant}`;
    const progress = join(this.kafka.runDir, `${topic}-progress`);
    const file = join(this.kafka.runDir, `${topic}.txt`);
    await this.createTopic(topic, flushMessages);
    await this.createConnector(topic, { topics: topic, 'progress.file': progress, 'latency.file': file });
    const warmUp = Math.round(rate / LATENCY_BATCH) * LATENCY_BATCH;
    const total = warmUp + Math.max(LATENCY_BATCH, Math.round((rate * durationMs) / 1000 / LATENCY_BATCH) * LATENCY_BATCH);
    await this.load(0, total);
    await this.kafka.client.command(`paced ${topic} ${rate} ${LATENCY_BATCH} ${warmUp}`);
    await whenHandedOver(progress, TASKS, total, 120_000);
    const latencies = (await readFile(file, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .sort((a, b) => a - b);
    await this.deleteConnector(topic);
    const figures = { latencyRatePerSec: rate, latencyP50Ms: percentile(latencies, 50), latencyP99Ms: percentile(latencies, 99) };
    this.log(
      `${label}: latency at ${fmt(rate)} msg/s: p50 ${figures.latencyP50Ms.toFixed(1)} ms, p99 ${figures.latencyP99Ms.toFixed(1)} ms, max ${(latencies.at(-1) ?? NaN).toFixed(1)} ms (${latencies.length} messages measured after a 1 s warm-up)`,
    );
    return figures;
  }

  private async createTopic(name: string, flushMessages: number): Promise<void> {
    await this.kafka.client.command(`topic ${name} ${PARTITIONS} ${flushMessages}`);
  }

  /** Loads messages [from, to) of the workload into the client, for its next send. */
  private async load(from: number, to: number): Promise<void> {
    const lines: string[] = [];
    for (let n = from; n < to; n++) {
      const { key, value } = message(n);
      lines.push(`${key}\t${JSON.stringify(value)}`);
    }
    await this.kafka.client.command(`messages ${lines.length}`, lines);
  }

  /**
   * Creates a no-op sink connector and waits until its tasks run and (unless `untilAssigned` is
   * false, for the drain, whose clock starts before) have been assigned every partition.
   */
  private async createConnector(name: string, config: Record<string, string>, untilAssigned = true): Promise<void> {
    await this.connect('POST', '/connectors', 201, { name, config: { 'connector.class': NO_OP_SINK_CLASS, 'tasks.max': String(TASKS), ...config } });
    if (!untilAssigned) return;
    await until(
      async () => {
        const status = (await this.connect('GET', `/connectors/${name}/status`, 200)) as { connector?: { state?: string }; tasks?: Array<{ state: string }> };
        const running = status.connector?.state === 'RUNNING' && status.tasks?.length === TASKS && status.tasks.every((task) => task.state === 'RUNNING');
        return running && (await assignedPartitions(config['progress.file']!)) === PARTITIONS;
      },
      `connector ${name} to run with every partition assigned`,
      120_000,
    );
  }

  private async deleteConnector(name: string): Promise<void> {
    await this.connect('DELETE', `/connectors/${name}`, 204);
  }

  private async connect(method: string, path: string, expected: number, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.kafka.connectUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== expected) throw new Error(`Kafka Connect answered ${method} ${path} with ${response.status}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** CPU µs per message of each Kafka process since the last call. */
  private async cpuPerMessage(): Promise<KafkaCpu> {
    const before = this.cpu;
    this.cpu = {
      broker: await processCpuSeconds(this.kafka.brokerPid),
      connect: await processCpuSeconds(this.kafka.connectPid),
      client: await processCpuSeconds(this.kafka.client.pid),
    };
    const per = (key: keyof KafkaCpu) => ((this.cpu[key] - before[key]) * 1e6) / this.messages;
    return { broker: per('broker'), connect: per('connect'), client: per('client') };
  }
}

/** Partitions assigned to the connector's tasks now (the third field of each task's progress file). */
async function assignedPartitions(progress: string): Promise<number> {
  let assigned = 0;
  for (let task = 0; task < TASKS; task++) {
    const text = await readFile(`${progress}.${task}`, 'utf8').catch(() => '');
    assigned += Number(text.trim().split(/\s+/)[2] ?? 0) || 0;
  }
  return assigned;
}
