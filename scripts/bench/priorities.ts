/**
 * Message priorities under a shared rate limit, on LMDB: one connector capped at R records a
 * second (`rate.limit.per.second`), a backlog of marketing messages (default 100,000, `low`
 * or `normal`) produced before it starts, then one-time passwords at 30 a second, `high`,
 * through the same connector for a while. Prints the passwords' hand-off latency (produce
 * request to the connector's `put`) p50/p99/max, and how fast the backlog drained meanwhile
 * as a share of R. Targets: p99 ≤ 1 s, drain ≥ 60 % of R.
 *
 *   node --conditions=omnibus-source --import tsx scripts/bench/priorities.ts [--rate R] [--backlog N] [--backlog-priority low|normal] [--seconds S]
 *
 * `pnpm bench --only priorities` runs it (benchPriorities). A script, not a test: it prints
 * figures and asserts nothing about time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigSpec, defineSinkConnector, memoryLogger, type SinkConnector, type SinkRecord } from '../../packages/sdk/src/index.ts';
import { Producer } from '../../packages/core/src/bus/producer.ts';
import { ShardSignals } from '../../packages/core/src/bus/signals.ts';
import { SinkRunner } from '../../packages/core/src/bus/sink-runner.ts';
import { newTopic } from '../../packages/core/src/bus/topics.ts';
import { LmdbStore } from '../../packages/core/src/store/lmdb.ts';
import { Metrics } from '../../packages/core/src/metrics.ts';

export interface PrioritiesFigures {
  rateLimit: number;
  backlog: number;
  backlogPriority: 'low' | 'normal';
  otpPerSec: number;
  seconds: number;
  otpsProduced: number;
  otpsHandedOff: number;
  otpMsP50: number;
  otpMsP99: number;
  otpMsMax: number;
  /** The passwords' produce calls alone (acknowledged once durable), p99: part of the hand-off latency. */
  otpProduceMsP99: number;
  /** Backlog records handed off per second during the password window. */
  backlogPerSec: number;
  /** backlogPerSec / rateLimit. */
  backlogShareOfRate: number;
}

const TOPIC = 'sms';
const SHARDS = 16;
const OTP_PER_SEC = 30;
const PRODUCE_BATCH = 500;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A provider that takes everything at once and notes when each record reached it. */
function timingSink(handedAt: Map<string, number>): SinkConnector {
  return defineSinkConnector({
    className: 'TimingSink',
    version: '0.0.0',
    description: 'notes when each record is handed over',
    config: ConfigSpec.builder(),
    createTask: () => ({
      start: async () => undefined,
      put: async (records: SinkRecord[]) => {
        const now = Date.now();
        for (const record of records) handedAt.set(record.id, now);
        return records.map(() => ({ status: 'sent' as const }));
      },
      stop: async () => undefined,
    }),
  }) as unknown as SinkConnector;
}

export async function benchPriorities(
  options: { rate?: number; backlog?: number; backlogPriority?: 'low' | 'normal'; seconds?: number; log?: (line: string) => void } = {},
): Promise<PrioritiesFigures> {
  const rateLimit = options.rate ?? 1000;
  const backlog = options.backlog ?? 100_000;
  const backlogPriority = options.backlogPriority ?? 'low';
  const seconds = options.seconds ?? 30;
  const log = options.log ?? console.log;
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-priorities-bench-'));
  const store = new LmdbStore(dir, { sweepIntervalMs: 0 });
  await store.init();
  const signals = new ShardSignals();
  const producer = new Producer({ store, signals });
  const handedAt = new Map<string, number>();
  const connector = timingSink(handedAt);
  const runner = new SinkRunner(
    {
      connectorName: 'sms-provider',
      taskId: 0,
      taskCount: 1,
      connector,
      config: { 'connector.class': connector.className, name: 'sms-provider', topics: TOPIC, 'rate.limit.per.second': String(rateLimit) },
    },
    { store, producer, signals, metrics: new Metrics({ defaultMetrics: false }), logger: memoryLogger(), workerId: 'bench', leaseTtlMs: 10_000, heartbeatMs: 1000 },
  );
  try {
    await store.createTopic(newTopic({ name: TOPIC, shards: SHARDS }));
    const backlogIds = new Set<string>();
    for (let n = 0; n < backlog; n += PRODUCE_BATCH) {
      const items = Array.from({ length: Math.min(PRODUCE_BATCH, backlog - n) }, (_, i) => ({
        key: `+3360${String(n + i).padStart(7, '0')}`,
        value: { text: `Winter sale: 20% off, code W${n + i}` },
        category: 'marketing',
        priority: backlogPriority,
      }));
      for (const { id } of await producer.produce(TOPIC, items)) backlogIds.add(id);
    }
    log(`priorities: ${backlog} marketing messages (${backlogPriority}) queued; connector capped at ${rateLimit}/s; one-time passwords (high) at ${OTP_PER_SEC}/s for ${seconds} s`);
    await runner.start();

    const producedAt = new Map<string, number>();
    const produceMs: number[] = [];
    const windowStart = Date.now();
    const backlogAtStart = countHanded(handedAt, backlogIds);
    const total = OTP_PER_SEC * seconds;
    for (let n = 0; n < total; n++) {
      const due = windowStart + (n * 1000) / OTP_PER_SEC;
      if (due > Date.now()) await sleep(due - Date.now());
      const at = Date.now();
      const [otp] = await producer.produce(TOPIC, [
        { key: `+3370${String(n).padStart(7, '0')}`, value: { text: `Your code is ${100000 + n}` }, category: 'transactional', priority: 'high' },
      ]);
      producedAt.set(otp!.id, at);
      produceMs.push(Date.now() - at);
    }
    const windowEnd = Date.now();
    const backlogInWindow = countHanded(handedAt, backlogIds) - backlogAtStart;
    // The last passwords: a few seconds to be handed over.
    const deadline = Date.now() + 10_000;
    while ([...producedAt.keys()].some((id) => !handedAt.has(id)) && Date.now() < deadline) await sleep(50);
    const latencies = [...producedAt].flatMap(([id, at]) => (handedAt.has(id) ? [handedAt.get(id)! - at] : [])).sort((a, b) => a - b);
    const backlogPerSec = backlogInWindow / ((windowEnd - windowStart) / 1000);
    const figures: PrioritiesFigures = {
      rateLimit,
      backlog,
      backlogPriority,
      otpPerSec: OTP_PER_SEC,
      seconds,
      otpsProduced: producedAt.size,
      otpsHandedOff: latencies.length,
      otpMsP50: percentile(latencies, 50),
      otpMsP99: percentile(latencies, 99),
      otpMsMax: latencies.at(-1) ?? NaN,
      otpProduceMsP99: percentile(produceMs.sort((a, b) => a - b), 99),
      backlogPerSec: Math.round(backlogPerSec),
      backlogShareOfRate: backlogPerSec / rateLimit,
    };
    log(
      `priorities (LMDB): one-time passwords handed off ${figures.otpsHandedOff}/${figures.otpsProduced}, p50 ${figures.otpMsP50} ms, p99 ${figures.otpMsP99} ms, max ${figures.otpMsMax} ms ` +
        `(target p99 ≤ 1000 ms; of it, the produce call alone: p99 ${figures.otpProduceMsP99} ms); backlog drained at ${figures.backlogPerSec}/s = ${(figures.backlogShareOfRate * 100).toFixed(0)} % of the ${rateLimit}/s limit (target ≥ 60 %)`,
    );
    return figures;
  } finally {
    await runner.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function countHanded(handedAt: ReadonlyMap<string, number>, ids: ReadonlySet<string>): number {
  let count = 0;
  for (const id of handedAt.keys()) if (ids.has(id)) count++;
  return count;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      backlog: { type: 'string', default: '100000' },
      'backlog-priority': { type: 'string', default: 'low' },
      seconds: { type: 'string', default: '30' },
    },
  });
  const backlogPriority = values['backlog-priority'];
  if (backlogPriority !== 'low' && backlogPriority !== 'normal') throw new Error('--backlog-priority must be low or normal');
  await benchPriorities({ rate: Number(values.rate), backlog: Number(values.backlog), backlogPriority, seconds: Number(values.seconds) });
}
