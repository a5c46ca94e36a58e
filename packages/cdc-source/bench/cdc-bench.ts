/**
 * Benchmark of the CDC source: how fast it turns CDC log rows into records, and how far
 * behind the writes they come out.
 *
 * It writes to a Cassandra (the one of `pnpm cassandra:start` by default) through the test
 * fixture, which writes base rows and their CDC log rows as ScyllaDB would, and runs the
 * connector's task through the SDK test kit, which commits offsets as the runtime does. A
 * record counts as delivered when `poll` hands it over, i.e. when the runtime would publish
 * it to the topic (the store write itself is measured by the bus benchmarks).
 *
 * - `changesPerSecond`: drain rate of a backlog of changes already in the log (log → records
 *   at full speed: window reads, row decoding, envelopes).
 * - `lagMsP50` / `lagMsP99`: at a steady write rate, from each write's timestamp to its record.
 *   The lag is bounded below by the confidence window plus one query window, by design.
 */
import { randomBytes } from 'node:crypto';
import cassandra from 'cassandra-driver';
import { startSource, type SourceHarness, type SourceRecord } from '@omnibus/sdk';
import { ScyllaCdcSource, type Envelope } from '../src/index.ts';
import { ScyllaCdcFixture, type CdcTable } from '../test/fixture/scylla-cdc.ts';

export interface CdcBenchOptions {
  /** host:port of the Cassandra to use; default 127.0.0.1:9042. */
  contactPoint?: string;
  localDataCenter?: string;
  /** Changes written before the connector starts, for the drain rate. */
  backlog?: number;
  /** Writes per second during the steady phase. */
  ratePerSecond?: number;
  /** Length of the steady phase, ms. */
  durationMs?: number;
  /** `scylla.query.time.window.size` and `scylla.confidence.window.size`, ms. */
  windowMs?: number;
  confidenceMs?: number;
  vnodes?: number;
  shards?: number;
  /** Writes in flight at once. */
  concurrency?: number;
  log?: (line: string) => void;
}

export interface CdcBenchResult {
  changesPerSecond: number;
  lagMsP50: number;
  lagMsP99: number;
  backlog: number;
  backlogDrainMs: number;
  steadyChanges: number;
  offeredPerSecond: number;
  /** Changes of the steady phase that never arrived (0 unless the connector fell behind by a minute). */
  missing: number;
  windowMs: number;
  confidenceMs: number;
}

export async function benchCdc(options: CdcBenchOptions = {}): Promise<CdcBenchResult> {
  const contactPoint = options.contactPoint ?? process.env.OMNIBUS_CASSANDRA_CONTACT_POINT ?? '127.0.0.1:9042';
  const localDataCenter = options.localDataCenter ?? 'datacenter1';
  const backlog = options.backlog ?? 10_000;
  const ratePerSecond = options.ratePerSecond ?? 300;
  const durationMs = options.durationMs ?? 10_000;
  const windowMs = options.windowMs ?? 1_000;
  const confidenceMs = options.confidenceMs ?? 1_000;
  const concurrency = options.concurrency ?? 32;
  const log = options.log ?? (() => undefined);

  const keyspace = `omnibus_cdc_bench_${randomBytes(4).toString('hex')}`;
  const client = new cassandra.Client({ contactPoints: [contactPoint], localDataCenter });
  await client.connect();
  let source: SourceHarness | undefined;
  try {
    await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    const fixture = await ScyllaCdcFixture.create(client, keyspace);
    const startedAt = Date.now();
    await fixture.addGeneration(startedAt - 10 * 60_000, { vnodes: options.vnodes ?? 8, shards: options.shards ?? 2 });
    const table = await fixture.createTable({
      name: 'bench',
      partitionKey: [{ name: 'id', type: 'int' }],
      columns: [
        { name: 'n', type: 'int' },
        { name: 'payload', type: 'text' },
      ],
    });
    const payload = 'x'.repeat(100);

    // Phase 1: a backlog already in the log (timestamps in the past, readable at once).
    log(`cdc bench: writing a backlog of ${backlog} changes`);
    const backlogFrom = (startedAt - 5 * 60_000) * 1000;
    const backlogSpanUs = 4 * 60_000 * 1000;
    await runConcurrently(backlog, concurrency, (i) =>
      table.insert({ id: i, n: 0, payload }, { timestampUs: backlogFrom + Math.floor((i * backlogSpanUs) / backlog) }),
    );

    const config = {
      name: 'cdc-bench',
      'connector.class': 'ScyllaCdcSource',
      'scylla.cluster.ip.addresses': contactPoint,
      'scylla.local.dc': localDataCenter,
      'scylla.table.names': `${keyspace}.bench`,
      'scylla.cdc.generations.keyspace': keyspace,
      'scylla.consistency.level': 'ONE',
      'scylla.query.time.window.size': windowMs,
      'scylla.confidence.window.size': confidenceMs,
      // From a minute before the backlog, however long writing it took.
      'scylla.initial.lookback.ms': Date.now() - Math.floor(backlogFrom / 1000) + 60_000,
      'heartbeat.interval.ms': 0,
      'topic.prefix': 'bench',
    };
    const drainStart = Date.now();
    source = await startSource(ScyllaCdcSource, config);
    const drained = await collect(source, backlog, 300_000);
    const backlogDrainMs = Date.now() - drainStart;
    if (drained.length < backlog) throw new Error(`only ${drained.length} of ${backlog} backlog changes arrived`);
    const changesPerSecond = Math.round((backlog / backlogDrainMs) * 1000);
    log(`cdc bench: backlog drained in ${backlogDrainMs} ms (${changesPerSecond} changes/s)`);

    // Phase 2: a steady write rate; the lag of each change from its write to its record.
    log(`cdc bench: steady load of ${ratePerSecond} writes/s for ${durationMs} ms`);
    const total = Math.max(1, Math.round((ratePerSecond * durationMs) / 1000));
    const lags: number[] = [];
    let received = 0;
    let stopPolling = false;
    const poller = (async () => {
      while (!stopPolling && received < total) {
        const batch = await source!.pollUntil(1, 1_000);
        const at = Date.now();
        for (const record of changes(batch)) {
          lags.push(at - record.value.source.ts_ms);
          received += 1;
        }
      }
    })();
    await paced(total, ratePerSecond, concurrency, (i) => updateOne(table, i % Math.max(1, backlog), i));
    const deadline = Date.now() + 60_000 + 4 * (windowMs + confidenceMs);
    while (received < total && Date.now() < deadline) await sleep(100);
    stopPolling = true;
    await poller;
    lags.sort((a, b) => a - b);
    const result: CdcBenchResult = {
      changesPerSecond,
      lagMsP50: percentile(lags, 0.5),
      lagMsP99: percentile(lags, 0.99),
      backlog,
      backlogDrainMs,
      steadyChanges: received,
      offeredPerSecond: ratePerSecond,
      missing: total - received,
      windowMs,
      confidenceMs,
    };
    log(`cdc bench: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await source?.stop().catch(() => undefined);
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
    await client.shutdown();
  }
}

function updateOne(table: CdcTable, id: number, n: number): Promise<number> {
  return table.update({ id }, { n });
}

function changes(records: SourceRecord[]): Array<SourceRecord & { value: Envelope }> {
  return records.filter((r) => !r.topic.startsWith('__')) as Array<SourceRecord & { value: Envelope }>;
}

async function collect(source: SourceHarness, count: number, timeoutMs: number): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) out.push(...changes(await source.pollUntil(1, 2_000)));
  return out;
}

async function runConcurrently(count: number, concurrency: number, work: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

/** `count` calls at `ratePerSecond`, at most `concurrency` in flight. */
async function paced(count: number, ratePerSecond: number, concurrency: number, work: (i: number) => Promise<unknown>): Promise<void> {
  const start = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        const due = start + (i * 1000) / ratePerSecond;
        if (due > Date.now()) await sleep(due - Date.now());
        await work(i);
      }
    }),
  );
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// `node --import tsx packages/cdc-source/bench/cdc-bench.ts` runs it alone and prints the figures.
if (import.meta.url === `file://${process.argv[1]}`) {
  benchCdc({ log: (line) => console.log(line) })
    .then((result) => console.log(JSON.stringify(result, null, 2)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
