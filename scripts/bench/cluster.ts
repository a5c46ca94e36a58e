/**
 * `pnpm bench --cluster`: the Cassandra section again on a three-node cluster (127.0.0.1-3, CQL
 * port 19042, scripts/cassandra/cluster.mjs) with replication factor 3 and quorum reads and
 * writes, the store URL's defaults on a replicated keyspace (LOCAL_QUORUM, LOCAL_SERIAL). The
 * cluster is started here when none runs, and then stopped at the end; a cluster already
 * running is left as it was. The single node of `pnpm cassandra:start` is not touched.
 *
 * Printed beside the single node's figures: end to end against the cluster's raw insert rate
 * (the same prepared single-row INSERT at RF=3 and QUORUM), and produce → hand-off latency.
 */
import { ensureCluster, stopCluster } from '../cassandra/cluster.mjs';
import { benchOmnibus, fmt, unavailableProduces, type OmnibusFigures } from './omnibus.ts';
import { dropKeyspace, rawCqlInserts } from './raw.ts';
import { median } from './workload.ts';

export const CLUSTER_NODES = 3;
export const CLUSTER_REPLICATION = 3;

export interface ClusterFigures extends OmnibusFigures {
  nodes: number;
  replicationFactor: number;
  /** The raw insert rate at RF=3 and QUORUM before the rounds and after the last; rawInsertsPerSec, the highest. */
  rawInsertsMeasured: number[];
  rawInsertsPerSec: number;
  /** End to end over the higher raw rate measured around its round, per round; e2eShareOfRaw, the median. */
  e2eShareOfRawRounds: number[];
  e2eShareOfRaw: number;
}

export interface ClusterBenchOptions {
  messages: number;
  rounds: number;
  quick: boolean;
  log: (line: string) => void;
}

/** Runs the Cassandra section on the three-node cluster; the cluster is stopped after only if it was started here. */
export async function benchCluster(options: ClusterBenchOptions): Promise<ClusterFigures> {
  const { messages, rounds, quick, log } = options;
  unavailableProduces.retried = 0;
  const cluster = await ensureCluster({ nodes: CLUSTER_NODES, log: (line: string) => log(`[cassandra cluster] ${line}`) });
  try {
    const hosts = cluster.contactPoints.map((point: string) => point.split(':')[0]);
    const keyspace = `omnibus_bench_cluster_${Date.now().toString(36)}`;
    const store = `cql://${hosts.join(',')}:${cluster.port}/${keyspace}?dc=${cluster.localDataCenter}&replication=${CLUSTER_REPLICATION}`;
    const rawInsertsMeasured: number[] = [];
    const rawInserts = async (when: string) => {
      const rows = Math.max(50_000, messages);
      const rate = await rawCqlInserts(cluster.contactPoints[0]!, rows, 256, {
        contactPoints: cluster.contactPoints,
        replicationFactor: CLUSTER_REPLICATION,
        consistency: 'QUORUM',
      });
      log(`cql cluster: raw prepared single-row INSERT (300 bytes, 256 in flight, RF=${CLUSTER_REPLICATION}, QUORUM) ${when}: ${fmt(rate)}/s`);
      rawInsertsMeasured.push(rate);
    };
    try {
      const figures = await benchOmnibus({
        store,
        label: 'cql-cluster',
        messages,
        rounds,
        quick,
        log: (line) => log(line),
        beforeRound: (round) => rawInserts(`before round ${round + 1}`),
      });
      await rawInserts('after the last round');
      if (unavailableProduces.retried > 0) log(`cql cluster: ${unavailableProduces.retried} produce requests were answered 503 and sent again after their Retry-After`);
      const shares = figures.throughputRounds.e2e.map((e2e, round) => e2e / Math.max(rawInsertsMeasured[round]!, rawInsertsMeasured[round + 1]!));
      return {
        ...figures,
        nodes: CLUSTER_NODES,
        replicationFactor: CLUSTER_REPLICATION,
        rawInsertsMeasured,
        rawInsertsPerSec: Math.max(...rawInsertsMeasured),
        e2eShareOfRawRounds: shares,
        e2eShareOfRaw: median(shares),
      };
    } finally {
      await dropKeyspace(cluster.contactPoints, cluster.localDataCenter, keyspace, log);
    }
  } finally {
    if (cluster.startedHere) await stopCluster({ log: (line: string) => log(`[cassandra cluster] ${line}`) });
  }
}

/** The single node's and the cluster's figures side by side. */
export function formatClusterComparison(
  single: (OmnibusFigures & { rawInsertsPerSec: number; e2eShareOfRaw: number }) | undefined,
  cluster: ClusterFigures,
): string {
  const pct = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : `${(n * 100).toFixed(0)} %`);
  const num = (n: number | undefined, unit = '') => (n === undefined || !Number.isFinite(n) ? '—' : `${fmt(n)}${unit}`);
  const rows = [
    ['Cassandra', 'raw inserts/s', 'produce msg/s', 'end to end msg/s', 'e2e / raw', 'latency at msg/s', 'p50', 'p99'],
    ...(single
      ? [['1 node, RF=1', num(single.rawInsertsPerSec), num(single.produceMsgPerSec), num(single.e2eMsgPerSec), pct(single.e2eShareOfRaw), num(single.latencyRatePerSec), num(single.latencyP50Ms, ' ms'), num(single.latencyP99Ms, ' ms')]]
      : []),
    [
      `${cluster.nodes} nodes, RF=${cluster.replicationFactor}, quorum`,
      num(cluster.rawInsertsPerSec),
      num(cluster.produceMsgPerSec),
      num(cluster.e2eMsgPerSec),
      pct(cluster.e2eShareOfRaw),
      num(cluster.latencyRatePerSec),
      num(cluster.latencyP50Ms, ' ms'),
      num(cluster.latencyP99Ms, ' ms'),
    ],
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}
