import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSpec, defineSourceConnector, type SourceRecord, type SourceTaskContext } from '@omnibus/sdk';
import { Producer } from '../../src/bus/producer.ts';
import { SourceRunner } from '../../src/bus/source-runner.ts';
import { newTopic } from '../../src/bus/topics.ts';
import { Metrics } from '../../src/metrics.ts';
import { eventually, lmdbStore, quietLogger, type StoreHandle } from './helpers.ts';

/** A source over an in-memory change log of two partitions; it resumes from the committed offsets. */
function changeLogSource(log: Record<string, string[]>, commits: number[]) {
  return defineSourceConnector({
    className: 'ChangeLogSource',
    version: '0.0.0',
    description: 'test source',
    config: ConfigSpec.builder().string('target.topic', { documentation: 'where to publish' }),
    createTask: () => {
      let positions: Record<string, number> = {};
      let topic = '';
      return {
        async start(config: { 'target.topic': string }, context: SourceTaskContext) {
          topic = config['target.topic'];
          const partitions = Object.keys(log).map((table) => ({ table }));
          const offsets = await context.offsets(partitions);
          positions = Object.fromEntries(partitions.map((p, i) => [p.table, (offsets[i]?.position as number | undefined) ?? 0]));
        },
        async poll(): Promise<SourceRecord[]> {
          const records: SourceRecord[] = [];
          for (const [table, rows] of Object.entries(log)) {
            const from = positions[table] ?? 0;
            rows.slice(from, from + 3).forEach((row, i) => {
              records.push({
                sourcePartition: { table },
                sourceOffset: { position: from + i + 1 },
                topic,
                key: row,
                value: { table, row },
                id: `${table}:${from + i}`,
              });
            });
            positions[table] = Math.min(rows.length, from + 3);
          }
          if (records.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
          return records;
        },
        async commit() {
          commits.push(Date.now());
        },
        async stop() {},
      };
    },
  });
}

describe('source runner on LMDB', () => {
  let handle: StoreHandle;
  let producer: Producer;
  beforeAll(async () => {
    handle = await lmdbStore();
    producer = new Producer({ store: handle.store });
  });
  afterAll(async () => handle.close());

  const spec = (connector: ReturnType<typeof changeLogSource>, config: Record<string, string>) => ({
    connectorName: 'cdc',
    taskId: 0,
    taskCount: 1,
    connector,
    config: { name: 'cdc', 'connector.class': 'ChangeLogSource', ...config },
  });
  const deps = () => ({ store: handle.store, producer, metrics: new Metrics({ defaultMetrics: false }), logger: quietLogger(), workerId: 'w', leaseTtlMs: 2000, heartbeatMs: 200 });

  it('publishes polled records to an auto-created topic, commits offsets, and resumes from them', async () => {
    const log = { users: ['u1', 'u2', 'u3', 'u4', 'u5'], orders: ['o1', 'o2'] };
    const commits: number[] = [];
    const connector = changeLogSource(log, commits);
    const config = { 'target.topic': 'changes', 'topic.creation.default.partitions': '6' };
    const first = new SourceRunner(spec(connector, config), deps());
    await first.start();
    const offsets = await eventually(async () => {
      const stored = await handle.store.getSourceOffsets('cdc');
      const byTable = Object.fromEntries(stored.map((o) => [o.partition.table, o.offset.position]));
      return byTable.users === 5 && byTable.orders === 2 ? byTable : undefined;
    }, 'offsets of everything');
    await first.stop();
    expect(offsets).toEqual({ users: 5, orders: 2 });
    expect(commits.length).toBeGreaterThan(0);
    expect((await handle.store.getTopic('changes'))?.shards).toBe(6);
    const ids = ['users:0', 'users:1', 'users:2', 'users:3', 'users:4', 'orders:0', 'orders:1'];
    const published = await handle.store.getMessages(ids);
    expect([...published.keys()].sort()).toEqual([...ids].sort());
    expect(published.get('users:3')).toMatchObject({ topic: 'changes', key: 'u4', value: { table: 'users', row: 'u4' } });

    // New rows after a restart: the task resumes from the committed offsets, nothing is published twice.
    log.users.push('u6');
    const second = new SourceRunner(spec(connector, config), deps());
    await second.start();
    await eventually(async () => (await handle.store.getMessages(['users:5'])).size === 1, 'the new row');
    await second.stop();
    const entries = [];
    for (let shard = 0; shard < 6; shard++) entries.push(...(await handle.store.readBuffer('changes', shard, 0, Date.now() + 1000, 1000)));
    expect(entries.map((e) => e.id).sort()).toEqual([...ids, 'users:5'].sort());
  });

  it('fails the task when the bus rejects what it polled', async () => {
    await handle.store.createTopic(newTopic({ name: 'strict', shards: 2, schema: { type: 'object', required: ['never'] } }));
    const runner = new SourceRunner(spec(changeLogSource({ t: ['x'] }, []), { 'target.topic': 'strict' }), { ...deps() });
    await runner.start();
    const failure = await runner.failure;
    expect(failure.message).toContain('records polled for topic strict were rejected');
    expect(failure.message).toContain("must have required property 'never'");
    await runner.stop();
  });
});
