/** Shared setup of the integration tests: a keyspace with the CDC fixture, and connector configs. */
import { cassandraContactPoint, cassandraContext, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import type { SourceHarness, SourceRecord } from '@omnibus/sdk';
import type { Envelope } from '../src/index.ts';
import { ScyllaCdcFixture } from './fixture/scylla-cdc.ts';

export interface CdcTestbed {
  ks: FreshKeyspace;
  fixture: ScyllaCdcFixture;
  /** A connector config reading `tables` of the testbed, with short windows. */
  config(tables: string[], overrides?: Record<string, unknown>): Record<string, unknown>;
  drop(): Promise<void>;
}

export async function cdcTestbed(prefix: string): Promise<CdcTestbed> {
  const ks = await freshKeyspace(prefix);
  const fixture = await ScyllaCdcFixture.create(ks.client, ks.keyspace);
  return {
    ks,
    fixture,
    config: (tables, overrides = {}) => ({
      name: 'cdc',
      'connector.class': 'ScyllaCdcSource',
      'scylla.cluster.ip.addresses': cassandraContactPoint(),
      'scylla.local.dc': cassandraContext().localDataCenter,
      'scylla.table.names': tables.map((t) => `${ks.keyspace}.${t}`).join(','),
      'scylla.cdc.generations.keyspace': ks.keyspace,
      'scylla.cdc.tablets.keyspace': ks.keyspace,
      'scylla.consistency.level': 'ONE',
      'scylla.query.time.window.size': 400,
      'scylla.confidence.window.size': 200,
      'scylla.generation.poll.interval.ms': 200,
      'heartbeat.interval.ms': 0,
      'topic.prefix': 'db',
      ...overrides,
    }),
    drop: () => ks.drop(),
  };
}

/** The change events among polled records (heartbeats left out). */
export function changesOf(records: SourceRecord[]): Array<SourceRecord & { value: Envelope }> {
  return records.filter((r) => !r.topic.startsWith('__')) as Array<SourceRecord & { value: Envelope }>;
}

/** Polls until `count` change events arrived (heartbeats aside) or `timeoutMs` passed. */
export async function pollChanges(
  source: SourceHarness,
  count: number,
  timeoutMs = 15_000,
): Promise<Array<SourceRecord & { value: Envelope }>> {
  const deadline = Date.now() + timeoutMs;
  const records: SourceRecord[] = [];
  while (changesOf(records).length < count && Date.now() < deadline) {
    records.push(...(await source.pollUntil(1, Math.max(1, Math.min(2_000, deadline - Date.now())))));
  }
  return changesOf(records);
}
