/**
 * The cost of scheduling (send_at): messages held by due time on LMDB, most of them for next
 * year, a share of them due over the next seconds, and the scheduler moving those into the
 * buffer. Prints how many were held, the produce rate of held messages, and the hand-off
 * lateness (a released message's buffer time minus its send_at) p50/p99, and what the
 * scheduler asked of the store while the far-future ones waited.
 *
 *   node --conditions=omnibus-source --import tsx scripts/bench/scheduling.ts [--held N] [--due N]
 *
 * `pnpm bench` runs it as its scheduling section (benchScheduling). A script, not a test: it
 * prints figures and asserts nothing about time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { memoryLogger } from '../../packages/sdk/src/index.ts';
import { Producer, SEND_AT_HEADER } from '../../packages/core/src/bus/producer.ts';
import { Scheduler } from '../../packages/core/src/bus/scheduler.ts';
import { ShardSignals } from '../../packages/core/src/bus/signals.ts';
import { newTopic } from '../../packages/core/src/bus/topics.ts';
import { instrumentStore } from '../../packages/core/src/store/instrumented.ts';
import { LmdbStore } from '../../packages/core/src/store/lmdb.ts';
import { Metrics } from '../../packages/core/src/metrics.ts';

export interface SchedulingFigures {
  /** Messages held at once (far-future plus due soon). */
  held: number;
  /** Of them, due within the run and released. */
  due: number;
  heldProducedPerSec: number;
  lateMsP50: number;
  lateMsP99: number;
  lateMsMax: number;
  /** Released more than the 1 s target after their send_at. */
  laterThan1s: number;
  /** Store operations of the scheduler per second while only far-future messages were held. */
  idleStoreOpsPerSec: number;
}

const BATCH = 500;
/** The due messages are spread over this long after the produce ends. */
const DUE_SPREAD_MS = 10_000;
const IDLE_WATCH_MS = 10_000;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

export async function benchScheduling(options: { held?: number; due?: number; log?: (line: string) => void } = {}): Promise<SchedulingFigures> {
  const held = options.held ?? 100_000;
  const due = Math.min(options.due ?? 5_000, held);
  const log = options.log ?? console.log;
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-scheduling-bench-'));
  const metrics = new Metrics();
  const raw = new LmdbStore(dir, { sweepIntervalMs: 0 });
  await raw.init();
  const store = instrumentStore(raw, metrics);
  const signals = new ShardSignals();
  const producer = new Producer({ store, signals });
  const scheduler = new Scheduler({ store, producer, signals, workerId: 'bench', leaseTtlMs: 10_000, logger: memoryLogger() });
  try {
    await store.createTopic(newTopic({ name: 'later', shards: 16 }));
    scheduler.start();
    const yearAhead = Date.now() + 365 * 24 * 3600_000;
    // The far-future ones first, then watch what the scheduler asks of the store meanwhile.
    const started = performance.now();
    const far = held - due;
    for (let n = 0; n < far; n += BATCH) {
      const size = Math.min(BATCH, far - n);
      await producer.produce(
        'later',
        Array.from({ length: size }, (_, i) => ({ key: `user-${n + i}`, value: { n: n + i }, send_at: yearAhead + n + i })),
      );
    }
    let producedMs = performance.now() - started;
    const before = store.queries;
    await new Promise((resolve) => setTimeout(resolve, IDLE_WATCH_MS));
    const idleStoreOpsPerSec = (store.queries - before) / (IDLE_WATCH_MS / 1000);
    log(`scheduling: ${far} held for next year; the scheduler's store operations meanwhile: ${idleStoreOpsPerSec.toFixed(2)}/s`);

    const dueStart = Date.now() + 2000;
    const ids: string[] = [];
    const produceStart = performance.now();
    for (let n = 0; n < due; n += BATCH) {
      const size = Math.min(BATCH, due - n);
      const produced = await producer.produce(
        'later',
        Array.from({ length: size }, (_, i) => ({ key: `due-${n + i}`, value: { n: n + i }, send_at: dueStart + Math.floor(((n + i) * DUE_SPREAD_MS) / due) })),
      );
      ids.push(...produced.map((p) => p.id));
    }
    producedMs += performance.now() - produceStart;
    const deadline = Date.now() + DUE_SPREAD_MS + 60_000;
    while (scheduler.released < due && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    const released = await raw.getMessages(ids);
    const lateness = [...released.values()].map((m) => m.createdAt - Number(m.headers[SEND_AT_HEADER])).sort((a, b) => a - b);
    const figures: SchedulingFigures = {
      held,
      due,
      heldProducedPerSec: Math.round(held / (producedMs / 1000)),
      lateMsP50: percentile(lateness, 50),
      lateMsP99: percentile(lateness, 99),
      lateMsMax: lateness.at(-1) ?? NaN,
      laterThan1s: lateness.filter((l) => l > 1000).length,
      idleStoreOpsPerSec,
    };
    if (released.size < due) log(`scheduling: only ${released.size} of ${due} due messages were released in time`);
    log(
      `scheduling (LMDB): ${held} held, ${figures.heldProducedPerSec} held/s produced; ${released.size} released; ` +
        `hand-off lateness p50 ${figures.lateMsP50} ms, p99 ${figures.lateMsP99} ms, max ${figures.lateMsMax} ms; later than 1 s: ${figures.laterThan1s}`,
    );
    return figures;
  } finally {
    await scheduler.stop();
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { held: { type: 'string', default: '100000' }, due: { type: 'string', default: '5000' } } });
  await benchScheduling({ held: Number(values.held), due: Number(values.due) });
}
